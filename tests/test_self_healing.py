"""Self-healing sync (issue 15, item 1): a killed worker's lease, an outage of the store or the model,
a row at fault, changes that wait too long. Real parts throughout: SQLite through Django's test
database, LanceDB on disk, the bundled model (tests/encoders.py), django_tasks_db's real db_worker.

A killed worker is simulated the way it looks to everyone else: a lease held by a token that nobody
renews (the test database lives in this process's memory, so no other process can share it), or a
drain interrupted by a BaseException whose lease is never released.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from io import StringIO

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from semantic_catalog.conf import semantic_settings
from semantic_catalog.models import IndexLease, SyncEvent
from semantic_catalog.registry import registry
from semantic_catalog.search import search
from semantic_catalog.status import index_status
from semantic_catalog.sync.drain import drain
from tests.encoders import CountingEncoder

pytestmark = pytest.mark.django_db(transaction=True)


def ids(results):
    return [r.id for r in results]


def worker():
    call_command("db_worker", "--batch", "--no-startup-delay", verbosity=0)


def sleep_until(moment):
    time.sleep(max(0.0, (moment - timezone.now()).total_seconds()) + 0.05)


def pending():
    return SyncEvent.objects.filter(status=SyncEvent.Status.PENDING)


@pytest.fixture
def index():
    return registry.get("products")


@pytest.fixture
def db_tasks(settings, make_product):
    """The catalog's first product indexed (at commit, by the tests' ImmediateBackend), then the
    drain tasks go to django_tasks_db's table and its real db_worker runs them."""
    make_product("Cordless drill", description="battery drill")
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


@pytest.fixture
def sync_settings(settings):
    def update(**values):
        settings.SEMANTIC_CATALOG = {**settings.SEMANTIC_CATALOG, **values}

    return update


def _kill_the_drain_holding(lease_seconds: float) -> datetime:
    """A worker killed mid-drain: its lease stays, held by a token nobody renews, until it lapses."""
    expiry = timezone.now() + timedelta(seconds=lease_seconds)
    IndexLease.objects.filter(index="products").update(token="killed-worker", locked_until=expiry)
    return IndexLease.objects.get(index="products").locked_until


# -- (a) a leased index -------------------------------------------------------------------------------


def test_a_drain_that_finds_the_index_leased_retries_at_the_lease_expiry(db_tasks, index, make_product):
    """kill -9 of a db_worker mid-drain: the next drain finds the index leased, queues a deferred
    drain for the lease's expiry, and that drain applies the events with no further write."""
    from django_tasks_db.models import DBTaskResult

    expiry = _kill_the_drain_holding(lease_seconds=4)

    hose = make_product("Garden hose 50 ft", category="hoses", store="b", description="watering hose")
    worker()  # its drain finds the index leased
    assert pending().count() == 1
    assert DBTaskResult.objects.filter(status="SUCCESSFUL", return_value__busy=1).count() == 1
    retry = DBTaskResult.objects.filter(status="READY", run_after=expiry)
    assert retry.count() == 1 and retry.get().args_kwargs["args"] == ["products"]
    assert ids(search(index, "garden hose", mode="keyword")) == []

    sleep_until(expiry)  # no new write: only time passes
    worker()
    assert SyncEvent.objects.count() == 0
    assert ids(search(index, "garden hose", mode="keyword")) == [str(hose.pk)]


def test_a_worker_killed_mid_drain_leaves_a_drain_queued_that_finishes_its_work(
    db_tasks, index, make_product, monkeypatch, sync_settings
):
    """The drain queues, before it starts, a drain for its own lease's expiry: when its worker is
    killed (it never releases its lease, its task stays RUNNING) and nothing is written afterwards,
    that drain applies the events once the lease has lapsed."""
    from django_tasks_db.models import DBTaskResult

    from semantic_catalog.sync.lease import Lease

    sync_settings(LOCK_SECONDS=2)

    class Killed(BaseException):
        pass

    encode, release = CountingEncoder._encode, Lease.release
    monkeypatch.setattr(CountingEncoder, "_encode", lambda self, texts: (_ for _ in ()).throw(Killed()))
    monkeypatch.setattr(Lease, "release", lambda self: self._stop_heartbeat())  # a dead process releases nothing
    before = timezone.now()
    hose = make_product("Garden hose 50 ft", category="hoses", store="b", description="watering hose")
    worker()
    assert pending().count() == 1 and DBTaskResult.objects.filter(status="FAILED").count() == 1
    lease = IndexLease.objects.get(index="products")
    assert lease.token and lease.locked_until > timezone.now()  # still held by the dead drain
    # the drain it queued as it started, for its lease's expiry (LOCK_SECONDS later)
    watchdog = DBTaskResult.objects.get(status="READY")
    assert before + timedelta(seconds=2) <= watchdog.run_after <= lease.locked_until

    monkeypatch.setattr(CountingEncoder, "_encode", encode)
    monkeypatch.setattr(Lease, "release", release)
    sleep_until(lease.locked_until)
    worker()
    assert SyncEvent.objects.count() == 0
    assert ids(search(index, "garden hose", mode="keyword")) == [str(hose.pk)]


