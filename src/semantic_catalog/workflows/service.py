"""Start, watch, cancel and list indexing runs on Temporal, from Django (commands, admin, API).

Each call connects to SEMANTIC_CATALOG['TEMPORAL']['ADDRESS'], does its work and returns plain
data; runs are Temporal workflows whose ids start with ``semantic-index-`` (only those are answered
for). Percent and ETA are computed here, from the workflow's ``progress`` query and the wall clock.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
import uuid
from collections.abc import Coroutine, Iterable
from datetime import UTC, datetime
from typing import Any, TypeVar

from django.db.models import QuerySet

from semantic_catalog.engine.errors import InvalidQuery, SemanticCatalogError
from semantic_catalog.registry import registry
from semantic_catalog.workflows.conf import temporal_settings

T = TypeVar("T")
RUN_PREFIX = "semantic-index-"
RUN_ID = re.compile(r"^semantic-index-[A-Za-z0-9_.-]{1,160}$")
MAX_IDS = 100_000  # explicit ids travel in the workflow's input (and its history): larger sets run "all"


class TemporalUnavailable(SemanticCatalogError):
    """The Temporal server cannot be reached (or refused the call)."""


class RunNotFound(SemanticCatalogError, LookupError):
    """No indexing run has this id."""


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to its end from sync code, also where this thread already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def connect() -> Any:
    """A client of the configured server; TemporalUnavailable says how to start one when it is down."""
    from temporalio.client import Client

    config = temporal_settings()
    try:
        return await asyncio.wait_for(Client.connect(config["ADDRESS"], namespace=config["NAMESPACE"]), 15)
    except Exception as exc:
        raise TemporalUnavailable(
            f"Cannot reach Temporal at {config['ADDRESS']} (namespace {config['NAMESPACE']!r}): {exc}. Start a "
            "server (`bash scripts/temporal.sh` runs a dev server) or set SEMANTIC_CATALOG['TEMPORAL']['ADDRESS']."
        ) from exc


def _request(index_name: str, ids: list[str] | None, batch_size: int | None, force: bool) -> Any:
    from semantic_catalog.workflows.definitions import IndexRequest

    config = temporal_settings()
    batch_size = config["BATCH_SIZE"] if batch_size is None else batch_size
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= 10_000:
        raise InvalidQuery(f"batch_size must be a whole number from 1 to 10000, not {batch_size!r}.")
    return IndexRequest(
        index=index_name,
        ids=ids,
        batch_size=batch_size,
        force=force,
        max_attempts=config["MAX_ATTEMPTS"],
        retry_seconds=float(config["RETRY_SECONDS"]),
        heartbeat_seconds=float(config["HEARTBEAT_SECONDS"]),
    )


def _check_ids(index_name: str, ids: Iterable[Any]) -> list[str]:
    index = registry.get(index_name)
    keys = list(dict.fromkeys(str(i) for i in ids))
    if not keys:
        raise InvalidQuery("No ids to index: give at least one, or none at all for the whole index.")
    if len(keys) > MAX_IDS:
        raise InvalidQuery(f"{len(keys)} ids are more than {MAX_IDS}: index the whole index instead.")
    _, invalid = index.parse_ids(keys)
    if invalid:
        raise InvalidQuery("; ".join(list(invalid.values())[:5]))
    return keys


def start(
    index_name: str,
    ids: Iterable[Any] | QuerySet | None = None,
    *,
    batch_size: int | None = None,
    force: bool = False,
) -> str:
    """Start an indexing run of the whole index (``ids`` None), of a queryset of its model, or of
    ids; returns the run's workflow id at once (a worker does the work)."""
    index = registry.get(index_name)
    if isinstance(ids, QuerySet):
        if ids.model is not index.model:
            raise InvalidQuery(f"The queryset is of {ids.model._meta.label}, not of {index.model._meta.label}.")  # type: ignore[union-attr]
        ids = ids.values_list("pk", flat=True)
    keys = None if ids is None else _check_ids(index_name, ids)
    request = _request(index_name, keys, batch_size, force)
    workflow_id = f"{RUN_PREFIX}{index_name}-{uuid.uuid4().hex[:12]}"
    what = "all" if keys is None else f"{len(keys)} ids"

    async def go() -> str:
        from semantic_catalog.workflows.definitions import INDEX_WORKFLOW

        client = await connect()
        await client.start_workflow(
            INDEX_WORKFLOW,
            request,
            id=workflow_id,
            task_queue=temporal_settings()["TASK_QUEUE"],
            memo={"index": index_name, "what": what, "force": force, "batch_size": request.batch_size},
        )
        return workflow_id

    return _run(go())


def _handle(client: Any, workflow_id: str) -> Any:
    from semantic_catalog.workflows.definitions import IndexResult

    if not isinstance(workflow_id, str) or not RUN_ID.match(workflow_id):
        raise RunNotFound(f"{workflow_id!r} is not the id of an indexing run (they start with {RUN_PREFIX!r}).")
    return client.get_workflow_handle(workflow_id, result_type=IndexResult)


