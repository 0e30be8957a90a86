"""embedding_first's name stage: clusters shown by a sample of their items, a batch of clusters per call, each
given a name and a definition. A cluster without a usable answer is named ``Cluster S_<n>`` (a problem noted)."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass

from semantic_catalog.engine.segmentation.batches import id_problems, one_line, product_label, segment_label
from semantic_catalog.engine.segmentation.calls import Request, conversation
from semantic_catalog.engine.segmentation.schemas import NameAnswer
from semantic_catalog.engine.segmentation.stages import StageContext
from semantic_catalog.engine.segmentation.types import Item

INTERACTION = "name_clusters"


@dataclass(frozen=True)
class ClusterSample:
    number: int  # 0-based cluster; its segment id is segment_label(number)
    size: int
    entries: list[tuple[int, Item]]  # (position in the run, item) shown


def render(clusters: Sequence[ClusterSample], ctx: StageContext) -> str:
    blocks = []
    for c in clusters:
        lines = "\n".join(
            f"{product_label(pos)}: {one_line(item.text, ctx.config.max_item_chars)}" for pos, item in c.entries
        )
        blocks.append(f"Cluster {segment_label(c.number)} ({c.size} products):\n{lines}")
    return ctx.templates[INTERACTION].render(category=ctx.config.category or "(none)", clusters="\n\n".join(blocks))


def unnamed(number: int) -> tuple[str, str]:
    label = segment_label(number)
    return f"Cluster {label}", f"Items the vectors put in cluster {label} (not named: the LLM gave no usable answer)."


def name_batch(
    batch: int, clusters: Sequence[ClusterSample], ctx: StageContext
) -> Generator[Request, str, dict[int, tuple[str, str]]]:
    """Cluster number -> (name, definition) for every cluster of the batch."""
    labels = [segment_label(c.number) for c in clusters]

    def check(answer: NameAnswer) -> tuple[list[str], list[str]]:
        problems = id_problems(labels, [s.segment_id for s in answer.segments])
        return [], [p.replace("product ids", "cluster ids").replace("every product", "every cluster") for p in problems]

    outcome = yield from conversation(
        interaction_type=INTERACTION,
        batch=batch,
        prompt=render(clusters, ctx),
        model=NameAnswer,
        check=check,
        context={
            "batch_size": len(clusters),
            "expected_ids": labels,
            "clusters": [
                {"segment_id": segment_label(c.number), "size": c.size, "sample": [item.id for _, item in c.entries]}
                for c in clusters
            ],
        },
        prompt_file=ctx.prompt_files[INTERACTION],
        retry=ctx.templates["shared_retry"],
        max_retries=ctx.config.max_retries,
        problems=ctx.problems,
        fits=ctx.fits,
        limits={"segments": (len(clusters), len(clusters))},
    )
    named: dict[int, tuple[str, str]] = {}
    if outcome.answer is not None:
        by_label = {segment_label(c.number): c.number for c in clusters}
        for s in outcome.answer.segments:
            number = by_label.get(s.segment_id)
            if number is not None and number not in named:
                named[number] = (s.name, s.definition)
    if missing := [c.number for c in clusters if c.number not in named]:
        ctx.problems.append(
            f"{INTERACTION} batch {batch}: no name for {', '.join(segment_label(n) for n in missing)} "
            f"({'; '.join(outcome.errors) or 'not in the answer'}); named 'Cluster S_<n>' instead"
        )
        named.update({n: unnamed(n) for n in missing})
    return named
