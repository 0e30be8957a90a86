"""Files of the offline path: catalog exports (records to embed) and vector files (what comes back).

Exports are JSONL (one record per line) or Parquet, chosen by the file suffix; each record is
``{"id", "index", "text", "fields", "content_hash"}``, plus ``"analysis"`` (store, category chain,
title, brand, price) when the index declares them for cross-store analysis. Vector files are Parquet parts with
``id, index, content_hash, model, dimension, vector``; a folder of parts is one result, written a
batch at a time so a crash loses at most the batch in flight.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from semantic_catalog.engine.errors import BadFile

RECORD_KEYS = ("id", "index", "text", "fields", "content_hash")
EXPORT_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("index", pa.string()),
        ("text", pa.string()),
        ("fields", pa.string()),
        ("content_hash", pa.string()),
        ("analysis", pa.string()),  # JSON, or null: store, category chain, title, brand, price
    ]
)
VECTOR_COLUMNS = ("id", "index", "content_hash", "model", "dimension", "vector")
WRITE_BATCH = 2048


def file_format(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".parquet":
        return "parquet"
    raise BadFile(f"{path}: unknown format {suffix!r}; use a .jsonl or .parquet file.")


# -- catalog exports ---------------------------------------------------------------------------------


def write_records(path: str | Path, records: Iterable[dict[str, Any]]) -> int:
    """Stream records into a JSONL or Parquet file; returns how many were written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    if file_format(path) == "jsonl":
        with path.open("w", encoding="utf-8") as out:
            for record in records:
                out.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
                count += 1
        return count
    with pq.ParquetWriter(path, EXPORT_SCHEMA) as writer:
        batch: list[dict[str, Any]] = []
        for record in records:
            analysis = record.get("analysis")
            batch.append(
                {
                    **record,
                    "fields": json.dumps(record["fields"], ensure_ascii=False, default=str),
                    "analysis": None if analysis is None else json.dumps(analysis, ensure_ascii=False, default=str),
                }
            )
            if len(batch) >= WRITE_BATCH:
                writer.write_table(pa.Table.from_pylist(batch, schema=EXPORT_SCHEMA))
                count += len(batch)
                batch = []
        if batch or count == 0:
            writer.write_table(pa.Table.from_pylist(batch, schema=EXPORT_SCHEMA))
            count += len(batch)
    return count


def _checked(record: Any, where: str) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise BadFile(f"{where}: expected an object with {', '.join(RECORD_KEYS)}.")
    missing = [k for k in RECORD_KEYS if k not in record]
    if missing:
        raise BadFile(f"{where}: missing {', '.join(missing)}.")
    if not isinstance(record["text"], str) or not str(record["id"]):
        raise BadFile(f"{where}: 'id' must be non-empty and 'text' a string.")
    return record


def read_records(path: str | Path) -> Iterator[dict[str, Any]]:
    """Records of an export file, checked one by one (the error names the line or row): the one
    reader of exports, for `embed` (local and Ray), `evaluate` and `analyze`."""
    path = _existing(path)
    if file_format(path) == "jsonl":
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise BadFile(f"{path} line {number}: not JSON ({exc.msg}).") from None
                yield _checked(record, f"{path} line {number}")
        return
    row = 0
    for batch in _parquet(path).iter_batches(batch_size=WRITE_BATCH):
        for record in batch.to_pylist():
            row += 1
            record = _checked(record, f"{path} row {row}")
            if isinstance(record["fields"], str):
                record["fields"] = json.loads(record["fields"])
            if isinstance(record.get("analysis"), str):
                record["analysis"] = json.loads(record["analysis"])
            yield record


def count_records(path: str | Path) -> int:
    """Records in an export, for a progress bar's total: free for Parquet (its metadata), one pass
    over the lines for JSONL; the readers count as they read and do not call this."""
    path = _existing(path)
    if file_format(path) == "parquet":
        return _parquet(path).metadata.num_rows
    with path.open("rb") as lines:
        return sum(1 for line in lines if line.strip())


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise BadFile(f"{path}: no such file.")
    return path


def _parquet(path: Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise BadFile(f"{path}: not a Parquet file ({exc}).") from None


# -- vector files ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VectorRecord:
    id: str
    index: str
    content_hash: str
    model: str
    dimension: int
    vector: np.ndarray


def vector_table(records: list[VectorRecord], dimension: int) -> pa.Table:
    flat = np.concatenate([r.vector.astype(np.float32).ravel() for r in records]) if records else np.zeros(0, "f4")
    return pa.table(
        {
            "id": [r.id for r in records],
            "index": [r.index for r in records],
            "content_hash": [r.content_hash for r in records],
            "model": [r.model for r in records],
            "dimension": pa.array([r.dimension for r in records], pa.int32()),
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.float32()), dimension),
        }
    )


def vector_parts(path: str | Path) -> list[Path]:
    """The Parquet parts of a vector result: the file itself, or every ``*.parquet`` in the folder."""
    path = Path(path)
    if path.is_dir():
        return sorted(path.glob("*.parquet"))
    if not path.exists():
        raise BadFile(f"{path}: no such file or folder.")
    return [path]


def read_vector_rows(path: str | Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """Raw rows of a vector file or folder with a location for error messages; checks the columns."""
    for part in vector_parts(path):
        parquet = _parquet(part)
        missing = [c for c in VECTOR_COLUMNS if c not in parquet.schema_arrow.names]
        if missing:
            raise BadFile(f"{part}: missing columns {', '.join(missing)}; is this a `semantic-catalog embed` result?")
        row = 0
        for batch in parquet.iter_batches(batch_size=WRITE_BATCH, columns=list(VECTOR_COLUMNS)):
            for record in batch.to_pylist():
                row += 1
                yield f"{part.name} row {row}", record


def vector_problem(record: dict[str, Any]) -> str | None:
    """Why a vector row cannot be used, or None."""
    vector = record.get("vector")
    if not record.get("id"):
        return "empty id"
    if vector is None or not isinstance(record.get("dimension"), int):
        return "missing vector or dimension"
    if len(vector) != record["dimension"]:
        return f"vector has {len(vector)} values, dimension says {record['dimension']}"
    if any(v is None or not math.isfinite(v) for v in vector):
        return "vector contains NaN or infinite values"
    return None


def read_vectors(path: str | Path, model: str, wanted: dict[tuple[str, str], str]) -> dict[str, np.ndarray]:
    """Vectors of `embed` for the records ``wanted`` ((id, content hash) -> id); all must be of ``model``."""
    vectors: dict[str, np.ndarray] = {}
    for where, row in read_vector_rows(path):
        problem = vector_problem(row)
        if problem:
            raise BadFile(f"{where}: {problem}.")
        if row["model"] != model:
            raise BadFile(
                f"{where}: embedded with {row['model']!r}, but this run encodes with {model!r}; "
                "pass the --model / --backend / --onnx-dir you gave `embed`."
            )
        key = wanted.get((str(row["id"]), row["content_hash"]))
        if key is not None:
            vectors[key] = np.asarray(row["vector"], dtype=np.float32)
    return vectors
