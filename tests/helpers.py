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


def same_hits(hits: list, expected: list, tolerance: float = 1e-6) -> bool:
    """The same hits in the same order, scores and cosines equal but for float32 rounding: a hot copy's
    exact search (engine/stores/hot.py) and LanceDB's files sum a dot product in different orders."""

    def close(a: float | None, b: float | None) -> bool:
        return a is None if b is None else a is not None and abs(a - b) <= tolerance

    def exact(hit) -> tuple:
        return hit.id, hit.retrievers, hit.text, hit.coverage

    return [exact(h) for h in hits] == [exact(h) for h in expected] and all(
        close(a.score, b.score) and close(a.similarity, b.similarity) for a, b in zip(hits, expected)
    )
