"""The write path end to end: real SQLite transactions, the real model, LanceDB on disk."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.utils import timezone

from semantic_catalog.models import IndexLease, SyncEvent
from semantic_catalog.registry import registry
from semantic_catalog.search import search
from semantic_catalog.sync import mark_dirty
from semantic_catalog.sync.drain import drain

pytestmark = pytest.mark.django_db(transaction=True)


def ids(results):
    return [r.id for r in results]


@pytest.fixture
def index():
    return registry.get("products")


def test_create_update_delete_propagate_to_search(index, make_product):
    drill = make_product("Cordless drill driver 18V", description="Battery powered drill for screws")
    make_product("Cast iron skillet", category="pans", description="Heavy pan for searing steak")
    assert ids(search(index, "battery drill", mode="semantic", limit=1)) == [str(drill.pk)]
    assert SyncEvent.objects.count() == 0  # drained at commit by the immediate backend

    drill.name = "Garden hose reel 30 m"
    drill.description = "Keeps the watering hose tidy"
    drill.save()
    assert ids(search(index, "hose reel", mode="keyword")) == [str(drill.pk)]
    assert str(drill.pk) not in ids(search(index, "cordless", mode="keyword"))

    drill.delete()
    assert ids(search(index, "hose reel", mode="keyword")) == []
    assert search(index, "pan", mode="semantic", limit=5)[0].object.name == "Cast iron skillet"


def test_deactivated_row_leaves_every_endpoint(index, make_product, client):
    drill = make_product("Cordless drill driver", description="battery drill")
    other = make_product("Hammer drill with case", description="corded drill")
    pk = str(drill.pk)
    assert pk in ids(search(index, "drill", mode="hybrid"))

    drill.active = False
    drill.save()
    for mode in ("semantic", "keyword", "hybrid"):
        body = client.get("/api/semantic/products/search", {"q": "drill", "mode": mode}).json()
        assert pk not in [hit["id"] for hit in body["results"]], mode
    assert client.get(f"/api/semantic/products/{pk}/similar").status_code == 404
    similar = client.get(f"/api/semantic/products/{other.pk}/similar").json()
    assert pk not in [hit["id"] for hit in similar["results"]]
    response = client.post("/api/semantic/products/recommend", {"positive": [pk]}, content_type="application/json")
    assert response.status_code == 400 and pk in response.json()["detail"]
    from semantic_catalog.backends import get_store
    from semantic_catalog.collections import active_collection

    assert pk not in get_store().content_hashes(active_collection(index).table)


def test_rolled_back_transaction_leaves_no_trace(index, make_product, counting):
    make_product("Cordless drill", description="battery drill")
    counting.reset()
    with pytest.raises(RuntimeError), transaction.atomic():
        make_product("Garden hose 50 ft", category="hoses", store="b", description="watering hose")
        raise RuntimeError("boom")
    assert SyncEvent.objects.count() == 0
    assert counting.texts_encoded == 0
    assert ids(search(index, "garden hose", mode="keyword")) == []


def test_store_failure_keeps_outbox_row_and_later_drain_repairs(index, make_product, monkeypatch):
    from semantic_catalog.backends import get_store

    Store = type(get_store())  # the configured store: LanceDB, or PostgreSQL (tests.settings_pg)

    first = make_product("Cordless drill", description="battery drill")  # builds the collection
    original = Store.upsert

    def broken(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(Store, "upsert", broken)
    hose = make_product("Garden hose 50 ft", category="hoses", store="b", description="watering hose")
    event = SyncEvent.objects.get(object_id=str(hose.pk))
    assert event.status == SyncEvent.Status.PENDING
    # the store's failure is no fault of the row: no attempt is used up, the outage is the index's
    assert event.attempts == 0 and "store unavailable" in event.last_error and "disk full" in event.last_error
    lease = IndexLease.objects.get(index="products")
    assert lease.outage == "store" and lease.outage_retry_at > event.created_at
    assert ids(search(index, "garden hose", mode="keyword")) == []

    monkeypatch.setattr(Store, "upsert", original)
    assert drain("products").outage is not None  # drains wait for the outage's next try
    IndexLease.objects.update(outage_retry_at=timezone.now())  # the backoff has passed
    report = drain("products")
    assert report.events == 1 and report.outage is None
    assert SyncEvent.objects.count() == 0
    assert IndexLease.objects.get(index="products").outage == ""
    assert ids(search(index, "garden hose", mode="keyword")) == [str(hose.pk)]
    assert str(first.pk) in ids(search(index, "drill", mode="keyword"))


def test_events_give_up_after_max_attempts(index, make_product, monkeypatch, settings):
    """A row the store refuses while it writes the others is that row's fault: its event backs off and
    is kept as failed after MAX_ATTEMPTS; the rows written with it are applied."""
    from semantic_catalog.backends import get_store

    Store = type(get_store())  # the configured store: LanceDB, or PostgreSQL (tests.settings_pg)

    settings.SEMANTIC_CATALOG = {**settings.SEMANTIC_CATALOG, "MAX_ATTEMPTS": 2}
    make_product("Cordless drill")
    original = Store.upsert

    def refuses_hoses(self, name, documents, vectors):
        if any("hose" in d.text for d in documents):
            raise ValueError("value out of range for column 'price'")
        return original(self, name, documents, vectors)

    monkeypatch.setattr(Store, "upsert", refuses_hoses)
    with transaction.atomic():
        hose = make_product("Garden hose", category="hoses", store="b")
        mitts = make_product("Silicone oven mitts", category="pans")
    event = SyncEvent.objects.get()
    assert event.object_id == str(hose.pk) and event.attempts == 1 and event.status == SyncEvent.Status.PENDING
    assert ids(search(index, "oven mitts", mode="keyword")) == [str(mitts.pk)]

    SyncEvent.objects.update(next_attempt_at=timezone.now())  # the backoff has passed
    blower = make_product("Leaf blower", category="hoses", store="b")
    event = SyncEvent.objects.get()
    assert event.status == SyncEvent.Status.FAILED and event.attempts == 2
    assert "out of range" in event.last_error
    assert ids(search(index, "leaf blower", mode="keyword")) == [str(blower.pk)]
    assert IndexLease.objects.get(index="products").outage == ""


def test_unchanged_content_is_not_reencoded(index, make_product, counting):
    drill = make_product("Cordless drill", description="battery drill", price="99.00")
    assert counting.texts_encoded == 1
    drill.save()  # nothing changed
    assert counting.texts_encoded == 1
    drill.price = "49.00"  # a filter field changed, the text did not: the vector is reused
    drill.save()
    assert counting.texts_encoded == 1
    drill.description = "brushless battery drill"
    drill.save()
    assert counting.texts_encoded == 2
    assert ids(search(index, "drill", mode="keyword", filters={"price__lte": 50})) == [str(drill.pk)]
    assert ids(search(index, "drill", mode="keyword", filters={"price__gt": 50})) == []


def test_many_saves_in_one_transaction_encode_in_one_batch(index, make_product, counting):
    make_product("Seed product")
    counting.reset()
    with transaction.atomic():
        for n in range(20):
            make_product(f"Drill bit set {n} pieces", description=f"{n} titanium bits")
    assert counting.calls == 1 and counting.texts_encoded == 20


def test_mark_dirty_after_bulk_create_and_update(index, shop, make_product):
    from shop.models import Product

    make_product("Seed product")
    created = Product.objects.bulk_create(
        [Product(name=f"Watering can {n} litres", price=5, store=shop["b"], category=shop["hoses"]) for n in (5, 10)]
    )
    assert ids(search(index, "watering can", mode="keyword")) == []
    assert mark_dirty(index, Product.objects.filter(name__startswith="Watering")) == 2
    assert sorted(ids(search(index, "watering can", mode="keyword"))) == sorted(str(p.pk) for p in created)

    Product.objects.filter(pk=created[0].pk).update(active=False)
    mark_dirty(Product, [created[0].pk])
    assert ids(search(index, "watering can", mode="keyword")) == [str(created[1].pk)]


def test_hybrid_finds_what_only_one_retriever_finds(index, make_product):
    """One query, two targets: a rare word only keyword search matches, a paraphrase only semantic
    search matches. Hybrid's top 3 has both; neither single retriever's top 3 does."""
    for n in range(6):
        make_product(f"Cordless drill driver {n}", description=f"{12 + n}V battery drill with two speeds")
    for name in ("Kitchen knife block", "Silicone oven mitts", "Bamboo cutting board", "Spice rack"):
        make_product(name, category="pans", description="Kitchen helper")
    rare = make_product("Storage box with lid", category="tools", description="Fits the Hoozit wall rail")
    skillet = make_product("Cast iron skillet", category="pans", description="Pre-seasoned, for searing steak")
    query, k = "hoozit frying pan", 3

    keyword = ids(search(index, query, "keyword", limit=k))
    semantic = ids(search(index, query, "semantic", limit=k))
    hybrid = ids(search(index, query, "hybrid", limit=k))
    assert str(rare.pk) in keyword and str(rare.pk) not in semantic
    assert str(skillet.pk) in semantic and str(skillet.pk) not in keyword
    assert {str(rare.pk), str(skillet.pk)} <= set(hybrid)


def test_filter_on_parent_category_finds_its_subtree(index, make_product, shop):
    drill = make_product("Cordless drill", category="drills")
    make_product("Cast iron skillet", category="pans")
    results = search(index, "drill", mode="semantic", filters={"category": shop["tools"].pk})
    assert ids(results) == [str(drill.pk)]


def test_loaddata_style_raw_saves_are_recorded(index, shop):
    from django.core import serializers

    from shop.models import Product

    data = serializers.serialize(
        "json",
        [
            Product(
                pk=500,
                name="Leaf blower 40V",
                price=120,
                store=shop["b"],
                category=shop["hoses"],
                updated_at=timezone.now(),
            )
        ],
    )
    with transaction.atomic():
        for obj in serializers.deserialize("json", data):
            obj.save()
    assert ids(search(index, "leaf blower", mode="keyword")) == ["500"]


def test_template_text_is_the_rows_text_verbatim(index, make_product):
    """A text_template renders the row's text as it is, not HTML-escaped: '&' and '>' stay themselves
    and no 'amp' or 'gt' words reach the keyword index."""
    fork = make_product(
        "Spear & Jackson border fork", brand="Spear & Jackson", description='Stainless "tines" <forged>'
    )
    text = index.to_document(fork).text
    assert text == 'Spear & Jackson border fork. Spear & Jackson. Tools > Drills. Stainless "tines" <forged>'
    assert ids(search(index, "Spear & Jackson", mode="keyword")) == [str(fork.pk)]
    for word in ("amp", "gt", "lt", "quot"):
        assert ids(search(index, word, mode="keyword")) == [], word
