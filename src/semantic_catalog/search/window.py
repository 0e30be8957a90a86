"""The relevance window of a search: the best MAX_RESULT_WINDOW hits that are rows of the index's
queryset. Pages are cut from it (``offset``), a ``sort`` by a numeric filter field re-orders it, and
``facets`` count its values; reading it takes one store search and chunked SQL, never a table scan."""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from semantic_catalog.engine.documents import SearchHit
from semantic_catalog.engine.errors import InvalidQuery
from semantic_catalog.engine.indexer import chunked
from semantic_catalog.indexes import SemanticIndex, jsonable

RELEVANCE = "relevance"
MAX_FACET_EDGES = 50
SQL_CHUNK = 500  # ids per IN (...) when reading a window's rows


class SearchResults(list):
    """One page of search results: a list of ``Result``, with ``offset`` (of its first result in the
    whole ranking), ``has_next`` (the window holds results after this page) and ``facets`` (counts
    per asked field over the relevance window; empty when none were asked for)."""

    def __init__(
        self, results: Iterable[Any] = (), offset: int = 0, has_next: bool = False, facets: dict | None = None
    ) -> None:
        super().__init__(results)
        self.offset = offset
        self.has_next = has_next
        self.facets = facets or {}


def _shown(value: Any, width: int = 40) -> str:
    """A caller's value for a message, cut to ``width`` characters."""
    text = str(value)
    return text if len(text) <= width else text[:width] + "..."


def check_offset(offset: Any, limit: int, window: int) -> int:
    """``offset`` as a whole number from 0 with ``offset + limit`` at most ``window``
    (MAX_RESULT_WINDOW); None or "" means 0."""
    if offset is None or offset == "":
        return 0
    try:
        if isinstance(offset, bool) or not isinstance(offset, (int, str)):
            raise ValueError
        value = int(offset)  # a string of digits; past 4300 of them int() refuses it too
    except ValueError:
        shown = _shown(offset)
        raise InvalidQuery(f"offset must be a whole number from 0 to {window - limit}, got {shown!r}.") from None
    if value < 0:
        raise InvalidQuery(f"offset must be 0 or more, got {_shown(value)}.")
    if value + limit > window:
        raise InvalidQuery(
            f"offset + limit must be at most {window} (MAX_RESULT_WINDOW), got {_shown(value)} + {limit}: "
            f"results past the first {window} are not served; narrow the search with filters."
        )
    return value


def sortable_fields(index: SemanticIndex) -> list[str]:
    """The fields a search can sort by: the declared filter fields holding one number."""
    return sorted(spec.name for spec in index.field_specs if spec.type in ("int", "float") and not spec.many)


def check_sort(index: SemanticIndex, sort: Any) -> tuple[str, bool] | None:
    """``sort`` as (field, descending), or None for relevance order ("relevance", None or "")."""
    if sort is None or sort in ("", RELEVANCE):
        return None
    text = str(sort)
    name = text[1:] if text.startswith("-") else text
    fields = sortable_fields(index)
    if name not in fields:
        allowed = ", ".join([RELEVANCE, *(f"{f}, -{f}" for f in fields)])
        raise InvalidQuery(
            f"Cannot sort by {_shown(text)!r}. Sort by one of: {allowed} (a numeric filter field, low to high; "
            "'-' before it for high to low)."
        )
    return name, text.startswith("-")


