"""Search, similar items and recommendations for a registered index, hydrated from SQL.

Results only ever contain rows of the index's queryset (an inactive row never leaks even if the
vector store has not caught up yet), in the engine's order (or a search's ``sort`` within its
relevance window), with the declared display fields.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import numpy as np
from django.db import models

from semantic_catalog.backends import get_encoder, get_query_adapter, get_store
from semantic_catalog.collections import forget_active_collections, require_searchable
from semantic_catalog.conf import semantic_settings
from semantic_catalog.engine.documents import SearchHit
from semantic_catalog.engine.errors import InvalidQuery, NotIndexedYet, UnknownIds
from semantic_catalog.engine.filters import Filter, build_filters
from semantic_catalog.engine.search import pipeline
from semantic_catalog.engine.search.pipeline import QueryLimits, QueryOptions, check_mode, match_strength
from semantic_catalog.engine.search.vectors import LRUCache, QueryVectors
from semantic_catalog.indexes import SemanticIndex
from semantic_catalog.registry import registry
from semantic_catalog.search.window import (
    RELEVANCE,
    SearchResults,
    check_offset,
    check_sort,
    count_facets,
    facet_requests,
    sorted_by,
    window_rows,
)

# Stale store rows (changed in SQL, not yet drained) are dropped at hydration; ask for a few more.
HYDRATION_MARGIN = 5
MAX_RECOMMEND_IDS = 50


class ObjectNotFound(UnknownIds):
    """The object asked about is not in the index's queryset."""


@dataclass(frozen=True)
class Result:
    """One hit: the model instance (``None`` when asked for ``objects=False``), its id, score,
    retriever ranks, display fields, and for searches how well it matches the query: ``match`` is
    "strong" or "weak" (see STRONG_MATCH_SIMILARITY), None where it does not apply. ``rank`` is its
    1-based place in the whole ranking (a page at offset 20 starts at 21); ranks, retriever ranks
    included, count only rows of the queryset, so a row dropped at hydration leaves no gap. ``reasons``
    (matches only) gives the points each matching signal added or took away."""

    object: models.Model | None
    id: str
    score: float
    retrievers: dict[str, int] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)
    match: str | None = None
    rank: int = 0
    reasons: dict[str, float] | None = None


# -- query vectors, cached hits, limits -------------------------------------------------------------

# Query vectors per model (engine QueryVectors: encoder + QUERY_ADAPTER + LRU cache), and search hits
# by the collection's data version, so any write to the collection (a drain, an import) makes every
# older entry unreachable. Both are dropped when SEMANTIC_CATALOG changes (apps.reset_caches).
_query_vectors: dict[str, QueryVectors] = {}
_hits: LRUCache | None = None
_lock = threading.Lock()


def clear_query_cache() -> None:
    """Forget query vectors, search hits and which collections are active (in this process)."""
    global _hits
    with _lock:
        _query_vectors.clear()
        _hits = None
    forget_active_collections()


def query_vectors(model: str | None = None) -> QueryVectors:
    """The query vectors of ``model`` (the configured ENCODER when None)."""
    encoder = get_encoder(model)
    vectors = _query_vectors.get(encoder.name)
    if vectors is None or vectors.encoder is not encoder:
        with _lock:
            vectors = QueryVectors(encoder, get_query_adapter(encoder.name), semantic_settings.QUERY_CACHE_SIZE)
            _query_vectors[encoder.name] = vectors
    return vectors


def query_vector(text: str, model: str | None = None) -> np.ndarray:
    """Embed a query once per model (through QUERY_ADAPTER when set); repeats come from the LRU cache."""
    return query_vectors(model).vector(text)


def _hit_cache() -> LRUCache:
    global _hits
    cache = _hits
    if cache is None:
        with _lock:
            cache = _hits = _hits or LRUCache(semantic_settings.QUERY_CACHE_SIZE)
    return cache


def query_limits() -> QueryLimits:
    """DEFAULT_LIMIT, MAX_LIMIT and MAX_QUERY_LENGTH as the engine checks them."""
    s = semantic_settings
    return QueryLimits(s.DEFAULT_LIMIT, s.MAX_LIMIT, s.MAX_QUERY_LENGTH)


def query_options(mode: str, limit: int) -> QueryOptions:
    """The HYBRID_* and RRF_K settings for one search."""
    s = semantic_settings
    return QueryOptions(check_mode(mode), limit, s.HYBRID_CANDIDATES, s.HYBRID_FUSION, s.HYBRID_KEYWORD_WEIGHT, s.RRF_K)


def _filters(index: SemanticIndex, filters: Mapping[str, Any] | Iterable[tuple[str, Any]] | None) -> list[Filter]:
    return build_filters(index.field_specs, filters or {})


