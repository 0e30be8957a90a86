"""The vector store contract: one physical collection (table) per index, encoder and text version."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import numpy as np

from semantic_catalog.engine.documents import Document, SearchHit, StoredRecord
from semantic_catalog.engine.filters import FieldSpec, Filter
from semantic_catalog.engine.stores.analyzer import DEFAULT_ANALYZER, TextAnalyzer

# Runs the default hybrid_candidates' keyword search beside the rest; threads start on first use.
_retrievers = ThreadPoolExecutor(max_workers=8, thread_name_prefix="semantic-search")

# A query vector, or a callable making it (the query's encoding), so hybrid search can start its
# keyword search before the vector is ready.
VectorSource = np.ndarray | Callable[[], np.ndarray]
KeywordFinish = Callable[[list[SearchHit]], list[SearchHit]]  # applied to hybrid's keyword hits


def semantic_hits(ids: Sequence[str], similarities: Iterable[float]) -> list[SearchHit]:
    """Vector search results, best first, as hits scored by their cosine to the query."""
    return [
        SearchHit(key, float(similarity), {"semantic": rank})
        for rank, (key, similarity) in enumerate(zip(ids, similarities), start=1)
    ]


def keyword_hits(
    ids: Sequence[str], scores: Sequence[float], texts: Sequence[str | None], similarities: Any = None
) -> list[SearchHit]:
    """Full-text results, best first, as hits with their text (the search pipeline measures the query's
    coverage on it) and, when ``similarities`` are given, their cosine to the query (for fusion)."""
    return [
        SearchHit(
            key,
            float(score),
            {"keyword": rank},
            None if similarities is None else float(similarities[rank - 1]),
            text=text or "",
        )
        for rank, (key, score, text) in enumerate(zip(ids, scores, texts), start=1)
    ]


def resolve_vector(vector: VectorSource) -> np.ndarray:
    return vector() if callable(vector) else vector


class VectorStore(ABC):
    """Stores documents with their vectors and answers vector and keyword searches.

    Every search takes the same ``filters`` (already validated against the collection's fields) and
    ``exclude_ids``, and must apply them inside the store, before the limit, so a filtered query
    still returns ``limit`` hits whenever that many rows match.
    """

    def terms(self, text: str, name: str | None = None) -> set[str]:
        """The distinct terms the full-text index of collection ``name`` makes of ``text`` (to tell how
        much of a query a hit contains). The default mirrors LanceDB's full-text index with the
        collection's analyser (``set_analyzer``); a store that analyses text differently overrides it."""
        return self.analyzer(name).terms(text)

    def analyzer(self, name: str | None) -> TextAnalyzer:
        """The keyword analyser set for collection ``name`` (English until ``set_analyzer`` says otherwise)."""
        analyzers = getattr(self, "_analyzers", None)
        return analyzers.get(name, DEFAULT_ANALYZER) if analyzers and name else DEFAULT_ANALYZER

    def set_analyzer(self, name: str, analyzer: TextAnalyzer) -> bool:
        """Use ``analyzer`` for the keyword index of collection ``name``; a store whose index was built
        with other options rebuilds that index only (vectors and rows stay). Returns whether it rebuilt.
        Raises ``ConfigurationError`` (changing nothing) when the store refuses the options."""
        self.remember_analyzer(name, analyzer)
        return False

    def has_analyzer(self, name: str) -> bool:
        """Whether this process has set (or checked) the analyser of collection ``name``."""
        return name in getattr(self, "_analyzers", {})

    def remember_analyzer(self, name: str, analyzer: TextAnalyzer) -> None:
        """Record the analyser that collection ``name``'s keyword index uses, without touching it."""
        if not hasattr(self, "_analyzers"):
            self._analyzers: dict[str, TextAnalyzer] = {}
        self._analyzers[name] = analyzer

    @abstractmethod
    def create_collection(self, name: str, dimension: int, fields: Sequence[FieldSpec]) -> None:
        """Create an empty collection; a no-op when it already exists with the same dimension."""

    @abstractmethod
    def drop_collection(self, name: str) -> None:
        """Remove a collection and its data; a no-op when it does not exist."""

    @abstractmethod
    def has_collection(self, name: str) -> bool:
        """Whether the collection exists."""

    @abstractmethod
    def upsert(self, name: str, documents: Sequence[Document], vectors: np.ndarray) -> None:
        """Insert or replace documents by id, with one vector row per document."""

    @abstractmethod
    def delete(self, name: str, ids: Sequence[str]) -> None:
        """Remove these ids; unknown ids are ignored."""

    @abstractmethod
    def fetch(self, name: str, ids: Sequence[str], with_vectors: bool = False) -> dict[str, StoredRecord]:
        """Stored hashes (and vectors) of the given ids that exist."""

    @abstractmethod
    def content_hashes(self, name: str) -> dict[str, str]:
        """Every stored id with its content hash (used to reconcile a collection with SQL)."""

    @abstractmethod
    def count(self, name: str) -> int:
        """Number of stored documents."""

    @abstractmethod
    def vector_search(
        self,
        name: str,
        vector: np.ndarray,
        limit: int,
        filters: Sequence[Filter] = (),
        exclude_ids: Sequence[str] = (),
    ) -> list[SearchHit]:
        """Nearest documents by cosine similarity (the score), best first."""

    @abstractmethod
    def keyword_search(
        self,
        name: str,
        query: str,
        limit: int,
        filters: Sequence[Filter] = (),
        exclude_ids: Sequence[str] = (),
    ) -> list[SearchHit]:
        """Full-text matches by relevance (BM25-like score), best first, each with its row's ``text``."""

    def hybrid_candidates(
        self,
        name: str,
        vector: VectorSource,
        query: str,
        limit: int,
        filters: Sequence[Filter] = (),
        finish_keyword: KeywordFinish | None = None,
        version: str | None = None,
    ) -> tuple[list[SearchHit], list[SearchHit]]:
        """Both of hybrid search's lists: ``vector_search`` and ``keyword_search`` hits, the keyword
        hits also carrying their cosine ``similarity`` to the vector (for fusion). ``vector`` may be a
        callable that makes it: the keyword search does not wait for it. ``finish_keyword`` (the
        pipeline's coverage) is applied to the keyword hits where a store can do it while its vector
        search runs. ``version`` is the collection's ``version()`` as the caller read it just before (the
        search service keys its hit cache with it), which a store may use instead of checking again.
        This default runs the keyword search in a thread beside the rest and then fetches its hits'
        vectors; stores override it to do it in fewer round trips."""
        pending = _retrievers.submit(self.keyword_search, name, query, limit, filters)
        try:
            vector = resolve_vector(vector)
            semantic = self.vector_search(name, vector, limit, filters)
        except BaseException:
            pending.cancel()
            raise
        keyword = pending.result()
        records = self.fetch(name, [h.id for h in keyword], with_vectors=True)
        keyword = [
            replace(h, similarity=float(np.dot(records[h.id].vector, vector)))  # type: ignore[arg-type]
            for h in keyword
            if h.id in records
        ]
        return semantic, finish_keyword(keyword) if finish_keyword else keyword

    def all_vectors(self, name: str) -> tuple[list[str], np.ndarray]:
        """Every stored id and, row for row, its vector as one (n, dimension) float32 matrix: what an exact
        search of many queries at once needs (batch evaluation). It reads the whole collection into memory
        (1.5 GB for a million 384-dimensional vectors). This default reads it by id through ``fetch``;
        stores override it with one scan."""
        ids, vectors = [], []
        stored = list(self.content_hashes(name))
        for start in range(0, len(stored), 1000):
            records = self.fetch(name, stored[start : start + 1000], with_vectors=True)
            for key in stored[start : start + 1000]:
                if key in records:  # else deleted since content_hashes read it
                    ids.append(key)
                    vectors.append(records[key].vector)
        if not vectors:
            return [], np.zeros((0, 0), dtype=np.float32)
        return ids, np.stack(vectors).astype(np.float32, copy=False)

    def version(self, name: str) -> str | None:
        """A token that changes whenever the collection's data changes (lets callers cache search
        results safely); ``None`` when the store cannot tell, which disables such caching."""
        return None

    def optimize(self, name: str) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Compact storage and refresh indexes after many writes; optional."""
