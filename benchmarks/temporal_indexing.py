"""Bulk indexing through the Temporal workflow vs `semantic_index`, on the Home Depot titles.

Three passes over the same rows, each into an empty collection, on one machine (SQLite file +
LanceDB, the bundled model in each process, loaded before the clock starts):

- local: `manage.py semantic_index` in this process;
- temporal: a `semantic_temporal_worker` process runs the workflow (started and followed from here);
- kill: the same, but the worker is SIGKILLed once half the rows are done and a new worker started at
  once: the time from the kill to the first new batch, and to the run's end.

Overhead per batch = (temporal time - local time) / batches. Each pass ends with `semantic_check`
(differences: missing, stale, orphaned; stored rows against the queryset). Needs a Temporal server
(`bash scripts/temporal.sh` prints its address; --address, or SEMANTIC_CATALOG_TEST_TEMPORAL_ADDRESS).
Prints a table, writes benchmarks/results/temporal_indexing.json.

    nice .venv/bin/python benchmarks/temporal_indexing.py [--limit 5000] [--batch-size 256]
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "example")]

from _homedepot import DATA, require_data  # noqa: E402
from _results import write_report  # noqa: E402

SETTINGS = """\
from demo.settings import *  # noqa: F403
from demo.settings import SEMANTIC_CATALOG as _DEMO

SEMANTIC_CATALOG = {{**_DEMO, "AUTO_SYNC": False, "LOCK_SECONDS": {lock},
                    "TEMPORAL": {{"ADDRESS": {address!r}, "TASK_QUEUE": {queue!r}, "HEARTBEAT_SECONDS": {heartbeat},
                                 "BATCH_SIZE": {batch}}}}}
DEBUG = False
"""


def configure(args: argparse.Namespace) -> tuple[Path, dict[str, str]]:
    data_dir = Path(tempfile.mkdtemp(prefix="semantic-bench-temporal-"))
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    (data_dir / "bench_temporal_settings.py").write_text(SETTINGS.format(
        address=args.address, queue=queue, heartbeat=args.heartbeat, lock=args.lock_seconds, batch=args.batch_size))
    env = {
        **os.environ,
        "DEMO_DATA_DIR": str(data_dir),
        "DJANGO_DEBUG": "0",
        "DJANGO_SETTINGS_MODULE": "bench_temporal_settings",
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": os.pathsep.join([str(data_dir), str(ROOT), str(ROOT / "example")]),
    }
    for key in ("DEMO_DATA_DIR", "DJANGO_DEBUG", "DJANGO_SETTINGS_MODULE", "HF_HUB_OFFLINE"):
        os.environ[key] = env[key]
    sys.path.insert(0, str(data_dir))
    return data_dir, env


def load_products(limit: int) -> int:
    from decimal import Decimal

    from shop.models import Category, Product, Store

    shop = Store.objects.create(name="Home Depot", slug="homedepot")
    category = Category.objects.create(store=shop, name="All")
    with (DATA / "products.csv").open(encoding="utf-8") as f:
        rows = [row["product_title"] for _, row in zip(range(limit), csv.DictReader(f))]
    Product.objects.bulk_create(
        [Product(name=title[:200], price=Decimal("1.00"), category=category, store=shop) for title in rows],
        batch_size=2000,
    )
    return len(rows)


def empty_index() -> None:
    """Drop the index's collections, so the next pass encodes every row again."""
    from semantic_catalog.collections import drop
    from semantic_catalog.models import Collection

    for collection in Collection.objects.filter(index="products"):
        drop(collection)


def check() -> dict:
    from semantic_catalog.backends import get_store
    from semantic_catalog.collections import active_collection
    from semantic_catalog.registry import registry
    from semantic_catalog.sync.check import check_index

    index = registry.get("products")
    report = check_index(index)
    collection = active_collection(index)
    return {
        "in_queryset": report.in_queryset,
        "stored_rows": get_store().count(collection.table) if collection else 0,
        "differences": len(report.missing.ids) + len(report.stale.ids) + len(report.orphaned.ids),
    }


