"""Stage (c), refine: batches of items with their current segment are shown the consolidated taxonomy
(``S_<n>``) and reassigned. A batch without a usable answer keeps its current segments (noted as a problem)."""

from __future__ import annotations

from collections.abc import Generator, Sequence

from semantic_catalog.engine.segmentation.batches import id_problems, one_line, product_label, segment_label
from semantic_catalog.engine.segmentation.calls import Request, conversation
from semantic_catalog.engine.segmentation.consolidate import TaxonomySegment
from semantic_catalog.engine.segmentation.schemas import RefineAnswer
from semantic_catalog.engine.segmentation.stages import StageContext
from semantic_catalog.engine.segmentation.types import Item

INTERACTION = "refine_assignments"
Entry = tuple[int, Item, str | None]  # (position in the run, item, current S_<n> or None)


def render(entries: Sequence[Entry], segments: Sequence[TaxonomySegment], ctx: StageContext) -> str:
    segment_lines = "\n".join(f"{segment_label(i)}: {s.name} — {s.definition}" for i, s in enumerate(segments))
    product_lines = "\n".join(
        f"{product_label(pos)} (current {current or 'none'}): {one_line(item.text, ctx.config.max_item_chars)}"
        for pos, item, current in entries
    )
    return ctx.templates["refine_assignments"].render(
        category=ctx.config.category or "(none)", segments=segment_lines, products=product_lines
    )


def refine_batch(
    batch: int, entries: Sequence[Entry], segments: Sequence[TaxonomySegment], ctx: StageContext
) -> Generator[Request, str, dict[str, tuple[str, float]]]:
    """Item id -> (S_<n>, confidence) for the items the answer assigned (first occurrence wins)."""
    labels = [product_label(pos) for pos, _, _ in entries]
    valid = {segment_label(i) for i in range(len(segments))}

    def check(answer: RefineAnswer) -> tuple[list[str], list[str]]:
        fatal = [
            f"{a.product_id} is assigned to {a.segment_id}, which is not one of the segments S_1..S_{len(segments)}"
            for a in answer.assignments
            if a.segment_id not in valid
        ][:5]
        return fatal, id_problems(labels, [a.product_id for a in answer.assignments])

    outcome = yield from conversation(
        interaction_type=INTERACTION,
        batch=batch,
        prompt=render(entries, segments, ctx),
        model=RefineAnswer,
        check=check,
        context={
            "batch_size": len(entries),
            "expected_ids": [item.id for _, item, _ in entries],
            "items": [
                {"label": label, "id": item.id, "text": item.text, "current": current}
                for label, (_, item, current) in zip(labels, entries)
            ],
        },
        prompt_file=ctx.prompt_files["refine_assignments"],
        retry=ctx.templates["shared_retry"],
        max_retries=ctx.config.max_retries,
        problems=ctx.problems,
        fits=ctx.fits,
        limits={"assignments": (len(entries), len(entries))},
    )
    if outcome.answer is None:
        ctx.problems.append(
            f"{INTERACTION} batch {batch}: no usable answer ({'; '.join(outcome.errors)}); "
            "its items keep their first-pass segment"
        )
        return {}
    by_label = {product_label(pos): item.id for pos, item, _ in entries}
    assigned: dict[str, tuple[str, float]] = {}
    for a in outcome.answer.assignments:
        item_id = by_label.get(a.product_id)
        if item_id is not None and a.segment_id in valid and item_id not in assigned:
            assigned[item_id] = (a.segment_id, a.confidence)
    return assigned
