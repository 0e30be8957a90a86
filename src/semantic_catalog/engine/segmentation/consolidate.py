"""Stage (b), consolidate: batch taxonomies merged a group at a time into one taxonomy. Each segment keeps
its origins (the extract batch and name it came from) so first-pass assignments follow the merge. When the
LLM gives no usable answer the group is merged deterministically by name."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass

from semantic_catalog.engine.segmentation.batches import normalize_name
from semantic_catalog.engine.segmentation.calls import Request, conversation
from semantic_catalog.engine.segmentation.schemas import ConsolidateAnswer
from semantic_catalog.engine.segmentation.stages import StageContext

INTERACTION = "consolidate_taxonomy"
Origin = tuple[int, str]  # (extract batch, normalized first-pass segment name)


@dataclass(frozen=True)
class TaxonomySegment:
    name: str
    definition: str
    origins: frozenset[Origin]


Taxonomy = list[TaxonomySegment]


def name_merge(taxonomies: Sequence[Taxonomy]) -> Taxonomy:
    """The deterministic fallback: segments with the same normalized name become one (first name and
    definition kept, origins joined), in order of first appearance."""
    merged: dict[str, TaxonomySegment] = {}
    for taxonomy in taxonomies:
        for segment in taxonomy:
            key = normalize_name(segment.name)
            if key in merged:
                first = merged[key]
                merged[key] = TaxonomySegment(first.name, first.definition, first.origins | segment.origins)
            else:
                merged[key] = segment
    return list(merged.values())


def render(group: Sequence[Taxonomy], ctx: StageContext) -> str:
    blocks = []
    for number, taxonomy in enumerate(group, start=1):
        lines = "\n".join(f"- {s.name}: {s.definition}" for s in taxonomy)
        blocks.append(f"Taxonomy T_{number}:\n{lines}")
    return ctx.templates["consolidate_taxonomy"].render(
        category=ctx.config.category or "(none)", taxonomies="\n\n".join(blocks)
    )


def consolidate_group(batch: int, group: Sequence[Taxonomy], ctx: StageContext) -> Generator[Request, str, Taxonomy]:
    outcome = yield from conversation(
        interaction_type=INTERACTION,
        batch=batch,
        prompt=render(group, ctx),
        model=ConsolidateAnswer,
        check=lambda answer: ([], []),
        context={
            "batch_size": len(group),
            "expected_ids": [],
            "taxonomies": [[{"name": s.name, "definition": s.definition} for s in t] for t in group],
        },
        prompt_file=ctx.prompt_files["consolidate_taxonomy"],
        retry=ctx.templates["shared_retry"],
        max_retries=ctx.config.max_retries,
        problems=ctx.problems,
        fits=ctx.fits,
        limits={"segments": (1, sum(len(t) for t in group))},
    )
    if outcome.answer is None:
        ctx.problems.append(
            f"{INTERACTION} batch {batch}: no usable answer ({'; '.join(outcome.errors)}); merged by name instead"
        )
        return name_merge(group)
    inputs: dict[str, frozenset[Origin]] = {}
    for taxonomy in group:
        for segment in taxonomy:
            key = normalize_name(segment.name)
            inputs[key] = inputs.get(key, frozenset()) | segment.origins
    merged: Taxonomy = []
    for out in outcome.answer.segments:
        names = {normalize_name(n) for n in out.merged_from} | {normalize_name(out.name)}
        origins = frozenset().union(*(inputs.get(n, frozenset()) for n in names))
        merged.append(TaxonomySegment(out.name, out.definition, origins))
    return name_merge([merged])
