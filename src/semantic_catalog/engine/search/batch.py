"""Many queries at once, for evaluation (``evaluate``, ``adapt``, ``semantic_evaluate``): the rankings of
``pipeline.search`` without its per-query costs (a store call per query and mode, twice per hybrid query).

- Vector side: the collection's ids and vectors are read once (``VectorStore.all_vectors``); each block
  of queries is scored against all of them by one float32 matrix product and the top hits taken with
  ``argpartition``. That is exact nearest-neighbour search. A store's own vector search is exact too below
  its ``ann_threshold`` (50,000 rows by default) and approximate above, so on a larger collection
  evaluation ranks by exact cosine: it measures the model and the fusion, not the index's recall
  (benchmarks/ann_scale.py measures that), which makes it the better reference.
- Keyword side: the store's full-text search, one call per query and depth, from a few threads; a
  query's hits (with their coverage) serve its keyword and hybrid runs alike, and each document's terms
  are analysed once per batch instead of once per hit.
- Hybrid: ``pipeline.fuse`` on those two lists, with the run's options.

The rankings are the per-query path's. The one difference is float rounding: the store sums a cosine's
products in another order than the matrix product (differences up to about 1e-6), so two hits whose
cosines are that close may swap (tests/test_batch_evaluation.py compares both paths).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import islice

import numpy as np

from semantic_catalog.engine.documents import SearchHit
from semantic_catalog.engine.search.pipeline import (
    QueryOptions,
    covered_hits,
    fuse,
    hybrid_depth,
    keyword_text,
    query_words,
)
from semantic_catalog.engine.stores.base import VectorStore

SCORE_CELLS = 1 << 25  # query x document scores held at once (128 MB of float32)
MAX_BLOCK = 256  # queries per matrix product


class BatchSearch:
    """Searches of one collection for many queries. It reads every vector of the collection when made
    (4 bytes x dimension per row must fit in memory), so make it after the last write: rows written
    later are not searched by the vector side, and keyword hits missing from it are dropped from hybrid
    (as a store's default ``hybrid_candidates`` drops hits it cannot read a vector for)."""

    def __init__(self, store: VectorStore, collection: str, workers: int | None = None) -> None:
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.store, self.collection = store, collection
        self.ids, self.matrix = store.all_vectors(collection)
        self.rows = {key: row for row, key in enumerate(self.ids)}
        self.workers = workers or min(8, os.cpu_count() or 1)
        self.block = max(1, min(MAX_BLOCK, SCORE_CELLS // max(1, len(self.ids))))
        self._keyword: dict[tuple[str, int], list[SearchHit]] = {}  # (query, depth) -> covered hits
        self._terms: dict[str, set[str]] = {}  # a hit's text -> its terms

    def search(
        self,
        texts: Sequence[str],
        vectors: np.ndarray | None,
        runs: Mapping[str, QueryOptions],
        progress: Callable[[Iterable[int]], Iterable[int]] = lambda items: items,
    ) -> dict[str, list[list[SearchHit]]]:
        """The hits of every query (in the order of ``texts``) for each run: a name and the options
        ``pipeline.search`` would get. ``vectors`` holds one query vector per text (None when every run
        is keyword); ``progress`` wraps the iteration over query positions (a progress bar)."""
        vector_runs = [o for o in runs.values() if o.mode != "keyword"]
        if vector_runs:
            if vectors is None:
                raise ValueError("semantic and hybrid runs need the query vectors")
            vectors = np.asarray(vectors, dtype=np.float32)
            if vectors.ndim != 2 or len(vectors) != len(texts):
                raise ValueError(f"need one query vector per text: {len(texts)} texts, vectors of {vectors.shape}")
            if len(self.ids) and vectors.shape[1] != self.matrix.shape[1]:
                raise ValueError(
                    f"query vectors have {vectors.shape[1]} dimensions, the collection {self.matrix.shape[1]}"
                )
        depth = max((o.limit if o.mode == "semantic" else hybrid_depth(o) for o in vector_runs), default=0)
        keyword_depths = {o.limit for o in runs.values() if o.mode == "keyword"} | {
            hybrid_depth(o) for o in runs.values() if o.mode == "hybrid"
        }
        results: dict[str, list[list[SearchHit]]] = {name: [] for name in runs}
        with ThreadPoolExecutor(self.workers, thread_name_prefix="batch-search") as pool:
            for block in _blocks(iter(progress(range(len(texts)))), self.block):
                nearest = self.nearest(vectors[block], depth) if depth else [[] for _ in block]  # type: ignore[index]
                keyword = {
                    d: dict(zip(block, pool.map(self.keyword, [texts[i] for i in block], [d] * len(block))))
                    for d in keyword_depths
                }
                for j, i in enumerate(block):
                    vector = None if vectors is None else vectors[i]
                    for name, options in runs.items():
                        results[name].append(self._hits(options, nearest[j], keyword, i, vector))
        return results

    def _hits(
        self,
        options: QueryOptions,
        nearest: list[SearchHit],
        keyword: Mapping[int, Mapping[int, list[SearchHit]]],
        query: int,
        vector: np.ndarray | None,
    ) -> list[SearchHit]:
        """One query's hits for one run, from its nearest documents and its keyword lists by depth."""
        if options.mode == "keyword":
            return keyword[options.limit][query]
        if options.mode == "semantic":
            return [SearchHit(h.id, h.score, h.retrievers, h.score) for h in nearest[: options.limit]]
        depth = hybrid_depth(options)
        assert vector is not None  # checked by search
        return fuse(nearest[:depth], self.with_similarity(keyword[depth][query], vector), options)

    def nearest(self, vectors: np.ndarray, depth: int) -> list[list[SearchHit]]:
        """The ``depth`` documents closest to each query vector (rows of ``vectors``), best first, exact;
        the score is the cosine (the vectors are normalised), equal scores in the collection's row order."""
        vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        count = len(self.ids)
        depth = min(depth, count)
        if depth <= 0:
            return [[] for _ in vectors]
        hits = []
        for start in range(0, len(vectors), self.block):
            scores = vectors[start : start + self.block] @ self.matrix.T
            if depth < count:
                top = np.argpartition(-scores, depth - 1, axis=1)[:, :depth]
            else:
                top = np.broadcast_to(np.arange(count), scores.shape)
            picked = np.take_along_axis(scores, top, axis=1)
            order = np.lexsort((top, -picked), axis=1)
            rows, best = np.take_along_axis(top, order, axis=1), np.take_along_axis(picked, order, axis=1)
            for query_rows, query_scores in zip(rows.tolist(), best.tolist()):
                hits.append(
                    [
                        SearchHit(self.ids[row], score, {"semantic": rank})
                        for rank, (row, score) in enumerate(zip(query_rows, query_scores), start=1)
                    ]
                )
        return hits

    def keyword(self, query: str, depth: int) -> list[SearchHit]:
        """The query's full-text hits with their coverage, as ``pipeline.search`` gives them in keyword
        mode; fetched once per query and depth."""
        key = (query, depth)
        hits = self._keyword.get(key)
        if hits is None:
            found = self.store.keyword_search(self.collection, keyword_text(query), depth)
            hits = covered_hits(query_words(self.store, query, self.collection), found, self._text_terms)
            self._keyword[key] = hits
        return hits

    def with_similarity(self, hits: list[SearchHit], vector: np.ndarray) -> list[SearchHit]:
        """Keyword hits with their cosine to the query vector, for fusion (hits not among the vectors read
        are dropped)."""
        kept = [hit for hit in hits if hit.id in self.rows]
        if not kept:
            return []
        similarities = self.matrix[[self.rows[hit.id] for hit in kept]] @ np.asarray(vector, dtype=np.float32)
        return [
            SearchHit(hit.id, hit.score, hit.retrievers, similarity, hit.coverage)
            for hit, similarity in zip(kept, similarities.tolist())
        ]

    def _text_terms(self, text: str) -> set[str]:
        terms = self._terms.get(text)
        if terms is None:
            terms = self._terms[text] = self.store.terms(text, self.collection)
        return terms


def ranked_ids(hits: Sequence[Sequence[SearchHit]]) -> list[list[str]]:
    """Each query's hit ids, best first (what the relevance metrics read)."""
    return [[hit.id for hit in query] for query in hits]


def _blocks(items: Iterator[int], size: int) -> Iterator[list[int]]:
    while block := list(islice(items, size)):
        yield block
