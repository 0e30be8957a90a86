"""Segmentation runs as Django tasks, on the same backend and queue as sync (TASK_BACKEND, TASK_QUEUE).

A run takes minutes to hours, and the request that starts it must answer at once. A worker backend
(``django_tasks_db``) already runs it elsewhere; the ``ImmediateBackend`` would run it inside
``enqueue()``, i.e. inside the request, so with it the task is enqueued from a background thread of
this process (a daemon: a run killed with its process resumes from the cache, see
``semantic_segment --resume``).
"""

from __future__ import annotations

import logging
import threading
from functools import partial
from typing import Any

from django.db import connections, transaction

from semantic_catalog.conf import semantic_settings
from semantic_catalog.models import SegmentationRun
from semantic_catalog.segmentation.runs import execute_run, prepare_resume

try:  # Django 6+
    from django.tasks import task
except ImportError:  # Django 5.2 with the backport
    from django_tasks import task

logger = logging.getLogger("semantic_catalog.segmentation")

_threads: dict[str, threading.Thread] = {}
_threads_lock = threading.Lock()


@task()
def segment_run(run_id: str) -> dict[str, Any]:
    """Execute (or resume) one stored run; returns how it ended, for the task result."""
    run = execute_run(run_id)
    return {"run_id": run.run_id, "status": run.status, "error": run.error}


def _runs_in_caller(backend: Any) -> bool:
    """Does this backend run a task inside ``enqueue()`` (Django's ImmediateBackend)?"""
    classes = []
    for path in ("django.tasks.backends.immediate", "django_tasks.backends.immediate"):
        try:
            classes.append(__import__(path, fromlist=["ImmediateBackend"]).ImmediateBackend)
        except ImportError:
            continue
    return isinstance(backend, tuple(classes))


def enqueue_run(run_id: str) -> None:
    """Hand the run to the tasks backend without waiting for it; errors of the backend are raised."""
    queued = segment_run.using(backend=semantic_settings.TASK_BACKEND, queue_name=semantic_settings.TASK_QUEUE)
    if not _runs_in_caller(queued.get_backend()):
        queued.enqueue(run_id)
        return
    thread = threading.Thread(target=_run_here, args=(queued, run_id), name=f"segmentation {run_id}", daemon=True)
    with _threads_lock:
        _threads[run_id] = thread
    thread.start()


def _run_here(queued: Any, run_id: str) -> None:
    try:
        queued.enqueue(run_id)  # the ImmediateBackend runs it now, in this thread, and records its result
    except Exception:
        logger.exception("Segmentation run %s could not run", run_id)
    finally:
        connections.close_all()
        with _threads_lock:
            if _threads.get(run_id) is threading.current_thread():
                del _threads[run_id]


def wait_for_run(run_id: str, timeout: float | None = None) -> bool:
    """Wait for a run this process executes in a background thread; False if it is still going."""
    with _threads_lock:
        thread = _threads.get(run_id)
    if thread is None:
        return True
    thread.join(timeout)
    return not thread.is_alive()


def start_run(index: Any, items: list[Any], **options: Any) -> Any:
    """Store a new run and queue it once the transaction commits (so a worker finds its rows)."""
    from semantic_catalog.segmentation.runs import create_run

    run = create_run(index, items, **options)
    transaction.on_commit(partial(_enqueue_or_fail, run.run_id))
    return run


def resume_run(run_id: str, *, force: bool = False) -> Any:
    """Queue a failed, cancelled or crashed run again: it continues in its log folder from the cache."""
    run = prepare_resume(run_id, force=force)
    transaction.on_commit(partial(_enqueue_or_fail, run.run_id))
    return run


def _enqueue_or_fail(run_id: str) -> None:
    try:
        enqueue_run(run_id)
    except Exception as exc:
        logger.exception("Could not queue segmentation run %s", run_id)
        SegmentationRun.objects.filter(run_id=run_id).update(
            status=SegmentationRun.Status.FAILED,
            error=f"Could not queue the run ({type(exc).__name__}): resume it with `semantic_segment --resume`.",
        )
