"""pgvector against LanceDB on the 54,667 Home Depot titles: writes, index build, latency, recall, quality.

Both stores get the same rows: the title vectors of search_quality.py's cached collection (the bundled
model, fp32; indexed there once, so no title is re-embedded here) with the titles, and one synthetic
filter field, ``bucket`` = product_uid % 10 (deterministic, so a ``bucket = 3`` filter keeps 10% of
the rows on both stores). Measured, per store:

- **writes**: ``upsert`` in batches of ``--batch-size`` (default 256, ``semantic_index``'s batch) into a
  new collection: rows per second (a first load: neither store has a vector index yet); then, once
  the index exists, ``--update-rows`` (default 2,560) rows written again with new vectors, as a sync
  drain does: each store adds them to its index as it writes (LanceDB: to the next ``optimize``).
  ``--row-by-row`` also loads PostgreSQL with ``ann_threshold=0`` (the HNSW index made with the table
  and updated by every insert from the first row: about 9 minutes here).
- **index build**: each store's ``optimize`` after the load: LanceDB compacts, folds the rows into the
  full-text index and builds the IVF-HNSW-SQ vector index; PostgreSQL runs VACUUM ANALYZE and builds
  the HNSW index in one pass (both past their 50,000-row ``ann_threshold``; PostgreSQL with the
  server's own maintenance_work_mem and parallel workers, printed in the report).
- **latency**: ``semantic_catalog.engine.search.search`` (what the server calls; limit 10, hybrid with
  100 candidates per retriever) for the first ``--queries`` dev queries (default 300), each mode
  with and without the filter. Query vectors are encoded once up front (the library's default
  encoder), so encoder time is excluded. The stores, modes and filters take turns slice by slice
  within each of ``--repeats`` passes (default 3); each figure is the median over the passes of that
  pass's p50 / p99.
- **recall@10** of semantic search (without and with the filter) against exact top 10 by numpy over
  all vectors.
- **quality**: nDCG@10, recall@10 / @100 and MRR of keyword, semantic and hybrid search (top 100) on
  the dev queries with judgments (``--quality-queries``, default all 4,357), as search_quality.py
  scores them: PostgreSQL ranks full-text hits by ``ts_rank_cd`` (no inverse document frequency),
  LanceDB by BM25.

    .venv/bin/python benchmarks/store_compare.py --dsn "$(bash scripts/postgres.sh)"
    .venv/bin/python benchmarks/store_compare.py --rows 5000 --queries 50 --repeats 1 --quality-queries 100  # quick

The DSN comes from ``--dsn``, else SEMANTIC_CATALOG_BENCH_PG_DSN, else SEMANTIC_CATALOG_TEST_PG_DSN;
without one the PostgreSQL half is skipped with a message. PostgreSQL tables go to the schema
``--schema`` (default ``bench_store_compare``), dropped at the end, so a server other tests use is
left as it was. LanceDB writes to a temporary folder. Needs ../shared/data/search/homedepot (skips
with a message otherwise); runs search_quality.py's indexing first if its cached collection is
missing. Writes benchmarks/results/store_compare.json.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from _homedepot import GAIN_OFFSET, RELEVANT_AT, load
from _results import ROOT, write_report

sys.path.insert(0, str(ROOT / "src"))

from semantic_catalog.engine import Document, FieldSpec, build_filters  # noqa: E402
from semantic_catalog.engine.encoders import SentenceTransformerEncoder  # noqa: E402
from semantic_catalog.engine.filters import Filter  # noqa: E402
from semantic_catalog.engine.search.evaluation import evaluate  # noqa: E402
from semantic_catalog.engine.search.pipeline import MODES, QueryOptions, search  # noqa: E402
from semantic_catalog.engine.stores.base import VectorStore  # noqa: E402
from semantic_catalog.engine.stores.lancedb import LanceDBStore, vector_matrix  # noqa: E402

COLLECTION = "homedepot"
SPECS = [FieldSpec("bucket", "int")]
FILTER_BUCKET = 3
DSN_VARIABLES = ("SEMANTIC_CATALOG_BENCH_PG_DSN", "SEMANTIC_CATALOG_TEST_PG_DSN")
SLICES = 10  # each pass runs the queries in this many slices, every store / mode / filter taking turns
DEPTH = 100  # quality: top 100, as search_quality.py


def corpus() -> tuple[list[str], list[str], np.ndarray]:
    """Ids, titles and vectors of the cached Home Depot collection (built first when missing)."""
    import search_quality

    cached = LanceDBStore(search_quality.CACHE)
    if not cached.has_collection(search_quality.COLLECTION):
        print("building the Home Depot collection first (search_quality.build, about 5-15 minutes)")
        search_quality.build(load(), SentenceTransformerEncoder(), search_quality.CACHE)
    rows = cached.db.open_table(search_quality.COLLECTION).search().select(["id", "text", "vector"]).limit(None)
    table = rows.to_arrow()
    return table.column("id").to_pylist(), table.column("text").to_pylist(), vector_matrix(table.column("vector"))


def bucket(uid: str) -> int:
    return int(uid) % 10


def load_rows(store: VectorStore, ids: list[str], texts: list[str], vectors: np.ndarray, batch: int) -> float:
    """Upsert every row into a new collection in batches; seconds taken."""
    store.drop_collection(COLLECTION)
    store.create_collection(COLLECTION, vectors.shape[1], SPECS)
    documents = [Document(uid, text, {"bucket": bucket(uid)}) for uid, text in zip(ids, texts)]
    started = time.perf_counter()
    for start in range(0, len(documents), batch):
        store.upsert(COLLECTION, documents[start : start + batch], vectors[start : start + batch])
    return time.perf_counter() - started


def timed(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def writes(rows: int, seconds: float) -> dict[str, float]:
    return {"rows": rows, "seconds": round(seconds, 1), "rows_per_s": round(rows / seconds, 0)}


def rewrite_rows(
    store: VectorStore, ids: list[str], texts: list[str], vectors: np.ndarray, rows: int, batch: int
) -> dict[str, float]:
    """Upsert the first ``rows`` rows again with slightly moved vectors (changed rows, as a drain writes
    them) into the indexed collection, then put the original vectors back (untimed)."""
    rng = np.random.default_rng(0)
    moved = vectors[:rows] + rng.standard_normal(vectors[:rows].shape, dtype=np.float32) * 0.01
    moved /= np.linalg.norm(moved, axis=1, keepdims=True)
    documents = [Document(uid, text, {"bucket": bucket(uid)}) for uid, text in zip(ids[:rows], texts[:rows])]
    started = time.perf_counter()
    for start in range(0, rows, batch):
        store.upsert(COLLECTION, documents[start : start + batch], moved[start : start + batch])
    seconds = time.perf_counter() - started
    store.upsert(COLLECTION, documents, vectors[:rows])
    store.optimize(COLLECTION)
    return writes(rows, seconds)


def build_lancedb(folder: Path, ids: list[str], texts: list[str], vectors: np.ndarray, args: Any) -> tuple:
    store = LanceDBStore(folder)
    seconds = load_rows(store, ids, texts, vectors, args.batch_size)
    build = timed(lambda: store.optimize(COLLECTION))
    report = {
        "upsert": writes(len(ids), seconds),
        "index_build_s": {"optimize (compaction, full-text, IVF_HNSW_SQ)": round(build, 1)},
        "vector_index": store.has_vector_index(COLLECTION),
    }
    if args.update_rows:
        report["upsert_indexed"] = rewrite_rows(store, ids, texts, vectors, args.update_rows, args.batch_size)
    print("lancedb:", report, flush=True)
    return store, report


def server_settings(store: Any) -> dict[str, str]:
    with store._connection() as conn:
        names = ("server_version", "shared_buffers", "maintenance_work_mem", "max_parallel_maintenance_workers")
        return {name: conn.execute(f"SHOW {name}").fetchone()[0] for name in names}


def build_pgvector(dsn: str, schema: str, ids: list[str], texts: list[str], vectors: np.ndarray, args: Any) -> tuple:
    from semantic_catalog.engine.stores.pgvector import PgVectorStore

    report: dict[str, Any] = {}
    if args.row_by_row:
        eager = PgVectorStore(dsn, schema=schema, ann_threshold=0)
        report["upsert_row_by_row_hnsw"] = writes(len(ids), load_rows(eager, ids, texts, vectors, args.batch_size))
        eager.drop_collection(COLLECTION)
        eager.close()
    store = PgVectorStore(dsn, schema=schema)
    seconds = load_rows(store, ids, texts, vectors, args.batch_size)
    build = timed(lambda: store.optimize(COLLECTION))
    report.update(
        {
            "upsert": writes(len(ids), seconds),
            "index_build_s": {"optimize (VACUUM ANALYZE, HNSW build)": round(build, 1)},
            "vector_index": store.has_vector_index(COLLECTION),
            "server": server_settings(store),
        }
    )
    if args.update_rows:
        report["upsert_indexed"] = rewrite_rows(store, ids, texts, vectors, args.update_rows, args.batch_size)
    print("pgvector:", report, flush=True)
    return store, report


def exact_top10(vectors: np.ndarray, ids: list[str], queries: np.ndarray, mask: np.ndarray | None) -> list[list[str]]:
    scores = queries @ vectors.T
    if mask is not None:
        scores[:, ~mask] = -np.inf
    top = np.argsort(-scores, axis=1, kind="stable")[:, :10]
    return [[ids[i] for i in row] for row in top]


def exact_search(store: VectorStore, vector: np.ndarray) -> list[str]:
    """Top 10 by a full scan, as each store searches a collection below its ``ann_threshold``."""
    if isinstance(store, LanceDBStore):
        from semantic_catalog.engine.stores.lancedb import _run

        rows = _run(store._vector_query(store._async_table(COLLECTION), vector, 10, None, exact=True))
        return rows.column("id").to_pylist()
    from psycopg import sql

    with store._using(COLLECTION) as (conn, collection):  # type: ignore[attr-defined]
        query = sql.SQL("SELECT id FROM {} ORDER BY vector <#> %s LIMIT 10").format(collection.ident)
        return [row[0] for row in store._run_search(conn, query, [vector], 10, exact=True)]  # type: ignore[attr-defined]


def exact_latency(stores: dict[str, VectorStore], vectors: np.ndarray, count: int) -> dict[str, dict[str, float]]:
    """p50 / p99 ms of exact top-10 search (no vector index) for ``count`` queries, the stores taking turns."""
    spent: dict[str, list[float]] = {name: [] for name in stores}
    for vector in vectors[:count]:
        for name, store in stores.items():
            began = time.perf_counter()
            exact_search(store, vector)
            spent[name].append(time.perf_counter() - began)
    return {
        name: {
            "p50_ms": round(statistics.median(times) * 1000, 2),
            "p99_ms": round(sorted(times)[int(0.99 * (len(times) - 1))] * 1000, 2),
            "queries": len(times),
        }
        for name, times in spent.items()
    }


def recall(store: VectorStore, queries: np.ndarray, truth: list[list[str]], filters: list[Filter]) -> float:
    found = [[h.id for h in store.vector_search(COLLECTION, q, 10, filters)] for q in queries]
    return round(statistics.fmean(len(set(f) & set(t)) / 10 for f, t in zip(found, truth)), 4)


def latency(
    stores: dict[str, VectorStore], texts: list[str], vectors: np.ndarray, filters: list[Filter], repeats: int
) -> dict[str, dict[str, dict[str, float]]]:
    """Median over ``repeats`` passes of each (store, mode, filter)'s p50 / p99 in ms."""
    cases = [(mode, label, f) for mode in MODES for label, f in (("none", []), ("bucket", filters))]
    for store in stores.values():  # warm up: open tables, load indexes
        for mode, _, f in cases:
            for i in range(min(10, len(texts))):
                search(store, COLLECTION, f"warm up {texts[i]}", vectors[i], QueryOptions(mode, 10), f)
    passes: dict[tuple[str, str, str], list[tuple[float, float]]] = {}
    for _ in range(repeats):
        times: dict[tuple[str, str, str], list[float]] = {}
        for start in range(SLICES):
            for name, store in stores.items():
                for mode, label, f in cases:
                    spent = times.setdefault((name, mode, label), [])
                    options = QueryOptions(mode, 10)  # type: ignore[arg-type]
                    for i in range(start, len(texts), SLICES):
                        began = time.perf_counter()
                        search(store, COLLECTION, texts[i], vectors[i], options, f)
                        spent.append(time.perf_counter() - began)
        for key, spent in times.items():
            spent.sort()
            passes.setdefault(key, []).append((statistics.median(spent), spent[int(0.99 * (len(spent) - 1))]))
    result: dict[str, dict[str, dict[str, float]]] = {}
    for (name, mode, label), figures in passes.items():
        result.setdefault(name, {}).setdefault(mode, {})[label] = {
            "p50_ms": round(statistics.median(p50 for p50, _ in figures) * 1000, 2),
            "p99_ms": round(statistics.median(p99 for _, p99 in figures) * 1000, 2),
        }
    return result


