"""``run_segmentation``: extract -> consolidate -> refine over an explicit list of items, every call cached
and logged. The README's "Market segmentation" section tells the whole story."""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Sequence
from contextlib import suppress
from typing import Any

from semantic_catalog.engine.errors import (
    ConfigurationError,
    LLMError,
    LogStorageError,
    RunCancelled,
    SegmentationInputError,
)
from semantic_catalog.engine.segmentation import consolidate, embedding_first, extract, refine
from semantic_catalog.engine.segmentation.batches import normalize_name, plan_batches, segment_label
from semantic_catalog.engine.segmentation.calls import CallRunner
from semantic_catalog.engine.segmentation.client import ChatClient, OpenAIChatClient
from semantic_catalog.engine.segmentation.clustering import Clustering, check_vectors, cluster
from semantic_catalog.engine.segmentation.consolidate import Taxonomy, TaxonomySegment, name_merge
from semantic_catalog.engine.segmentation.logs import FileCallIndex, LogStorage, RunLog, check_run_id, timestamp
from semantic_catalog.engine.segmentation.prompts import load_templates
from semantic_catalog.engine.segmentation.ratelimit import RateLimiter
from semantic_catalog.engine.segmentation.stages import StageContext
from semantic_catalog.engine.segmentation.types import (
    MODES,
    NAMINGS,
    Assignment,
    CallIndex,
    Item,
    Progress,
    ProgressCallback,
    Segment,
    SegmentationConfig,
    SegmentationResult,
    StopCheck,
    Usage,
)

UNCLASSIFIED = ("Unclassified", "Items the LLM did not assign to any segment.")


def new_run_id(config: SegmentationConfig, items: Sequence[Item]) -> str:
    """``RUN_<ISO ts>_<hash>``: the hash (of the config and the items) tells identical runs apart at a glance;
    the timestamp has microseconds, so two runs of the same items started in one second get two ids."""
    payload = json.dumps(
        {"config": config.as_dict(), "items": [[i.id, i.text] for i in items]}, sort_keys=True, ensure_ascii=False
    )
    digest = hashlib.sha256(payload.encode("utf-8")).hexdigest()[:12]
    return f"RUN_{timestamp()}_{digest}"


def check_items(items: Sequence[Item]) -> list[Item]:
    if not items:
        raise SegmentationInputError("no items to segment; give at least one item id with its text.")
    checked = []
    for item in items:
        if not isinstance(item, Item) or not isinstance(item.id, str) or not item.id:
            raise SegmentationInputError(f"{item!r} is not an Item with a non-empty string id.")
        if not isinstance(item.text, str) or not item.text.strip():
            raise SegmentationInputError(f"item {item.id!r} has no text; an index row needs text to be segmented.")
        checked.append(item)
    duplicated = sorted(i for i, n in Counter(i.id for i in checked).items() if n > 1)
    if duplicated:
        raise SegmentationInputError(f"duplicate item ids: {', '.join(duplicated[:10])}; give each item once.")
    return checked


def check_config(config: SegmentationConfig) -> None:
    problems = []
    if config.naming not in NAMINGS:
        problems.append(f"naming {config.naming!r} is not 'llm' or 'keywords'")
    elif config.naming == "keywords" and config.mode != "embedding_first":
        problems.append(
            "naming 'keywords' needs mode 'embedding_first' (the full mode's LLM names the segments it extracts)"
        )
    if config.naming != "keywords":  # a keywords run asks no LLM: it needs neither
        if not config.model:
            problems.append("model is empty")
        if not config.base_url:
            problems.append("base_url is empty")
    for name in ("products_per_prompt", "products_per_refinement", "concurrency", "max_item_chars"):
        if getattr(config, name) < 1:
            problems.append(f"{name} must be at least 1")
    if config.mode not in MODES:
        problems.append(f"mode {config.mode!r} is not 'full' or 'embedding_first'")
    for name in ("name_samples", "clusters_per_prompt"):
        if getattr(config, name) < 1:
            problems.append(f"{name} must be at least 1")
    if not 0.0 <= config.uncertain_margin <= 1.0:
        problems.append("uncertain_margin must be between 0 and 1")
    if config.taxonomies_per_consolidation < 2:
        problems.append("taxonomies_per_consolidation must be at least 2")
    if config.max_retries < 0:
        problems.append("max_retries must be 0 or more")
    if not 0.0 <= config.temperature <= 2.0:
        problems.append("temperature must be between 0 and 2")
    if config.max_output_tokens >= config.context_tokens:
        problems.append("max_output_tokens must be smaller than context_tokens")
    for name in ("requests_per_minute", "tokens_per_minute"):
        value = getattr(config, name)
        if value is not None and value <= 0:
            problems.append(f"{name} must be positive (or None: unlimited)")
    if problems:
        raise ConfigurationError(f"segmentation settings: {'; '.join(problems)}.")


