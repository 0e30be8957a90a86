"""The monitor process of the reliability suite (run by ``cluster.Cluster``, never imported by tests).

``python -m tests.reliability.monitor watch OUT INTERVAL`` appends one JSON line per INTERVAL seconds
to OUT until SIGTERM: pending and failed events, the age of the oldest pending event (the lag), the
lease, a recorded outage, running and due drain tasks. ``python -m tests.reliability.monitor stats``
prints the drains' totals from the task results. Reading happens in a process of its own so that
SQLite and PostgreSQL runs are observed alike, through the same settings as the workers.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from typing import Any

import django

INDEX = "products"


def sample() -> dict[str, Any]:
    from django.db.models import Count, Min
    from django.utils import timezone
    from django_tasks_db.models import DBTaskResult

    from semantic_catalog.models import IndexLease, SyncEvent

    now = timezone.now()
    pending = SyncEvent.objects.filter(index=INDEX, status=SyncEvent.Status.PENDING)
    agg = pending.aggregate(n=Count("id"), oldest=Min("created_at"))
    lease = IndexLease.objects.filter(index=INDEX).values("token", "locked_until", "outage").first() or {}
    running = DBTaskResult.objects.filter(status="RUNNING").values_list("worker_ids", "started_at")
    return {
        "t": time.time(),
        "pending": agg["n"],
        "failed": SyncEvent.objects.filter(index=INDEX, status=SyncEvent.Status.FAILED).count(),
        "lag": (now - agg["oldest"]).total_seconds() if agg["oldest"] else 0.0,
        "leased": bool(lease.get("token")) and lease["locked_until"] is not None and lease["locked_until"] > now,
        "outage": lease.get("outage") or "",
        "running": [[ids[-1] if ids else "", started.timestamp() if started else None] for ids, started in running],
        "due": DBTaskResult.objects.ready().count(),
    }


def watch(out: str, interval: float) -> None:
    from django.db import connections

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    with open(out, "a") as handle:
        while not stop:
            try:
                line = sample()
            except Exception as exc:  # a locked or unreachable database: note it and go on
                line = {"t": time.time(), "error": f"{type(exc).__name__}: {exc}"}
                connections.close_all()
            handle.write(json.dumps(line) + "\n")
            handle.flush()
            time.sleep(interval)


def stats() -> dict[str, Any]:
    from django_tasks_db.models import DBTaskResult

    from semantic_catalog.models import SyncEvent

    done = [r for r in DBTaskResult.objects.filter(status="SUCCESSFUL").values_list("return_value", flat=True)]
    failed = list(DBTaskResult.objects.filter(status="FAILED").values_list("exception_class_path", "traceback"))
    return {
        "drains": len(done),
        "events": sum(v["events"] for v in done),
        "failed_events": SyncEvent.objects.filter(status=SyncEvent.Status.FAILED).count(),
        "pending_events": SyncEvent.objects.filter(status=SyncEvent.Status.PENDING).count(),
        "gave_up_in_drains": sum(v["failed"] for v in done),
        "busy": sum(v["busy"] for v in done),
        "waited_for_outage": sum(v["outage"] for v in done),
        "failed_tasks": [f"{path}: {trace[-600:]}" for path, trace in failed],
        "running_tasks": DBTaskResult.objects.filter(status="RUNNING").count(),
    }


def main(argv: list[str]) -> None:
    django.setup()
    if argv[0] == "watch":
        watch(argv[1], float(argv[2]))
    elif argv[0] == "stats":
        print(json.dumps(stats()))
    else:
        raise SystemExit(f"unknown command {argv[0]!r}: watch or stats")


if __name__ == "__main__":
    main(sys.argv[1:])
