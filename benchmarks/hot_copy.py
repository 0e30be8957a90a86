"""Hot copies against reading the files: the engine's hybrid search, in one process, on the 54,667 Home
Depot titles of the latency benchmark's site.

Two LanceDBStores open the same folder, one with hot copies (the default) and one with ``hot_copy_mb=0``;
each dev query runs on both in turn (so a machine that slows down for a while slows both alike), with
the query's encoding inside the timed call, as the search service runs it (the default encoder: the
bundled model's ONNX export, int8 queries, 2 threads). Reported: p50 and mean per store and mode, their
ratio, and how many rankings were identical: between the two stores, and between two runs on the files.
LanceDB's full-text search returns equally scored rows in any order and, at the limit, any of them; the
store orders ties by id, but which of the tied rows make the cut still varies from run to run, so a
ranking is also compared "up to ties": the same scores, position by position, and the same ids wherever
the score is above the last one's (the check must hold for every query).

A second part does the same on the same titles without a vector index (a copy of the collection made
once with ``ann_threshold=None``: what every collection below the 50,000-row default threshold is), where
the hot copy's vector search is an exact one in memory (``HotCopy.nearest``) and the files' is LanceDB's
flat search; modes hybrid and semantic.

    .venv/bin/python benchmarks/hot_copy.py [--queries 300] [--skip-unindexed]

Needs the site benchmarks/search_latency.py builds (benchmarks/results/cache/latency-site; run that first)
and ../shared/data/search/homedepot (skips with a message otherwise). Writes benchmarks/results/hot_copy.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from _homedepot import load
from _results import ROOT, write_report

sys.path.insert(0, str(ROOT / "src"))

from semantic_catalog.engine import Document  # noqa: E402
from semantic_catalog.engine.encoders import SentenceTransformerEncoder  # noqa: E402
from semantic_catalog.engine.search.pipeline import QueryOptions, search  # noqa: E402
from semantic_catalog.engine.stores.lancedb import LanceDBStore  # noqa: E402

FOLDER = ROOT / "benchmarks" / "results" / "cache" / "latency-site" / "lancedb"
UNINDEXED = ROOT / "benchmarks" / "results" / "cache" / "hot-copy-unindexed"
MODES = ("hybrid",)  # keyword search does not use the copy (see LanceDBStore.keyword_search)
UNINDEXED_MODES = ("hybrid", "semantic")  # without an index, the semantic search uses the copy too


def same_up_to_ties(a: list[tuple[str, float]], b: list[tuple[str, float]], tolerance: float = 1e-5) -> bool:
    """The same scores position by position, and the same ids wherever the score is above the last one."""
    if len(a) != len(b) or any(abs(x - y) > tolerance for (_, x), (_, y) in zip(a, b)):
        return False
    last = a[-1][1] if a else 0.0
    return all(i == j for (i, x), (j, _) in zip(a, b) if x > last + tolerance)


def unindexed_copy(source: LanceDBStore, name: str) -> Path:
    """The collection again without a vector index (made once): its rows, vectors and full-text index."""
    if not (UNINDEXED / f"{name}.lance").exists():
        ids, matrix = source.all_vectors(name)
        rows = source._table(name).to_arrow().select(["id", "text"])
        texts = dict(zip(rows.column("id").to_pylist(), rows.column("text").to_pylist()))
        copy = LanceDBStore(UNINDEXED / "building", ann_threshold=None, hot_copy_mb=0)
        copy.create_collection(name, matrix.shape[1], [])  # no filter fields: the searches take none
        copy.upsert(name, [Document(key, texts[key], {}) for key in ids], matrix)
        copy.optimize(name)
        (UNINDEXED / "building").rename(UNINDEXED / "ready")
    return UNINDEXED / "ready"


def compare(folder: Path, modes: tuple[str, ...], queries: list[str], encoder) -> dict:
    """Each query on a store with hot copies and one without, in turn; timings and identical rankings."""
    stores = {"hot copy": LanceDBStore(folder), "files": LanceDBStore(folder, hot_copy_mb=0)}
    name = stores["files"].list_collections()[0]
    assert stores["hot copy"].warm(name), "the collection did not fit the default hot copy budget"
    copy = stores["hot copy"]._hot.current(name)

    def run(store: LanceDBStore, mode: str, text: str) -> list[tuple[str, float]]:
        encode = None if mode == "keyword" else lambda: encoder.encode_query(text)
        return [(hit.id, hit.score) for hit in search(store, name, text, encode, QueryOptions(mode))]

    for text in queries[:20]:  # warm: the model, the indexes' caches
        for store in stores.values():
            for mode in modes:
                run(store, mode, text)
    times = {(label, mode): [] for label in stores for mode in modes}
    counts = {mode: dict.fromkeys(("identical", "files_twice_identical", "up_to_ties"), 0) for mode in modes}
    for text in queries[20:]:
        for mode in modes:
            ranked = {}
            for label, store in stores.items():
                started = time.perf_counter()
                ranked[label] = run(store, mode, text)
                times[label, mode].append((time.perf_counter() - started) * 1000)
            hot, files = ranked["hot copy"], ranked["files"]
            counts[mode]["identical"] += [i for i, _ in hot] == [i for i, _ in files]
            counts[mode]["files_twice_identical"] += [i for i, _ in run(stores["files"], mode, text)] == [
                i for i, _ in files
            ]
            counts[mode]["up_to_ties"] += same_up_to_ties(hot, files)
    results = {}
    for mode in modes:
        row = {
            label: {
                "p50_ms": round(statistics.median(times[label, mode]), 2),
                "mean_ms": round(statistics.fmean(times[label, mode]), 2),
            }
            for label in stores
        }
        row["p50_ratio"] = round(row["hot copy"]["p50_ms"] / row["files"]["p50_ms"], 3)
        row.update({key: f"{count} of {len(queries) - 20}" for key, count in counts[mode].items()})
        results[mode] = row
        print(f"{mode}: {row}")
    return {
        "titles": len(copy.ids),
        "hot_copy_mb": round(copy.nbytes / 2**20, 1),
        "queries": len(queries) - 20,
        "vector_index": stores["files"].has_vector_index(name),
        "results": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--skip-unindexed", action="store_true", help="only the indexed collection")
    args = parser.parse_args()
    queries = list(load(args.queries + 20).queries.values())
    if not FOLDER.exists():
        sys.exit(f"skipped: {FOLDER.relative_to(ROOT)} is missing; run benchmarks/search_latency.py first")
    encoder = SentenceTransformerEncoder(num_threads=2)
    print("indexed (the latency site's collection):")
    report = compare(FOLDER, MODES, queries, encoder)
    if not args.skip_unindexed:
        source = LanceDBStore(FOLDER, hot_copy_mb=0)
        folder = unindexed_copy(source, source.list_collections()[0])
        print("unindexed (the same titles, no vector index):")
        report["unindexed"] = compare(folder, UNINDEXED_MODES, queries, encoder)
    write_report("hot_copy", report)


if __name__ == "__main__":
    main()
