"""The Temporal workflows: bulk indexing of one index, and the outbox drain.

Temporal replays workflow code in a sandbox that restricts imports, so this module imports only the
standard library and temporalio: every piece of Django work (loading rows, encoding, writing, the
failed rows' outbox events) is an activity (``workflows.activities``), named here by string.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, CancelledError

INDEX_WORKFLOW = "SemanticIndexWorkflow"
DRAIN_WORKFLOW = "SemanticDrainWorkflow"
# Activity names (workflows.activities defines them under these names).
COUNT_ACTIVITY = "semantic_count_rows"
PAGE_ACTIVITY = "semantic_page_ids"
BATCH_ACTIVITY = "semantic_index_batch"
FAILED_ACTIVITY = "semantic_record_failed_batch"
ORPHANS_ACTIVITY = "semantic_remove_orphans"
DRAIN_ACTIVITY = "semantic_drain_index"

# History stays bounded: a run continues as new after this many batches (or when Temporal suggests it).
BATCHES_PER_RUN = 200
# At most this many failed ids (and errors) are carried in the result; ``failed`` counts them all.
MAX_REPORTED_FAILURES = 1000


@dataclass
class IndexRequest:
    """What to index: ``ids`` of ``index`` (None: every row of its queryset), ``batch_size`` rows per
    activity, ``force`` re-encodes rows whose content hash is already stored. A batch is tried
    ``max_attempts`` times, waiting ``retry_seconds`` after the first failure and twice as long after
    each next one (at most ``max_retry_seconds``). The rest is the run's state when it continues as new."""

    index: str
    ids: list[str] | None = None
    batch_size: int = 256
    force: bool = False
    max_attempts: int = 5
    retry_seconds: float = 1.0
    max_retry_seconds: float = 60.0
    heartbeat_seconds: float = 60.0
    batches_per_run: int = BATCHES_PER_RUN  # then continue as new (history stays bounded)
    # carried over by continue-as-new
    after: str | None = None  # the last pk done (the whole queryset, by pk order)
    position: int = 0  # the next offset in ``ids``
    total: int | None = None
    started_at: str | None = None
    progress: IndexResult | None = None


@dataclass
class IndexResult:
    """Rows seen (``total``: the queryset's count or the ids' number), indexed or already current
    (``succeeded``), ``failed`` (with up to MAX_REPORTED_FAILURES ids and their errors)."""

    total: int = 0
    processed: int = 0
    succeeded: int = 0
    failed: int = 0
    encoded: int = 0
    unchanged: int = 0
    deleted: int = 0
    batches: int = 0
    failed_batches: int = 0
    failed_ids: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    cancelled: bool = False


@dataclass
class PageRequest:
    index: str
    after: str | None
    limit: int


@dataclass
class Page:
    ids: list[str]
    last: str | None  # the pk to continue after (None: no more rows)


@dataclass
class BatchRequest:
    index: str
    ids: list[str]
    force: bool = False


@dataclass
class BatchResult:
    """One batch: rows written (``encoded`` + ``reused``), ``unchanged``, ``deleted`` (not in the
    queryset any more), and the rows that failed alone (``errors``: id -> why)."""

    encoded: int = 0
    reused: int = 0
    unchanged: int = 0
    deleted: int = 0
    errors: dict[str, str] = field(default_factory=dict)


@dataclass
class FailedBatch:
    index: str
    ids: list[str]
    error: str
    run_id: str


@dataclass
class Progress:
    """The answer to the ``progress`` query (the service adds percent and ETA from wall time)."""

    index: str
    total: int | None
    processed: int
    succeeded: int
    failed: int
    batches: int
    started_at: str | None


def _watched(request: IndexRequest) -> dict:
    """Every activity heartbeats (from a thread while it works): a worker killed mid-activity is
    noticed after ``heartbeat_seconds`` and the activity runs again on another worker."""
    return {
        "start_to_close_timeout": timedelta(minutes=30),
        "heartbeat_timeout": timedelta(seconds=request.heartbeat_seconds),
    }


def _failure_text(exc: BaseException) -> str:
    cause: BaseException = exc
    while cause.__cause__ is not None:
        cause = cause.__cause__
    return f"{type(cause).__name__}: {cause}"[:2000]


