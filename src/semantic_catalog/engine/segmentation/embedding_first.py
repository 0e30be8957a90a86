"""``mode="embedding_first"``: the items' vectors are clustered (no LLM), the LLM names each cluster from a
sample of its items, and only the items whose two nearest centroids are almost as near are shown to the
refine stage; every other item keeps its cluster without a call. Same calls, logs, cache and result as the
full mode; the stages in ``usage`` are cluster, name and refine."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from semantic_catalog.engine.segmentation import naming, refine
from semantic_catalog.engine.segmentation.batches import normalize_name, plan_batches, segment_label
from semantic_catalog.engine.segmentation.calls import CallRunner
from semantic_catalog.engine.segmentation.clustering import Clustering, samples, uncertain
from semantic_catalog.engine.segmentation.consolidate import Taxonomy, TaxonomySegment
from semantic_catalog.engine.segmentation.stages import StageContext
from semantic_catalog.engine.segmentation.types import Assignment, Item, Usage

STAGES = ("cluster", "name", "refine")


def confidence(margin: float) -> float:
    """An item assigned by its vector alone: 0.5 when two centroids are equally near, 1.0 from a margin of 0.5."""
    return round(min(1.0, 0.5 + float(margin)), 4)


def run(
    items: Sequence[Item],
    clustering: Clustering,
    ctx: StageContext,
    runner: CallRunner,
    usage: dict[str, Usage],
) -> tuple[Taxonomy, list[Assignment], list[Assignment]]:
    """(final taxonomy, first pass = each item's cluster by name, refined = ``S_<n>`` per item)."""
    config = ctx.config
    k = len(clustering.centroids)
    shown = samples(clustering, config.name_samples)
    clusters = [
        naming.ClusterSample(c, int((clustering.labels == c).sum()), [(p, items[p]) for p in shown[c]])
        for c in range(k)
    ]
    batches = plan_batches(clusters, config.clusters_per_prompt, lambda b: ctx.fits(naming.render(b, ctx)))
    answers = runner.run(
        "name", usage["name"], [(naming.name_batch(n, b, ctx), len(b)) for n, b in enumerate(batches, start=1)], k
    )
    names = {number: value for answer in answers for number, value in answer.items()}
    final = [TaxonomySegment(*names[c], frozenset()) for c in range(k)]
    seen = Counter(normalize_name(s.name) for s in final)
    if twice := sorted(s.name for s in final if seen[normalize_name(s.name)] > 1):
        ctx.problems.append(f"{naming.INTERACTION}: clusters share a name ({', '.join(twice)}); they stay apart")
    first_pass = [
        Assignment(item.id, final[int(clustering.labels[pos])].name, confidence(clustering.margins[pos]))
        for pos, item in enumerate(items)
    ]
    refined_by_id: dict[str, tuple[str, float]] = {}
    doubtful = uncertain(clustering, config.uncertain_margin)
    if doubtful:
        entries = [(pos, items[pos], segment_label(int(clustering.labels[pos]))) for pos in doubtful]
        refine_batches = plan_batches(
            entries, config.products_per_refinement, lambda b: ctx.fits(refine.render(b, final, ctx))
        )
        answers_refined = runner.run(
            "refine",
            usage["refine"],
            [(refine.refine_batch(n, b, final, ctx), len(b)) for n, b in enumerate(refine_batches, start=1)],
            total=len(entries),
        )
        refined_by_id = {item_id: value for answer in answers_refined for item_id, value in answer.items()}
    refined = [
        Assignment(item.id, *refined_by_id[item.id])
        if item.id in refined_by_id
        else Assignment(item.id, segment_label(int(clustering.labels[pos])), first_pass[pos].confidence)
        for pos, item in enumerate(items)
    ]
    if missed := len(doubtful) - sum(1 for pos in doubtful if items[pos].id in refined_by_id):
        ctx.problems.append(f"refine: {missed} uncertain item(s) not arbitrated keep their nearest cluster")
    return final, first_pass, refined