def run_segmentation(
    items: Sequence[Item],
    config: SegmentationConfig,
    *,
    storage_url: str,
    run_id: str | None = None,
    storage_options: dict[str, Any] | None = None,
    index: CallIndex | None = None,
    progress: ProgressCallback | None = None,
    should_stop: StopCheck | None = None,
    client: ChatClient | None = None,
    vectors: Any = None,
) -> SegmentationResult:
    """Segments ``items``: extract, consolidate, refine (``mode="full"``), or cluster ``vectors`` (one row per
    item), name the clusters, refine the uncertain items (``mode="embedding_first"``; with ``naming="keywords"``
    the clusters are named by their distinctive words and no LLM is asked, so no client is made). A given ``run_id``
    resumes that run's folder (answers found in the cache are not asked again). Raises SegmentationInputError,
    PromptTemplateError, LLMError, RunCancelled, LogStorageError; bad input and templates are refused before
    anything is written."""
    items = check_items(items)
    check_config(config)
    templates = {} if config.naming == "keywords" else load_templates(config.prompts_dir, config.mode)
    run_id = check_run_id(run_id) if run_id is not None else new_run_id(config, items)
    ctx = StageContext(config=config, templates=templates, prompt_files={})
    if config.mode == "embedding_first":
        started = time.monotonic()
        clustering = cluster(check_vectors(vectors, len(items)), config)
        cluster_usage = Usage(seconds=time.monotonic() - started)
        return _run_embedding_first(
            items,
            clustering,
            cluster_usage,
            ctx,
            run_id,
            storage_url,
            storage_options,
            index,
            progress,
            should_stop,
            client,
        )
    entries = list(enumerate(items))
    extract_batches = plan_batches(entries, config.products_per_prompt, lambda b: ctx.fits(extract.render(b, ctx)))
    for batch in extract_batches:
        if not ctx.fits(extract.render(batch, ctx)):
            raise SegmentationInputError(
                f"item {batch[0][1].id!r} alone does not fit the model's context ({config.context_tokens} tokens "
                f"with {config.max_output_tokens} for the answer); lower max_item_chars or raise context_tokens."
            )
    usage = {stage: Usage() for stage in ("extract", "consolidate", "refine")}
    context_base = {"category": config.category}
    log, runner = _open_run(
        config, run_id, storage_url, storage_options, index, progress, should_stop, client, context_base
    )
    try:
        ctx.prompt_files.update({t.name: log.archive_prompt(t.filename, t.text) for t in templates.values()})
        taxonomies = runner.run_batches(
            "extract",
            usage["extract"],
            extract_batches,
            lambda n, b: extract.extract_batch(n, b, ctx),
            len(items),
            ctx.problems,
        )
        answered = [t for t in taxonomies if t.segments]
        if not answered:
            failures = [p.split("; its ")[0] for p in ctx.problems if p.startswith("extract batch")]
            raise LLMError(f"no extract batch gave a usable answer: {'; '.join(failures[:3])}.")
        final = _consolidate(answered, ctx, runner, usage["consolidate"])
        log.write_manifest()
        first_pass = {
            item_id: (t.batch, name, conf) for t in taxonomies for item_id, (name, conf) in t.assignments.items()
        }
        origin_to_segment = {origin: segment_label(i) for i, s in enumerate(final) for origin in s.origins}
        current = {
            item_id: origin_to_segment.get((batch, normalize_name(name)))
            for item_id, (batch, name, _) in first_pass.items()
        }
        refine_entries = [(pos, item, current.get(item.id)) for pos, item in entries]
        refine_batches = plan_batches(
            refine_entries, config.products_per_refinement, lambda b: ctx.fits(refine.render(b, final, ctx))
        )
        if not ctx.fits(refine.render(refine_batches[0][:1], final, ctx)):
            raise LLMError(
                f"the consolidated taxonomy ({len(final)} segments) does not fit the model's context "
                f"({config.context_tokens} tokens); raise context_tokens or use a model with a longer context."
            )
        answers = runner.run_batches(
            "refine",
            usage["refine"],
            refine_batches,
            lambda n, b: refine.refine_batch(n, b, final, ctx),
            len(items),
            ctx.problems,
        )
        refined_by_id = {item_id: value for answer in answers for item_id, value in answer.items()}
        refined, final = _complete(items, refined_by_id, current, first_pass, final, ctx)
    except BaseException:
        with suppress(LogStorageError):  # the run's own error matters more than the manifest's
            log.write_manifest()
        raise
    log.write_manifest()
    first_pass_assignments = [
        Assignment(item_id=item.id, segment=first_pass[item.id][1], confidence=first_pass[item.id][2])
        for item in items
        if item.id in first_pass
    ]
    return _result(run_id, items, final, first_pass_assignments, refined, usage, ctx)


