"""The two statements every indexed save pays for, in plain SQL.

They run on every ``save()``: the ORM costs about three times as much per statement here
(benchmarks/sync_overhead.py), so these two use the connection's own SQL dialect directly, with the
statement text built once per database alias.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from django.db import connections
from django.db.models.constants import OnConflict
from django.utils import timezone

from semantic_catalog.models import DrainRequest, SyncEvent

_EVENT_COLUMNS = ("index", "object_id", "op")  # the rest come from the columns' database defaults


@cache
def _insert_event_sql(using: str) -> str:
    quote = connections[using].ops.quote_name
    columns = ", ".join(quote(SyncEvent._meta.get_field(name).column) for name in _EVENT_COLUMNS)
    placeholders = ", ".join(["%s"] * len(_EVENT_COLUMNS))
    return f"INSERT INTO {quote(SyncEvent._meta.db_table)} ({columns}) VALUES ({placeholders})"


@cache
def _request_drain_sql(using: str) -> str:
    ops = connections[using].ops
    fields = [DrainRequest._meta.get_field("index"), DrainRequest._meta.get_field("requested_at")]
    columns = ", ".join(ops.quote_name(f.column) for f in fields)
    prefix = ops.insert_statement(on_conflict=OnConflict.IGNORE)
    suffix = ops.on_conflict_suffix_sql(fields, OnConflict.IGNORE, None, None) or ""
    return f"{prefix} {ops.quote_name(DrainRequest._meta.db_table)} ({columns}) VALUES (%s, %s) {suffix}".rstrip()


def insert_events(using: str, index_name: str, object_ids: Sequence[str], op: str) -> None:
    """Append outbox rows inside the caller's transaction."""
    rows = [(index_name, object_id, op) for object_id in object_ids]
    with connections[using].cursor() as cursor:
        if len(rows) == 1:
            cursor.execute(_insert_event_sql(using), rows[0])
        else:
            cursor.executemany(_insert_event_sql(using), rows)


def request_drain(using: str, index_name: str) -> bool:
    """Record that a drain is wanted; True when no drain was queued yet, so the caller must enqueue one."""
    connection = connections[using]
    with connection.cursor() as cursor:
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        cursor.execute(_request_drain_sql(using), [index_name, now])
        return cursor.rowcount == 1


def clear_drain_request(index_name: str) -> None:
    """Called by a drain before it reads the outbox: later writers will queue a new drain."""
    DrainRequest.objects.filter(index=index_name).delete()
