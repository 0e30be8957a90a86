"""What query coverage costs a hybrid search: the engine's ``search()`` on the Home Depot index with
coverage (each keyword hit's text read and compared with the query's words) and without (a stand-in
store that reads no text, so every keyword hit counts in full, as before), interleaved query by query.

    .venv/bin/python benchmarks/coverage_cost.py [--queries 500]

Reports the median and p90 milliseconds of each and their difference. Uses the index of
benchmarks/search_quality.py (its cache, or builds it). Needs ../shared/data/search/homedepot.
Writes benchmarks/results/coverage_cost.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
from _homedepot import load
from _results import ROOT, write_report

sys.path.insert(0, str(ROOT / "src"))

from search_quality import CACHE, COLLECTION, build  # noqa: E402

from semantic_catalog.engine.encoders import SentenceTransformerEncoder  # noqa: E402
from semantic_catalog.engine.search.pipeline import QueryOptions, search  # noqa: E402
from semantic_catalog.engine.stores.lancedb import LanceDBStore  # noqa: E402


class NoTextStore(LanceDBStore):
    """The same store, its full-text hits read without their text: no coverage, as before."""

    @staticmethod
    def _keyword_rows(table, query, limit, where, vectors=False):  # type: ignore[override]
        builder = table.query().nearest_to_text(query)
        if where:
            builder = builder.where(where)
        columns = ["id", "_score", *(["vector"] if vectors else [])]
        return _with_empty_text(builder.limit(limit).select(columns).to_arrow())


async def _with_empty_text(rows):
    import pyarrow as pa

    table = await rows
    return table.append_column("text", pa.array([None] * table.num_rows, pa.string()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=500)
    args = parser.parse_args()
    data = load(args.queries)
    encoder = SentenceTransformerEncoder()
    store, _ = build(data, encoder, CACHE)
    plain = NoTextStore(CACHE)
    texts = list(data.queries.values())
    vectors = encoder.encode_queries(texts)
    options = QueryOptions("hybrid", 10)
    for text, vector in zip(texts[:20], vectors):  # warm both
        search(store, COLLECTION, text, vector, options)
        search(plain, COLLECTION, text, vector, options)
    times: dict[str, list[float]] = {"with coverage": [], "without": []}
    for text, vector in zip(texts, vectors):
        for name, which in (("with coverage", store), ("without", plain)):
            started = time.perf_counter()
            search(which, COLLECTION, text, vector, options)
            times[name].append((time.perf_counter() - started) * 1000)
    report = {
        name: {"p50_ms": round(statistics.median(ms), 2), "p90_ms": round(float(np.percentile(ms, 90)), 2)}
        for name, ms in times.items()
    }
    report["p50_difference_ms"] = round(report["with coverage"]["p50_ms"] - report["without"]["p50_ms"], 2)
    report["queries"] = len(texts)
    for name in times:
        print(f"{name:>14}: p50 {report[name]['p50_ms']:.2f} ms, p90 {report[name]['p90_ms']:.2f} ms")
    print(f"difference at p50: {report['p50_difference_ms']:+.2f} ms over {len(texts)} queries")
    write_report("coverage_cost", report)


if __name__ == "__main__":
    main()
