"""Reciprocal rank fusion: merge ranked lists without comparing their incomparable scores."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .documents import SearchHit

DEFAULT_RRF_K = 60


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
    order = sorted(scores, key=lambda i: (-scores[i], min(ranks[i].values()), i))
    return [SearchHit(id=i, score=scores[i], retrievers=ranks[i]) for i in order[:limit]]
