"""Keeping the index in step with SQL: signals write outbox rows, a drain applies them in batches.

Write path: ``post_save`` / ``post_delete`` -> a ``SyncEvent`` in the same transaction -> at commit,
one drain task per index is enqueued -> the drain (one at a time per index, see ``IndexLease``)
loads the rows, skips unchanged content, encodes the rest in one batch, upserts, removes rows that
left the queryset, and deletes the events it applied. A failure keeps the events, with backoff.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any

from django.db import models, transaction
from django.db.models import Q
from django.db.models.signals import post_delete, post_save
from django.utils import timezone

from .backends import get_encoder, get_store
from .collections import writable_collections
from .conf import semantic_settings
from .engine.indexer import IndexReport, index_documents, remove_documents
from .indexes import SemanticIndex
from .models import IndexLease, SyncEvent
from .outbox import clear_drain_request, insert_events, request_drain

logger = logging.getLogger("semantic_catalog.sync")


# -- signals -------------------------------------------------------------------------------------


def connect_signals(index: SemanticIndex) -> None:
    post_save.connect(_on_save, sender=index.model, dispatch_uid=f"semantic_catalog.save.{index.name}", weak=False)
    post_delete.connect(
        _on_delete, sender=index.model, dispatch_uid=f"semantic_catalog.delete.{index.name}", weak=False
    )


def disconnect_signals(index: SemanticIndex) -> None:
    post_save.disconnect(sender=index.model, dispatch_uid=f"semantic_catalog.save.{index.name}")
    post_delete.disconnect(sender=index.model, dispatch_uid=f"semantic_catalog.delete.{index.name}")


def _indexes_for(sender: type[models.Model]) -> list[SemanticIndex]:
    from .registry import registry

    return registry.for_model(sender)


def _on_save(sender: type[models.Model], instance: models.Model, using: str, **kwargs: Any) -> None:
    if semantic_settings.AUTO_SYNC:
        for index in _indexes_for(sender):
            record_changes(index, [instance.pk], SyncEvent.Op.UPSERT, using=using)


def _on_delete(sender: type[models.Model], instance: models.Model, using: str, **kwargs: Any) -> None:
    if semantic_settings.AUTO_SYNC:
        for index in _indexes_for(sender):
            record_changes(index, [instance.pk], SyncEvent.Op.DELETE, using=using)


# -- recording changes ----------------------------------------------------------------------------


def record_changes(index: SemanticIndex, pks: Iterable[Any], op: str, using: str = "default") -> int:
    """Write one outbox row per pk (inside the caller's transaction) and schedule a drain at commit."""
    object_ids = [str(pk) for pk in pks]
    if object_ids:
        insert_events(using, index.name, object_ids, op)
        schedule_drain(index.name, using=using)
    return len(object_ids)


def mark_dirty(target: SemanticIndex | type[models.Model], objects: models.QuerySet | Iterable[Any]) -> int:
    """Queue rows for re-indexing after writes that bypass signals (``bulk_create``, ``QuerySet.update``,
    raw SQL). ``objects`` is a queryset, instances or primary keys. Returns the number of events written."""
    if isinstance(objects, models.QuerySet):
        pks: list[Any] = list(objects.values_list("pk", flat=True))
    else:
        pks = [obj.pk if isinstance(obj, models.Model) else obj for obj in objects]
    indexes = [target] if isinstance(target, SemanticIndex) else _indexes_for(target)
    if not indexes:
        from .registry import UnknownIndex

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


def enqueue_drain(index_name: str, run_after: Any = None) -> bool:
    """Hand the drain to the tasks backend; if that fails the outbox rows stay for the next drain."""
    from .tasks import drain_outbox

    task = drain_outbox.using(backend=semantic_settings.TASK_BACKEND, queue_name=semantic_settings.TASK_QUEUE)
    try:
        if run_after is not None:
            if not task.get_backend().supports_defer:
                return False
            task = task.using(run_after=run_after)
        task.enqueue(index_name)
    except Exception:
        logger.exception("Could not enqueue the drain of %r; its outbox rows stay for `semantic_sync`.", index_name)
        return False
    return True


# -- draining ----------------------------------------------------------------------------------------


@dataclass
class DrainReport:
    events: int = 0
    failed: int = 0
    index: IndexReport = field(default_factory=IndexReport)
    busy: bool = False


def _due(index_name: str) -> models.QuerySet:
    return SyncEvent.objects.filter(
        index=index_name, status=SyncEvent.Status.PENDING, next_attempt_at__lte=timezone.now()
    )


def _acquire(index_name: str, token: str) -> bool:
    now = timezone.now()
    until = now + timedelta(seconds=semantic_settings.LOCK_SECONDS)
    IndexLease.objects.get_or_create(index=index_name)
    free = Q(locked_until__isnull=True) | Q(locked_until__lt=now) | Q(token=token)
    return IndexLease.objects.filter(free, index=index_name).update(token=token, locked_until=until) == 1


def _release(index_name: str, token: str) -> None:
    IndexLease.objects.filter(index=index_name, token=token).update(token="", locked_until=None)


def drain(index_name: str, batch_size: int | None = None, max_batches: int | None = None) -> DrainReport:
    """Apply due outbox rows of one index until none is left (or ``max_batches``).

    Returns at once with ``busy=True`` when another drain holds the index's lease; that drain
    re-checks the outbox after releasing it, so nothing written meanwhile waits for a later trigger.
    """
    from .registry import registry

    index = registry.get(index_name)
    clear_drain_request(index_name)
    batch_size = batch_size or semantic_settings.SYNC_BATCH_SIZE
    report = DrainReport()
    token = uuid.uuid4().hex
    batches = 0
    while True:
        if not _acquire(index_name, token):
            report.busy = True
            return report
        try:
            while max_batches is None or batches < max_batches:
                events = list(_due(index_name).order_by("id")[:batch_size])
                if not events:
                    break
                _apply(index, events, report)
                batches += 1
                _acquire(index_name, token)  # renew the lease
        finally:
            _release(index_name, token)
        if (max_batches is not None and batches >= max_batches) or not _due(index_name).exists():
            return report


def _apply(index: SemanticIndex, events: list[SyncEvent], report: DrainReport) -> None:
    report.events += len(events)
    object_ids = list(dict.fromkeys(e.object_id for e in events))
    rows, errors = index.rows_by_id(object_ids)
    documents = []
    for object_id, obj in rows.items():
        try:
            documents.append(index.to_document(obj))
        except Exception as exc:
            errors[object_id] = f"building the document failed: {exc!r}"
    gone = [object_id for object_id in object_ids if object_id not in rows and object_id not in errors]
    ok_events = [e for e in events if e.object_id not in errors]
    try:
        store = get_store()
        for collection in writable_collections(index):
            written = index_documents(store, collection.table, get_encoder(collection.encoder), documents)
            written += remove_documents(store, collection.table, gone)
            report.index += written
            _maybe_optimize(collection.table, written.written + written.deleted)
    except Exception as exc:
        logger.warning("Drain of %r failed for %d events: %r", index.name, len(ok_events), exc)
        _fail(ok_events, f"{type(exc).__name__}: {exc}", report)
    else:
        SyncEvent.objects.filter(id__in=[e.id for e in ok_events]).delete()
    for object_id, message in errors.items():
        _fail([e for e in events if e.object_id == object_id], message, report)


_writes_since_optimize: dict[str, int] = {}


def _maybe_optimize(table: str, writes: int) -> None:
    """Small writes leave many small fragments and versions behind; compact now and then."""
    total = _writes_since_optimize.get(table, 0) + writes
    if total >= semantic_settings.OPTIMIZE_AFTER_WRITES:
        get_store().optimize(table)
        total = 0
    _writes_since_optimize[table] = total


def backoff_seconds(attempts: int) -> float:
    """Delay before retry number ``attempts`` (1-based): base * 2^(attempts-1), capped."""
    return min(semantic_settings.RETRY_BASE_SECONDS * 2 ** (attempts - 1), semantic_settings.RETRY_MAX_SECONDS)


def _fail(events: list[SyncEvent], message: str, report: DrainReport) -> None:
    now = timezone.now()
    next_retry = None
    for event in events:
        event.attempts += 1
        event.last_error = message[:4000]
        if event.attempts >= semantic_settings.MAX_ATTEMPTS:
            event.status = SyncEvent.Status.FAILED
            report.failed += 1
        else:
            event.next_attempt_at = now + timedelta(seconds=backoff_seconds(event.attempts))
            next_retry = min(next_retry or event.next_attempt_at, event.next_attempt_at)
        event.save(update_fields=["attempts", "last_error", "status", "next_attempt_at"])
    if next_retry is not None and events:
        transaction.on_commit(partial(enqueue_drain, events[0].index, run_after=next_retry), robust=True)


def retry_failed(index_name: str | None = None) -> int:
    """Give failed events a fresh set of attempts (after fixing the cause)."""
    failed = SyncEvent.objects.filter(status=SyncEvent.Status.FAILED)
    if index_name:
        failed = failed.filter(index=index_name)
    return failed.update(status=SyncEvent.Status.PENDING, attempts=0, next_attempt_at=timezone.now())