def test_with_the_immediate_backend_semantic_sync_waits_for_a_dead_lease(index, make_product):
    """Without deferred tasks the drain that finds the index leased can only return; `semantic_sync`
    waits for the lease to lapse (it is not renewed: its worker is dead) and drains."""
    make_product("Cordless drill", description="battery drill")
    expiry = _kill_the_drain_holding(lease_seconds=2)
    hose = make_product("Garden hose 50 ft", category="hoses", store="b", description="watering hose")
    assert pending().count() == 1  # the drain at commit found the index leased

    out = StringIO()
    call_command("semantic_sync", stdout=out)
    assert "waiting for it" in out.getvalue() and "1 events applied" in out.getvalue()
    assert timezone.now() >= expiry
    assert SyncEvent.objects.count() == 0
    assert ids(search(index, "garden hose", mode="keyword")) == [str(hose.pk)]


def test_a_live_drain_keeps_its_short_lease_through_a_long_encode(index, make_product, monkeypatch, sync_settings):
    """The lease is short (LOCK_SECONDS) but a heartbeat renews it while the drain encodes, so another
    drain never takes an index whose drain is alive."""
    sync_settings(LOCK_SECONDS=1)
    make_product("Cordless drill", description="battery drill")
    encode = CountingEncoder._encode
    seen = {}

    def slow(self, texts):
        started = timezone.now()
        time.sleep(2.5)  # longer than the lease
        lease = IndexLease.objects.get(index="products")
        seen.update(held=lease.locked_until > timezone.now() > started + timedelta(seconds=2), other=drain("products"))
        return encode(self, texts)

    monkeypatch.setattr(CountingEncoder, "_encode", slow)
    hose = make_product("Garden hose 50 ft", category="hoses", store="b", description="watering hose")
    assert seen["held"] and seen["other"].busy
    assert SyncEvent.objects.count() == 0
    assert ids(search(index, "garden hose", mode="keyword")) == [str(hose.pk)]
    assert IndexLease.objects.get(index="products").locked_until is None  # released


# -- (b) an outage of the store or the model ----------------------------------------------------------


def test_a_store_outage_never_uses_up_attempts(index, make_product, monkeypatch, sync_settings, admin_client):
    from semantic_catalog.backends import get_store

    Store = type(get_store())  # the configured store: LanceDB, or PostgreSQL (tests.settings_pg)

    sync_settings(MAX_ATTEMPTS=2, RETRY_BASE_SECONDS=0.5, OUTAGE_RETRY_MAX_SECONDS=1)
    make_product("Cordless drill", description="battery drill")
    original = Store.upsert
    writes = []

    def unwritable(self, *args, **kwargs):
        writes.append(timezone.now())
        raise PermissionError(13, "Permission denied", "semantic/lancedb/products.lance")

    monkeypatch.setattr(Store, "upsert", unwritable)
    with transaction.atomic():
        hose = make_product("Garden hose 50 ft", category="hoses", store="b", description="watering hose")
        mitts = make_product("Silicone oven mitts", category="pans", description="heat proof kitchen gloves")
    tries = len(writes)
    report = drain("products")  # before the outage's next try: the store is left alone
    assert report.outage is not None and len(writes) == tries
    lease = IndexLease.objects.get(index="products")
    since = lease.outage_since
    assert lease.outage == "store" and since is not None

    status = index_status(index)
    assert status["pending"] == 2 and status["failed"] == 0
    assert status["outage"]["what"] == "store" and "Permission denied" in status["outage"]["error"]
    assert any(w.startswith("store unavailable since ") for w in status["warnings"]), status["warnings"]
    body = admin_client.get("/api/semantic/status").json()
    assert any("store unavailable since" in w for w in body["indexes"][0]["warnings"])
    out = StringIO()
    call_command("semantic_status", stdout=out)
    assert "store unavailable since" in out.getvalue()

    # more tries than MAX_ATTEMPTS, each after a backoff capped at OUTAGE_RETRY_MAX_SECONDS
    for _ in range(semantic_settings.MAX_ATTEMPTS + 3):
        lease = IndexLease.objects.get(index="products")
        assert (lease.outage_retry_at - timezone.now()).total_seconds() <= 1
        sleep_until(lease.outage_retry_at)
        tries = len(writes)
        report = drain("products")
        assert report.outage is not None and report.failed == 0 and len(writes) > tries
    assert pending().count() == 2 and SyncEvent.objects.filter(attempts__gt=0).count() == 0
    assert all("store unavailable" in e.last_error for e in pending())
    assert IndexLease.objects.get(index="products").outage_since == since

    monkeypatch.setattr(Store, "upsert", original)  # the store is back
    sleep_until(IndexLease.objects.get(index="products").outage_retry_at)
    report = drain("products")
    assert report.events == 2 and report.outage is None
    assert SyncEvent.objects.count() == 0
    assert ids(search(index, "garden hose", mode="keyword")) == [str(hose.pk)]
    assert ids(search(index, "oven mitts", mode="keyword")) == [str(mitts.pk)]
    status = index_status(index)
    assert status["outage"] is None and not any("unavailable" in w for w in status["warnings"])