def quality(store: VectorStore, queries: dict[str, str], vectors: dict[str, np.ndarray], judgments: dict) -> dict:
    """Mean metrics per mode over the judged queries, top 100 through search()."""
    result = {}
    for mode in MODES:
        options = QueryOptions(mode, DEPTH)  # type: ignore[arg-type]
        runs = {
            qid: [h.id for h in search(store, COLLECTION, text, vectors[qid], options)] for qid, text in queries.items()
        }
        result[mode] = {k: round(v, 4) for k, v in evaluate(runs, judgments, RELEVANT_AT, GAIN_OFFSET).items()}
    return result


def dsn_from(args: argparse.Namespace) -> str | None:
    return args.dsn or next((os.environ[v] for v in DSN_VARIABLES if os.environ.get(v)), None)


def print_tables(report: dict) -> None:
    stores = report["stores"]
    print(f"\n{report['titles']} titles, {report['timed_queries']} queries x {report['repeats']} passes")
    print(
        f"{'store':<12}{'load rows/s':>12}{'index build s':>15}{'rewrite rows/s':>16}{'recall@10':>11}{'filtered':>10}"
    )
    for name, s in stores.items():
        build = "; ".join(f"{v}" for v in s["index_build_s"].values())
        rewrite = s["upsert_indexed"]["rows_per_s"] if "upsert_indexed" in s else float("nan")
        print(
            f"{name:<12}{s['upsert']['rows_per_s']:>12.0f}{build:>15}{rewrite:>16.0f}"
            f"{s['recall@10']:>11.4f}{s['recall@10_filtered']:>10.4f}"
        )
    for name, s in stores.items():
        print(f"{name:<12}exact top-10 (no vector index): p50 {s['exact_semantic']['p50_ms']} ms")
    if "upsert_row_by_row_hnsw" in stores.get("pgvector", {}):
        print(f"pgvector loaded with the index made with the table: {stores['pgvector']['upsert_row_by_row_hnsw']}")
    print(f"\n{'store':<12}{'mode':<10}{'p50 ms':>8}{'p99 ms':>8}{'filtered p50':>14}{'p99':>8}")
    for name, s in stores.items():
        for mode, by_filter in s["latency"].items():
            plain, filtered = by_filter["none"], by_filter["bucket"]
            print(
                f"{name:<12}{mode:<10}{plain['p50_ms']:>8.2f}{plain['p99_ms']:>8.2f}"
                f"{filtered['p50_ms']:>14.2f}{filtered['p99_ms']:>8.2f}"
            )
    print(f"\n{'store':<12}{'mode':<10}{'nDCG@10':>9}{'recall@10':>11}{'recall@100':>12}{'MRR':>8}")
    for name, s in stores.items():
        for mode, row in s.get("quality", {}).items():
            print(
                f"{name:<12}{mode:<10}{row['ndcg@10']:>9.4f}{row['recall@10']:>11.4f}"
                f"{row['recall@100']:>12.4f}{row['mrr']:>8.4f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default=None, help="PostgreSQL DSN (default: " + " or ".join(DSN_VARIABLES) + ")")
    parser.add_argument("--schema", default="bench_store_compare", help="PostgreSQL schema for the benchmark's tables")
    parser.add_argument("--queries", type=int, default=300, help="dev queries timed per mode and filter")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes over the queries")
    parser.add_argument("--batch-size", type=int, default=256, help="rows per upsert")
    parser.add_argument("--quality-queries", type=int, default=None, help="judged dev queries scored (default: all)")
    parser.add_argument("--rows", type=int, default=None, help="load only the first N titles (a quick check)")
    parser.add_argument("--exact-queries", type=int, default=50, help="queries timed with exact search")
    parser.add_argument("--update-rows", type=int, default=2560, help="rows rewritten once indexed (0: skip)")
    parser.add_argument(
        "--row-by-row", action="store_true", help="also load PostgreSQL with the HNSW index made with the table"
    )
    args = parser.parse_args()

    data = load()
    dsn = dsn_from(args)
    if not dsn:
        print(f"PostgreSQL skipped: no DSN (--dsn, {' or '.join(DSN_VARIABLES)}; bash scripts/postgres.sh starts one)")
    ids, texts, vectors = corpus()
    ids, texts, vectors = ids[: args.rows], texts[: args.rows], vectors[: args.rows]
    encoder = SentenceTransformerEncoder()
    query_ids = list(data.queries)
    started = time.perf_counter()
    query_vectors = encoder.encode_queries([data.queries[q] for q in query_ids])
    encode_seconds = time.perf_counter() - started
    by_query = dict(zip(query_ids, query_vectors))
    timed_ids = query_ids[: args.queries]
    timed_texts = [data.queries[q] for q in timed_ids]
    timed_vectors = np.stack([by_query[q] for q in timed_ids])
    judged = [q for q in query_ids if q in data.judgments][: args.quality_queries]
    judged_queries = {q: data.queries[q] for q in judged}
    filters = build_filters(SPECS, {"bucket": FILTER_BUCKET})
    mask = np.array([bucket(uid) == FILTER_BUCKET for uid in ids])
    truth = exact_top10(vectors, ids, timed_vectors, None)
    truth_filtered = exact_top10(vectors, ids, timed_vectors, mask)

    folder = Path(tempfile.mkdtemp(prefix="store-compare-"))
    stores: dict[str, VectorStore] = {}
    reports: dict[str, dict] = {}
    pg: Any = None
    try:
        stores["lancedb"], reports["lancedb"] = build_lancedb(folder, ids, texts, vectors, args)
        if dsn:
            pg, reports["pgvector"] = build_pgvector(dsn, args.schema, ids, texts, vectors, args)
            stores["pgvector"] = pg
        for name, store in stores.items():
            reports[name]["recall@10"] = recall(store, timed_vectors, truth, [])
            reports[name]["recall@10_filtered"] = recall(store, timed_vectors, truth_filtered, filters)
        print("recall:", {n: (r["recall@10"], r["recall@10_filtered"]) for n, r in reports.items()}, flush=True)
        for name, figures in exact_latency(stores, timed_vectors, args.exact_queries).items():
            reports[name]["exact_semantic"] = figures
            print(name, "exact search:", figures, flush=True)
        for name, figures in latency(stores, timed_texts, timed_vectors, filters, args.repeats).items():
            reports[name]["latency"] = figures
            print(name, figures, flush=True)
        for name, store in stores.items():
            reports[name]["quality"] = quality(store, judged_queries, by_query, data.judgments)
            print(name, "quality:", reports[name]["quality"], flush=True)
    finally:
        if pg is not None:
            pg.drop_collection(COLLECTION)
            with pg._connection() as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{args.schema}" CASCADE')
            pg.close()
        shutil.rmtree(folder, ignore_errors=True)

    report = {
        "titles": len(ids),
        "timed_queries": len(timed_ids),
        "repeats": args.repeats,
        "batch_size": args.batch_size,
        "filter": f"bucket = {FILTER_BUCKET} (bucket = product_uid % 10, synthetic; {mask.mean():.1%} of rows)",
        "query_encoding": f"excluded: {len(query_ids)} queries encoded up front in {encode_seconds:.1f} s",
        "encoder": encoder.name,
        "quality_queries": len(judged),
        "cpu_count": os.cpu_count(),
        "stores": reports,
    }
    print_tables(report)
    write_report("store_compare", report)


if __name__ == "__main__":
    main()
