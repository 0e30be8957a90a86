"""Which rows a run segments: explicit ids or a filter over the index's queryset, each checked (valid
primary key, in the queryset, with text) before anything is stored."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from django.core.exceptions import FieldError, ValidationError
from django.db import DataError

from semantic_catalog.engine.errors import InvalidQuery, UnknownIds
from semantic_catalog.engine.segmentation.types import Item
from semantic_catalog.indexes import SemanticIndex
from semantic_catalog.segmentation.conf import segmentation_settings

LOOKUPS = ("", "__in", "__gte", "__lte", "__gt", "__lt")
SHOWN = 10  # ids named in an error message


def _shown(ids: Sequence[str]) -> str:
    more = f" and {len(ids) - SHOWN} more" if len(ids) > SHOWN else ""
    return ", ".join(ids[:SHOWN]) + more


def max_items() -> int:
    return segmentation_settings()["MAX_ITEMS"]


def items_by_ids(index: SemanticIndex, ids: Sequence[Any]) -> list[Item]:
    """The rows of ``ids`` in that order, with their text; every bad id is named in one error."""
    if not ids:
        raise InvalidQuery("Give at least one id to segment.")
    limit = max_items()
    if len(ids) > limit:
        raise InvalidQuery(f"{len(ids)} ids is more than a run takes (SEGMENTATION MAX_ITEMS, {limit}).")
    if any(isinstance(i, bool) or not isinstance(i, (str, int)) for i in ids):
        raise InvalidQuery("Ids must be strings or whole numbers.")
    keys = [str(i) for i in ids]
    duplicated = sorted(key for key, count in Counter(keys).items() if count > 1)
    if duplicated:
        raise InvalidQuery(f"Ids given more than once: {_shown(duplicated)}.")
    rows, invalid = index.rows_by_id(keys)
    if invalid:
        raise InvalidQuery(f"Invalid ids: {'; '.join(list(invalid.values())[:SHOWN])}.")
    unknown = [key for key in keys if key not in rows]
    if unknown:
        raise UnknownIds(
            f"{len(unknown)} ids are not rows of index {index.name!r} (or not in its queryset): {_shown(unknown)}.",
            unknown,
        )
    return _items(index, [rows[key] for key in keys])


def items_by_filter(index: SemanticIndex, filters: Mapping[str, Any]) -> list[Item]:
    """The queryset's rows matching ``filters`` (declared filter fields that are columns, with
    ``__in`` / ``__gte`` / ``__lte`` / ``__gt`` / ``__lt``), in primary key order."""
    if not filters:
        raise InvalidQuery("Give ids or at least one filter.")
    allowed = sorted(name for name, column in index.filter_columns.items() if column)
    lookups: dict[str, Any] = {}
    for key, value in filters.items():
        name, lookup = _split(key)
        if name not in allowed:
            raise InvalidQuery(
                f"Cannot filter {index.name!r} on {key!r}: filter on a declared filter field "
                f"({', '.join(allowed) or 'none'}), optionally with {', '.join(LOOKUPS[1:])}."
            )
        if lookup == "__in" and not isinstance(value, list):
            raise InvalidQuery(f"{key} takes a list of values.")
        if lookup != "__in" and isinstance(value, (list, dict)):
            raise InvalidQuery(f"{key} takes one value, not {type(value).__name__}.")
        lookups[f"{index.filter_columns[name]}{lookup}"] = value
    return _matching(index, lookups)


def items_of_queryset(index: SemanticIndex) -> list[Item]:
    """Every row of the index's queryset, in primary key order (at most MAX_ITEMS)."""
    return _matching(index, {})


def _matching(index: SemanticIndex, lookups: dict[str, Any]) -> list[Item]:
    limit = max_items()
    try:
        rows = list(index.get_queryset().filter(**lookups).order_by("pk")[: limit + 1])
    except (ValidationError, ValueError, TypeError, FieldError, OverflowError, DataError) as exc:
        raise InvalidQuery(f"A filter value does not suit its field: {_message(exc)}") from None
    if not rows:
        raise InvalidQuery(f"No rows of index {index.name!r} match{' the filters' if lookups else ''}.")
    if len(rows) > limit:
        raise InvalidQuery(
            f"More than {limit} rows match (SEGMENTATION MAX_ITEMS): narrow the filters or raise MAX_ITEMS."
        )
    return _items(index, rows)


def _split(key: str) -> tuple[str, str]:
    for lookup in LOOKUPS[1:]:
        if key.endswith(lookup):
            return key[: -len(lookup)], lookup
    return key, ""


def _message(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    return str(exc).splitlines()[0][:200]


def _items(index: SemanticIndex, rows: list[Any]) -> list[Item]:
    items = [Item(str(row.pk), (index.get_text(row) or "").strip()) for row in rows]
    empty = [item.id for item in items if not item.text]
    if empty:
        raise InvalidQuery(f"{len(empty)} rows of index {index.name!r} have no text to segment: {_shown(empty)}.")
    return items
