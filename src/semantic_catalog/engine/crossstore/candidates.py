"""Candidate targets for each source listing, without comparing every pair.

Two retrievers, each returning target positions per source: an inverted index of the targets' title
words (IDF-weighted overlap; a source's query reads only the postings of its own words) and the
nearest vectors (a blocked exact inner product, or any approximate index passed as ``neighbours``).
Both grow with the catalogs' sizes, not with their product: 10,000 x 20,000 listings take seconds
(benchmarks/matching_quality.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

import numpy as np

# A word on more than this many targets carries almost no evidence and would make each query read a
# large share of the index ("in", "with", "black"); such words are left out of the index.
MAX_POSTINGS = 2000
BLOCK = 1024  # source rows per matrix product: 1,024 x 20,000 float32 scores = 80 MB

# An approximate nearest-neighbour index over the target catalog: (source vectors as rows, k) -> the ids of
# up to k nearest targets per row, best first. Without one, ``nearest_by_vector`` searches exactly.
Neighbours = Callable[[np.ndarray, int], Sequence[Sequence[str]]]


class WordIndex:
    """Target listings by word: postings (target positions) and an IDF weight per word."""

    def __init__(self, documents: Sequence[Iterable[str]], max_postings: int = MAX_POSTINGS) -> None:
        postings: dict[str, list[int]] = {}
        for position, document in enumerate(documents):
            for word in set(document):
                postings.setdefault(word, []).append(position)
        count = max(1, len(documents))
        self.size = len(documents)
        self.postings = {w: np.asarray(p, dtype=np.int64) for w, p in postings.items() if len(p) <= max_postings}
        self.idf = {w: math.log(1 + count / len(p)) for w, p in postings.items() if w in self.postings}

    def nearest(self, words: Iterable[str], k: int) -> list[int]:
        """Up to ``k`` target positions sharing the most (IDF-weighted) words, best first; ties by position."""
        known = [w for w in set(words) if w in self.postings]
        if not known:
            return []
        lists = [self.postings[w] for w in known]
        positions = np.concatenate(lists)
        weights = np.repeat([self.idf[w] for w in known], [len(p) for p in lists])
        scores = np.bincount(positions, weights=weights)
        hit = np.flatnonzero(scores)
        if len(hit) > k:  # keep every target tied with the k-th best, so ties are broken by position
            kth = -np.partition(-scores[hit], k - 1)[k - 1]
            hit = hit[scores[hit] >= kth]
        order = np.lexsort((hit, -scores[hit]))
        return hit[order][:k].tolist()


def nearest_by_vector(source: np.ndarray, target: np.ndarray, k: int, block: int = BLOCK) -> np.ndarray:
    """For each source row, the positions of the ``k`` targets with the highest inner product (cosine for
    normalised vectors), best first; exact, one block of source rows at a time so memory stays bounded."""
    k = min(k, len(target))
    result = np.empty((len(source), k), dtype=np.int64)
    for start in range(0, len(source), block):
        scores = source[start : start + block] @ target.T
        if k < scores.shape[1]:
            top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        else:
            top = np.broadcast_to(np.arange(scores.shape[1]), scores.shape).copy()
        picked = np.take_along_axis(scores, top, axis=1)
        order = np.lexsort((top, -picked))
        result[start : start + block] = np.take_along_axis(top, order, axis=1)
    return result
