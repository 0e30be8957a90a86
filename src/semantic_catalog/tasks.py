"""Background work through Django's tasks API (``django.tasks`` on Django 6, the ``django-tasks`` backport before).

With the default ImmediateBackend the drain runs right after commit in the same process; with
``django_tasks_db.DatabaseBackend`` a ``manage.py db_worker`` process runs it.
"""

from __future__ import annotations

try:  # Django 6+
    from django.tasks import task
except ImportError:  # Django 5.2 with the backport
    from django_tasks import task


@task()
def drain_outbox(index_name: str) -> dict[str, int]:
    """Apply the outbox of one index; returns counts for the task result."""
    from .sync import drain

    report = drain(index_name)
    return {
        "events": report.events,
        "failed": report.failed,
        "encoded": report.index.encoded,
        "deleted": report.index.deleted,
        "busy": int(report.busy),
    }
