"""The same write path with django_tasks_db's DatabaseBackend and its real `db_worker` command."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from semantic_catalog.collections import active_collection
from semantic_catalog.models import IndexLease, SyncEvent
from semantic_catalog.registry import registry
from semantic_catalog.search import search

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def db_tasks(settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


def test_db_worker_drains_the_outbox(db_tasks, make_product):
    from django_tasks_db.models import DBTaskResult

    index = registry.get("products")
    first = make_product("Cordless drill", description="battery drill")
    second = make_product("Garden hose", category="hoses", store="b")
    assert SyncEvent.objects.count() == 2
    # two commits, one queued drain: the second writer saw a drain already queued and not started
    assert DBTaskResult.objects.filter(status="READY").count() == 1
    assert active_collection(index) is None  # nothing ran in this process: the worker does the work
    call_command("db_worker", "--batch", "--no-startup-delay", verbosity=0)
    assert SyncEvent.objects.count() == 0
    assert [r.id for r in search(index, "garden hose", mode="keyword")] == [str(second.pk)]
    assert [r.id for r in search(index, "battery drill", mode="keyword")] == [str(first.pk)]
    # one drain applied both events (the drain it queued for its lease's expiry, in case its worker
    # died, may have run too, with nothing to do, when the first load of the model outlasted the lease)
    done = DBTaskResult.objects.filter(status="SUCCESSFUL")
    assert [r.return_value["events"] for r in done if r.return_value["events"]] == [2]
    # once that drain has started, the next write queues a new one
    third = make_product("Leaf blower", category="hoses", store="b")
    assert DBTaskResult.objects.ready().count() == 1
    call_command("db_worker", "--batch", "--no-startup-delay", verbosity=0)
    assert [r.id for r in search(index, "leaf blower", mode="keyword")] == [str(third.pk)]


def test_failed_enqueue_withdraws_the_request_so_the_next_write_retries(db_tasks, make_product, monkeypatch):
    from django_tasks_db.models import DBTaskResult

    from semantic_catalog.models import DrainRequest
    from semantic_catalog.sync.tasks import drain_outbox

    backend = type(drain_outbox.get_backend())
    original = backend.enqueue
    monkeypatch.setattr(backend, "enqueue", lambda *a, **k: (_ for _ in ()).throw(ConnectionError("queue down")))
    make_product("Cordless drill")
    assert SyncEvent.objects.count() == 1 and DrainRequest.objects.count() == 0
    monkeypatch.setattr(backend, "enqueue", original)
    make_product("Garden hose", category="hoses", store="b")
    assert DBTaskResult.objects.filter(status="READY").count() == 1
    call_command("db_worker", "--batch", "--no-startup-delay", verbosity=0)
    assert SyncEvent.objects.count() == 0


def test_failed_drain_schedules_a_deferred_retry(db_tasks, make_product, monkeypatch):
    from django_tasks_db.models import DBTaskResult

    from semantic_catalog.engine.stores.lancedb import LanceDBStore

    make_product("Cordless drill")
    call_command("db_worker", "--batch", "--no-startup-delay", verbosity=0)
    monkeypatch.setattr(LanceDBStore, "upsert", lambda *a, **k: (_ for _ in ()).throw(OSError("store down")))
    make_product("Garden hose", category="hoses", store="b")
    call_command("db_worker", "--batch", "--no-startup-delay", verbosity=0)
    event = SyncEvent.objects.get()
    lease = IndexLease.objects.get(index="products")
    assert event.attempts == 0 and lease.outage == "store"  # an outage uses up no attempts
    deferred = DBTaskResult.objects.filter(status="READY", run_after=lease.outage_retry_at)
    assert deferred.count() == 1