async def _describe(handle: Any) -> Any:
    from temporalio.service import RPCError, RPCStatusCode

    try:
        return await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise RunNotFound(f"No indexing run {handle.id!r} on this Temporal server.") from exc
        raise TemporalUnavailable(f"Temporal refused to describe {handle.id!r}: {exc}") from exc


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _progress_data(progress: Any, now: datetime, running: bool) -> dict[str, Any]:
    total, processed = progress.total, progress.processed
    data: dict[str, Any] = {
        "total": total,
        "processed": processed,
        "succeeded": progress.succeeded,
        "failed": progress.failed,
        "batches": progress.batches,
        "percent": round(100.0 * processed / total, 1) if total else (100.0 if total == 0 else None),
        "eta_seconds": None,
    }
    if running and total and processed and progress.started_at:
        elapsed = (now - datetime.fromisoformat(progress.started_at)).total_seconds()
        if elapsed > 0:
            data["rows_per_second"] = round(processed / elapsed, 2)
            data["eta_seconds"] = round((total - processed) * elapsed / processed, 1)
    return data


def status(workflow_id: str) -> dict[str, Any]:
    """A run's state: status (RUNNING, COMPLETED, CANCELED, FAILED, TERMINATED, TIMED_OUT), processed /
    total / failed, percent and ETA while it runs, and its result once completed."""
    from dataclasses import asdict

    async def go() -> dict[str, Any]:
        client = await connect()
        handle = _handle(client, workflow_id)
        info = await _describe(handle)
        state = info.status.name if info.status else "UNKNOWN"
        memo = await info.memo()
        data: dict[str, Any] = {
            "id": workflow_id,
            "index": memo.get("index"),
            "what": memo.get("what"),
            "force": memo.get("force"),
            "status": state,
            "started_at": _iso(info.start_time),
            "closed_at": _iso(info.close_time),
        }
        if state == "COMPLETED":
            result = await handle.result()
            data.update(_progress_data(result_as_progress(result, memo), datetime.now(UTC), False))
            data["result"] = asdict(result)
            return data
        from semantic_catalog.workflows.definitions import Progress

        try:  # a query needs a worker (a closed run's is answered by replaying it)
            progress = await asyncio.wait_for(handle.query("progress", result_type=Progress),
                                              10 if state == "RUNNING" else 3)
        except Exception:
            progress = None
        if progress is not None:
            data.update(_progress_data(progress, datetime.now(UTC), state == "RUNNING"))
        return data

    return _run(go())


def result_as_progress(result: Any, memo: dict[str, Any]) -> Any:
    from semantic_catalog.workflows.definitions import Progress

    return Progress(memo.get("index", ""), result.total, result.processed, result.succeeded, result.failed,
                    result.batches, None)


def cancel(workflow_id: str) -> dict[str, Any]:
    """Ask a run to stop: the batch being written finishes whole, no further batch starts."""

    async def go() -> dict[str, Any]:
        client = await connect()
        handle = _handle(client, workflow_id)
        info = await _describe(handle)
        if info.status and info.status.name != "RUNNING":
            return {"id": workflow_id, "status": info.status.name, "cancel_requested": False}
        await handle.cancel()
        return {"id": workflow_id, "status": "RUNNING", "cancel_requested": True}

    return _run(go())


def wait(workflow_id: str, timeout: float | None = None) -> Any:
    """The run's IndexResult once it completes (raises what the run raised: cancelled, failed)."""

    async def go() -> Any:
        client = await connect()
        return await asyncio.wait_for(_handle(client, workflow_id).result(), timeout)

    return _run(go())


def recent_runs(limit: int = 20, index_name: str | None = None) -> list[dict[str, Any]]:
    """The latest indexing runs (newest first), as Temporal's visibility lists them."""
    from semantic_catalog.workflows.definitions import INDEX_WORKFLOW

    async def go() -> list[dict[str, Any]]:
        client = await connect()
        runs: list[dict[str, Any]] = []
        query = f"WorkflowType = '{INDEX_WORKFLOW}'"
        async for execution in client.list_workflows(query, limit=limit * 3 if index_name else limit):
            memo = await execution.memo()
            if index_name and memo.get("index") != index_name:
                continue
            if any(run["id"] == execution.id for run in runs):  # continued-as-new runs share the id
                continue
            runs.append({
                "id": execution.id,
                "index": memo.get("index"),
                "what": memo.get("what"),
                "status": execution.status.name if execution.status else "UNKNOWN",
                "started_at": _iso(execution.start_time),
                "closed_at": _iso(execution.close_time),
            })
            if len(runs) >= limit:
                break
        return runs

    return _run(go())
