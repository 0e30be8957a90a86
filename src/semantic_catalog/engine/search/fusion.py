"""Fusing keyword and semantic result lists into one hybrid ranking.

Two methods: reciprocal rank fusion (ranks only; robust when the two retrievers are equally good)
and a convex combination of scores scaled by each list's best score (uses how much better one hit is
than the next; better when one retriever is much stronger, as keyword search is on product titles;
see benchmarks/search_quality.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from semantic_catalog.engine.documents import SearchHit

DEFAULT_RRF_K = 60
DEFAULT_KEYWORD_WEIGHT = 0.6
FUSIONS = ("convex", "rrf")


def reciprocal_rank_fusion(
    ranked: Mapping[str, Sequence[SearchHit]],
    limit: int,
    k: int = DEFAULT_RRF_K,
    weights: Mapping[str, float] | None = None,
) -> list[SearchHit]:
    """Fuse lists keyed by retriever name; score = sum of weight / (k + rank).

    Ties are broken by the best single rank, then by id, so results are deterministic.
    """
    scores: dict[str, float] = {}
    ranks: dict[str, dict[str, int]] = {}
    for retriever, hits in ranked.items():
        weight = 1.0 if weights is None else weights.get(retriever, 1.0)
        for rank, hit in enumerate(hits, start=1):
            scores[hit.id] = scores.get(hit.id, 0.0) + weight / (k + rank)
            ranks.setdefault(hit.id, {})[retriever] = rank
    return _ranked(scores, ranks, limit)


def _scaled(scores: Mapping[str, float]) -> dict[str, float]:
    """Divide by the best score, so the top hit is 1 and the others keep their ratio to it.

    Unlike min-max scaling, this does not stretch a list whose scores are close together (cosines of
    0.55 to 0.60) over the whole 0..1 range. Falls back to min-max when the best score is not positive.
    """
    if not scores:
        return {}
    low, high = min(scores.values()), max(scores.values())
    if high > 0:
        return {i: s / high for i, s in scores.items()}
    return {i: (s - low) / (high - low) if high > low else 1.0 for i, s in scores.items()}


def convex_fusion(
    keyword: Sequence[SearchHit],
    semantic: Sequence[SearchHit],
    similarity: Mapping[str, float],
    limit: int,
    keyword_weight: float = DEFAULT_KEYWORD_WEIGHT,
) -> list[SearchHit]:
    """score = w * keyword + (1 - w) * semantic, each divided by its best score among the candidates.

    ``similarity`` must hold the query's cosine similarity for every candidate (both lists), so a
    keyword hit the semantic list missed is still scored on meaning; a semantic hit without a keyword
    match scores 0 on keywords. A keyword hit's score is also multiplied by its ``coverage`` (the share
    of the query's words it contains, when the store says): the best match of one word out of three
    ("battery powered screwdriver" -> a manual screwdriver) no longer outweighs meaning. On the Home
    Depot dev queries this raised hybrid nDCG@10 from 0.378 to 0.396 (benchmarks/search_quality.py).
    """
    covered = {h.id: 1.0 if h.coverage is None else h.coverage for h in keyword}
    keyword_scores = {i: s * covered[i] for i, s in _scaled({h.id: h.score for h in keyword}).items()}
    semantic_scores = _scaled({i: similarity[i] for i in dict.fromkeys([h.id for h in [*keyword, *semantic]])})
    ranks: dict[str, dict[str, int]] = {}
    for retriever, hits in (("keyword", keyword), ("semantic", semantic)):
        for rank, hit in enumerate(hits, start=1):
            ranks.setdefault(hit.id, {})[retriever] = rank
    scores = {
        i: keyword_weight * keyword_scores.get(i, 0.0) + (1 - keyword_weight) * semantic_scores[i]
        for i in semantic_scores
    }
    return _ranked(scores, ranks, limit)


def _ranked(scores: dict[str, float], ranks: dict[str, dict[str, int]], limit: int) -> list[SearchHit]:
    order = sorted(scores, key=lambda i: (-scores[i], min(ranks[i].values()), i))
    return [SearchHit(id=i, score=scores[i], retrievers=ranks[i]) for i in order[:limit]]
