"""Small helpers shared by the test modules."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from django.core.management import call_command

from semantic_catalog.engine.offline.records import read_records


def run(*args: str) -> str:
    """Run a management command; return what it printed."""
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def write_vectors(export: Path, target: Path, model: str, vector: list[float]) -> Path:
    """A vector file for every record of ``export``, all with the same ``vector`` of ``model``."""
    rows = [
        {
            "id": r["id"],
            "index": r["index"],
            "content_hash": r["content_hash"],
            "model": model,
            "dimension": len(vector),
            "vector": vector,
        }
        for r in read_records(export)
    ]
    pq.write_table(pa.Table.from_pylist(rows), target)
    return target
