"""The reliability suite (issue 15, item 6): real processes, real faults, no manual step.

Each test starts real ``db_worker`` processes and real writer processes on a database they share
(a SQLite file in WAL mode, or PostgreSQL), injects a fault, waits for the outbox to empty on its
own (no ``semantic_sync``), and ends with ``manage.py semantic_check`` finding zero differences.
Sizes here keep the suite to a few minutes; benchmarks/reliability.py runs the large version
(5,000 writes). Each prints its events, time to converge and peak lag.
"""

from __future__ import annotations

import pytest

from tests.reliability.scenarios import Outcome, concurrent_writes, kill_worker_mid_drain, store_outage

pytestmark = pytest.mark.reliability

KILL_WRITES = 200  # enough for a drain of several batches (SYNC_BATCH_SIZE 16), to kill in the middle
OUTAGE_WRITES = 60
OUTAGE_SECONDS = 8  # longer than MAX_ATTEMPTS x RETRY_MAX_SECONDS (3 x 2 s) in the workers' settings
CONCURRENT_WRITES = 300
KINDS = {"create", "update", "price", "toggle_active", "delete", "bulk_create", "queryset_update"}


def assert_healed(outcome: Outcome, capsys) -> None:
    with capsys.disabled():
        print(f"\n{outcome.line()}")
    assert outcome.check_status == 0 and outcome.differences == 0, outcome.check
    assert outcome.failed_events == 0 and outcome.notes["max_failed_events_seen"] == 0, outcome
    assert not outcome.failed_tasks, outcome.failed_tasks
    assert all(report["pending"] == 0 and report["failed"] == 0 for report in outcome.check)


def test_a_worker_killed_mid_drain_heals_with_no_further_write(cluster, capsys):
    """SIGKILL of the worker whose drain holds the lease, after its first batches: its lease lapses
    (LOCK_SECONDS), the drain it queued for that moment (or the other worker's retry) applies the
    rest. A new worker is started; nothing is written after the kill."""
    outcome = kill_worker_mid_drain(cluster(), writes=KILL_WRITES)
    assert outcome.notes["lease_held_after_kill"], "the worker was not killed mid-drain"
    assert outcome.notes["pending_after"] > 0
    assert_healed(outcome, capsys)


def test_the_store_unavailable_longer_than_all_retries_then_back(cluster, capsys):
    """LanceDB: its folder read-only for the workers; PostgreSQL: the store's server stopped. Writes
    go on meanwhile; the drains record an outage (attempts untouched) and retry until it is back."""
    outcome = store_outage(cluster(store_server=True), initial=40, during=OUTAGE_WRITES,
                           outage_seconds=OUTAGE_SECONDS)
    assert outcome.notes["outage_seconds"] >= OUTAGE_SECONDS > outcome.notes["retries_span"]
    assert outcome.waited_for_outage > 0  # drains found it and waited instead of using attempts up
    assert_healed(outcome, capsys)


def test_writes_from_four_processes_while_two_workers_drain(cluster, capsys):
    """Creates, updates, deactivations, deletes, bulk_create + mark_dirty and QuerySet.update +
    mark_dirty from 4 processes at once; every event is applied (drains that finished count them)."""
    outcome = concurrent_writes(cluster(), writes=CONCURRENT_WRITES, writers=4, workers=2)
    assert set(outcome.kinds) - {"writes"} == KINDS
    assert outcome.writes == CONCURRENT_WRITES and outcome.events >= CONCURRENT_WRITES
    assert_healed(outcome, capsys)