class Worker:
    def __init__(self, env: dict[str, str], log: Path):
        self.log = log
        with open(log, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, str(ROOT / "example" / "manage.py"), "semantic_temporal_worker"],
                env=env, stdout=out, stderr=subprocess.STDOUT)

    def wait_ready(self, since: int = 0, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while self.log.read_text(errors="replace").count("Worker polling") <= since:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not start:\n{self.log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def temporal_pass(env: dict[str, str], data_dir: Path, batch_size: int, kill_at: float | None) -> dict:
    from semantic_catalog.workflows import service

    log = data_dir / f"worker-{uuid.uuid4().hex[:6]}.log"
    worker = Worker(env, log)
    workers = [worker]
    try:
        worker.wait_ready()
        started = time.perf_counter()
        run_id = service.start("products", batch_size=batch_size)
        out: dict = {"run": run_id}
        if kill_at is not None:
            while True:
                data = service.status(run_id)
                if data.get("total") and (data.get("processed") or 0) >= kill_at * data["total"]:
                    break
                time.sleep(0.1)
            worker.process.kill()
            killed = time.perf_counter()
            worker.process.wait()
            done_at_kill = data["processed"]  # no worker answers the progress query until the next one starts
            out["processed_at_kill"] = done_at_kill
            replacement = Worker(env, log)
            workers.append(replacement)
            replacement.wait_ready(since=1)
            out["new_worker_ready_s"] = round(time.perf_counter() - killed, 2)
            while service.status(run_id).get("processed", 0) <= done_at_kill:
                time.sleep(0.1)
            out["first_batch_after_kill_s"] = round(time.perf_counter() - killed, 2)
        result = service.wait(run_id)
        seconds = time.perf_counter() - started
        if kill_at is not None:
            out["kill_to_done_s"] = round(time.perf_counter() - killed, 2)
        out.update({"seconds": round(seconds, 2), "rows_per_s": round(result.processed / seconds, 1),
                    "batches": result.batches, "succeeded": result.succeeded, "failed": result.failed})
        return out
    finally:
        for running in workers:
            running.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=5000, help="Home Depot titles (all: 54667)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--address", default=os.environ.get("SEMANTIC_CATALOG_TEST_TEMPORAL_ADDRESS", ""))
    parser.add_argument("--heartbeat", type=float, default=10, help="TEMPORAL['HEARTBEAT_SECONDS']")
    parser.add_argument("--lock-seconds", type=float, default=10, help="LOCK_SECONDS (a dead writer's lease)")
    parser.add_argument("--passes", default="local,temporal,kill")
    args = parser.parse_args()
    require_data()
    if not args.address:
        print("skipped: no Temporal server (--address, or `bash scripts/temporal.sh` and "
              "SEMANTIC_CATALOG_TEST_TEMPORAL_ADDRESS)")
        return
    data_dir, env = configure(args)
    import django

    django.setup()
    from django.core.management import call_command

    from semantic_catalog.workflows.activities import warm_up

    call_command("migrate", verbosity=0)
    rows = load_products(args.limit)
    warm_up()
    passes: dict[str, dict] = {}
    for name in args.passes.split(","):
        empty_index()
        if name == "local":
            started = time.perf_counter()
            call_command("semantic_index", "--index", "products", "--batch-size", str(args.batch_size),
                         "--no-progress", stdout=io.StringIO())
            seconds = time.perf_counter() - started
            passes[name] = {"seconds": round(seconds, 2), "rows_per_s": round(rows / seconds, 1)}
        else:
            passes[name] = temporal_pass(env, data_dir, args.batch_size, 0.5 if name == "kill" else None)
        passes[name]["check"] = check()
        print(name, passes[name], flush=True)
    if "local" in passes and "temporal" in passes:
        extra = passes["temporal"]["seconds"] - passes["local"]["seconds"]
        passes["temporal"]["overhead_per_batch_ms"] = round(1000 * extra / max(1, passes["temporal"]["batches"]), 1)
    print(f"\n{rows} Home Depot titles, batch size {args.batch_size}, {os.cpu_count()} CPUs")
    print(f"{'pass':<10}{'seconds':>10}{'rows/s':>10}  notes")
    for name, data in passes.items():
        notes = []
        if "overhead_per_batch_ms" in data:
            notes.append(f"overhead {data['overhead_per_batch_ms']} ms/batch over {data['batches']} batches")
        if "first_batch_after_kill_s" in data:
            notes.append(f"killed at {data['processed_at_kill']} rows; new worker ready {data['new_worker_ready_s']} s,"
                         f" next batch {data['first_batch_after_kill_s']} s, done {data['kill_to_done_s']} s after")
        notes.append(f"check: {data['check']['differences']} differences, {data['check']['stored_rows']} stored")
        print(f"{name:<10}{data['seconds']:>10}{data['rows_per_s']:>10}  {'; '.join(notes)}")
    write_report("temporal_indexing", {
        "rows": rows,
        "batch_size": args.batch_size,
        "heartbeat_seconds": args.heartbeat,
        "lock_seconds": args.lock_seconds,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "passes": passes,
    })


if __name__ == "__main__":
    main()
