"""Search, similar items and recommendations for a registered index, hydrated from SQL.

Results only ever contain rows of the index's queryset (an inactive row never leaks even if the
vector store has not caught up yet), in the engine's order, with the declared display fields.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
from django.db import models

from .backends import get_encoder, get_query_adapter, get_store
from .collections import forget_active_collections, require_searchable
from .conf import semantic_settings
from .engine import search as engine_search
from .engine.documents import SearchHit
from .engine.errors import InvalidQuery, NotIndexedYet, UnknownIds
from .engine.filters import Filter, build_filters
from .indexes import SemanticIndex

# Stale store rows (changed in SQL, not yet drained) are dropped at hydration; ask for a few more.
HYDRATION_MARGIN = 5
MAX_RECOMMEND_IDS = 50


class ObjectNotFound(UnknownIds):
    """The object asked about is not in the index's queryset."""


@dataclass(frozen=True)
class Result:
    """One hit: the model instance (``None`` when asked for ``objects=False``), its id, score,
    retriever ranks and display fields."""

    object: models.Model | None
    id: str
    score: float
    retrievers: dict[str, int] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)


# -- caches ---------------------------------------------------------------------------------------------


class LRUCache:
    """A thread-safe, per-process LRU map holding at most QUERY_CACHE_SIZE entries (0 = off)."""

    def __init__(self) -> None:
        self._data: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._data[key] = value
            while len(self._data) > max(0, semantic_settings.QUERY_CACHE_SIZE):
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


# Query embeddings by (model, text); search hits by the collection's data version, so any write to
# the collection (a drain, an import) makes every older entry unreachable.
_vectors = LRUCache()
_hits = LRUCache()


def clear_query_cache() -> None:
    """Forget query vectors, search hits and which collections are active (in this process)."""
    _vectors.clear()
    _hits.clear()
    forget_active_collections()


def query_vector(text: str, model: str | None = None) -> np.ndarray:
    """Embed a query once per model (through QUERY_ADAPTER when set); repeats come from the LRU cache."""
    encoder = get_encoder(model)
    key = (encoder.name, text)
    vector = _vectors.get(key)
    if vector is None:
        vector = encoder.encode_query(text)
        adapter = get_query_adapter(encoder.name)
        if adapter is not None:
            vector = adapter.apply(vector)
        vector.setflags(write=False)
        _vectors.put(key, vector)
    return vector


# -- validation -------------------------------------------------------------------------------------


def check_limit(limit: Any) -> int:
    maximum = semantic_settings.MAX_LIMIT
    if limit is None or limit == "":
        return semantic_settings.DEFAULT_LIMIT
    try:
        value = int(limit)
    except (TypeError, ValueError):
        raise InvalidQuery(f"limit must be a whole number between 1 and {maximum}, got {limit!r}.") from None
    if not 1 <= value <= maximum:
        raise InvalidQuery(f"limit must be between 1 and {maximum}, got {value}.")
    return value


def check_query(query: Any) -> str:
    text = " ".join(str(query or "").split())
    if not text:
        raise InvalidQuery("The query is empty: pass some text to search for in 'q'.")
    maximum = semantic_settings.MAX_QUERY_LENGTH
    if len(text) > maximum:
        raise InvalidQuery(f"The query is {len(text)} characters long; at most {maximum} are allowed.")
    return text


def _filters(index: SemanticIndex, filters: Mapping[str, Any] | Iterable[tuple[str, Any]] | None) -> list[Filter]:
    return build_filters(index.field_specs, filters or {})


# -- hydration ---------------------------------------------------------------------------------------


def hydrate(index: SemanticIndex, hits: Sequence[SearchHit], limit: int, objects: bool = True) -> list[Result]:
    """Load hit rows from the index's queryset in hit order; rows outside it are dropped. With
    ``objects=False`` only the display fields are read (what the HTTP API returns)."""
    if not hits:
        return []
    ids = [hit.id for hit in hits]
    displayed = None if objects else index.display_by_id(ids)
    if displayed is None:
        rows, _ = index.rows_by_id(ids)
        displayed = {key: index.display(obj) for key, obj in rows.items()}
    else:
        rows = {}
    results = []
    for hit in hits:
        fields = displayed.get(hit.id)
        if fields is not None:
            results.append(Result(rows.get(hit.id), hit.id, hit.score, dict(hit.retrievers), fields))
            if len(results) == limit:
                break
    return results


