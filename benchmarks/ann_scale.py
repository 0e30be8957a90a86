"""The approximate vector index: recall@10 against exact search, latency, build time and memory.

Part 1, real: the 54,667 Home Depot title vectors (the collection search_quality.py builds, with the
index `optimize` created past the default 50,000-row threshold) and real dev queries: recall@10 of
the store's default search against exact search, p50 / p99 of both.

Part 2, scale: 1,000,000 synthetic vectors derived from the real ones: each is
normalise(0.8 * a + 0.2 * b + noise), with a and b random real title vectors and Gaussian noise of
norm about 0.35, so they keep the clusters and the neighbour density of real product embeddings.
They are written through LanceDBStore.upsert in batches of 100,000, then `optimize` builds the index
(default settings). Reported: load and build time, index size on disk, peak memory of the process,
p50 / p99 of indexed and flat search, and recall@10 of real query vectors against exact top-10
(numpy over all vectors).

    .venv/bin/python benchmarks/ann_scale.py [--rows 1000000] [--queries 200]
    .venv/bin/python benchmarks/ann_scale.py --rows 0     # the real part only (ann_scale_real.json)
    .venv/bin/python benchmarks/ann_scale.py --sweep      # index types side by side (ann_scale_sweep.json)
    .venv/bin/python benchmarks/ann_scale.py --sweep --rows 300000 --only "one graph,IVF_FLAT"

``--sweep`` loads the synthetic vectors once and then, for each candidate of ``CANDIDATES`` (an index type
with its build options, and the query-time options searched with), builds the index through
``LanceDBStore.optimize`` in a child process of its own (so the child's peak memory is the build's: it
holds none of the benchmark's arrays) and measures build time, peak memory, index size, recall@10 and
p50 / p99 of the store's search; the first candidate run is the baseline of the ratios. ``--only`` runs the
candidates whose label contains one of its comma-separated parts; a sweep at other than 1,000,000 rows
writes ann_scale_sweep_<rows>.json.

Needs ../shared/data/search/homedepot (skips with a message otherwise); runs search_quality.py's
indexing first if its cached collection is missing. Writes benchmarks/results/ann_scale.json.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _homedepot import load
from _results import ROOT, write_report

sys.path.insert(0, str(ROOT / "src"))

from semantic_catalog.engine import Document  # noqa: E402
from semantic_catalog.engine.encoders import SentenceTransformerEncoder  # noqa: E402
from semantic_catalog.engine.stores.lancedb import HNSW_INDEX, IVF_INDEX, LanceDBStore, vector_matrix  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed_searches(store: LanceDBStore, name: str, queries: np.ndarray, exact: bool) -> tuple[list[list[str]], dict]:
    results, latencies = [], []
    for vector in queries:
        started = time.perf_counter()
        if exact:
            rows = store._vector_query(name, vector, 10, None, exact=True)
            ids = rows.column("id").to_pylist()
        else:
            ids = [hit.id for hit in store.vector_search(name, vector, 10)]
        latencies.append(time.perf_counter() - started)
        results.append(ids)
    latencies.sort()
    timing = {
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(latencies[int(0.99 * (len(latencies) - 1))] * 1000, 2),
    }
    return results, timing


def recall_at_10(found: list[list[str]], truth: list[list[str]]) -> float:
    return round(statistics.fmean(len(set(f) & set(t)) / 10 for f, t in zip(found, truth)), 4)


def real_part(query_vectors: np.ndarray) -> tuple[dict, np.ndarray]:
    import search_quality

    store = LanceDBStore(search_quality.CACHE)
    if not store.has_collection(search_quality.COLLECTION):
        print("building the Home Depot collection first (search_quality.build)")
        search_quality.build(load(), SentenceTransformerEncoder(), search_quality.CACHE)
    name = search_quality.COLLECTION
    store.optimize(name)
    table = store.db.open_table(name).search().select(["vector"]).limit(None).to_arrow()
    vectors = vector_matrix(table.column("vector"))
    exact, exact_timing = timed_searches(store, name, query_vectors, exact=True)
    found, timing = timed_searches(store, name, query_vectors, exact=False)
    report = {
        "rows": store.count(name),
        "vector_index": store.has_vector_index(name),
        "index": store.index_options(store.count(name)),
        "search": store.ann_search,
        "recall@10": recall_at_10(found, exact),
        "indexed": timing,
        "flat": exact_timing,
        "search_settings": {"default " + str(store.ann_search): {"recall@10": recall_at_10(found, exact), **timing}},
    }
    # The default `ann_search` against LanceDB's own defaults and re-scoring with full vectors.
    for label, options in (("lancedb_default", {}), ("refine_factor_2", {"refine_factor": 2})):
        other = LanceDBStore(search_quality.CACHE, ann_search=options)
        other_found, other_timing = timed_searches(other, name, query_vectors, exact=False)
        report["search_settings"][label] = {"recall@10": recall_at_10(other_found, exact), **other_timing}
    print("real:", report)
    return report, vectors


def real_title_vectors() -> np.ndarray:
    """The 54,667 title vectors of search_quality.py's collection (built first when missing)."""
    import search_quality

    store = LanceDBStore(search_quality.CACHE)
    if not store.has_collection(search_quality.COLLECTION):
        print("building the Home Depot collection first (search_quality.build)")
        search_quality.build(load(), SentenceTransformerEncoder(), search_quality.CACHE)
    return store.all_vectors(search_quality.COLLECTION)[1]


