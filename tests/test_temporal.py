"""Bulk indexing as Temporal workflows (issue 18), on a real Temporal dev server.

``export SEMANTIC_CATALOG_TEST_TEMPORAL_ADDRESS="$(bash scripts/temporal.sh)"`` starts one (CI does).
Workers run in a thread of the test process (the in-memory SQLite database is shared by its threads),
except in the kill test, where real ``semantic_temporal_worker`` processes share a SQLite file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import pytest

from tests.temporal_helpers import ADDRESS_VARIABLE, FaultyEncoder, ThreadWorker

pytest.importorskip("temporalio", reason="pip install 'django-semantic-catalog[temporal]' for the Temporal tests")
ADDRESS = os.environ.get(ADDRESS_VARIABLE, "")
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not ADDRESS,
        reason=f'needs a Temporal server: export {ADDRESS_VARIABLE}="$(bash scripts/temporal.sh)" (CI starts one)',
    ),
]
FAULTY = "tests.temporal_helpers.FaultyEncoder"


def _configure(settings, queue: str, *, delay: float = 0.0, **temporal):
    config = dict(settings.SEMANTIC_CATALOG)
    config["AUTO_SYNC"] = temporal.pop("auto_sync", False)  # rows start outside the index
    config["ENCODER"] = {"BACKEND": FAULTY, "OPTIONS": {"device": "cpu", "delay": delay}}
    config["TEMPORAL"] = {
        "ADDRESS": ADDRESS,
        "TASK_QUEUE": queue,
        "RETRY_SECONDS": 0.1,
        "MAX_ATTEMPTS": 3,
        "HEARTBEAT_SECONDS": 10,
        **temporal,
    }
    settings.SEMANTIC_CATALOG = config


@pytest.fixture
def worker(settings):
    """A worker on a task queue of this test's own, with the faulty (and optionally slow) model."""
    queue = f"test-{uuid.uuid4().hex[:10]}"
    _configure(settings, queue)
    FaultyEncoder.reset()
    running = ThreadWorker(queue).start()
    yield running
    running.stop()


@pytest.fixture
def products(make_product):
    def make(count: int, special: dict[int, str] | None = None) -> list:
        special = special or {}
        return [
            make_product(f"Cordless drill {n} {special.get(n, '')}".strip(), description=f"model {n}")
            for n in range(count)
        ]

    return make


def _stored(index_name: str = "products") -> dict[str, str]:
    from semantic_catalog.backends import get_store
    from semantic_catalog.collections import active_collection
    from semantic_catalog.registry import registry

    collection = active_collection(registry.get(index_name))
    return get_store().content_hashes(collection.table) if collection else {}


def _assert_index_is_sql_truth() -> None:
    from semantic_catalog.registry import registry
    from semantic_catalog.sync.check import check_index

    index = registry.get("products")
    report = check_index(index)
    assert (report.missing.ids, report.stale.ids, report.orphaned.ids) == ([], [], [])
    assert report.indexed == report.in_queryset == index.get_queryset().count()


def _wait_status(run_id: str, until, timeout: float = 60) -> dict:
    from semantic_catalog.workflows import service

    deadline = time.monotonic() + timeout
    while True:
        data = service.status(run_id)
        if until(data):
            return data
        assert time.monotonic() < deadline, f"status never matched: {data}"
        time.sleep(0.05)


def test_a_full_run_indexes_every_row_once_and_skips_unchanged_rows(worker, products, counting):
    from semantic_catalog.workflows import service

    rows = products(21)
    rows[-1].active = False
    rows[-1].save()  # not in the queryset: never indexed
    run_id = service.start("products", batch_size=8)
    result = service.wait(run_id, timeout=120)
    assert (result.total, result.processed, result.succeeded, result.failed) == (20, 20, 20, 0)
    assert (result.batches, result.encoded, result.unchanged) == (3, 20, 0)
    _assert_index_is_sql_truth()
    data = service.status(run_id)
    assert data["status"] == "COMPLETED" and data["percent"] == 100.0 and data["result"]["succeeded"] == 20

    counting.reset()  # a second run finds every content hash stored: nothing is encoded
    again = service.wait(service.start("products", batch_size=8), timeout=120)
    assert (again.succeeded, again.encoded, again.unchanged) == (20, 0, 20)
    assert counting.texts_encoded == 0
    forced = service.wait(service.start("products", ids=[str(r.pk) for r in rows[:5]], force=True), timeout=120)
    assert (forced.total, forced.encoded) == (5, 5) and counting.texts_encoded == 5
    assert {run["id"] for run in service.recent_runs(limit=50, index_name="products")} >= {run_id}


