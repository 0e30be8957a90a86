"""The drain: apply an index's outbox rows in batches, one drain per index at a time (``IndexLease``).

It loads the rows, skips unchanged content, encodes the rest in one batch, upserts, removes rows
that left the queryset, and deletes the events it applied. A failure keeps the events with a
backoff; the report says when the next retry is due, so its caller can schedule it.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import models
from django.db.models import Q
from django.utils import timezone

from semantic_catalog.backends import get_encoder, get_store
from semantic_catalog.collections import writable_collections
from semantic_catalog.conf import semantic_settings
from semantic_catalog.engine.indexer import IndexReport, index_documents, remove_documents
from semantic_catalog.indexes import SemanticIndex
from semantic_catalog.models import IndexLease, SyncEvent
from semantic_catalog.registry import registry
from semantic_catalog.sync.outbox import clear_drain_request

logger = logging.getLogger("semantic_catalog.sync")


@dataclass
class DrainReport:
    events: int = 0
    failed: int = 0
    index: IndexReport = field(default_factory=IndexReport)
    busy: bool = False
    retry_at: datetime | None = None  # earliest backoff of the events that failed and will be retried


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
            written = index_documents(store, collection.table, get_encoder(collection.model), documents)
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
    for event in events:
        event.attempts += 1
        event.last_error = message[:4000]
        if event.attempts >= semantic_settings.MAX_ATTEMPTS:
            event.status = SyncEvent.Status.FAILED
            report.failed += 1
        else:
            event.next_attempt_at = now + timedelta(seconds=backoff_seconds(event.attempts))
            report.retry_at = min(report.retry_at or event.next_attempt_at, event.next_attempt_at)
        event.save(update_fields=["attempts", "last_error", "status", "next_attempt_at"])


def retry_failed(index_name: str | None = None) -> int:
    """Give failed events a fresh set of attempts (after fixing the cause)."""
    failed = SyncEvent.objects.filter(status=SyncEvent.Status.FAILED)
    if index_name:
        failed = failed.filter(index=index_name)
    return failed.update(status=SyncEvent.Status.PENDING, attempts=0, next_attempt_at=timezone.now())