def synthetic(real: np.ndarray, rows: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = real[rng.integers(0, len(real), rows)]
    b = real[rng.integers(0, len(real), rows)]
    noise = rng.standard_normal((rows, real.shape[1]), dtype=np.float32) * (0.35 / np.sqrt(real.shape[1]))
    mixed = 0.8 * a + 0.2 * b + noise
    return (mixed / np.linalg.norm(mixed, axis=1, keepdims=True)).astype(np.float32)


def scale_part(real: np.ndarray, query_vectors: np.ndarray, rows: int) -> dict:
    vectors = synthetic(real, rows)
    folder = Path(tempfile.mkdtemp(prefix="semantic-scale-"))
    try:
        store = LanceDBStore(folder)
        store.create_collection("scale", vectors.shape[1], [])
        started = time.perf_counter()
        for start in range(0, rows, 100_000):
            chunk = range(start, min(start + 100_000, rows))
            store.upsert("scale", [Document(str(i), "") for i in chunk], vectors[chunk.start : chunk.stop])
        load_seconds = time.perf_counter() - started
        started = time.perf_counter()
        store.optimize("scale")
        build_seconds = time.perf_counter() - started
        index_bytes = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and "_indices" in p.parts)
        truth_scores = vectors @ query_vectors.T
        truth = [[str(i) for i in np.argsort(-truth_scores[:, j])[:10]] for j in range(len(query_vectors))]
        found, timing = timed_searches(store, "scale", query_vectors, exact=False)
        _, flat_timing = timed_searches(store, "scale", query_vectors[:20], exact=True)
        report = {
            "rows": store.count("scale"),
            "vector_index": store.has_vector_index("scale"),
            "load_seconds": round(load_seconds, 1),
            "build_seconds": round(build_seconds, 1),
            "index_mb_on_disk": round(index_bytes / 2**20, 1),
            "peak_rss_mb": round(peak_rss_mb(), 0),
            "recall@10": recall_at_10(found, truth),
            "indexed": timing,
            "flat_20_queries": flat_timing,
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print("scale:", report)
    return report


# (index, ann_index, the ann_search settings searched with); --only picks some by their labels, the
# first one run is the baseline of the ratios
CANDIDATES: list[tuple[str, dict, list[dict]]] = [
    ("IVF_HNSW_SQ sqrt(rows) partitions (the store's default until 2026-12-02)", {"index_type": "IVF_HNSW_SQ"},
     [{"ef": 150}]),
    ("IVF_HNSW_SQ one graph (the default below ivf_threshold)", HNSW_INDEX, [{"ef": 150}]),
    ("IVF_HNSW_SQ m=12 ef_construction=100", {"index_type": "IVF_HNSW_SQ", "m": 12, "ef_construction": 100},
     [{"ef": 150}, {"ef": 300}]),
    ("IVF_FLAT (the default from ivf_threshold)", IVF_INDEX, [{"nprobes": 20}, {"nprobes": 40}, {"nprobes": 80}]),
    ("IVF_PQ 48 sub-vectors", {"index_type": "IVF_PQ", "num_sub_vectors": 48}, [{"nprobes": 40, "refine_factor": 10}]),
]


def build_in_child(folder: Path, ann_index: dict) -> dict:
    """Drops the collection's vector index and builds ``ann_index`` with ``optimize`` in a fresh process."""
    code = (
        "import json, sys, time\n"
        f"sys.path.insert(0, {str(ROOT / 'src')!r})\n"
        "from semantic_catalog.engine.stores.lancedb import LanceDBStore\n"
        f"store = LanceDBStore({str(folder)!r}, ann_threshold=1, ann_index=json.loads(sys.argv[1]))\n"
        "table = store._table('scale')\n"
        "for index in table.list_indices():\n"
        "    if index.columns == ['vector']:\n"
        "        table.drop_index(index.name)\n"
        "started = time.perf_counter()\n"
        "store.optimize('scale')\n"
        "seconds = time.perf_counter() - started\n"
        # VmHWM, not ru_maxrss: after exec, ru_maxrss still counts the parent's size at the fork
        "hwm = next(line for line in open('/proc/self/status') if line.startswith('VmHWM'))\n"
        "print(json.dumps({'build_seconds': round(seconds, 1), 'indexed': store.has_vector_index('scale'),\n"
        "    'peak_rss_mb': round(int(hwm.split()[1]) / 1024)}))\n"
    )
    import json
    import subprocess

    done = subprocess.run([sys.executable, "-c", code, json.dumps(ann_index)], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"building {ann_index} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def sweep(real: np.ndarray, query_vectors: np.ndarray, rows: int, only: list[str] | None = None) -> dict:
    """Every candidate index (or those whose label contains one of ``only``) on the same ``rows`` synthetic
    vectors; ratios against the first."""
    candidates = [c for c in CANDIDATES if not only or any(part in c[0] for part in only)]
    if not candidates:
        raise SystemExit(f"--only {only} matches none of: {[c[0] for c in CANDIDATES]}")
    vectors = synthetic(real, rows)
    truth_scores = vectors @ query_vectors.T
    truth = [[str(i) for i in np.argsort(-truth_scores[:, j])[:10]] for j in range(len(query_vectors))]
    del truth_scores
    folder = Path(tempfile.mkdtemp(prefix="semantic-sweep-"))
    results = {}
    try:
        store = LanceDBStore(folder, ann_threshold=None)
        store.create_collection("scale", vectors.shape[1], [])
        for start in range(0, rows, 100_000):
            chunk = range(start, min(start + 100_000, rows))
            store.upsert("scale", [Document(str(i), "") for i in chunk], vectors[chunk.start : chunk.stop])
        store.optimize("scale")  # compaction only (no threshold): every candidate starts from the same table
        del vectors
        for index_label, ann_index, settings in candidates:
            print(f"building {index_label}", flush=True)
            before = set(folder.rglob("_indices/*"))
            built = build_in_child(folder, ann_index)
            new = [p for p in folder.rglob("_indices/*") if p not in before]  # the dropped indexes stay on disk
            index_bytes = sum(f.stat().st_size for p in new for f in [p, *p.rglob("*")] if f.is_file())
            for ann_search in settings:
                label = f"{index_label}, {', '.join(f'{k} {v}' for k, v in ann_search.items())}"
                searcher = LanceDBStore(folder, ann_search=ann_search)
                timed_searches(searcher, "scale", query_vectors[:20], exact=False)  # warm: opens the index
                found, timing = timed_searches(searcher, "scale", query_vectors, exact=False)
                results[label] = {
                    "ann_index": ann_index,
                    "ann_search": ann_search,
                    **built,
                    "index_mb_on_disk": round(index_bytes / 2**20, 1),
                    "recall@10": recall_at_10(found, truth),
                    **timing,
                }
                print(label, results[label], flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    base = next(iter(results.values()))
    for row in results.values():
        row["build_ratio_to_first"] = round(row["build_seconds"] / base["build_seconds"], 3)
        row["memory_ratio_to_first"] = round(row["peak_rss_mb"] / base["peak_rss_mb"], 3)
        row["p50_ratio_to_first"] = round(row["p50_ms"] / base["p50_ms"], 3)
    print(f"{'candidate':<62}{'build s':>9}{'peak MB':>9}{'index MB':>10}{'recall':>8}{'p50 ms':>8}{'p99 ms':>8}")
    for label, row in results.items():
        print(
            f"{label:<62}{row['build_seconds']:>9}{row['peak_rss_mb']:>9}{row['index_mb_on_disk']:>10}"
            f"{row['recall@10']:>8}{row['p50_ms']:>8}{row['p99_ms']:>8}"
        )
    return {"rows": rows, "candidates": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--sweep", action="store_true", help="index types side by side at --rows")
    parser.add_argument("--only", help="with --sweep: candidates whose label contains one of these, comma-separated")
    args = parser.parse_args()
    data = load(args.queries)
    encoder = SentenceTransformerEncoder()
    query_vectors = encoder.encode(list(data.queries.values()))
    if args.sweep:
        real_vectors = real_title_vectors()
        only = args.only.split(",") if args.only else None
        report = {"queries": len(query_vectors), "sweep": sweep(real_vectors, query_vectors, args.rows, only)}
        write_report("ann_scale_sweep" if args.rows == 1_000_000 else f"ann_scale_sweep_{args.rows}", report)
        return
    real_report, real_vectors = real_part(query_vectors)
    report = {"queries": len(query_vectors), "real": real_report}
    if args.rows:
        report["scale"] = scale_part(real_vectors, query_vectors, args.rows)
    write_report("ann_scale" if args.rows else "ann_scale_real", report)


if __name__ == "__main__":
    main()