def _run_embedding_first(
    items: Sequence[Item],
    clustering: Clustering,
    cluster_usage: Usage,
    ctx: StageContext,
    run_id: str,
    storage_url: str,
    storage_options: dict[str, Any] | None,
    index: CallIndex | None,
    progress: ProgressCallback | None,
    should_stop: StopCheck | None,
    client: ChatClient | None,
) -> SegmentationResult:
    """The embedding-first run once its input is checked and clustered: the same logs, cache and result. Named by
    keywords, it opens only the run's folder (its manifest lets the run be resumed and moved) and no client."""
    config = ctx.config
    usage = {"cluster": cluster_usage, "name": Usage(), "refine": Usage()}
    runner: CallRunner | None = None
    if config.naming == "keywords":
        if should_stop is not None and should_stop():
            raise RunCancelled("the run was stopped; run it again with its run id to resume.")
        log = RunLog(LogStorage(storage_url, storage_options), run_id)
    else:
        log, runner = _open_run(
            config,
            run_id,
            storage_url,
            storage_options,
            index,
            progress,
            should_stop,
            client,
            {"category": config.category, "mode": config.mode},
        )
    try:
        ctx.prompt_files.update({t.name: log.archive_prompt(t.filename, t.text) for t in ctx.templates.values()})
        final, first_pass, refined = embedding_first.run(items, clustering, ctx, runner, usage)
        if runner is None and progress is not None:
            progress(Progress(stage="name", processed=len(final), total=len(final)))
    except BaseException:
        with suppress(LogStorageError):
            log.write_manifest()
        raise
    log.write_manifest()
    return _result(run_id, items, final, first_pass, refined, usage, ctx)


def _open_run(
    config: SegmentationConfig,
    run_id: str,
    storage_url: str,
    storage_options: dict[str, Any] | None,
    index: CallIndex | None,
    progress: ProgressCallback | None,
    should_stop: StopCheck | None,
    client: ChatClient | None,
    context_base: dict[str, Any],
) -> tuple[RunLog, CallRunner]:
    """The run's log folder and the runner every LLM call of either mode goes through."""
    log = RunLog(LogStorage(storage_url, storage_options), run_id)
    runner = CallRunner(
        client=client if client is not None else OpenAIChatClient(config),
        index=index if index is not None else FileCallIndex(storage_url, storage_options),
        log=log,
        limiter=RateLimiter(config.requests_per_minute, config.tokens_per_minute),
        concurrency=config.concurrency,
        progress=progress,
        should_stop=should_stop,
        context_base=context_base,
    )
    return log, runner


