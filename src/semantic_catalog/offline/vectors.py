"""Import vectors computed offline: validate everything, report, then apply all or nothing.

Checks: the file's model and dimension (against the collection of that model), records of another
index, duplicates, NaN / infinite values, malformed rows (invalid); ids not in the queryset
(unknown); content hashes that no longer match the row (stale: the text changed since the export).
Unknown and stale records are reported and skipped; invalid ones reject the whole import unless
``skip_invalid``. The store write is one atomic upsert.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from semantic_catalog.backends import available_encoder_names, get_encoder, get_store
from semantic_catalog.collections import activate, collection_for_model, existing_collection_for_model
from semantic_catalog.engine.documents import Document
from semantic_catalog.engine.errors import BadFile, SemanticCatalogError
from semantic_catalog.engine.offline.records import read_vector_rows, vector_problem
from semantic_catalog.indexes import SemanticIndex
from semantic_catalog.models import Collection

MAX_REPORTED_ERRORS = 100
LOOKUP_CHUNK = 1000


class ImportRejected(SemanticCatalogError):
    """The import changed nothing; ``report`` says why."""

    def __init__(self, message: str, report: ImportReport):
        super().__init__(message)
        self.report = report


@dataclass
class ImportReport:
    index: str
    dry_run: bool
    model: str = ""
    dimension: int = 0
    collection: str = ""
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    stale: int = 0
    unknown: int = 0
    invalid: int = 0
    applied: bool = False
    activated: bool = False
    errors: list[str] = field(default_factory=list)

    def problem(self, where: str, reason: str) -> None:
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(f"{where}: {reason}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def import_vectors(
    index: SemanticIndex, path: str | Path, dry_run: bool = False, skip_invalid: bool = False
) -> ImportReport:
    report = ImportReport(index=index.name, dry_run=dry_run)
    rows: dict[str, tuple[str, dict[str, Any]]] = {}
    for where, record in _readable_rows(path):
        reason = _row_problem(record)
        record_id = str(record.get("id") or "")
        if reason is None and record.get("index") != index.name:
            reason = f"record of index {record.get('index')!r}, not {index.name!r}"
        if reason is None and not report.model:
            report.model, report.dimension = str(record["model"]), int(record["dimension"])
        if reason is None and (record["model"], record["dimension"]) != (report.model, report.dimension):
            reason = f"model {record['model']!r}/{record['dimension']} differs from the file's first record"
        if reason is None and record_id in rows:
            reason = f"duplicate id {record_id!r} (first at {rows[record_id][0]})"
        if reason is not None:
            report.invalid += 1
            report.problem(where, reason)
            continue
        rows[record_id] = (where, record)

    if report.model and report.model not in available_encoder_names():
        raise ImportRejected(
            f"The vectors are of model {report.model!r}, which this server does not have: set it as "
            "SEMANTIC_CATALOG['ENCODER'] (or add it to 'ENCODERS') first, so its collection can serve "
            f"queries; configured: {', '.join(sorted(available_encoder_names()))}. Nothing was imported.",
            report,
        )
    existing = existing_collection_for_model(index, report.model) if report.model else None
    _check_dimension(existing, report)
    documents, vectors = _match_rows(index, existing, rows, report)
    if report.invalid and not skip_invalid:
        raise ImportRejected(
            f"{report.invalid} invalid records; nothing was imported (fix them, or pass skip_invalid).", report
        )
    if dry_run or not documents:
        return report
    collection = collection_for_model(index, report.model, report.dimension)
    report.collection = collection.table
    get_store().upsert(collection.table, documents, np.vstack(vectors))
    report.applied = True
    report.activated = _activate_if_complete(index, collection)
    return report


def _row_problem(record: dict[str, Any]) -> str | None:
    """Why a vector row cannot be stored, or None: ``vector_problem``, and what a stored float32 vector
    needs besides (values of the wrong type, no dimension, values beyond float32's range)."""
    try:
        reason = vector_problem(record)
    except (TypeError, ValueError):  # values of the wrong type: text in the vector, nested lists
        return "the vector holds values that are not numbers"
    if reason is None and record["dimension"] < 1:
        return f"dimension must be at least 1, not {record['dimension']}"
    if reason is None:
        with np.errstate(over="ignore"):
            if not np.isfinite(np.asarray(record["vector"], dtype=np.float32)).all():
                return "vector has values beyond the float32 range"
    return reason


def _readable_rows(path: str | Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """``read_vector_rows``, with data that Parquet cannot decode past a valid footer (corrupt pages)
    reported as a ``BadFile`` like any other unreadable file."""
    rows = read_vector_rows(path)
    while True:
        try:
            item = next(rows)
        except StopIteration:
            return
        except BadFile:
            raise
        except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError, thrift errors OSError
            raise BadFile(f"{path}: the Parquet data cannot be read ({' '.join(str(exc).split())}).") from None
        yield item


def _check_dimension(existing: Collection | None, report: ImportReport) -> None:
    if not report.model:
        return
    encoder = get_encoder(report.model)  # configured (checked before): ENCODER or one of ENCODERS
    if encoder.dimension != report.dimension:
        raise ImportRejected(
            f"The file says model {report.model!r} with dimension {report.dimension}, but that model "
            f"has dimension {encoder.dimension}; nothing was imported.",
            report,
        )
    if existing is not None and existing.dimension != report.dimension:
        raise ImportRejected(
            f"Vectors of {report.model!r} have dimension {report.dimension}, but its collection "
            f"{existing.table} has {existing.dimension}; nothing was imported.",
            report,
        )
    report.collection = existing.table if existing else f"(new collection for {report.model})"


def _match_rows(
    index: SemanticIndex,
    existing: Collection | None,
    rows: dict[str, tuple[str, dict[str, Any]]],
    report: ImportReport,
) -> tuple[list[Document], list[np.ndarray]]:
    """Compare records with the current rows and the stored hashes; count new/updated/unchanged."""
    stored = get_store().content_hashes(existing.table) if existing else {}
    documents: list[Document] = []
    vectors: list[np.ndarray] = []
    ids = list(rows)
    for start in range(0, len(ids), LOOKUP_CHUNK):
        chunk = ids[start : start + LOOKUP_CHUNK]
        by_id, _ = index.rows_by_id(chunk)  # an id that is no valid primary key is simply unknown
        for record_id in chunk:
            where, record = rows[record_id]
            obj = by_id.get(record_id)
            if obj is None:
                report.unknown += 1
                report.problem(where, f"unknown id {record_id!r} (not in the index's queryset)")
                continue
            document = index.to_document(obj)
            if document.content_hash != record["content_hash"]:
                report.stale += 1
                report.problem(where, f"stale: row {record_id!r} changed since it was exported")
                continue
            if stored.get(record_id) == document.content_hash:
                report.unchanged += 1
                continue
            if record_id in stored:
                report.updated += 1
            else:
                report.new += 1
            documents.append(document)
            vectors.append(np.asarray(record["vector"], dtype=np.float32))
    return documents, vectors


def _activate_if_complete(index: SemanticIndex, collection: Collection) -> bool:
    """Switch to an imported model's collection once it covers the queryset, if it is the configured
    ENCODER's model (queries must be encodable with it)."""
    if collection.state != Collection.State.BUILDING or collection.model != get_encoder().name:
        return False
    stored = set(get_store().content_hashes(collection.table))
    wanted = {str(pk) for pk in index.get_queryset().values_list("pk", flat=True)}
    if wanted - stored:
        return False
    activate(collection)
    return True