def facet_requests(
    index: SemanticIndex, facets: str | Iterable[str] | Mapping[str, Sequence[float] | None] | None
) -> dict[str, tuple[float, ...] | None]:
    """The facets asked for, by field: None counts each value, a tuple of edges counts price-like bands.

    ``facets``: a string of comma-separated declared filter fields, where a single numeric field may
    carry band edges after colons (``"store,category,price:25:50:100"``), a list of such strings, or
    a mapping of field to edges (None: count each value)."""
    if not facets:
        return {}
    if isinstance(facets, Mapping):
        items = [(str(name), None if edges is None else list(edges)) for name, edges in facets.items()]
    else:
        items = []
        for text in [facets] if isinstance(facets, str) else facets:
            for part in str(text).split(","):
                name, colon, edges = part.strip().partition(":")
                if name or colon:
                    items.append((name, edges.split(":") if colon else None))
    specs = {spec.name: spec for spec in index.field_specs}
    wanted: dict[str, tuple[float, ...] | None] = {}
    for name, edges in items:
        spec = specs.get(name)
        if spec is None:
            allowed = ", ".join(sorted(specs)) or "(none: this index declares no filter fields)"
            raise InvalidQuery(f"Cannot count facets of {_shown(name)!r}. Facet fields (the filter fields): {allowed}.")
        if edges is None:
            wanted[name] = None
            continue
        if spec.type not in ("int", "float") or spec.many:
            raise InvalidQuery(f"Facet {name!r} has band edges, but {name!r} is not a single numeric field.")
        numbers = []
        for edge in edges:
            try:
                number = float(edge)
            except (TypeError, ValueError):
                number = float("nan")
            if number != number or number in (float("inf"), float("-inf")):
                raise InvalidQuery(f"Facet {name!r}: band edges must be numbers, got {_shown(edge)!r}.")
            numbers.append(number)
        if not 1 <= len(numbers) <= MAX_FACET_EDGES:
            raise InvalidQuery(f"Facet {name!r}: give 1 to {MAX_FACET_EDGES} band edges, got {len(numbers)}.")
        if any(b <= a for a, b in zip(numbers, numbers[1:])):
            raise InvalidQuery(f"Facet {name!r}: band edges must increase, got {', '.join(map(_shown, edges))}.")
        wanted[name] = tuple(numbers)
    return wanted


def count_facets(wanted: Mapping[str, tuple[float, ...] | None], rows: Iterable[Mapping[str, Any]]) -> dict:
    """Facet counts over ``rows`` (their filter field values): per field, ``[{"value", "count"}]`` most
    frequent first (a row counts once for each value of a many-valued field), or for bands
    ``[{"from", "to", "count"}]`` in order, ``from`` included and ``to`` excluded (None: open)."""
    rows = list(rows)
    facets: dict[str, list[dict[str, Any]]] = {}
    for name, edges in wanted.items():
        values = [row.get(name) for row in rows]
        if edges is None:
            counts = Counter(v for value in values for v in (value if isinstance(value, list) else [value]))
            counts.pop(None, None)
            order = sorted(counts.items(), key=lambda vc: (-vc[1], isinstance(vc[0], str), vc[0]))
            facets[name] = [{"value": value, "count": count} for value, count in order]
        else:
            bands = [0] * (len(edges) + 1)
            for value in values:
                if value is not None:
                    bands[bisect_right(edges, value)] += 1
            bounds = [None, *edges, None]
            facets[name] = [{"from": bounds[i], "to": bounds[i + 1], "count": n} for i, n in enumerate(bands)]
    return facets


def window_rows(index: SemanticIndex, ids: Sequence[str], names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The rows of the index's queryset among ``ids`` (by id string) with the values of the filter fields
    ``names``: read as plain columns, or from the instances when one of them is computed by a getter."""
    pks, _ = index.parse_ids(ids)
    keys = list(pks.values())
    columns = index.filter_columns
    rows: dict[str, dict[str, Any]] = {}
    for chunk in chunked(keys, SQL_CHUNK):
        if all(columns.get(name) for name in names):
            attnames = [columns[name] for name in names]
            for pk, *values in index.get_queryset().filter(pk__in=chunk).values_list("pk", *attnames):
                rows[str(pk)] = {name: jsonable(value) for name, value in zip(names, values)}
        else:
            for obj in index.get_queryset().filter(pk__in=chunk):
                fields = index.get_fields(obj)
                rows[str(obj.pk)] = {name: fields.get(name) for name in names}
    return rows


def sorted_by(hits: list[SearchHit], rows: Mapping[str, Mapping[str, Any]], name: str, descending: bool) -> list:
    """``hits`` by the field ``name`` (ties keep relevance order; rows without a value last)."""
    valued = [hit for hit in hits if rows[hit.id].get(name) is not None]
    valued.sort(key=lambda hit: rows[hit.id][name], reverse=descending)
    return valued + [hit for hit in hits if rows[hit.id].get(name) is None]
