"""A segmentation run's life in SQL: created with its items, executed by the engine (progress and the
cancel flag on the run's row, every LLM call indexed as it is written), its result stored in one
transaction; a failed, cancelled or crashed run resumes in its own log folder from the cache."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from semantic_catalog.engine.errors import (
    ConfigurationError,
    InvalidQuery,
    RunCancelled,
    SegmentationError,
    SegmentationInputError,
    SemanticCatalogError,
)
from semantic_catalog.engine.segmentation.types import (
    USAGE_FIELDS,
    Item,
    Progress,
    SegmentationConfig,
    SegmentationResult,
)
from semantic_catalog.indexes import SemanticIndex
from semantic_catalog.models import ItemSegment, RefinedItemSegment, RunItem, Segment, SegmentationRun
from semantic_catalog.registry import registry
from semantic_catalog.segmentation.callindex import RunDatabase, SqlCallIndex
from semantic_catalog.segmentation.conf import build_config, config_of, log_storage, split_config, storage_options
from semantic_catalog.segmentation.vectors import require_vectors, stored_vectors

logger = logging.getLogger("semantic_catalog.segmentation")

Status = SegmentationRun.Status


class RunNotFound(SegmentationError, LookupError):
    """No segmentation run has that id."""


class RunConflict(SegmentationError):
    """The run is in a state that does not allow this (cancel a finished run, resume a completed one)."""


def get_run(run_id: str) -> SegmentationRun:
    if not isinstance(run_id, str) or len(run_id) > 120:
        raise RunNotFound("There is no segmentation run with that id.")
    try:
        return SegmentationRun.objects.get(run_id=run_id)
    except SegmentationRun.DoesNotExist:
        raise RunNotFound(f"There is no segmentation run {run_id!r}.") from None


def create_run(
    index: SemanticIndex,
    items: Sequence[Item],
    *,
    category: str = "",
    model: str | None = None,
    temperature: float | None = None,
    **options: Any,
) -> SegmentationRun:
    """The run's row and its items, status running at stage 'queued'; nothing is asked of the LLM yet.
    ``options`` are RUN_OPTIONS (mode, segments, ...); an embedding-first run is refused here when the
    segment counts make no sense for these items or some item has no vector in the index."""
    from semantic_catalog.engine.segmentation import new_run_id

    config = build_config(model=model, temperature=temperature, category=category, **options)
    check_run_options(index, config, items)
    model_config, params = split_config(config)
    with transaction.atomic():
        run = SegmentationRun.objects.create(
            run_id=new_run_id(config, list(items)),
            index=index.name,
            stage="queued",
            category=category,
            model_config=model_config,
            params=params,
            storage_url=log_storage(),
            total_items=len(items),
        )
        RunItem.objects.bulk_create([RunItem(run=run, item_id=i.id, text=i.text) for i in items], batch_size=1000)
    return run


def check_run_options(index: SemanticIndex, config: SegmentationConfig, items: Sequence[Item]) -> None:
    """InvalidQuery for options that make no sense (each message says what to fix), NotIndexedYet for
    an embedding-first run of items the index holds no vectors of."""
    from semantic_catalog.engine.segmentation.clustering import check_range
    from semantic_catalog.engine.segmentation.pipeline import check_config

    try:
        check_config(config)
        if config.mode == "embedding_first":
            check_range(config, len(items), len(items))
    except (ConfigurationError, SegmentationInputError) as exc:
        raise InvalidQuery(str(exc).removeprefix("segmentation settings: ")) from None
    if config.mode == "embedding_first":
        require_vectors(index, [item.id for item in items])  # read when the run executes


class _Reporter:
    """The engine's progress callback and stop check, written to and read from the run's row."""

    def __init__(self, run: SegmentationRun, database: RunDatabase, on_progress: Callable[[Progress], None] | None):
        self.run = run
        self.database = database
        self.on_progress = on_progress
        self.stage = ""

    def progress(self, progress: Progress) -> None:
        fields: dict[str, Any] = {"processed": progress.processed, "total": progress.total, "stage": progress.stage}
        if progress.stage != self.stage:
            self.stage = progress.stage
            fields["stage_started_at"] = timezone.now()
        fields["updated_at"] = timezone.now()
        self.database(lambda: SegmentationRun.objects.filter(pk=self.run.pk).update(**fields))
        if self.on_progress is not None:
            self.on_progress(progress)

    def should_stop(self) -> bool:
        return self.database(lambda: SegmentationRun.objects.filter(pk=self.run.pk, cancel_requested=True).exists())


def execute_run(
    run_id: str, *, on_progress: Callable[[Progress], None] | None = None, client: Any = None
) -> SegmentationRun:
    """Run (or resume) the pipeline for a stored run and store its result; returns the run as it ended.

    The engine's own errors (an LLM that never answered usably, a bad prompt template, a cancel)
    end the run as failed or cancelled with the message; anything else is a bug: the run is marked
    failed and the error raised.
    """
    from semantic_catalog.engine.segmentation import run_segmentation

    run = get_run(run_id)
    if run.status == Status.COMPLETED:
        return run
    items = [Item(item_id, text) for item_id, text in run.items.order_by("pk").values_list("item_id", "text")]
    database = RunDatabase()
    reporter = _Reporter(run, database, on_progress)
    started = time.monotonic()
    stage = "cluster" if run.params.get("mode") == "embedding_first" else "extract"
    _update(run, status=Status.RUNNING, stage=stage, processed=0, total=len(items), stage_started_at=timezone.now())
    try:
        config = config_of(run.model_config, run.params, run.category)
        vectors = None
        if config.mode == "embedding_first":
            vectors = stored_vectors(registry.get(run.index), [item.id for item in items])
        result = run_segmentation(
            items,
            config,
            storage_url=run.storage_url,
            run_id=run.run_id,
            storage_options=storage_options(),
            index=SqlCallIndex(run, database),
            progress=reporter.progress,
            should_stop=reporter.should_stop,
            client=client,
            vectors=vectors,
        )
    except RunCancelled as exc:
        return _end(run, Status.CANCELLED, f"Cancelled: {exc}")
    except (SemanticCatalogError, ImproperlyConfigured) as exc:  # segmentation errors, an index without vectors
        return _end(run, Status.FAILED, str(exc))
    except Exception as exc:
        logger.exception("Segmentation run %s failed", run.run_id)
        _end(run, Status.FAILED, f"Internal error ({type(exc).__name__}): {exc}")
        raise
    try:
        store_result(run, result, seconds=time.monotonic() - started)
    except Exception as exc:  # the answers are cached: a resume stores them without asking again
        logger.exception("Segmentation run %s: its result could not be stored", run.run_id)
        _end(run, Status.FAILED, f"The result could not be stored ({type(exc).__name__}); resume the run.")
        raise
    run.refresh_from_db()
    return run


def _update(run: SegmentationRun, **fields: Any) -> None:
    for name, value in fields.items():
        setattr(run, name, value)
    SegmentationRun.objects.filter(pk=run.pk).update(**fields, updated_at=timezone.now())


def _end(run: SegmentationRun, status: str, error: str) -> SegmentationRun:
    _update(run, status=status, error=error, finished_at=timezone.now())
    return run


def store_result(run: SegmentationRun, result: SegmentationResult, *, seconds: float | None = None) -> None:
    """Replace the run's segments and assignments with ``result``'s, and mark it completed (one transaction)."""
    counts: dict[str, int] = {}
    for assignment in result.refined:
        counts[assignment.segment] = counts.get(assignment.segment, 0) + 1
    with transaction.atomic():
        Segment.objects.filter(run=run).delete()  # cascades to the refined assignments
        ItemSegment.objects.filter(run=run).delete()
        segments = Segment.objects.bulk_create(
            [
                Segment(run=run, key=s.id, name=s.name, definition=s.definition, item_count=counts.get(s.id, 0))
                for s in result.segments
            ]
        )
        by_key = {segment.key: segment for segment in Segment.objects.filter(run=run)} if segments else {}
        first: dict[str, ItemSegment] = {}
        for a in result.first_pass:  # an item seen twice keeps its first answer
            first.setdefault(
                a.item_id, ItemSegment(run=run, item_id=a.item_id, segment_name=a.segment, confidence=a.confidence)
            )
        ItemSegment.objects.bulk_create(first.values(), batch_size=1000)
        RefinedItemSegment.objects.bulk_create(
            [
                RefinedItemSegment(run=run, item_id=a.item_id, segment=by_key[a.segment], confidence=a.confidence)
                for a in result.refined
                if a.segment in by_key
            ],
            batch_size=1000,
        )
        stray = sorted({a.segment for a in result.refined if a.segment not in by_key})
        problems = list(result.problems) + [f"assignments to segments the taxonomy lacks: {', '.join(stray)}"] * bool(
            stray
        )
        totals = {stage: _usage(usage) for stage, usage in result.usage.items()}
        summary = {
            "segments": len(result.segments),
            "items": len(result.item_ids),
            "assigned": len(result.refined),
            "problems": problems[:100],
            "problem_count": len(problems),
        }
        if seconds is not None:
            summary["seconds"] = round(seconds, 3)
        _update(
            run,
            status=Status.COMPLETED,
            stage="done",
            processed=len(result.refined),
            total=len(result.item_ids),
            totals=totals,
            result_summary=summary,
            error="",
            finished_at=timezone.now(),
        )


def _usage(usage: Any) -> dict[str, Any]:
    fields = USAGE_FIELDS
    if isinstance(usage, dict):
        return {name: usage.get(name, 0) for name in fields}
    return {name: getattr(usage, name, 0) for name in fields}


def cancel_run(run_id: str) -> SegmentationRun:
    """Ask a running run to stop at its next batch boundary (what it asked so far stays cached)."""
    run = get_run(run_id)
    if run.status != Status.RUNNING:
        raise RunConflict(f"Run {run.run_id} is {run.status}: only a running run can be cancelled.")
    _update(run, cancel_requested=True)
    return run


def prepare_resume(run_id: str, *, force: bool = False) -> SegmentationRun:
    """Make a failed, cancelled or crashed run runnable again (same run id, same log folder)."""
    run = get_run(run_id)
    if run.status == Status.COMPLETED:
        raise RunConflict(f"Run {run.run_id} is completed: there is nothing to resume.")
    if run.status == Status.RUNNING and not force:
        raise RunConflict(
            f"Run {run.run_id} is marked running. If its process died, resume it with --force "
            "(two processes running one run would ask the LLM twice)."
        )
    _update(run, status=Status.RUNNING, stage="queued", cancel_requested=False, error="", finished_at=None)
    return run


def status_data(run: SegmentationRun) -> dict[str, Any]:
    """Stage, processed of total, percent and an ETA of the current stage from its observed rate."""
    percent = round(100.0 * run.processed / run.total, 1) if run.total else 0.0
    eta: float | None = None
    rate: float | None = None
    if run.status == Status.RUNNING and run.stage_started_at and run.processed:
        elapsed = (timezone.now() - run.stage_started_at).total_seconds()
        if elapsed > 0:
            rate = run.processed / elapsed
            eta = round(max(0, run.total - run.processed) / rate, 1)
    if run.status == Status.COMPLETED:
        percent, eta = 100.0, 0.0
    return {
        "run_id": run.run_id,
        "index": run.index,
        "status": run.status,
        "stage": run.stage,
        "processed": run.processed,
        "total": run.total,
        "percent": percent,
        "rate": round(rate, 3) if rate is not None else None,
        "eta_seconds": eta,
        "total_items": run.total_items,
        "cancel_requested": run.cancel_requested,
        "error": run.error,
        "created_at": run.created_at,
        "updated_at": run.updated_at,
        "finished_at": run.finished_at,
    }


def results_data(run: SegmentationRun) -> dict[str, Any]:
    """The taxonomy with definitions and counts, each item's refined segment and confidence, and the
    report page's URL."""
    segments = sorted(run.segments.all(), key=lambda s: (len(s.key), s.key))  # S_2 before S_10
    names = {s.pk: s for s in segments}
    try:  # the admin's report page, a path; None where the project does not mount the admin
        report_url: str | None = reverse("admin:semantic_catalog_segmentationrun_report", args=[run.pk])
    except NoReverseMatch:
        report_url = None
    items = [
        {"id": item_id, "segment": names[segment].key, "segment_name": names[segment].name, "confidence": confidence}
        for item_id, segment, confidence in run.refined.order_by("pk").values_list("item_id", "segment", "confidence")
    ]
    return {
        "run_id": run.run_id,
        "index": run.index,
        "status": run.status,
        "category": run.category,
        "model": run.model_config.get("model", ""),
        "mode": run.params.get("mode", "full"),
        "naming": run.params.get("naming", "llm"),
        "segments": [
            {"id": s.key, "name": s.name, "definition": s.definition, "item_count": s.item_count} for s in segments
        ],
        "items": items,
        "problems": run.result_summary.get("problems", []),
        "totals": run.totals,
        "report_url": report_url,
    }
