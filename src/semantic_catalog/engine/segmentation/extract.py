"""Stage (a), extract: a batch of items yields a taxonomy (name, definition) and every item's segment."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass

from semantic_catalog.engine.segmentation.batches import id_problems, normalize_name, one_line, product_label
from semantic_catalog.engine.segmentation.calls import Request, conversation
from semantic_catalog.engine.segmentation.schemas import ExtractAnswer
from semantic_catalog.engine.segmentation.stages import StageContext
from semantic_catalog.engine.segmentation.types import Item

INTERACTION = "segmentation"
Entry = tuple[int, Item]  # (position in the run, item)


@dataclass(frozen=True)
class BatchTaxonomy:
    batch: int
    segments: list[tuple[str, str]]  # (name, definition), names unique after normalization
    assignments: dict[str, tuple[str, float]]  # item id -> (segment name, confidence)


def render(entries: Sequence[Entry], ctx: StageContext) -> str:
    lines = "\n".join(
        f"{product_label(pos)}: {one_line(item.text, ctx.config.max_item_chars)}" for pos, item in entries
    )
    return ctx.templates["extract_taxonomy"].render(category=ctx.config.category or "(none)", products=lines)


def extract_batch(batch: int, entries: Sequence[Entry], ctx: StageContext) -> Generator[Request, str, BatchTaxonomy]:
    labels = [product_label(pos) for pos, _ in entries]

    def check(answer: ExtractAnswer) -> tuple[list[str], list[str]]:
        """No fatal errors: an assignment to a segment the answer does not list is retried like an id
        problem, and once the retries run out that item is left for refinement (as a missing id is)."""
        names = {normalize_name(s.name) for s in answer.segments}
        unlisted = [
            f"{a.product_id} is assigned to {a.segment!r}, which is not one of 'segments'"
            for a in answer.assignments
            if normalize_name(a.segment) not in names
        ][:5]
        return [], unlisted + id_problems(labels, [a.product_id for a in answer.assignments])

    outcome = yield from conversation(
        interaction_type=INTERACTION,
        batch=batch,
        prompt=render(entries, ctx),
        model=ExtractAnswer,
        check=check,
        context={
            "batch_size": len(entries),
            "expected_ids": [item.id for _, item in entries],
            "items": [{"label": label, "id": item.id, "text": item.text} for label, (_, item) in zip(labels, entries)],
        },
        prompt_file=ctx.prompt_files["extract_taxonomy"],
        retry=ctx.templates["shared_retry"],
        max_retries=ctx.config.max_retries,
        problems=ctx.problems,
        fits=ctx.fits,
        limits={"segments": (1, len(entries)), "assignments": (len(entries), len(entries))},
    )
    answer = outcome.answer
    if answer is None:  # the run goes on: refinement assigns these items (the pipeline fails if no batch answered)
        ctx.problems.append(
            f"extract batch {batch}: no usable answer after {ctx.config.max_retries + 1} attempts "
            f"({'; '.join(outcome.errors)}); its {len(entries)} items are assigned in refinement"
        )
        return BatchTaxonomy(batch=batch, segments=[], assignments={})
    segments: dict[str, tuple[str, str]] = {}
    for segment in answer.segments:
        segments.setdefault(normalize_name(segment.name), (segment.name, segment.definition))
    by_label = {product_label(pos): item.id for pos, item in entries}
    assignments: dict[str, tuple[str, float]] = {}
    for a in answer.assignments:
        item_id = by_label.get(a.product_id)
        known = segments.get(normalize_name(a.segment))
        if item_id is not None and known is not None and item_id not in assignments:
            assignments[item_id] = (known[0], a.confidence)
    return BatchTaxonomy(batch=batch, segments=list(segments.values()), assignments=assignments)