# -- the three operations -----------------------------------------------------------------------------


def search(
    index: SemanticIndex,
    query: str,
    mode: str = "hybrid",
    filters: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None,
    limit: int | None = None,
    objects: bool = True,
) -> list[Result]:
    """Semantic, keyword or hybrid search with the filters pushed into the store."""
    text = check_query(query)
    checked_mode = engine_search.check_mode(mode)
    size = check_limit(limit)
    conditions = _filters(index, filters)
    collection = require_searchable(index)
    store = get_store()
    version = store.version(collection.table)
    key = (collection.table, version, text, checked_mode, tuple(conditions), size)
    hits = _hits.get(key) if version is not None else None
    if hits is None:
        encode = None if checked_mode == "keyword" else partial(query_vector, text, collection.encoder)
        hits = engine_search.search(
            store,
            collection.table,
            encode,  # hybrid runs its keyword search while the query is encoded
            text,
            checked_mode,
            size + HYDRATION_MARGIN,
            conditions,
            candidates=semantic_settings.HYBRID_CANDIDATES,
            rrf_k=semantic_settings.RRF_K,
            fusion=semantic_settings.HYBRID_FUSION,
            keyword_weight=semantic_settings.HYBRID_KEYWORD_WEIGHT,
        )
        if version is not None:
            _hits.put(key, hits)
    return hydrate(index, hits, size, objects)


def existing_ids(index: SemanticIndex, ids: Sequence[Any], what: str, error: type[UnknownIds]) -> list[str]:
    keys = [str(i) for i in ids]
    pks, invalid = index.parse_ids(keys)
    if invalid:
        raise error(f"{what}: {keys} are not valid ids of {index.name!r}.", keys)
    found = {str(pk) for pk in index.get_queryset().filter(pk__in=list(pks.values())).values_list("pk", flat=True)}
    missing = [k for k in keys if k not in found]
    if missing:
        raise error(f"{what}: unknown ids (not in index {index.name!r}): {', '.join(missing)}.", missing)
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
    index: SemanticIndex,
    pk: Any,
    filters: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None,
    limit: int | None = None,
    objects: bool = True,
) -> list[Result]:
    """Items nearest to one item, never the item itself."""
    size = check_limit(limit)
    conditions = _filters(index, filters)
    (key,) = existing_ids(index, [pk], "similar", ObjectNotFound)
    collection = require_searchable(index)
    (vector,) = _stored_vectors(index, collection.table, [key])
    hits = get_store().vector_search(collection.table, vector, size + HYDRATION_MARGIN, conditions, exclude_ids=[key])
    return hydrate(index, hits, size, objects)


def recommend(
    index: SemanticIndex,
    positive: Sequence[Any],
    negative: Sequence[Any] = (),
    filters: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None,
    limit: int | None = None,
    objects: bool = True,
) -> list[Result]:
    """More like ``positive``, less like ``negative``; none of the given ids is returned."""
    size = check_limit(limit)
    if not positive:
        raise InvalidQuery("'positive' must list at least one id.")
    if len(positive) + len(negative) > MAX_RECOMMEND_IDS:
        raise InvalidQuery(f"At most {MAX_RECOMMEND_IDS} positive and negative ids together.")
    conditions = _filters(index, filters)
    pos = existing_ids(index, positive, "positive", UnknownIds)
    neg = existing_ids(index, negative, "negative", UnknownIds) if negative else []
    collection = require_searchable(index)
    vector = engine_search.recommendation_vector(
        _stored_vectors(index, collection.table, pos), _stored_vectors(index, collection.table, neg)
    )
    exclude = list(dict.fromkeys(pos + neg))
    hits = get_store().vector_search(collection.table, vector, size + HYDRATION_MARGIN, conditions, exclude)
    return hydrate(index, hits, size, objects)