def test_a_long_run_continues_as_new_and_keeps_its_counts(worker, products):
    """History stays bounded: after ``batches_per_run`` batches a run continues as new, carrying its
    place in the queryset, its counts and its failures; status follows the latest run."""
    from temporalio.client import Client

    from semantic_catalog.workflows import service
    from semantic_catalog.workflows.definitions import INDEX_WORKFLOW, IndexRequest, IndexResult

    products(9, special={4: "poison"})
    run_id = f"semantic-index-products-can-{uuid.uuid4().hex[:8]}"

    async def go() -> int:
        import asyncio

        client = await Client.connect(ADDRESS)
        handle = await client.start_workflow(
            INDEX_WORKFLOW,
            IndexRequest("products", batch_size=2, batches_per_run=2, max_attempts=2, retry_seconds=0.1),
            id=run_id,
            task_queue=worker.task_queue,
            result_type=IndexResult,
        )
        await handle.result()
        for _ in range(100):  # visibility is eventually consistent
            runs = [e async for e in client.list_workflows(f"WorkflowId = '{run_id}'")]
            if len(runs) >= 3:
                break
            await asyncio.sleep(0.1)
        return len(runs)

    import asyncio

    assert asyncio.run(go()) == 3  # 5 batches, 2 per run
    data = service.status(run_id)
    result = data["result"]
    assert (result["total"], result["processed"], result["succeeded"], result["failed"]) == (9, 9, 7, 2)
    assert result["batches"] == 5 and len(result["failed_ids"]) == 2
    _assert_store_has(7)


def _assert_store_has(count: int) -> None:
    assert len(_stored()) == count


@pytest.mark.parametrize(
    ("heartbeat_seconds", "delay"),
    [(10, 0.4), (600, 1.5)],
    ids=["cancel-seen-by-heartbeat", "cancel-between-heartbeats"],
)
def test_status_while_running_then_cancel_leaves_whole_batches(settings, products, heartbeat_seconds, delay):
    """With 600 s heartbeats and 1.5 s batches the cancel nearly always reaches a batch that never
    hears of it and finishes whole: the run must stop after it all the same (the SDK hands the
    workflow that batch's result, not the cancellation; without the check the run went on to 40)."""
    from temporalio.client import WorkflowFailureError

    from semantic_catalog.workflows import service

    queue = f"test-{uuid.uuid4().hex[:10]}"
    _configure(settings, queue, delay=delay, HEARTBEAT_SECONDS=heartbeat_seconds)
    rows = products(40)
    running = ThreadWorker(queue).start()
    try:
        run_id = service.start("products", batch_size=4)
        data = _wait_status(run_id, lambda d: 8 <= (d.get("processed") or 0) < 40)
        assert data["status"] == "RUNNING" and data["total"] == 40
        assert 0 < data["percent"] < 100 and data["eta_seconds"] > 0 and data["rows_per_second"] > 0
        assert service.cancel(run_id)["cancel_requested"] is True
        with pytest.raises(WorkflowFailureError):
            service.wait(run_id, timeout=60)
        assert _wait_status(run_id, lambda d: d["status"] == "CANCELED")["processed"] < 40
    finally:
        running.stop()
    stored = set(_stored())
    ordered = [str(r.pk) for r in rows]  # batches run in pk order, each written whole or not at all
    assert 8 <= len(stored) < 40 and len(stored) % 4 == 0
    assert stored == set(ordered[: len(stored)])
    assert service.cancel(run_id)["cancel_requested"] is False  # already over


def test_a_batch_failing_twice_succeeds_and_one_always_failing_is_recorded(worker, products):
    from semantic_catalog.models import SyncEvent
    from semantic_catalog.registry import registry
    from semantic_catalog.status import index_status
    from semantic_catalog.workflows import service

    rows = products(12, special={2: "flaky", 9: "poison"})
    result = service.wait(service.start("products", batch_size=4), timeout=120)
    poisoned = [str(r.pk) for r in rows[8:12]]  # the third batch holds the poison row
    assert FaultyEncoder.flaky_calls == 3  # failed twice, then wrote its batch
    assert FaultyEncoder.poison_calls == 3  # MAX_ATTEMPTS
    assert (result.total, result.succeeded, result.failed, result.failed_batches) == (12, 8, 4, 1)
    assert sorted(result.failed_ids) == sorted(poisoned)
    assert "poison" in result.errors[poisoned[0]] and "failed 3 times" in result.errors[poisoned[0]]
    assert set(_stored()) == {str(r.pk) for r in rows[:8]}
    failed = SyncEvent.objects.filter(index="products", status=SyncEvent.Status.FAILED)
    assert sorted(failed.values_list("object_id", flat=True)) == sorted(poisoned)
    assert "Temporal run semantic-index-products-" in failed.first().last_error
    assert index_status(registry.get("products"))["failed"] == 4


