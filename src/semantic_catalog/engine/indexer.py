"""Write documents into a collection with the least model work: skip unchanged rows, reuse vectors
whose text did not change, encode the rest in one batch per chunk."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from semantic_catalog.engine.documents import Document
from semantic_catalog.engine.encoders.base import Encoder
from semantic_catalog.engine.stores.base import VectorStore


@dataclass
class IndexReport:
    """What one call changed; ``encoded`` counts texts sent to the model."""

    unchanged: int = 0
    encoded: int = 0
    reused: int = 0
    deleted: int = 0

    def __iadd__(self, other: IndexReport) -> IndexReport:
        self.unchanged += other.unchanged
        self.encoded += other.encoded
        self.reused += other.reused
        self.deleted += other.deleted
        return self

    @property
    def written(self) -> int:
        return self.encoded + self.reused


def index_documents(
    store: VectorStore, collection: str, encoder: Encoder, documents: Sequence[Document]
) -> IndexReport:
    """Upsert ``documents``; texts whose hash is already stored are not re-encoded."""
    report = IndexReport()
    if not documents:
        return report
    stored = store.fetch(collection, [d.id for d in documents], with_vectors=True)
    to_encode: list[Document] = []
    reused_docs: list[Document] = []
    reused_vectors: list[np.ndarray] = []
    for doc in documents:
        record = stored.get(doc.id)
        if record is not None and record.content_hash == doc.content_hash:
            report.unchanged += 1
        elif record is not None and record.text_hash == doc.text_hash and record.vector is not None:
            reused_docs.append(doc)
            reused_vectors.append(record.vector)
        else:
            to_encode.append(doc)
    changed = reused_docs + to_encode
    if changed:
        parts = [np.asarray(reused_vectors, dtype=np.float32)] if reused_vectors else []
        if to_encode:
            parts.append(encoder.encode([d.text for d in to_encode]))
        store.upsert(collection, changed, np.vstack(parts))
    report.encoded = len(to_encode)
    report.reused = len(reused_docs)
    return report


def remove_documents(store: VectorStore, collection: str, ids: Sequence[str]) -> IndexReport:
    """Delete ids from the collection (rows deleted in SQL or that left the index's queryset)."""
    if ids:
        store.delete(collection, list(ids))
    return IndexReport(deleted=len(ids))


def chunked(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Lists of ``size`` items (the last may be shorter): batches of rows or records, holding one at a time."""
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
