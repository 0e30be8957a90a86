"""The one query pipeline: check a query, then semantic, keyword or hybrid retrieval over one
collection with the filters pushed into the store, fused into one ranking.

The Django query service and the benchmarks run searches through ``search()`` with a ``QueryOptions``;
its defaults are the library's. Evaluation (``evaluate``, ``adapt``, ``semantic_evaluate``) runs all its
queries at once through ``batch.BatchSearch``, which ranks with this module's helpers (``covered_hits``,
``fuse``) to give the same rankings.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from semantic_catalog.engine.documents import SearchHit
from semantic_catalog.engine.encoders.base import normalise
from semantic_catalog.engine.errors import InvalidQuery
from semantic_catalog.engine.filters import Filter
from semantic_catalog.engine.search.fusion import (
    DEFAULT_KEYWORD_WEIGHT,
    DEFAULT_RRF_K,
    FUSIONS,
    convex_fusion,
    reciprocal_rank_fusion,
)
from semantic_catalog.engine.stores.base import VectorSource, VectorStore, resolve_vector

Mode = Literal["semantic", "keyword", "hybrid"]
MODES: tuple[str, ...] = ("semantic", "keyword", "hybrid")


def check_mode(mode: str) -> Mode:
    if mode not in MODES:
        raise InvalidQuery(f"Unknown mode {mode!r}; use one of: {', '.join(MODES)}.")
    return mode  # type: ignore[return-value]


@dataclass(frozen=True)
class QueryOptions:
    """How one search runs. ``candidates``: hits each retriever contributes to hybrid fusion;
    ``fusion``: "convex" (weighted scores, each divided by its list's best) or "rrf" (ranks);
    ``keyword_weight``: the keyword share in convex fusion; ``rrf_k``: the RRF constant."""

    mode: Mode = "hybrid"
    limit: int = 10
    candidates: int = 100
    fusion: str = "convex"
    keyword_weight: float = DEFAULT_KEYWORD_WEIGHT
    rrf_k: int = DEFAULT_RRF_K

    def __post_init__(self) -> None:
        check_mode(self.mode)
        if self.fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {self.fusion!r}")


@dataclass(frozen=True)
class QueryLimits:
    """What a caller may ask for: the default and largest ``limit`` and the longest query."""

    default_limit: int = 10
    max_limit: int = 100
    max_query_length: int = 500

    def check_query(self, query: Any) -> str:
        """The query with its whitespace collapsed; empty or too long is an ``InvalidQuery``.

        The limit applies to the collapsed text (what is searched); the message gives the length the
        caller sent, and the collapsed length too when whitespace made them differ."""
        sent = str(query or "")
        text = " ".join(sent.split())
        if not text:
            raise InvalidQuery("The query is empty: pass some text to search for in 'q'.")
        if len(text) > self.max_query_length:
            measured = "" if len(text) == len(sent) else f" ({len(text)} with runs of whitespace collapsed)"
            raise InvalidQuery(
                f"The query is {len(sent)} characters long{measured}; at most {self.max_query_length} are allowed."
            )
        return text

    def check_limit(self, limit: Any) -> int:
        """``limit`` as a whole number from 1 to ``max_limit``; None or "" means ``default_limit``."""
        maximum = self.max_limit
        if limit is None or limit == "":
            return self.default_limit
        try:
            value = int(limit)
        except (TypeError, ValueError):
            raise InvalidQuery(f"limit must be a whole number between 1 and {maximum}, got {limit!r}.") from None
        if not 1 <= value <= maximum:
            raise InvalidQuery(f"limit must be between 1 and {maximum}, got {value}.")
        return value


# A number glued to letters: "12x12", "10ft", "1/2in", "x7ft" (catalog titles write "12 in. x 12 in.").
_GLUED = re.compile(r"(?<=\d)(?=[^\W\d_])|(?<=[^\W\d_])(?=\d)")


def keyword_text(query: str) -> str:
    """The text full-text search gets: each word with a number glued to letters is kept and followed by
    its parts ("12x12 tile" -> "12x12 12 x 12 tile"), so it finds titles that space the sizes out and
    still those that write them glued (Home Depot dev queries: keyword nDCG@10 +0.004)."""
    words = []
    for word in query.split():
        parts = _GLUED.sub(" ", word)
        words.append(word if parts == word else f"{word} {parts}")
    return " ".join(words)


def query_words(store: VectorStore, query: str, collection: str | None = None) -> list[list[set[str]]]:
    """Each word of the query as the index's terms, with its parts as an alternative for a word with a
    number glued to letters ("12x12" is covered by "12x12" or by "12 ... x ... 12"); stop words drop out."""
    words = []
    for word in query.split():
        whole = store.terms(word, collection)
        if whole:
            parts = store.terms(_GLUED.sub(" ", word), collection)
            words.append([whole] if parts == whole else [whole, parts])
    return words


def with_coverage(
    store: VectorStore, query: str, hits: list[SearchHit], collection: str | None = None
) -> list[SearchHit]:
    """Keyword hits with ``coverage``: the share of the query's words their text contains (as the
    collection's keyword analyser sees them)."""
    return covered_hits(query_words(store, query, collection), hits, lambda text: store.terms(text, collection))


def covered_hits(
    words: list[list[set[str]]], hits: list[SearchHit], terms: Callable[[str], set[str]]
) -> list[SearchHit]:
    """``with_coverage`` for a query whose ``query_words`` are known, ``terms`` analysing a hit's text
    (batch evaluation shares both between modes and queries)."""
    covered = []
    for hit in hits:
        if hit.text is None:
            covered.append(hit)
            continue
        found = terms(hit.text)
        share = sum(any(choice <= found for choice in word) for word in words) / len(words) if words else 1.0
        # built directly: dataclasses.replace costs more than the rest of this loop
        covered.append(SearchHit(hit.id, hit.score, hit.retrievers, hit.similarity, share))
    return covered


def search(
    store: VectorStore,
    collection: str,
    query: str,
    vector: VectorSource | None,
    options: QueryOptions = QueryOptions(),  # noqa: B008 - frozen, so one shared default is safe
    filters: Sequence[Filter] = (),
    version: str | None = None,
) -> list[SearchHit]:
    """Run one search; ``vector`` is needed for semantic and hybrid modes. It may be a callable that
    encodes the query: hybrid search then runs its keyword search while the query is encoded.
    ``version``: the collection's ``store.version`` when the caller has just read it (see
    ``VectorStore.hybrid_candidates``).

    Hybrid asks each retriever for ``max(limit, candidates)`` hits with the same filters pushed
    down, then fuses them.
    """
    mode, limit = options.mode, options.limit
    if mode == "keyword":
        return with_coverage(
            store, query, store.keyword_search(collection, keyword_text(query), limit, filters), collection
        )
    if vector is None:
        raise ValueError("semantic and hybrid search need a query vector")
    if mode == "semantic":
        hits = store.vector_search(collection, resolve_vector(vector), limit, filters)
        return [SearchHit(hit.id, hit.score, hit.retrievers, hit.score) for hit in hits]
    semantic, keyword = store.hybrid_candidates(
        collection,
        vector,
        keyword_text(query),
        hybrid_depth(options),
        filters,
        lambda hits: with_coverage(store, query, hits, collection),  # while the vector search runs
        version,
    )
    return fuse(semantic, keyword, options)


def hybrid_depth(options: QueryOptions) -> int:
    """How many hits each retriever gives hybrid fusion: ``max(limit, candidates)``."""
    return max(options.limit, options.candidates)


def fuse(semantic: list[SearchHit], keyword: list[SearchHit], options: QueryOptions) -> list[SearchHit]:
    """Hybrid's ranking of the two candidate lists: the vector search's hits (cosine as score) and the
    keyword hits with their ``similarity`` and ``coverage``; each hit carries both signals after."""
    limit = options.limit
    similarity = {hit.id: hit.similarity for hit in keyword} | {hit.id: hit.score for hit in semantic}
    if options.fusion == "rrf":
        fused = reciprocal_rank_fusion({"semantic": semantic, "keyword": keyword}, limit, k=options.rrf_k)
    else:
        fused = convex_fusion(keyword, semantic, similarity, limit, options.keyword_weight)  # type: ignore[arg-type]
    covered = {hit.id: hit.coverage for hit in keyword}
    return [SearchHit(h.id, h.score, h.retrievers, similarity.get(h.id), covered.get(h.id)) for h in fused]


def match_strength(hit: SearchHit, strong_similarity: float | None) -> str | None:
    """ "strong" when the hit is as close to the query as ``strong_similarity`` (cosine) or contains every
    word of it, else "weak"; None when that cannot be told (no threshold, or neither signal is known).

    The default threshold (0.45 for the bundled model) comes from benchmarks/match_calibration.py: on
    the Home Depot dev queries it keeps a strong first hit for most queries and none for most nonsense.
    """
    if strong_similarity is None or (hit.similarity is None and hit.coverage is None):
        return None
    close = hit.similarity is not None and hit.similarity >= strong_similarity
    return "strong" if close or hit.coverage == 1.0 else "weak"


def recommendation_vector(
    positives: Sequence[np.ndarray], negatives: Sequence[np.ndarray] = (), negative_weight: float = 0.5
) -> np.ndarray:
    """Rocchio-style query: mean of the liked vectors minus a share of the mean of the disliked ones."""
    if not positives:
        raise InvalidQuery("Give at least one positive id.")
    vector = np.mean(np.asarray(positives, dtype=np.float32), axis=0)
    if negatives:
        vector = vector - negative_weight * np.mean(np.asarray(negatives, dtype=np.float32), axis=0)
    return normalise(vector[None, :])[0]