def test_command_admin_action_and_endpoints(worker, products, admin_client, settings):
    from django.core.management import call_command

    from semantic_catalog.workflows import service

    rows = products(6)
    out = __import__("io").StringIO()
    call_command("semantic_index", "--index", "products", "--via", "temporal", "--batch-size", "4", stdout=out)
    assert "6 rows: 6 succeeded, 0 failed" in out.getvalue()
    _assert_index_is_sql_truth()

    response = admin_client.post(
        "/admin/shop/product/",
        {"action": "embed_via_temporal", "_selected_action": [rows[0].pk, rows[1].pk]},
        follow=True,
    )
    assert response.status_code == 200
    message = " ".join(str(m) for m in response.context["messages"])
    assert "semantic-index-products-" in message
    run_id = message.split("semantic-index-products-")[1].split()[0].rstrip(".")
    result = service.wait(f"semantic-index-products-{run_id}", timeout=60)
    assert result.total == 2

    started = admin_client.post(
        "/api/semantic/temporal/runs", {"index": "products", "ids": [str(rows[2].pk)]}, content_type="application/json"
    )
    assert started.status_code == 202, started.content
    run = started.json()["id"]
    service.wait(run, timeout=60)
    status = admin_client.get(f"/api/semantic/temporal/runs/{run}")
    assert status.status_code == 200 and status.json()["status"] == "COMPLETED" and status.json()["total"] == 1
    listed = admin_client.get("/api/semantic/temporal/runs?index=products")
    assert run in [r["id"] for r in listed.json()["runs"]]
    cancelled = admin_client.post(f"/api/semantic/temporal/runs/{run}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["cancel_requested"] is False
    # bad input: 4xx JSON, nothing started
    assert admin_client.get("/api/semantic/temporal/runs/not-a-run").status_code == 404
    assert admin_client.get("/api/semantic/temporal/runs/semantic-index-products-nope").status_code == 404
    for body in ({"index": "nope"}, {"index": "products", "ids": ["x"]}, {"index": "products", "batch_size": 0}):
        bad = admin_client.post("/api/semantic/temporal/runs", body, content_type="application/json")
        assert bad.status_code in (400, 404) and "detail" in bad.json(), bad.content
    settings.SEMANTIC_CATALOG = {
        **settings.SEMANTIC_CATALOG,
        "TEMPORAL": {**settings.SEMANTIC_CATALOG["TEMPORAL"], "ADDRESS": "127.0.0.1:1"},
    }
    down = admin_client.get(f"/api/semantic/temporal/runs/{run}")
    assert down.status_code == 503 and "scripts/temporal.sh" in down.json()["detail"]


def _drain_diagnosis(index_name: str = "products") -> str:
    """What the drain workflow, its pending activity, the lease and the outbox say: a failed wait
    reports why, not only that it timed out."""
    from temporalio.client import Client

    from semantic_catalog.models import IndexLease, SyncEvent
    from semantic_catalog.workflows.drain import drain_workflow_id

    async def describe() -> str:
        client = await Client.connect(ADDRESS)
        found = await client.get_workflow_handle(drain_workflow_id(index_name)).describe()
        pending = [
            (p.activity_type, p.attempt, p.state, p.last_failure.message if p.last_failure else None)
            for p in found.raw_description.pending_activities
        ]
        return f"workflow {found.status!r} on {found.task_queue!r}, pending activities {pending}"

    import asyncio

    try:
        workflow_state = asyncio.run(describe())
    except Exception as exc:  # noqa: BLE001 - a diagnosis reports what it could not read
        workflow_state = f"no workflow: {exc!r}"
    lease = list(IndexLease.objects.filter(index=index_name).values())
    events = list(SyncEvent.objects.filter(index=index_name).values("object_id", "status", "attempts", "last_error"))
    return f"{workflow_state}; lease {lease}; outbox {events}; stored {_stored(index_name)}"


def _wait_drained(product, deadline_seconds: float = 120) -> None:
    from semantic_catalog.models import SyncEvent

    deadline = time.monotonic() + deadline_seconds
    while str(product.pk) not in _stored() or SyncEvent.objects.filter(index="products").exists():
        assert time.monotonic() < deadline, f"the drain workflow did not apply the outbox: {_drain_diagnosis()}"
        time.sleep(0.5)


def test_outbox_drains_run_as_workflows(worker, settings, make_product):
    settings.SEMANTIC_CATALOG = {
        **settings.SEMANTIC_CATALOG,
        "AUTO_SYNC": True,
        "TEMPORAL": {**settings.SEMANTIC_CATALOG["TEMPORAL"], "DRAIN": True},
    }
    product = make_product("Garden hose 30 m")
    _wait_drained(product)
    product.name = "Garden hose 50 m"
    product.save()
    _wait_drained(product)
    _assert_index_is_sql_truth()


WORKER_SETTINGS = """\
from tests.settings import *  # noqa: F403
from tests.settings import SEMANTIC_CATALOG as _TESTS

DATABASES = {{"default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": {db!r},
              "OPTIONS": {{"transaction_mode": "IMMEDIATE", "timeout": 20,
                          "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"}}}}}}
SEMANTIC_CATALOG = {{**_TESTS, "DATA_DIR": {data!r}, "AUTO_SYNC": False, "LOCK_SECONDS": 5,
                    "ENCODER": {{"BACKEND": {encoder!r}, "OPTIONS": {{"device": "cpu", "delay": 0.3}}}},
                    "TEMPORAL": {{"ADDRESS": {address!r}, "TASK_QUEUE": {queue!r}, "HEARTBEAT_SECONDS": 4,
                                 "RETRY_SECONDS": 0.5, "MAX_ATTEMPTS": 10}}}}
DEBUG = False
"""


def test_kill_9_of_the_worker_mid_run_then_a_new_worker_completes_it(tmp_path, settings):
    """A real worker process is SIGKILLed halfway; a new one finishes the run; the index then equals
    the SQL truth: every row once, with its current content hash."""
    from temporalio.client import Client

    from semantic_catalog.workflows.definitions import INDEX_WORKFLOW, IndexRequest, IndexResult, Progress
    from tests.reliability.cluster import MODEL_CACHE
    from tests.reliability.processes import MANAGE, child_env, module_command, start, stop, tails

    queue = f"test-kill-{uuid.uuid4().hex[:8]}"
    (tmp_path / "sc_temporal_kill.py").write_text(
        WORKER_SETTINGS.format(
            db=str(tmp_path / "db.sqlite3"), data=str(tmp_path / "data"), encoder=FAULTY, address=ADDRESS, queue=queue
        )
    )
    MODEL_CACHE.mkdir(exist_ok=True)
    env = child_env(tmp_path, "sc_temporal_kill", XDG_CACHE_HOME=str(MODEL_CACHE))  # the ONNX export, made once

    def run(*args: str) -> dict:
        done = subprocess.run(
            module_command("tests.temporal_helpers", *args),
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    assert run("setup", "60")["products"] == 60
    worker_command = [sys.executable, str(MANAGE), "semantic_temporal_worker"]
    children = [start("worker-0", worker_command, env, tmp_path, tmp_path)]

    def wait_ready(child, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while "Worker polling" not in child.log.read_text(errors="replace"):
            assert child.alive() and time.monotonic() < deadline, tails(children)
            time.sleep(0.2)

    async def go() -> tuple[float, IndexResult]:
        import asyncio

        client = await Client.connect(ADDRESS)
        handle = await client.start_workflow(
            INDEX_WORKFLOW,
            IndexRequest("products", batch_size=5, heartbeat_seconds=4, retry_seconds=0.5),
            id=f"semantic-index-products-kill-{uuid.uuid4().hex[:8]}",
            task_queue=queue,
            result_type=IndexResult,
        )
        while True:  # kill -9 about halfway
            progress = await handle.query("progress", result_type=Progress)
            if progress.processed >= 30:
                break
            await asyncio.sleep(0.05)
        children[0].process.kill()
        killed_at = time.monotonic()
        children[0].process.wait()
        children.append(start("worker-1", worker_command, env, tmp_path, tmp_path))
        await asyncio.get_running_loop().run_in_executor(None, wait_ready, children[1])
        result = await asyncio.wait_for(handle.result(), 180)
        return time.monotonic() - killed_at, result

    try:
        wait_ready(children[0])
        import asyncio

        recovered_in, result = asyncio.run(go())
    finally:
        stop(children)
    assert (result.total, result.processed, result.succeeded, result.failed) == (60, 60, 60, 0), tails(children)
    check = run("check")
    assert check == {"in_queryset": 60, "indexed": 60, "stored_rows": 60, "missing": 0, "stale": 0, "orphaned": 0}
    print(f"recovered {recovered_in:.1f} s after kill -9")