# -- hydration ---------------------------------------------------------------------------------------


def renumbered(hits: Sequence[SearchHit], kept: Container[str]) -> list[SearchHit]:
    """The hits whose ids are in ``kept`` (rows of the queryset), with each retriever's rank lowered by
    the dropped hits ranked above them in that retriever: ranks among the rows that can be shown."""
    dropped: dict[str, list[int]] = {}
    for hit in hits:
        if hit.id not in kept:
            for name, rank in hit.retrievers.items():
                dropped.setdefault(name, []).append(rank)
    if not dropped:
        return [hit for hit in hits if hit.id in kept]
    for ranks in dropped.values():
        ranks.sort()
    return [
        replace(
            hit,
            retrievers={name: rank - bisect_left(dropped.get(name, ()), rank) for name, rank in hit.retrievers.items()},
        )
        for hit in hits
        if hit.id in kept
    ]


def hydrate(
    index: SemanticIndex, hits: Sequence[SearchHit], limit: int, objects: bool = True, first: int = 1
) -> list[Result]:
    """Load hit rows from the index's queryset in hit order; rows outside it are dropped and the rest
    renumbered (``renumbered``; ``rank`` counts from ``first``). With ``objects=False`` only the display
    fields are read (what the HTTP API returns)."""
    if not hits:
        return []
    ids = [hit.id for hit in hits]
    displayed = None if objects else index.display_by_id(ids)
    if displayed is None:
        rows, _ = index.rows_by_id(ids)
        displayed = {key: index.display(obj) for key, obj in rows.items()}
    else:
        rows = {}
    results: list[Result] = []
    for hit in renumbered(hits, displayed):
        match = match_strength(hit, semantic_settings.STRONG_MATCH_SIMILARITY)
        fields = displayed[hit.id]
        results.append(
            Result(rows.get(hit.id), hit.id, hit.score, dict(hit.retrievers), fields, match, first + len(results))
        )
        if len(results) == limit:
            break
    return results


# -- the three operations -----------------------------------------------------------------------------


def _index(index: SemanticIndex | str) -> SemanticIndex:
    return registry.get(index) if isinstance(index, str) else index


def search(
    index: SemanticIndex | str,
    query: str,
    mode: str = "hybrid",
    filters: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None,
    limit: int | None = None,
    objects: bool = True,
    offset: int | str | None = 0,
    sort: str | None = RELEVANCE,
    facets: str | Iterable[str] | Mapping[str, Sequence[float] | None] | None = None,
) -> SearchResults:
    """Semantic, keyword or hybrid search with the filters pushed into the store (``index``: an index or its name).

    ``offset`` and ``limit`` pick a page of the ranking (``offset + limit`` at most MAX_RESULT_WINDOW).
    ``sort`` is "relevance" or a numeric filter field ("price", "-price" for high to low): it re-orders
    the relevance window, the best MAX_RESULT_WINDOW hits that are rows of the queryset. ``facets``
    (see ``facet_requests``) counts values over that window. Either one reads the whole window;
    a search in relevance order without facets reads only as many hits as its page needs."""
    index = _index(index)
    limits = query_limits()
    text = limits.check_query(query)
    size = limits.check_limit(limit)
    window = semantic_settings.MAX_RESULT_WINDOW
    start = check_offset(offset, size, window)
    check_mode(mode)
    order = check_sort(index, sort)
    wanted = facet_requests(index, facets)
    conditions = _filters(index, filters)
    collection = require_searchable(index)
    store = get_store()
    version = store.version(collection.table)
    cache = _hit_cache()

    def ranked(count: int) -> list[SearchHit]:
        """The store's best ``count`` hits (cached per collection version)."""
        options = query_options(mode, count)
        key = (collection.table, version, text, options, tuple(conditions))
        hits = cache.get(key) if version is not None else None
        if hits is None:
            encode = None if options.mode == "keyword" else partial(query_vector, text, collection.model)
            # hybrid runs its keyword search while the query is encoded
            hits = pipeline.search(store, collection.table, text, encode, options, conditions, version)
            if version is not None:
                cache.put(key, hits)
        return hits

    deepest = window + HYDRATION_MARGIN  # stale rows (left the queryset, not yet drained) are dropped
    if order is None and not wanted:
        # Relevance order: only as many hits as this page and one more (to tell whether a next page
        # exists), more when stale rows were dropped among them.
        need = min(start + size + 1, window)
        count = need + HYDRATION_MARGIN
        while True:
            hits = ranked(count)
            if start:
                rows = window_rows(index, [hit.id for hit in hits], ())
                found = renumbered(hits, rows)[:window]
                results = None
            else:
                results = hydrate(index, hits, need, objects)
                found = results
            if len(found) >= need or len(hits) < count or count >= deepest:
                break
            count = min(deepest, 2 * count)
        if results is None:
            page = hydrate(index, found[start : start + size], size, objects, first=start + 1)
            return SearchResults(page, start, len(found) > start + size)
        return SearchResults(results[:size], start, len(results) > size)

    names = list(dict.fromkeys([*([order[0]] if order else []), *wanted]))
    hits = ranked(deepest)
    rows = window_rows(index, [hit.id for hit in hits], names)
    found = renumbered(hits, rows)[:window]
    if order is not None:
        found = sorted_by(found, rows, *order)
    page = hydrate(index, found[start : start + size], size, objects, first=start + 1)
    facet_counts = count_facets(wanted, (rows[hit.id] for hit in found))
    return SearchResults(page, start, len(found) > start + size, facet_counts)


