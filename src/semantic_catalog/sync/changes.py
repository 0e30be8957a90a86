"""Recording changes: outbox rows written inside the caller's transaction, and one drain queued at commit."""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import Any

from django.db import models, transaction

from semantic_catalog.conf import semantic_settings
from semantic_catalog.indexes import SemanticIndex
from semantic_catalog.models import SyncEvent
from semantic_catalog.registry import UnknownIndex, registry
from semantic_catalog.sync.outbox import clear_drain_request, insert_events, request_drain
from semantic_catalog.sync.tasks import enqueue_drain


def record_changes(index: SemanticIndex, pks: Iterable[Any], op: str, using: str = "default") -> int:
    """Write one outbox row per pk (inside the caller's transaction) and schedule a drain at commit."""
    object_ids = [str(pk) for pk in pks]
    if object_ids:
        insert_events(using, index.name, object_ids, op)
        schedule_drain(index.name, using=using)
    return len(object_ids)


def mark_dirty(target: SemanticIndex | str | type[models.Model], objects: models.QuerySet | Iterable[Any]) -> int:
    """Queue rows for re-indexing after writes that bypass signals (``bulk_create``, ``QuerySet.update``,
    raw SQL). ``target`` is an index, its name or an indexed model; ``objects`` a queryset, instances or
    primary keys. Returns the number of events written."""
    if isinstance(objects, models.QuerySet):
        pks: list[Any] = list(objects.values_list("pk", flat=True))
    else:
        pks = [obj.pk if isinstance(obj, models.Model) else obj for obj in objects]
    if isinstance(target, SemanticIndex):
        indexes = [target]
    elif isinstance(target, str):
        indexes = [registry.get(target)]
    else:
        indexes = registry.for_model(target)
    if not indexes:
        raise UnknownIndex(f"No semantic index is registered for {target!r}.")
    return sum(record_changes(index, pks, SyncEvent.Op.UPSERT) for index in indexes)


def schedule_drain(index_name: str, using: str = "default") -> None:
    """Make sure a drain is queued once this transaction commits (at once in autocommit mode).

    A ``DrainRequest`` row marks "a drain is queued and has not started"; only the writer that
    creates it enqueues a task. On SQLite, whose writers are serialised, the row is written inside
    the transaction (a rollback removes it, and a drain starting meanwhile waits for our commit).
    Elsewhere it is written after commit, when our outbox rows are visible to any drain that starts.
    """
    if not semantic_settings.ENQUEUE_DRAIN:
        return
    connection = transaction.get_connection(using)
    if not connection.in_atomic_block:
        _request_drain(index_name, using)
    elif connection.vendor == "sqlite":
        if request_drain(using, index_name):
            transaction.on_commit(partial(_enqueue_or_withdraw, index_name), using=using, robust=True)
    elif not any(getattr(func, "semantic_drain", None) == index_name for _, func, _ in connection.run_on_commit):
        callback = partial(_request_drain, index_name, using)
        callback.semantic_drain = index_name  # type: ignore[attr-defined]
        transaction.on_commit(callback, using=using, robust=True)


def _request_drain(index_name: str, using: str) -> None:
    """Enqueue a drain unless one is already queued and not started (it will see our committed rows)."""
    if request_drain(using, index_name):
        _enqueue_or_withdraw(index_name)


def _enqueue_or_withdraw(index_name: str) -> None:
    if not enqueue_drain(index_name):
        clear_drain_request(index_name)  # so the next write tries again
