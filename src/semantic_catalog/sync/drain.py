"""The drain: apply an index's outbox rows in batches, one drain per index at a time (``Lease``).

It loads the rows, skips unchanged content, encodes the rest in one batch, upserts, removes rows
that left the queryset, and deletes the events it applied. A row's own failure (its text cannot be
built, or the store or model refuses it alone) keeps its event with a backoff and gives up after
MAX_ATTEMPTS. A failure of the store or the model is an outage of the index: it is recorded, uses up
no attempts, and drains wait for its next try. The report says when the next drain is due (a lease's
expiry, a backoff's end, an outage's next try), so its caller can schedule it.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import cast

import numpy as np
from django.db import models
from django.db.models import Min
from django.utils import timezone

from semantic_catalog.backends import get_encoder, get_store
from semantic_catalog.collections import writable_collections
from semantic_catalog.conf import semantic_settings
from semantic_catalog.engine.documents import Document
from semantic_catalog.engine.encoders.base import Encoder
from semantic_catalog.engine.indexer import IndexReport, index_documents, remove_documents
from semantic_catalog.indexes import SemanticIndex
from semantic_catalog.models import IndexLease, SyncEvent
from semantic_catalog.registry import registry
from semantic_catalog.sync.lease import Lease, Outage, clear_outage, drain_state, lease_expiry, record_outage
from semantic_catalog.sync.outbox import clear_drain_request

logger = logging.getLogger("semantic_catalog.sync")

# After a batch fails, documents are written one at a time; when this many fail before any is
# written, the store (or the model) is down rather than those rows at fault.
ISOLATION_PROBES = 3


@dataclass
class DrainReport:
    events: int = 0
    failed: int = 0
    index: IndexReport = field(default_factory=IndexReport)
    busy: bool = False
    lease_until: datetime | None = None  # busy: when the other drain's lease lapses unless it renews it
    outage: Outage | None = None  # the store or the model is unavailable: events wait, attempts untouched
    retry_at: datetime | None = None  # when a drain is next due: lease expiry, earliest backoff, outage retry


def _due(index_name: str) -> models.QuerySet:
    return SyncEvent.objects.filter(
        index=index_name, status=SyncEvent.Status.PENDING, next_attempt_at__lte=timezone.now()
    )


def _next_due(index_name: str) -> datetime | None:
    pending = SyncEvent.objects.filter(index=index_name, status=SyncEvent.Status.PENDING)
    return pending.aggregate(at=Min("next_attempt_at"))["at"]


def drain(
    index_name: str,
    batch_size: int | None = None,
    max_batches: int | None = None,
    *,
    force: bool = False,
    on_start: Callable[[datetime], object] | None = None,
) -> DrainReport:
    """Apply due outbox rows of one index until none is left (or ``max_batches``).

    Returns at once with ``busy=True`` and ``lease_until`` when another drain holds the index's lease
    (a live drain re-checks the outbox after releasing it; a dead one's lease lapses at
    ``lease_until``, which is the report's ``retry_at``). While an outage of the store or the model is
    recorded, drains wait for its next try (``outage``, ``retry_at``) unless ``force``.

    ``on_start(at)``, when given and there is work, is called before anything else: the caller queues
    a drain for ``at`` (this drain's lease expiry), which finishes the work if this process dies.
    """
    index = registry.get(index_name)
    batch_size = batch_size or semantic_settings.SYNC_BATCH_SIZE
    report = DrainReport()
    state = drain_state(index_name)
    outage = Outage.of(state)
    waiting = outage is not None and not force and outage.retry_at > timezone.now()
    if on_start is not None and not waiting and _due(index_name).exists():
        on_start(timezone.now() + timedelta(seconds=semantic_settings.LOCK_SECONDS))
    clear_drain_request(index_name)
    if waiting:
        report.outage = outage
        report.retry_at = outage.retry_at  # type: ignore[union-attr]
        return report
    lease = Lease(index_name)
    batches = 0
    while True:
        if not lease.acquire():
            report.busy = True
            report.lease_until = report.retry_at = lease_expiry(index_name)
            return report
        state.refresh_from_db()  # only a lease holder records or clears an outage: this is current
        lost = False
        try:
            while max_batches is None or batches < max_batches:
                events = list(_due(index_name).order_by("id")[:batch_size])
                if not events:
                    break
                report.outage = _apply(index, events, report, state)
                batches += 1
                if report.outage is not None:
                    break
                if not lease.renew():
                    logger.warning("The drain of %r lost its lease; the drain holding it goes on.", index_name)
                    lost = True
                    break
        finally:
            lease.release()
        if report.outage is not None or lost or (max_batches is not None and batches >= max_batches):
            break
        if not _due(index_name).exists():
            break
    report.retry_at = report.outage.retry_at if report.outage is not None else _next_due(index_name)
    return report


class _ModelFailed(Exception):
    """The encoder raised (or could not be made): the model, not the store, failed."""


class _WatchedEncoder:
    """The encoder as ``index_documents`` uses it, telling its failures from the store's."""

    def __init__(self, encoder: Encoder):
        self.encoder = encoder

    def encode(self, texts: list[str]) -> np.ndarray:
        try:
            return self.encoder.encode(texts)
        except Exception as exc:
            raise _ModelFailed(exc) from exc


def _describe(exc: BaseException) -> str:
    cause = exc.__cause__ if isinstance(exc, _ModelFailed) and exc.__cause__ is not None else exc
    return f"{type(cause).__name__}: {cause}"


def _write(index: SemanticIndex, documents: Sequence[Document], gone: Sequence[str], report: DrainReport) -> int:
    """Upsert ``documents`` and delete ``gone`` in every collection that takes writes; returns the
    number of rows written or deleted."""
    store = get_store()
    changed = 0
    for collection in writable_collections(index):
        try:
            encoder = get_encoder(collection.model)
        except Exception as exc:
            raise _ModelFailed(exc) from exc
        written = index_documents(store, collection.table, cast(Encoder, _WatchedEncoder(encoder)), documents)
        written += remove_documents(store, collection.table, gone)
        report.index += written
        changed += written.written + written.deleted
        _maybe_optimize(collection.table, written.written + written.deleted)
    return changed


def _write_apart(
    index: SemanticIndex, documents: list[Document], gone: list[str], report: DrainReport
) -> tuple[dict[str, str], Exception | None, int]:
    """A batch failed: write its deletions, then its documents one at a time (in random order, so
    rows at fault do not always come first). A document that is written shows the store and the model
    work, so each one that failed alone is its row's fault. Returns those rows' errors, or the outage
    (deletions failed, or no document could be written in ISOLATION_PROBES tries), and the number of
    rows written or deleted."""
    changed = 0
    if gone:
        try:
            changed += _write(index, [], gone, report)
        except Exception as exc:
            return {}, exc, changed
    errors: dict[str, str] = {}
    healthy = False
    failure: Exception | None = None
    for document in random.sample(documents, len(documents)):
        try:
            changed += _write(index, [document], [], report)
        except Exception as exc:
            failure = exc
            errors[document.id] = f"writing it failed: {_describe(exc)}"
            if not healthy and len(errors) >= ISOLATION_PROBES:
                return {}, exc, changed
        else:
            healthy = True
    return (errors, None, changed) if healthy or failure is None else ({}, failure, changed)


def _apply(index: SemanticIndex, events: list[SyncEvent], report: DrainReport, state: IndexLease) -> Outage | None:
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
    failure: Exception | None = None
    try:
        changed = _write(index, documents, gone, report)
    except Exception as exc:
        failure = exc
        changed = 0
        if len(documents) + bool(gone) > 1:
            row_errors, failure, changed = _write_apart(index, documents, gone, report)
            errors.update(row_errors)
    outage = None
    ok_events = [e for e in events if e.object_id not in errors]
    if failure is not None:
        what = "model" if isinstance(failure, _ModelFailed) else "store"
        outage = record_outage(state, what, _describe(failure))
        logger.warning("Drain of %r: %s; %d events wait for it.", index.name, outage, len(ok_events))
        report.events -= len(ok_events)  # not handled: they wait for the outage to end
        SyncEvent.objects.filter(id__in=[e.id for e in ok_events]).update(last_error=f"{outage}"[:4000])
    else:
        SyncEvent.objects.filter(id__in=[e.id for e in ok_events]).delete()
        if changed and state.outage:
            clear_outage(state)
    for object_id, message in errors.items():
        _fail([e for e in events if e.object_id == object_id], message, report)
    return outage


_writes_since_optimize: dict[str, int] = {}


def _maybe_optimize(table: str, writes: int) -> None:
    """Small writes leave many small fragments and versions behind; compact now and then."""
    total = _writes_since_optimize.get(table, 0) + writes
    if total >= semantic_settings.OPTIMIZE_AFTER_WRITES:
        try:
            get_store().optimize(table)
        except Exception:  # the rows are written; compaction waits for the next time
            logger.warning("Compacting %r failed.", table, exc_info=True)
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
        event.save(update_fields=["attempts", "last_error", "status", "next_attempt_at"])


def retry_failed(index_name: str | None = None) -> int:
    """Give failed events a fresh set of attempts (after fixing the cause)."""
    failed = SyncEvent.objects.filter(status=SyncEvent.Status.FAILED)
    if index_name:
        failed = failed.filter(index=index_name)
    return failed.update(status=SyncEvent.Status.PENDING, attempts=0, next_attempt_at=timezone.now())
