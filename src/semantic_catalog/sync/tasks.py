"""Background work through Django's tasks API (``django.tasks`` on Django 6, the ``django-tasks`` backport before).

With the default ImmediateBackend the drain runs right after commit in the same process; with
``django_tasks_db.DatabaseBackend`` a ``manage.py db_worker`` process runs it, and drains schedule
themselves (deferred tasks) for whatever is left: nothing pending is stranded by a killed worker.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from functools import partial

from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from semantic_catalog.conf import semantic_settings
from semantic_catalog.sync.drain import DrainReport, drain
from semantic_catalog.sync.lease import claim_deferred_drain, withdraw_deferred_drain

try:  # Django 6+
    from django.tasks import task
except ImportError:  # Django 5.2 with the backport
    from django_tasks import task

logger = logging.getLogger("semantic_catalog.sync")
# The workflows wing's drain starter, by dotted path (the core never imports a wing).
TEMPORAL_DRAIN = "semantic_catalog.workflows.drain.start_drain"


@task()
def drain_outbox(index_name: str) -> dict[str, int]:
    """Apply the outbox of one index; returns counts for the task result."""
    report = run_drain(index_name)
    return {
        "events": report.events,
        "failed": report.failed,
        "encoded": report.index.encoded,
        "deleted": report.index.deleted,
        "busy": int(report.busy),
        "outage": int(report.outage is not None),
    }


def run_drain(
    index_name: str, batch_size: int | None = None, *, force: bool = False, wait: bool = False
) -> DrainReport:
    """Drain now, and make sure a drain runs again when there is work left for later.

    On backends that support deferred tasks (``django_tasks_db.DatabaseBackend``) the drain queues,
    before it starts, a drain for its own lease's expiry (which finishes the work if this process is
    killed) and, when it ends, one for the next moment work is due: another drain's lease expiry when
    the index was leased, the end of a backoff, the next try of a store or model that is down. Each is
    queued at most once per moment (``IndexLease.retry_at``). With the ``ImmediateBackend`` nothing can
    be deferred: the next write, or ``semantic_sync``, picks the work up.

    ``force`` tries the store and the model even while an outage waits for its next try (what
    ``semantic_sync`` does). ``wait``: when another drain holds the lease, wait for it to lapse and
    drain then, unless its holder renews it (it is alive and applies the pending events).
    """
    defers = _supports_defer()
    on_start = partial(schedule_drain_at, index_name) if defers else None
    report = drain(index_name, batch_size=batch_size, force=force, on_start=on_start)
    for _ in range(3):
        if not (wait and report.busy and report.lease_until):
            break
        expiry = report.lease_until
        time.sleep(max(0.0, (expiry - timezone.now()).total_seconds()) + 0.05)
        report = drain(index_name, batch_size=batch_size, force=force, on_start=on_start)
        if report.busy and report.lease_until and report.lease_until > expiry:
            break  # renewed: its drain is alive
    if defers and report.retry_at is not None:
        transaction.on_commit(partial(schedule_drain_at, index_name, report.retry_at), robust=True)
    return report


def schedule_drain_at(index_name: str, at: datetime) -> bool:
    """Queue a deferred drain for ``at`` unless one is already queued for a moment from now to ``at``."""
    if not claim_deferred_drain(index_name, at):
        return False
    if not enqueue_drain(index_name, run_after=at):
        withdraw_deferred_drain(index_name, at)
        return False
    return True


def _supports_defer() -> bool:
    try:
        return bool(drain_outbox.using(backend=semantic_settings.TASK_BACKEND).get_backend().supports_defer)
    except Exception:  # a misconfigured backend: enqueue_drain logs it
        return False


def enqueue_drain(index_name: str, run_after: datetime | None = None) -> bool:
    """Hand the drain to the tasks backend (or to Temporal with TEMPORAL['DRAIN']: a drain workflow
    waits for ``run_after`` itself); if that fails the outbox rows stay for the next drain."""
    if semantic_settings.TEMPORAL.get("DRAIN"):
        try:
            return bool(import_string(TEMPORAL_DRAIN)(index_name))
        except Exception:
            logger.exception("Could not start the drain workflow of %r; its outbox rows stay for `semantic_sync`.",
                             index_name)
            return False
    task = drain_outbox.using(backend=semantic_settings.TASK_BACKEND, queue_name=semantic_settings.TASK_QUEUE)
    try:
        if run_after is not None:
            if not task.get_backend().supports_defer:
                return False
            task = task.using(run_after=run_after)
        task.enqueue(index_name)
    except Exception:
        logger.exception("Could not enqueue the drain of %r; its outbox rows stay for `semantic_sync`.", index_name)
        return False
    return True