def plain_ids(ids: Sequence[str], shown: int = 10) -> str:
    """Ids for a message, as a reader writes them: ``5, abc and 3 more`` (quoted only when empty, long
    or holding spaces or commas, so the reader can tell where one ends)."""

    def one(key: str) -> str:
        if not key or len(key) > 40 or any(c.isspace() or c == "," for c in key) or not key.isprintable():
            return repr(key[:40] + ("..." if len(key) > 40 else ""))
        return key

    names = [one(k) for k in ids[:shown]]
    if len(ids) > shown:
        return f"{', '.join(names)} and {len(ids) - shown} more"
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def existing_ids(index: SemanticIndex, ids: Sequence[Any], what: str, error: type[UnknownIds]) -> list[str]:
    """``ids`` as strings when every one is a row of the index's queryset; else ``error`` naming the
    ones that are no valid id, or else those that are not in the index."""
    keys = [str(i) for i in ids]
    pks, invalid = index.parse_ids(keys)
    if invalid:
        bad = list(invalid)
        verb = "is not a valid id" if len(bad) == 1 else "are not valid ids"
        raise error(f"{what}: {plain_ids(bad)} {verb} of {index.name!r}.", bad)
    found = {str(pk) for pk in index.get_queryset().filter(pk__in=list(pks.values())).values_list("pk", flat=True)}
    missing = list(dict.fromkeys(k for k in keys if k not in found))
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        raise error(f"{what}: {plain_ids(missing)} {verb} not in index {index.name!r}.", missing)
    return keys


def _stored_vectors(index: SemanticIndex, table: str, ids: list[str]) -> list[np.ndarray]:
    records = get_store().fetch(table, ids, with_vectors=True)
    missing = [i for i in ids if i not in records]
    if missing:
        raise NotIndexedYet(
            f"Ids {', '.join(missing)} of {index.name!r} are not indexed yet; "
            "they will be after the outbox drains (or run `manage.py semantic_sync`)."
        )
    return [records[i].vector for i in ids]  # type: ignore[misc]


def similar(
    index: SemanticIndex | str,
    pk: Any,
    filters: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None,
    limit: int | None = None,
    objects: bool = True,
) -> list[Result]:
    """Items nearest to one item, never the item itself."""
    index = _index(index)
    size = query_limits().check_limit(limit)
    conditions = _filters(index, filters)
    (key,) = existing_ids(index, [pk], "similar", ObjectNotFound)
    collection = require_searchable(index)
    (vector,) = _stored_vectors(index, collection.table, [key])
    hits = get_store().vector_search(collection.table, vector, size + HYDRATION_MARGIN, conditions, exclude_ids=[key])
    return hydrate(index, hits, size, objects)


def recommend(
    index: SemanticIndex | str,
    positive: Sequence[Any],
    negative: Sequence[Any] = (),
    filters: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None,
    limit: int | None = None,
    objects: bool = True,
) -> list[Result]:
    """More like ``positive``, less like ``negative``; none of the given ids is returned."""
    index = _index(index)
    size = query_limits().check_limit(limit)
    if not positive:
        raise InvalidQuery("'positive' must list at least one id.")
    if len(positive) + len(negative) > MAX_RECOMMEND_IDS:
        raise InvalidQuery(f"At most {MAX_RECOMMEND_IDS} positive and negative ids together.")
    conditions = _filters(index, filters)
    pos = existing_ids(index, positive, "positive", UnknownIds)
    neg = existing_ids(index, negative, "negative", UnknownIds) if negative else []
    collection = require_searchable(index)
    vector = pipeline.recommendation_vector(
        _stored_vectors(index, collection.table, pos), _stored_vectors(index, collection.table, neg)
    )
    exclude = list(dict.fromkeys(pos + neg))
    hits = get_store().vector_search(collection.table, vector, size + HYDRATION_MARGIN, conditions, exclude)
    return hydrate(index, hits, size, objects)