def test_a_model_outage_is_reported_and_semantic_sync_retries_at_once(index, make_product, monkeypatch):
    make_product("Cordless drill", description="battery drill")
    encode = CountingEncoder._encode
    monkeypatch.setattr(
        CountingEncoder, "_encode", lambda self, texts: (_ for _ in ()).throw(RuntimeError("model server down"))
    )
    for n in range(3):
        make_product(f"Garden hose {n}0 m", category="hoses", store="b")
    assert pending().count() == 3 and SyncEvent.objects.filter(attempts__gt=0).count() == 0
    warnings = index_status(index)["warnings"]
    assert any(w.startswith("model unavailable since ") and "model server down" in w for w in warnings), warnings

    monkeypatch.setattr(CountingEncoder, "_encode", encode)
    out = StringIO()
    call_command("semantic_sync", stdout=out)  # a person asks: no waiting for the next try
    assert "3 events applied" in out.getvalue()
    assert SyncEvent.objects.count() == 0 and index_status(index)["outage"] is None
    assert len(ids(search(index, "garden hose", mode="keyword"))) == 3


# -- (c) a row at fault -------------------------------------------------------------------------------


def test_a_row_whose_document_cannot_be_built_fails_alone(index, make_product, monkeypatch, sync_settings):
    sync_settings(MAX_ATTEMPTS=3, RETRY_BASE_SECONDS=0)
    make_product("Cordless drill", description="battery drill")
    to_document = type(index).to_document

    def broken_for_one(self, obj):
        if obj.name.startswith("Broken"):
            raise ValueError("category has no path")
        return to_document(self, obj)

    monkeypatch.setattr(type(index), "to_document", broken_for_one)
    with transaction.atomic():
        broken = make_product("Broken lawn mower", category="hoses", store="b")
        hose = make_product("Garden hose 50 ft", category="hoses", store="b")
        mitts = make_product("Silicone oven mitts", category="pans")
    event = SyncEvent.objects.get()
    assert event.object_id == str(broken.pk)
    assert event.status == SyncEvent.Status.FAILED and event.attempts == 3
    assert "building the document failed" in event.last_error and "no path" in event.last_error
    assert ids(search(index, "garden hose", mode="keyword")) == [str(hose.pk)]
    assert ids(search(index, "oven mitts", mode="keyword")) == [str(mitts.pk)]
    assert index_status(index)["outage"] is None  # a row's fault is no outage


# -- (d) changes that wait too long -------------------------------------------------------------------


def test_status_warns_about_changes_waiting_longer_than_stale_event_seconds(index, make_product, sync_settings):
    sync_settings(ENQUEUE_DRAIN=False, STALE_EVENT_SECONDS=60)  # no drain: the changes wait
    make_product("Cordless drill")
    make_product("Garden hose", category="hoses", store="b")
    assert not any("waited" in w for w in index_status(index)["warnings"])

    old = timezone.now() - timedelta(seconds=90)
    SyncEvent.objects.filter(pk=SyncEvent.objects.order_by("id").first().pk).update(created_at=old)
    warnings = [w for w in index_status(index)["warnings"] if "waited" in w]
    assert len(warnings) == 1 and warnings[0].startswith("1 changes have waited more than 60 s"), warnings
    out = StringIO()
    call_command("semantic_status", stdout=out)
    assert "1 changes have waited more than 60 s" in out.getvalue()

    call_command("semantic_sync", stdout=StringIO())
    assert not any("waited" in w for w in index_status(index)["warnings"])


def test_sync_seconds_settings_are_validated(sync_settings):
    for key in ("STALE_EVENT_SECONDS", "LOCK_SECONDS", "OUTAGE_RETRY_MAX_SECONDS"):
        for value in (0, -5, "60", True, None):
            sync_settings(**{key: value})
            with pytest.raises(ImproperlyConfigured, match=rf"{key}'\] must be a number of seconds greater than 0"):
                getattr(semantic_settings, key)
        sync_settings(**{key: 2.5})
        assert getattr(semantic_settings, key) == 2.5
