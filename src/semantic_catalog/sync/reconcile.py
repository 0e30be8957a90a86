"""Bulk indexing: reconcile a collection with the whole queryset, or rebuild into a new collection."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from semantic_catalog.backends import get_encoder, get_store
from semantic_catalog.collections import activate, ensure_active, start_rebuild
from semantic_catalog.engine.indexer import IndexReport, chunked, index_documents, remove_documents
from semantic_catalog.indexes import SemanticIndex
from semantic_catalog.models import Collection

Progress = Callable[[int], Any]


def reconcile(
    index: SemanticIndex, collection: Collection, batch_size: int = 256, progress: Progress | None = None
) -> IndexReport:
    """Make ``collection`` hold exactly the queryset: write new and changed rows (encoding only texts
    that changed), delete ids that are no longer in the queryset."""
    store, encoder = get_store(), get_encoder(collection.model)
    stored = store.content_hashes(collection.table)
    seen: set[str] = set()
    report = IndexReport()
    rows = index.get_queryset().order_by("pk").iterator(chunk_size=batch_size)
    since_optimize = 0
    for chunk in chunked(rows, batch_size):
        documents = index.documents(chunk)
        seen.update(d.id for d in documents)
        changed = [d for d in documents if stored.get(d.id) != d.content_hash]
        report += index_documents(store, collection.table, encoder, changed)
        report.unchanged += len(documents) - len(changed)
        since_optimize += len(changed)
        if since_optimize >= 20 * batch_size:  # each batch adds a fragment; many fragments slow every read
            store.optimize(collection.table)
            since_optimize = 0
        if progress:
            progress(len(chunk))
    report += remove_documents(store, collection.table, [i for i in stored if i not in seen])
    return report


def update_index(index: SemanticIndex, batch_size: int = 256, progress: Progress | None = None) -> IndexReport:
    """Bring the active collection (created if missing) in line with SQL."""
    collection = ensure_active(index)
    report = reconcile(index, collection, batch_size, progress)
    get_store().optimize(collection.table)
    return report


def rebuild_index(
    index: SemanticIndex, batch_size: int = 256, progress: Progress | None = None
) -> tuple[Collection, IndexReport]:
    """Fill a new collection while the old one serves, then switch atomically.

    The outbox writes to the building collection too; a second, cheap reconcile pass (hashes only,
    re-encoding nothing unchanged) catches rows that changed while the first pass read them.
    """
    collection = start_rebuild(index)
    report = reconcile(index, collection, batch_size, progress)
    report += reconcile(index, collection, batch_size)
    get_store().optimize(collection.table)
    activate(collection)
    collection.refresh_from_db()
    return collection, report
