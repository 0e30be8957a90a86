"""The Temporal worker: polls the task queue, replays the workflows in Temporal's sandbox and runs
the activities in a thread pool (they do Django work). ``semantic_temporal_worker`` runs it after
``django.setup()``; tests run it in a thread."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from typing import Any

from semantic_catalog.workflows.activities import ACTIVITIES
from semantic_catalog.workflows.conf import temporal_settings
from semantic_catalog.workflows.definitions import DrainWorkflow, IndexWorkflow
from semantic_catalog.workflows.service import connect


def build_worker(client: Any, task_queue: str | None = None, activity_threads: int = 4) -> Any:
    """A worker of both workflows and every activity on ``task_queue`` (default: the setting's)."""
    from temporalio.worker import Worker

    return Worker(
        client,
        task_queue=task_queue or temporal_settings()["TASK_QUEUE"],
        workflows=[IndexWorkflow, DrainWorkflow],
        activities=ACTIVITIES,
        activity_executor=concurrent.futures.ThreadPoolExecutor(activity_threads),
        max_concurrent_activities=activity_threads,
    )


async def run_worker(
    task_queue: str | None = None, activity_threads: int = 4, on_ready: Callable[[], Any] | None = None
) -> None:
    """Connect and poll until cancelled (SIGINT / SIGTERM in the command)."""
    client = await connect()
    worker = build_worker(client, task_queue, activity_threads)
    async with worker:
        if on_ready is not None:
            on_ready()
        await asyncio.Event().wait()
