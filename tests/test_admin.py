"""Admin: the index-state column, the re-index action, and the outbox admin."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from semantic_catalog.models import SyncEvent
from semantic_catalog.search import search

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def admin_client(client):
    User.objects.create_superuser("admin", "a@example.com", "pw")
    client.login(username="admin", password="pw")
    return client


def test_changelist_shows_each_rows_index_state(admin_client, make_product, settings):
    indexed = make_product("Cordless drill")
    inactive = make_product("Old stock drill", active=False)
    settings.SEMANTIC_CATALOG = {**settings.SEMANTIC_CATALOG, "ENQUEUE_DRAIN": False}
    pending = make_product("Just added drill")
    failed = make_product("Broken drill")
    SyncEvent.objects.filter(object_id=str(failed.pk)).update(status="failed", last_error="boom")
    page = admin_client.get("/admin/shop/product/").content.decode()

    def row(product) -> str:
        return page.split(f"/admin/shop/product/{product.pk}/change/")[1].split("</tr>")[0]

    assert '<td class="field-index_state">indexed</td>' in row(indexed)
    assert "not in index queryset" in row(inactive)
    assert ">pending<" in row(pending)
    assert ">failed<" in row(failed)


def test_reindex_action_queues_and_drains(admin_client, make_product):
    from shop.models import Product

    drill = make_product("Cordless drill")
    Product.objects.filter(pk=drill.pk).update(name="Garden hose")  # bypasses signals
    response = admin_client.post(
        "/admin/shop/product/",
        {"action": "reindex_selected", "_selected_action": [drill.pk]},
        follow=True,
    )
    assert "Queued 1 rows for re-indexing" in response.content.decode()

    assert [r.id for r in search("products", "garden hose", mode="keyword")] == [str(drill.pk)]


def test_sync_event_admin_retries_failed(admin_client, make_product):
    drill = make_product("Cordless drill")
    event = SyncEvent.objects.create(index="products", object_id=str(drill.pk), status="failed", attempts=5)
    assert "failed" in admin_client.get("/admin/semantic_catalog/syncevent/").content.decode()
    admin_client.post(
        "/admin/semantic_catalog/syncevent/", {"action": "retry", "_selected_action": [event.pk]}, follow=True
    )
    assert not SyncEvent.objects.filter(pk=event.pk).exists()  # retried and drained
    assert admin_client.get("/admin/semantic_catalog/collection/").status_code == 200
