"""The activities behind the workflows: the Django work, run by ``semantic_temporal_worker``.

They are plain synchronous functions (the worker runs them in a thread pool) and idempotent: a batch
is loaded from SQL when it runs, unchanged rows (same content hash in the store) are skipped, the rest
is upserted by id, so a batch retried after a crash writes the same rows once. The encoder is the
process's cached one (``backends.get_encoder``): the worker loads the model once, at start.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from django.db import close_old_connections, transaction
from django.utils import timezone
from temporalio import activity

from semantic_catalog.backends import get_encoder, get_store
from semantic_catalog.collections import ensure_active, writable_collections
from semantic_catalog.conf import semantic_settings
from semantic_catalog.engine.documents import Document
from semantic_catalog.engine.indexer import index_documents, remove_documents
from semantic_catalog.indexes import SemanticIndex
from semantic_catalog.models import SyncEvent
from semantic_catalog.registry import registry
from semantic_catalog.sync.drain import drain
from semantic_catalog.sync.lease import Lease, drain_state
from semantic_catalog.workflows.definitions import (
    BATCH_ACTIVITY,
    COUNT_ACTIVITY,
    DRAIN_ACTIVITY,
    FAILED_ACTIVITY,
    ORPHANS_ACTIVITY,
    PAGE_ACTIVITY,
    BatchRequest,
    BatchResult,
    DrainPass,
    DrainRequest,
    FailedBatch,
    Page,
    PageRequest,
)

# A batch waits at most this many LOCK_SECONDS for the index's lease before failing (and being retried).
LEASE_WAIT_LOCKS = 4


def _index(name: str) -> SemanticIndex:
    close_old_connections()  # a long-lived worker thread: drop connections the database closed
    return registry.get(name)


@activity.defn(name=COUNT_ACTIVITY)
def count_rows(index_name: str) -> int:
    """The queryset's row count (the run's total); creates the active collection on a first run."""
    index = _index(index_name)
    with _heartbeating():
        ensure_active(index)
        return index.get_queryset().count()


@activity.defn(name=PAGE_ACTIVITY)
def page_ids(request: PageRequest) -> Page:
    """The next ``limit`` ids of the queryset in pk order after ``after`` (keyset paging: no OFFSET,
    and rows added or removed meanwhile shift nothing)."""
    index = _index(request.index)
    rows = index.get_queryset().order_by("pk")
    if request.after is not None:
        rows = rows.filter(pk__gt=index.pk_from_string(request.after))
    with _heartbeating():
        pks = list(rows.values_list("pk", flat=True)[: request.limit])
    ids = [str(pk) for pk in pks]
    return Page(ids=ids, last=ids[-1] if ids else None)


@activity.defn(name=BATCH_ACTIVITY)
def index_batch(request: BatchRequest) -> BatchResult:
    """Load the batch's rows, skip those whose content hash is stored (unless ``force``), encode the
    rest in one call and upsert them into every collection that takes writes; ids that left the
    queryset are deleted. A row whose document cannot be built fails alone (``errors``); anything
    else raises, and Temporal retries the whole batch with backoff."""
    index = _index(request.index)
    with _heartbeating(), _index_lease(index.name):
        return _write_batch(index, request)


def _write_batch(index: SemanticIndex, request: BatchRequest) -> BatchResult:
    rows, errors = index.rows_by_id(request.ids)
    documents: list[Document] = []
    for object_id, obj in rows.items():
        try:
            documents.append(index.to_document(obj))
        except Exception as exc:
            errors[object_id] = f"building the document failed: {exc!r}"
    gone = [i for i in request.ids if i not in rows and i not in errors]
    result = BatchResult(errors=errors)
    store = get_store()
    # A cancel arriving now is raised once the batch is written whole (or has failed whole).
    with activity.shield_thread_cancel_exception():
        for collection in writable_collections(index):
            encoder = get_encoder(collection.model)
            if request.force and documents:
                store.upsert(collection.table, documents, encoder.encode([d.text for d in documents]))
                result.encoded += len(documents)
            else:
                written = index_documents(store, collection.table, encoder, documents)
                result.encoded += written.encoded
                result.reused += written.reused
                result.unchanged += written.unchanged
            result.deleted += remove_documents(store, collection.table, gone).deleted
    return result


class IndexBusy(Exception):
    """Another writer held the index's lease for too long; Temporal retries the batch later."""