def _result(
    run_id: str,
    items: Sequence[Item],
    final: Sequence[Any],
    first_pass: list[Assignment],
    refined: list[Assignment],
    usage: dict[str, Usage],
    ctx: StageContext,
) -> SegmentationResult:
    """The result of either mode: the final taxonomy as ``S_<n>`` segments with their refined counts."""
    counts = Counter(a.segment for a in refined)
    return SegmentationResult(
        run_id=run_id,
        config=ctx.config.as_dict(),
        item_ids=[item.id for item in items],
        segments=[
            Segment(id=segment_label(i), name=s.name, definition=s.definition, item_count=counts[segment_label(i)])
            for i, s in enumerate(final)
        ],
        first_pass=first_pass,
        refined=refined,
        usage=usage,
        problems=ctx.problems,
    )


def _consolidate(
    taxonomies: Sequence[extract.BatchTaxonomy], ctx: StageContext, runner: CallRunner, usage: Usage
) -> Taxonomy:
    """Rounds of groups of ``taxonomies_per_consolidation`` until one taxonomy is left."""
    level: list[Taxonomy] = [
        [
            TaxonomySegment(name, definition, frozenset({(t.batch, normalize_name(name))}))
            for name, definition in t.segments
        ]
        for t in taxonomies
    ]
    batch = 0
    while len(level) > 1:
        groups = plan_batches(
            level,
            ctx.config.taxonomies_per_consolidation,
            lambda g: len(g) < 2 or ctx.fits(consolidate.render(g, ctx)),
        )
        if all(len(g) == 1 for g in groups):
            ctx.problems.append("consolidate: taxonomies too large to show two at once; merged by name instead")
            return name_merge(level)
        merged = runner.run_batches(
            "consolidate",
            usage,
            [g for g in groups if len(g) > 1],
            lambda n, g: consolidate.consolidate_group(n, g, ctx),
            len(level),
            ctx.problems,
            first=batch + 1,
        )
        batch += len(merged)
        # a group the server found too long came back as two merged halves
        fewer = [group[0] for group in groups if len(group) == 1] + merged
        if len(fewer) >= len(level):
            ctx.problems.append("consolidate: the server's context holds no two taxonomies; merged by name instead")
            return name_merge(level)
        level = fewer
    return name_merge(level)


def _complete(
    items: Sequence[Item],
    refined_by_id: dict[str, tuple[str, float]],
    current: dict[str, str | None],
    first_pass: dict[str, tuple[int, str, float]],
    final: Taxonomy,
    ctx: StageContext,
) -> tuple[list[Assignment], Taxonomy]:
    """Every item assigned once: the refined answer, else its first-pass segment, else 'Unclassified'."""
    refined = []
    kept, unclassified = [], []
    for item in items:
        if item.id in refined_by_id:
            segment, confidence = refined_by_id[item.id]
        elif current.get(item.id):
            segment, confidence = current[item.id], first_pass[item.id][2]  # type: ignore[assignment]
            kept.append(item.id)
        else:
            segment, confidence = "", 0.0
            unclassified.append(item.id)
        refined.append(Assignment(item_id=item.id, segment=segment, confidence=confidence))
    if kept:
        ctx.problems.append(f"refine: {len(kept)} item(s) not reassigned keep their first-pass segment")
    if unclassified:
        final = [*final, TaxonomySegment(*UNCLASSIFIED, frozenset())]
        label = segment_label(len(final) - 1)
        refined = [Assignment(a.item_id, label, a.confidence) if not a.segment else a for a in refined]
        ctx.problems.append(f"refine: {len(unclassified)} item(s) with no segment at all are {label} (Unclassified)")
    return refined, final
