"""Background work through Django's tasks API (``django.tasks`` on Django 6, the ``django-tasks`` backport before).

With the default ImmediateBackend the drain runs right after commit in the same process; with
``django_tasks_db.DatabaseBackend`` a ``manage.py db_worker`` process runs it.
"""

from __future__ import annotations

import logging
from datetime import datetime
from functools import partial

from django.db import transaction

from semantic_catalog.conf import semantic_settings
from semantic_catalog.sync.drain import DrainReport, drain

try:  # Django 6+
    from django.tasks import task
except ImportError:  # Django 5.2 with the backport
    from django_tasks import task

logger = logging.getLogger("semantic_catalog.sync")


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
    }


def run_drain(index_name: str, batch_size: int | None = None) -> DrainReport:
    """Drain now, and queue a deferred drain for when the backoff of failed events ends (on backends
    that support deferred tasks; elsewhere the next write or ``semantic_sync`` picks them up)."""
    report = drain(index_name, batch_size=batch_size)
    if report.retry_at is not None:
        transaction.on_commit(partial(enqueue_drain, index_name, run_after=report.retry_at), robust=True)
    return report


def enqueue_drain(index_name: str, run_after: datetime | None = None) -> bool:
    """Hand the drain to the tasks backend; if that fails the outbox rows stay for the next drain."""
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