@contextmanager
def _index_lease(index_name: str) -> Iterator[None]:
    """Hold the index's drain lease (``sync.lease.Lease``: renewed by its own thread) while a batch
    reads and writes: one writer per index at a time, as for drains. An attempt that Temporal gave up
    on (its worker stalled past the heartbeat timeout) may still be writing: its retry waits for it
    here instead of upserting the same new ids at the same moment, which would store them twice."""
    drain_state(index_name)  # the lease's row, created on first use
    lease = Lease(index_name)
    deadline = time.monotonic() + LEASE_WAIT_LOCKS * semantic_settings.LOCK_SECONDS
    while not lease.acquire():
        if time.monotonic() > deadline:
            raise IndexBusy(f"the index {index_name!r} stayed leased by another writer (a drain or a batch)")
        activity.heartbeat("waiting for the index's lease")
        time.sleep(0.2)
    try:
        yield
    finally:
        lease.release()


@contextmanager
def _heartbeating() -> Iterator[None]:
    """Heartbeat from a thread while the activity runs, so a long encode is not taken for a dead
    worker; a killed worker stops beating and its batch is retried after the heartbeat timeout."""
    timeout = activity.info().heartbeat_timeout
    interval = max(0.2, timeout.total_seconds() / 4) if timeout else 5.0
    stop = threading.Event()
    context = contextvars.copy_context()  # activity.heartbeat finds its activity through a contextvar

    def beat() -> None:
        while not stop.wait(interval):
            try:
                context.run(activity.heartbeat, "running")
            except Exception:  # the activity is over
                return

    thread = threading.Thread(target=beat, name="semantic-temporal-heartbeat", daemon=True)
    activity.heartbeat("started")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=interval + 1)


@activity.defn(name=ORPHANS_ACTIVITY)
def remove_orphans(index_name: str) -> int:
    """After a whole-queryset run: delete stored ids that are no longer rows of the queryset."""
    with _heartbeating():
        return _remove_orphans(_index(index_name))


def _remove_orphans(index: SemanticIndex) -> int:
    store = get_store()
    removed = 0
    for collection in writable_collections(index):
        stored = list(store.content_hashes(collection.table))
        keep: set[str] = set()
        pks, _ = index.parse_ids(stored)
        values = list(pks.values())
        for start in range(0, len(values), 1000):
            chunk = values[start : start + 1000]
            keep.update(str(pk) for pk in index.get_queryset().filter(pk__in=chunk).values_list("pk", flat=True))
        removed += remove_documents(store, collection.table, [i for i in stored if i not in keep]).deleted
    return removed


@activity.defn(name=FAILED_ACTIVITY)
def record_failed_batch(batch: FailedBatch) -> int:
    """A batch that kept failing becomes failed outbox events (one per id, as a drain that gave up
    leaves them): status and the admin show them, and "retry" hands them to the drain."""
    _index(batch.index)
    message = f"Temporal run {batch.run_id}: {batch.error}"[:4000]
    with transaction.atomic():
        existing = set(
            SyncEvent.objects.filter(index=batch.index, object_id__in=batch.ids).values_list("object_id", flat=True)
        )
        SyncEvent.objects.filter(index=batch.index, object_id__in=batch.ids).update(
            status=SyncEvent.Status.FAILED, last_error=message, attempts=semantic_settings.MAX_ATTEMPTS
        )
        SyncEvent.objects.bulk_create([
            SyncEvent(
                index=batch.index,
                object_id=object_id,
                status=SyncEvent.Status.FAILED,
                attempts=semantic_settings.MAX_ATTEMPTS,
                last_error=message,
            )
            for object_id in dict.fromkeys(batch.ids)
            if object_id not in existing
        ])
    return len(batch.ids)


@activity.defn(name=DRAIN_ACTIVITY)
def drain_index(request: DrainRequest) -> DrainPass:
    """One drain of the outbox (``sync.drain``: its lease, backoff and outage handling); says when
    the next one is due, which the workflow waits for on a durable timer."""
    _index(request.index)
    with _heartbeating():
        report = drain(request.index, batch_size=request.batch_size)
    retry_in = None
    if report.retry_at is not None:
        retry_in = max(0.0, (report.retry_at - timezone.now()).total_seconds())
    return DrainPass(events=report.events, failed=report.failed, retry_in=retry_in)


def warm_up() -> dict[str, Any]:
    """Load the configured model now (once per worker process), so no batch pays for it."""
    encoder = get_encoder()
    vector = encoder.encode(["warm up"])
    return {"model": encoder.name, "dimension": int(np.asarray(vector).shape[1])}


ACTIVITIES = [count_rows, page_ids, index_batch, remove_orphans, record_failed_batch, drain_index]
