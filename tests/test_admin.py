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


@pytest.fixture
def library_rows(db):
    """One row of each table the library owns, as semantic_index and an analysis run would write them."""
    from django.utils import timezone

    from semantic_catalog.models import AnalysisRun, CategoryLink, Collection, ProductMatch, Substitution

    run = AnalysisRun.objects.create(
        index="products", kind="matches", model="m", source="server", computed_at=timezone.now()
    )
    return {
        "collection": Collection.objects.create(index="products", table="products_t1", model="m", dimension=3),
        "syncevent": SyncEvent.objects.create(index="products", object_id="7", status="failed", last_error="boom"),
        "analysisrun": run,
        "categorylink": CategoryLink.objects.create(
            run=run, source_store="1", source_category="10", target_store="2", target_category="20", score=0.9
        ),
        "substitution": Substitution.objects.create(run=run, product="1", substitute="2", level=3, score=0.8, rank=1),
        "productmatch": ProductMatch.objects.create(run=run, product="1", match="2", score=0.95),
    }


def test_library_state_is_read_only_in_the_admin(admin_client, library_rows):
    for name, row in library_rows.items():
        model = type(row)
        base = f"/admin/semantic_catalog/{name}/"
        before = model.objects.count()

        changelist = admin_client.get(base).content.decode()
        assert f'href="{base}add/"' not in changelist, name
        assert "delete_selected" not in changelist, name
        assert admin_client.get(f"{base}add/").status_code == 403, name
        assert admin_client.post(f"{base}add/", {"index": "x", "object_id": "1"}).status_code == 403, name
        assert model.objects.count() == before, name

        change = f"{base}{row.pk}/change/"
        page = admin_client.get(change)
        assert page.status_code == 200, name
        assert 'name="_save"' not in page.content.decode() and "deletelink" not in page.content.decode(), name
        snapshot = model.objects.filter(pk=row.pk).values().get()
        assert admin_client.post(change, {"index": "changed", "score": "0"}).status_code == 403, name
        assert model.objects.filter(pk=row.pk).values().get() == snapshot, name

        assert admin_client.get(f"{base}{row.pk}/delete/").status_code == 403, name
        assert admin_client.post(f"{base}{row.pk}/delete/", {"post": "yes"}).status_code == 403, name
        response = admin_client.post(base, {"action": "delete_selected", "_selected_action": [row.pk], "post": "yes"})
        assert response.status_code in (200, 302), name
        assert model.objects.count() == before, name


def test_leases_and_drain_requests_are_not_in_the_admin(admin_client):
    """Transient coordination rows: `semantic_status` reports a drain that never started."""
    assert admin_client.get("/admin/semantic_catalog/indexlease/").status_code == 404
    assert admin_client.get("/admin/semantic_catalog/drainrequest/").status_code == 404


def test_retry_needs_the_change_permission(client, library_rows):
    from django.contrib.auth.models import Permission

    staff = User.objects.create_user("viewer", password="pw", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_syncevent"))
    client.login(username="viewer", password="pw")
    event = library_rows["syncevent"]
    assert 'value="retry"' not in client.get("/admin/semantic_catalog/syncevent/").content.decode()
    client.post("/admin/semantic_catalog/syncevent/", {"action": "retry", "_selected_action": [event.pk]})
    assert SyncEvent.objects.get(pk=event.pk).status == "failed"

    staff.user_permissions.add(Permission.objects.get(codename="change_syncevent"))
    assert 'value="retry"' in client.get("/admin/semantic_catalog/syncevent/").content.decode()


def test_admin_labels_are_proper_plurals(admin_client):
    page = admin_client.get("/admin/").content.decode()
    for label in ("Product matches", "Substitutions", "Category links", "Analysis runs", "Sync events", "Collections"):
        assert f">{label}<" in page, label
    assert "matchs" not in page
