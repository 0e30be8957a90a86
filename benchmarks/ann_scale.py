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
from semantic_catalog.engine.stores.lancedb import LanceDBStore, vector_matrix  # noqa: E402


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
        search_quality.build(load(), SentenceTransformerEncoder())
    name = search_quality.COLLECTION
    store.optimize(name)
    table = store.db.open_table(name).search().select(["vector"]).limit(None).to_arrow()
    vectors = vector_matrix(table.column("vector"))
    exact, exact_timing = timed_searches(store, name, query_vectors, exact=True)
    found, timing = timed_searches(store, name, query_vectors, exact=False)
    report = {
        "rows": store.count(name),
        "vector_index": store.has_vector_index(name),
        "index": store.ann_index,
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    data = load(args.queries)
    encoder = SentenceTransformerEncoder()
    query_vectors = encoder.encode(list(data.queries.values()))
    real_report, real_vectors = real_part(query_vectors)
    report = {"queries": len(query_vectors), "real": real_report}
    if args.rows:
        report["scale"] = scale_part(real_vectors, query_vectors, args.rows)
    write_report("ann_scale" if args.rows else "ann_scale_real", report)


if __name__ == "__main__":
    main()
