"""The reliability suite's large run: time to converge after each fault, with real processes.

Scenarios (tests/reliability/scenarios.py, the suite's own code at larger sizes), each on a fresh
database and store, each ending with `semantic_check` (zero differences expected):

- kill: writes pile up, two db_workers start, the one whose drain holds the lease is SIGKILLed
  mid-drain, a new worker starts, nothing more is written;
- outage: the store unavailable (LanceDB: its folder read-only for the workers; PostgreSQL: the
  store's own server stopped) for longer than every retry, while writers write, then back;
- writes: 5,000 changes (creates, updates, deactivations, deletes, bulk_create + mark_dirty,
  QuerySet.update + mark_dirty) from 4 processes while 2 workers drain.

On SQLite + LanceDB, and on PostgreSQL + pgvector when a DSN is given (--pg-dsn, or
SEMANTIC_CATALOG_TEST_PG_DSN; `bash scripts/postgres.sh` starts a local server and prints one).
Prints a table, writes benchmarks/results/reliability.json.

    .venv/bin/python benchmarks/reliability.py [--writes 5000] [--backends sqlite,pg] [--scenarios kill,outage,writes]
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "example")]

from _results import write_report  # noqa: E402

from tests.reliability.cluster import SYNC_SETTINGS, Cluster  # noqa: E402
from tests.reliability.scenarios import concurrent_writes, kill_worker_mid_drain, store_outage  # noqa: E402


def run(backend: str, scenario: str, args: argparse.Namespace) -> dict:
    settings = {"SYNC_BATCH_SIZE": args.batch_size}
    with Cluster(backend, pg_dsn=args.pg_dsn, store_server=scenario == "outage", sync_settings=settings) as cluster:
        if scenario == "kill":
            outcome = kill_worker_mid_drain(cluster, writes=args.kill_writes)
        elif scenario == "outage":
            outcome = store_outage(cluster, initial=args.outage_writes, during=args.outage_writes,
                                   outage_seconds=args.outage_seconds)
        else:
            outcome = concurrent_writes(cluster, writes=args.writes, writers=args.writers, workers=args.workers)
    return outcome.as_dict()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=5000, help="changes of the concurrent-writes scenario")
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--kill-writes", type=int, default=500, help="changes waiting when the worker is killed")
    parser.add_argument("--outage-writes", type=int, default=300, help="changes before and during the outage")
    parser.add_argument("--batch-size", type=int, default=128, help="SYNC_BATCH_SIZE (the default setting's)")
    parser.add_argument("--outage-seconds", type=float, default=30)
    parser.add_argument("--backends", default="sqlite,pg")
    parser.add_argument("--scenarios", default="writes,kill,outage")
    parser.add_argument("--pg-dsn", default=os.environ.get("SEMANTIC_CATALOG_TEST_PG_DSN", ""))
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # so that each cluster stops its processes
    backends = [b for b in args.backends.split(",") if b]
    if "pg" in backends and not args.pg_dsn:
        print("no PostgreSQL DSN (--pg-dsn or SEMANTIC_CATALOG_TEST_PG_DSN): SQLite + LanceDB only")
        backends.remove("pg")
    runs: list[dict] = []
    for scenario in args.scenarios.split(","):
        for backend in backends:
            started = time.time()
            try:
                result = run(backend, scenario, args)
            except Exception as exc:  # one failed scenario is a result too; the others still run
                result = {"scenario": scenario, "backend": backend, "error": f"{type(exc).__name__}: {exc}"[:4000]}
                print(f"{scenario} [{backend}] FAILED: {result['error'][:1000]}", flush=True)
            result["wall_seconds"] = round(time.time() - started, 1)
            runs.append(result)
            report(runs, args)  # after each scenario: a long run that is stopped keeps what it measured


def report(runs: list[dict], args: argparse.Namespace) -> None:
    print()
    print(f"{'scenario':<42} {'backend':<7} {'writes':>6} {'events':>6} {'drains':>6} {'converge s':>10} "
          f"{'peak lag s':>10} {'failed':>6} {'diffs':>5} {'restarts':>8}")
    for r in runs:
        if "error" in r:
            print(f"{r['scenario']:<42} {r['backend']:<7} FAILED: {r['error'][:200]}")
            continue
        print(f"{r['scenario'][:42]:<42} {r['backend']:<7} {r['writes']:>6} {r['events']:>6} {r['drains']:>6} "
              f"{r['converge_seconds']:>10.1f} {r['peak_lag_seconds']:>10.1f} {r['failed_events']:>6} "
              f"{r['differences']:>5} {len(r['notes'].get('worker_restarts', [])):>8}")
    write_report("reliability", {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "sync_settings": {**SYNC_SETTINGS, "SYNC_BATCH_SIZE": args.batch_size},
        "args": {k: v for k, v in vars(args).items() if k != "pg_dsn"},
        "runs": runs,
    })


if __name__ == "__main__":
    main()