@workflow.defn(name=INDEX_WORKFLOW)
class IndexWorkflow:
    """Page through the ids (pk order) and run one idempotent, heartbeating activity per batch; a
    batch that fails ``max_attempts`` times is recorded as failed outbox events and the run goes on."""

    def __init__(self) -> None:
        self.request: IndexRequest | None = None
        self.result = IndexResult()

    @workflow.query
    def progress(self) -> Progress:
        request = self.request
        return Progress(
            index=request.index if request else "",
            total=self.result.total if request and request.total is not None else None,
            processed=self.result.processed,
            succeeded=self.result.succeeded,
            failed=self.result.failed,
            batches=self.result.batches,
            started_at=request.started_at if request else None,
        )

    @workflow.run
    async def run(self, request: IndexRequest) -> IndexResult:
        self.request = request
        if request.progress is not None:
            self.result = request.progress
        if request.started_at is None:
            request.started_at = workflow.now().isoformat()
        if request.total is None:
            request.total = len(request.ids) if request.ids is not None else await workflow.execute_activity(
                COUNT_ACTIVITY, request.index, **_watched(request), result_type=int
            )
        self.result.total = request.total
        batches = 0
        while True:
            ids = await self._next_ids(request)
            if not ids:
                if request.ids is None:  # the whole queryset: ids that left it leave the index too
                    self.result.deleted += await workflow.execute_activity(
                        ORPHANS_ACTIVITY, request.index, **_watched(request), result_type=int
                    )
                return self.result
            await self._batch(request, ids)
            if workflow.cancellation_reason() is not None:
                # A cancel that reached the batch between two heartbeats let it finish whole (and the
                # SDK then returns its result): the run stops here, counted, instead of going on.
                raise asyncio.CancelledError("the run was cancelled")
            batches += 1
            if batches >= request.batches_per_run or workflow.info().is_continue_as_new_suggested():
                request.progress = self.result
                workflow.continue_as_new(request)

    async def _next_ids(self, request: IndexRequest) -> list[str]:
        if request.ids is not None:
            ids = request.ids[request.position : request.position + request.batch_size]
            request.position += len(ids)
            return ids
        page = await workflow.execute_activity(
            PAGE_ACTIVITY,
            PageRequest(request.index, request.after, request.batch_size),
            **_watched(request),
            result_type=Page,
        )
        request.after = page.last
        return page.ids

    async def _batch(self, request: IndexRequest, ids: list[str]) -> None:
        result = self.result
        try:
            done: BatchResult = await workflow.execute_activity(
                BATCH_ACTIVITY,
                BatchRequest(request.index, ids, request.force),
                **_watched(request),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(seconds=request.retry_seconds),
                    backoff_coefficient=2.0,
                    maximum_interval=timedelta(seconds=max(request.retry_seconds, request.max_retry_seconds)),
                    maximum_attempts=request.max_attempts,
                ),
                # a cancel waits for the batch to finish or give up whole: no half-written batch
                cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
                result_type=BatchResult,
            )
        except ActivityError as exc:
            if isinstance(exc.cause, CancelledError):
                raise  # the run is cancelled: the batch gave up whole
            error = f"batch of {len(ids)} rows failed {request.max_attempts} times: {_failure_text(exc)}"
            await workflow.execute_activity(
                FAILED_ACTIVITY,
                FailedBatch(request.index, ids, error, workflow.info().workflow_id),
                **_watched(request),
            )
            done = BatchResult(errors=dict.fromkeys(ids, error))
            result.failed_batches += 1
        result.batches += 1
        result.processed += len(ids)
        result.failed += len(done.errors)
        result.succeeded += len(ids) - len(done.errors)
        result.encoded += done.encoded + done.reused
        result.unchanged += done.unchanged
        result.deleted += done.deleted
        for object_id, error in done.errors.items():
            if len(result.failed_ids) < MAX_REPORTED_FAILURES:
                result.failed_ids.append(object_id)
                result.errors[object_id] = error


@dataclass
class DrainRequest:
    index: str
    batch_size: int | None = None


@dataclass
class DrainPass:
    """One drain: events applied and failed, and seconds until the next drain is due (None: none)."""

    events: int = 0
    failed: int = 0
    retry_in: float | None = None


@workflow.defn(name=DRAIN_WORKFLOW)
class DrainWorkflow:
    """The outbox drain of one index as a workflow (SEMANTIC_CATALOG['TEMPORAL']['DRAIN']): writers
    signal-with-start it (one per index), it drains until the outbox has nothing due, waiting on a
    durable timer for backoffs, leases and outages instead of deferred tasks."""

    def __init__(self) -> None:
        self.woken = False

    @workflow.signal
    def wake(self) -> None:
        self.woken = True

    @workflow.run
    async def run(self, request: DrainRequest) -> int:
        applied = 0
        for _ in range(BATCHES_PER_RUN):
            self.woken = False
            done: DrainPass = await workflow.execute_activity(
                DRAIN_ACTIVITY,
                request,
                start_to_close_timeout=timedelta(minutes=30),
                heartbeat_timeout=timedelta(minutes=2),
                retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1)),
                result_type=DrainPass,
            )
            applied += done.events
            if done.retry_in is None and not self.woken:
                return applied
            if not self.woken:
                with contextlib.suppress(TimeoutError):  # the backoff's end: drain again
                    await workflow.wait_condition(lambda: self.woken, timeout=timedelta(seconds=done.retry_in or 1))
        workflow.continue_as_new(request)
