"""Outbox drains as Temporal workflows (SEMANTIC_CATALOG['TEMPORAL']['DRAIN'] = True).

``sync.tasks.enqueue_drain`` calls ``start_drain`` instead of queuing a task: a signal-with-start of
the index's one drain workflow (``semantic-drain-<task queue>-<index>``), so a burst of writes starts
one workflow and wakes it, never a queue of them. The task queue is in the id so that two sites sharing
a namespace (staging and production, say) each wake their own drain, on their own workers.
The workflow waits for backoffs and outages on durable timers.
"""

from __future__ import annotations

from semantic_catalog.workflows.conf import temporal_settings
from semantic_catalog.workflows.service import _run, connect


def drain_workflow_id(index_name: str) -> str:
    return f"semantic-drain-{temporal_settings()['TASK_QUEUE']}-{index_name}"


def start_drain(index_name: str) -> bool:
    """Start (or wake) the drain workflow of ``index_name``; raises when Temporal cannot be reached
    (the caller logs it and the outbox rows stay for `semantic_sync`)."""
    from semantic_catalog.workflows.definitions import DRAIN_WORKFLOW, DrainRequest

    async def go() -> bool:
        client = await connect()
        await client.start_workflow(
            DRAIN_WORKFLOW,
            DrainRequest(index_name),
            id=drain_workflow_id(index_name),
            task_queue=temporal_settings()["TASK_QUEUE"],
            start_signal="wake",
        )
        return True

    return _run(go())
