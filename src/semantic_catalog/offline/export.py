"""Catalog exports for the offline machine: one record per row of the index's queryset, streamed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django.utils.dateparse import parse_datetime
from django.utils.timezone import is_naive, make_aware

from semantic_catalog.engine.errors import InvalidQuery
from semantic_catalog.indexes import SemanticIndex

EXPORT_CHUNK = 1000


def parse_since(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = parse_datetime(value)
    if parsed is None:
        raise InvalidQuery(f"'since' must be an ISO date-time such as 2026-11-01T00:00:00Z, got {value!r}.")
    return make_aware(parsed) if is_naive(parsed) else parsed


def export_records(
    index: SemanticIndex, since: datetime | None = None, limit: int | None = None
) -> Iterator[dict[str, Any]]:
    """Yield ``{"id", "index", "text", "fields", "content_hash", "analysis"}`` per row, in primary-key order,
    reading the table in chunks (never the whole table in memory)."""
    queryset = index.get_queryset().order_by("pk")
    if since is not None:
        if not index.updated_field:
            raise InvalidQuery(
                f"Index {index.name!r} declares no updated_field, so 'since' cannot be used; "
                "set updated_field to a DateTimeField with auto_now=True."
            )
        queryset = queryset.filter(**{f"{index.updated_field}__gt": since})
    if limit is not None:
        if limit < 1:
            raise InvalidQuery(f"'limit' must be at least 1, got {limit}.")
        queryset = queryset[:limit]
    for obj in queryset.iterator(chunk_size=EXPORT_CHUNK):
        document = index.to_document(obj)
        yield {
            "id": document.id,
            "index": index.name,
            "text": document.text,
            "fields": document.fields,
            "content_hash": document.content_hash,
            "analysis": index.analysis_data(obj),
        }
