"""``mode="embedding_first"``: the items' vectors are clustered (no LLM), the LLM names each cluster from a
sample of its items, and only the items whose two nearest centroids are almost as near are shown to the
refine stage; every other item keeps its cluster without a call. Same calls, logs, cache and result as the
full mode; the stages in ``usage`` are cluster, name and refine. With ``naming="keywords"`` the clusters are
named by their most distinctive words instead (keywords.py) and no LLM call is made at all."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence

import numpy as np

from semantic_catalog.engine.segmentation import keywords, naming, refine
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
    runner: CallRunner | None,
    usage: dict[str, Usage],
) -> tuple[Taxonomy, list[Assignment], list[Assignment]]:
    """(final taxonomy, first pass = each item's cluster by name, refined = ``S_<n>`` per item). With
    ``naming="keywords"`` no call is made (``runner`` may be None): clusters are named by their distinctive
    words and uncertain items keep their nearest cluster."""
    if ctx.config.naming == "keywords":
        final = _keyword_names(items, clustering, usage["name"])
    else:
        assert runner is not None, 'naming="llm" needs a CallRunner'
        final = _llm_names(items, clustering, ctx, runner, usage["name"])
    first_pass = [
        Assignment(item.id, final[int(clustering.labels[pos])].name, confidence(clustering.margins[pos]))
        for pos, item in enumerate(items)
    ]
    refined_by_id: dict[str, tuple[str, float]] = {}
    doubtful = uncertain(clustering, ctx.config.uncertain_margin) if ctx.config.naming == "llm" else []
    if doubtful:
        assert runner is not None
        refined_by_id = _arbitrate(items, clustering, doubtful, final, ctx, runner, usage["refine"])
    refined = [
        Assignment(item.id, *refined_by_id[item.id])
        if item.id in refined_by_id
        else Assignment(item.id, segment_label(int(clustering.labels[pos])), first_pass[pos].confidence)
        for pos, item in enumerate(items)
    ]
    if missed := len(doubtful) - sum(1 for pos in doubtful if items[pos].id in refined_by_id):
        ctx.problems.append(f"refine: {missed} uncertain item(s) not arbitrated keep their nearest cluster")
    return final, first_pass, refined


def _keyword_names(items: Sequence[Item], clustering: Clustering, usage: Usage) -> Taxonomy:
    """Each cluster named by c-TF-IDF over all its items' texts (keywords.py): no call, only time spent."""
    started = time.monotonic()
    texts = [[items[p].text for p in np.flatnonzero(clustering.labels == c)] for c in range(len(clustering.centroids))]
    final = [TaxonomySegment(name, definition, frozenset()) for name, definition in keywords.cluster_names(texts)]
    usage.seconds += time.monotonic() - started
    return final


def _llm_names(
    items: Sequence[Item], clustering: Clustering, ctx: StageContext, runner: CallRunner, usage: Usage
) -> Taxonomy:
    """The LLM names each cluster from a sample of its items; clusters given one name are reported."""
    k = len(clustering.centroids)
    shown = samples(clustering, ctx.config.name_samples)
    clusters = [
        naming.ClusterSample(c, int((clustering.labels == c).sum()), [(p, items[p]) for p in shown[c]])
        for c in range(k)
    ]
    batches = plan_batches(clusters, ctx.config.clusters_per_prompt, lambda b: ctx.fits(naming.render(b, ctx)))
    answers = runner.run_batches("name", usage, batches, lambda n, b: naming.name_batch(n, b, ctx), k, ctx.problems)
    names = {number: value for answer in answers for number, value in answer.items()}
    final = [TaxonomySegment(*names[c], frozenset()) for c in range(k)]
    seen = Counter(normalize_name(s.name) for s in final)
    if twice := sorted(s.name for s in final if seen[normalize_name(s.name)] > 1):
        ctx.problems.append(f"{naming.INTERACTION}: clusters share a name ({', '.join(twice)}); they stay apart")
    return final


def _arbitrate(
    items: Sequence[Item],
    clustering: Clustering,
    doubtful: Sequence[int],
    final: Taxonomy,
    ctx: StageContext,
    runner: CallRunner,
    usage: Usage,
) -> dict[str, tuple[str, float]]:
    """The refine stage over the uncertain items only: item id -> (S_<n>, confidence) for those answered."""
    entries = [(pos, items[pos], segment_label(int(clustering.labels[pos]))) for pos in doubtful]
    batches = plan_batches(
        entries, ctx.config.products_per_refinement, lambda b: ctx.fits(refine.render(b, final, ctx))
    )
    answers = runner.run_batches(
        "refine", usage, batches, lambda n, b: refine.refine_batch(n, b, final, ctx), len(entries), ctx.problems
    )
    return {item_id: value for answer in answers for item_id, value in answer.items()}
