"""Management commands: full index, rebuild that switches only when complete, sync, status."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError

from semantic_catalog.backends import get_store
from semantic_catalog.collections import active_collection
from semantic_catalog.models import Collection, SyncEvent
from semantic_catalog.registry import registry
from semantic_catalog.search import search
from tests.helpers import run

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def offline(settings):
    """Changes are recorded in the outbox but not drained automatically (ENQUEUE_DRAIN off)."""
    settings.SEMANTIC_CATALOG = {**settings.SEMANTIC_CATALOG, "ENQUEUE_DRAIN": False}


def test_semantic_index_builds_then_skips_unchanged(offline, make_product, counting):
    for n in range(5):
        make_product(f"Drill bit set {n}", description=f"{n} bits")
    make_product("Old stock", active=False)
    out = run("semantic_index", "--index", "products", "--batch-size", "2")
    assert "5 rows" in out and "5 encoded" in out and "5 documents in the index" in out
    index = registry.get("products")
    assert get_store().count(active_collection(index).table) == 5
    counting.reset()
    out = run("semantic_index")
    assert "nothing to do: all 5 rows were already indexed" in out and "5 documents in the index" in out
    assert counting.texts_encoded == 0


def test_semantic_index_removes_rows_that_left_the_queryset(offline, make_product):
    keep = make_product("Drill")
    gone = make_product("Hose")
    run("semantic_index")
    gone.active = False
    gone.save()
    out = run("semantic_index")
    assert "1 removed" in out
    assert set(get_store().content_hashes(active_collection(registry.get("products")).table)) == {str(keep.pk)}


def test_rebuild_switches_collections_only_when_complete(offline, make_product, monkeypatch):
    import semantic_catalog.sync.reconcile as indexing

    for n in range(3):
        make_product(f"Drill {n}")
    run("semantic_index")
    index = registry.get("products")
    old = active_collection(index)

    def crash(*args, **kwargs):
        raise RuntimeError("worker died mid-rebuild")

    monkeypatch.setattr(indexing, "activate", crash)
    with pytest.raises(RuntimeError):
        run("semantic_index", "--rebuild")
    assert active_collection(index).table == old.table  # still serving the old collection
    assert search(index, "drill", mode="keyword")

    monkeypatch.undo()
    out = run("semantic_index", "--rebuild")
    new = active_collection(index)
    assert new.table != old.table and new.table in out
    assert get_store().count(new.table) == 3
    assert Collection.objects.filter(index="products", state="building").count() == 0
    assert Collection.objects.get(table=old.table).state == "retired"


def test_searches_see_a_switch_here_at_once_and_another_process_within_the_cache_time(
    offline, make_product, settings, monkeypatch
):
    """Searches remember the active collection for COLLECTION_CACHE_SECONDS (no SQL per search); a
    switch in this process is seen at once, one made elsewhere (a bare SQL update) once it expires."""
    from django.core.exceptions import ImproperlyConfigured
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    import semantic_catalog.collections as collections

    make_product("Cordless drill")
    run("semantic_index")
    index = registry.get("products")
    first = collections.require_searchable(index)
    with CaptureQueriesContext(connection) as queries:
        assert collections.require_searchable(index).table == first.table
    assert len(queries) == 0

    run("semantic_index", "--rebuild")  # activates here: no stale answer
    second = collections.require_searchable(index)
    assert second.table != first.table and second.table == active_collection(index).table
    assert [r.object.name for r in search(index, "drill", mode="keyword")] == ["Cordless drill"]

    # Another process switches back: this one keeps the collection it knows until the time is up.
    Collection.objects.filter(pk=second.pk).update(state="retired")
    Collection.objects.filter(pk=first.pk).update(state="active")
    assert collections.require_searchable(index).table == second.table
    later = collections.time.monotonic() + 2.5
    monkeypatch.setattr(collections.time, "monotonic", lambda: later)
    assert collections.require_searchable(index).table == first.table
    assert [r.object.name for r in search(index, "drill", mode="keyword")] == ["Cordless drill"]

    settings.SEMANTIC_CATALOG = {**settings.SEMANTIC_CATALOG, "COLLECTION_CACHE_SECONDS": 0}
    Collection.objects.filter(pk=first.pk).update(state="retired")
    Collection.objects.filter(pk=second.pk).update(state="active")
    assert collections.require_searchable(index).table == second.table  # asked SQL again

    settings.SEMANTIC_CATALOG = {**settings.SEMANTIC_CATALOG, "COLLECTION_CACHE_SECONDS": "2"}
    with pytest.raises(ImproperlyConfigured, match="COLLECTION_CACHE_SECONDS"):
        collections.require_searchable(index)


def test_semantic_sync_drains_and_retries_failed(offline, make_product):
    drill = make_product("Cordless drill")
    assert SyncEvent.objects.filter(object_id=str(drill.pk)).count() == 1
    out = run("semantic_sync")
    assert "1 events applied" in out and SyncEvent.objects.count() == 0
    SyncEvent.objects.create(index="products", object_id=str(drill.pk), status="failed", attempts=5)
    out = run("semantic_sync", "--retry-failed")
    assert "1 failed events reset" in out and SyncEvent.objects.count() == 0


def test_semantic_status_table_and_json(offline, make_product):
    make_product("Drill")
    make_product("Hose")
    run("semantic_index")
    run("semantic_sync")
    make_product("Pending one")
    table = run("semantic_status")
    assert "products" in table and "all-MiniLM-L6-v2" in table
    (status,) = json.loads(run("semantic_status", "--json"))
    assert (status["in_queryset"], status["indexed"], status["pending"], status["failed"]) == (3, 2, 1, 0)
    run("semantic_sync")
    (status,) = json.loads(run("semantic_status", "--json"))
    assert (status["indexed"], status["pending"]) == (3, 0)


def test_commands_reject_bad_arguments(db):
    with pytest.raises(CommandError, match="Unknown index 'nope'"):
        run("semantic_index", "--index", "nope")
    with pytest.raises(CommandError, match="at least 1"):
        run("semantic_index", "--batch-size", "0")


def test_status_warns_when_a_queued_drain_never_starts(offline, make_product):
    from datetime import timedelta

    from django.utils import timezone

    from semantic_catalog.models import DrainRequest

    make_product("Drill")
    run("semantic_sync")
    DrainRequest.objects.create(index="products", requested_at=timezone.now() - timedelta(hours=1))
    (status,) = json.loads(run("semantic_status", "--json"))
    assert any("is the tasks worker running" in w for w in status["warnings"])
    run("semantic_sync")  # a drain clears the request
    (status,) = json.loads(run("semantic_status", "--json"))
    assert not any("worker" in w for w in status["warnings"])
