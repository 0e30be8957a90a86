"""`evaluate` and `adapt`: index an export file in a local LanceDB and score search on judged queries,
or learn a query adapter from them. All queries are searched at once (``engine.search.batch``: the query
pipeline's rankings, with an exact vector side)."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from semantic_catalog.cli.models import add_model_arguments, encoder_factory
from semantic_catalog.engine.errors import SemanticCatalogError
from semantic_catalog.engine.offline.records import read_vectors
from semantic_catalog.engine.search.fusion import FUSIONS
from semantic_catalog.engine.search.pipeline import QueryOptions
from semantic_catalog.engine.search.vectors import QueryVectors


def register(sub: Any) -> None:
    evaluate = sub.add_parser("evaluate", help="score search modes on your judgments, from an export file")
    add_judged_arguments(evaluate)
    evaluate.add_argument("--modes", default="semantic,keyword,hybrid", help="comma-separated (default: all)")
    evaluate.add_argument("--adapter", default=None, help="a query adapter file from `adapt` to apply to queries")
    evaluate.add_argument("--output", default=None, help="write the results as JSON here")
    evaluate.set_defaults(func=cmd_evaluate)

    adapt = sub.add_parser("adapt", help="learn a query adapter from your judgments, from an export file")
    add_judged_arguments(adapt)
    adapt.add_argument("--out", required=True, help="adapter file to write (.npz); set it as QUERY_ADAPTER")
    adapt.add_argument("--folds", type=int, default=5, help="cross-validation folds to measure it first (0: skip)")
    adapt.add_argument("--epochs", type=int, default=5, help="passes over the queries (default 5)")
    adapt.add_argument("--l2", type=float, default=1e-2, help="pull toward no change; higher = closer (default 0.01)")
    adapt.add_argument("--hard-negatives", type=int, default=10, help="unjudged top hits per query used as negatives")
    adapt.add_argument("--output", default=None, help="write the cross-validation results as JSON here")
    adapt.set_defaults(func=cmd_adapt)


def local_index(args: argparse.Namespace) -> tuple[Any, Any, str, int]:
    """Index an export file in a local LanceDB (reusing `embed` vectors when given): encoder, store,
    collection name and document count."""
    import tempfile

    from tqdm import tqdm

    from semantic_catalog.engine.documents import Document
    from semantic_catalog.engine.indexer import index_documents
    from semantic_catalog.engine.offline.records import read_records
    from semantic_catalog.engine.stores.lancedb import LanceDBStore

    documents = [Document(str(r["id"]), r["text"], r.get("fields") or {}) for r in read_records(args.records)]
    encoder = encoder_factory(args)()
    store = LanceDBStore(args.db or tempfile.mkdtemp(prefix="semantic-catalog-evaluate-"), ann_threshold=None)
    collection = "evaluate"
    store.drop_collection(collection)
    store.create_collection(collection, encoder.dimension, [])
    if args.vectors:
        by_id = {d.id: d for d in documents}
        reused = read_vectors(args.vectors, encoder.name, {(d.id, d.content_hash): d.id for d in documents})
        if reused:
            store.upsert(collection, [by_id[i] for i in reused], np.stack(list(reused.values())))
    with tqdm(total=len(documents), desc="index", unit="doc", disable=args.quiet) as bar:
        for start in range(0, len(documents), 4096):
            chunk = documents[start : start + 4096]
            index_documents(store, collection, encoder, chunk)
            bar.update(len(chunk))
    store.optimize(collection)
    return encoder, store, collection, len(documents)


def mode_options(args: argparse.Namespace) -> dict[str, QueryOptions]:
    """Each mode's options: DEPTH hits, with the command's fusion options."""
    from semantic_catalog.engine.search.evaluation import DEPTH
    from semantic_catalog.engine.search.pipeline import MODES, check_mode

    return {
        mode: QueryOptions(check_mode(mode), DEPTH, args.candidates, args.fusion, args.keyword_weight, args.rrf_k)
        for mode in MODES
    }


def ranked_runs(
    batch: Any, query_ids: list[str], texts: list[str], vectors: Any, runs: dict[str, QueryOptions], bar: Any
) -> dict[str, dict[str, list[str]]]:
    """Every run's ranked ids per query id, all queries at once (``engine.search.batch``)."""
    from semantic_catalog.engine.search.batch import ranked_ids

    hits = batch.search(texts, vectors, runs, progress=bar)
    return {name: dict(zip(query_ids, ranked_ids(hits[name]))) for name in runs}


def adapted_vectors(adapters: dict[str, Any], query_ids: list[str], plain: np.ndarray) -> np.ndarray:
    """Each query's vector (row of ``plain``, in ``query_ids`` order) through its own fold's adapter:
    one matrix product per fold."""
    folds: dict[int, list[int]] = {}
    for row, qid in enumerate(query_ids):
        folds.setdefault(id(adapters[qid]), []).append(row)
    adapted = np.empty_like(plain)
    for rows in folds.values():
        adapted[rows] = adapters[query_ids[rows[0]]].apply(plain[rows])
    return adapted


class PrefetchedNearest:
    """The store as ``training_data`` uses it, with its hard-negative vector searches answered from one
    batched exact search of every query (the local store has no vector index: exact too) instead of a
    store call per query. Other searches, and deeper ones than prefetched, are searched on demand."""

    def __init__(self, store: Any, batch: Any, vectors: list[np.ndarray], depth: int) -> None:
        self.store, self.batch, self.depth = store, batch, depth
        nearest = batch.nearest(np.stack(vectors), depth) if vectors and depth else []
        self._nearest = {np.asarray(v, dtype=np.float32).tobytes(): hits for v, hits in zip(vectors, nearest)}

    def vector_search(
        self, name: str, vector: np.ndarray, limit: int, filters: Any = (), exclude_ids: Any = ()
    ) -> list[Any]:
        if filters or exclude_ids or name != self.batch.collection:
            return self.store.vector_search(name, vector, limit, filters, exclude_ids)
        hits = self._nearest.get(np.asarray(vector, dtype=np.float32).tobytes())
        if hits is None or (limit > self.depth and len(hits) == self.depth):  # not prefetched, or too few
            hits = self.batch.nearest(vector, limit)[0]
        return hits[:limit]

    def fetch(self, name: str, ids: Any, with_vectors: bool = False) -> Any:
        return self.store.fetch(name, ids, with_vectors)


def progress_bar(args: argparse.Namespace, desc: str) -> Any:
    """A progress bar over the query positions of one batch search."""
    from tqdm import tqdm

    return lambda items: tqdm(items, desc=desc, unit="query", disable=args.quiet)


def check_adapter_model(adapter: Any, path: str, model: str) -> None:
    if adapter.model != model:
        raise SemanticCatalogError(
            f"{path} adapts queries of {adapter.model!r}, but the model here is {model!r}: "
            "pass the --model you trained it with, or train a new one with `adapt`."
        )


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Index an export file in a local LanceDB (reusing `embed` vectors when given) and score every mode,
    all queries at once: exact nearest neighbours from one matrix product, one full-text search per query."""
    from semantic_catalog.engine.search.batch import BatchSearch
    from semantic_catalog.engine.search.evaluation import (
        evaluate,
        judged_queries,
        read_judgments,
        read_queries,
        results_table,
    )
    from semantic_catalog.engine.search.pipeline import MODES, check_mode
    from semantic_catalog.engine.search.query_adapter import QueryAdapter

    modes = [check_mode(m.strip()) for m in args.modes.split(",") if m.strip()] or list(MODES)
    queries, judgments = read_queries(args.queries), read_judgments(args.judgments)
    adapter = QueryAdapter.load(args.adapter) if args.adapter else None  # a bad file stops before indexing
    encoder, store, collection, count = local_index(args)
    if adapter is not None:
        check_adapter_model(adapter, args.adapter, encoder.name)
    judged = judged_queries(queries, judgments)
    texts = list(judged.values())
    vectors = QueryVectors(encoder, adapter).vectors(texts) if set(modes) - {"keyword"} else None
    options = {mode: mode_options(args)[mode] for mode in modes}
    batch = BatchSearch(store, collection)
    runs = ranked_runs(batch, list(judged), texts, vectors, options, progress_bar(args, "search"))
    results = {mode: evaluate(runs[mode], judgments, args.relevant_at, args.gain_offset) for mode in modes}
    print(results_table(results))
    if args.output:
        report = {"records": args.records, "model": encoder.name, "documents": count, "results": results}
        report["adapter"] = args.adapter
        Path(args.output).write_text(json.dumps(report, indent=2))
        print(f"wrote {args.output}")
    return 0


@dataclass
class JudgedSet:
    """What ``adapt`` and ``finetune`` learn from: the export indexed in a local store, the judged
    queries with their plain vectors, and the training queries (those with a relevant, indexed product)."""

    encoder: Any
    store: Any
    collection: str
    batch: Any  # a BatchSearch of the collection
    judgments: dict[str, dict[str, float]]
    judged: dict[str, str]  # query id -> text, queries with judgments
    vectors: dict[str, np.ndarray]  # query id -> plain vector
    training: dict[str, Any]  # query id -> TrainingQuery
    doc_vectors: dict[str, np.ndarray]


def judged_set(args: argparse.Namespace, hard_negatives: int) -> JudgedSet:
    """Index the export, encode the judged queries, and gather the training queries with their
    ``hard_negatives`` mined from one batched search."""
    from semantic_catalog.engine.search.batch import BatchSearch
    from semantic_catalog.engine.search.evaluation import judged_queries, read_judgments, read_queries
    from semantic_catalog.engine.search.query_adapter import training_data

    queries, judgments = read_queries(args.queries), read_judgments(args.judgments)
    judged = judged_queries(queries, judgments)
    encoder, store, collection, _ = local_index(args)
    vectors = dict(zip(judged, QueryVectors(encoder).vectors(list(judged.values()))))
    gains = {q: {doc: rel - args.gain_offset for doc, rel in judgments[q].items()} for q in judged}
    batch = BatchSearch(store, collection)
    depth = hard_negatives and hard_negatives + max((len(g) for g in gains.values()), default=0)
    prefetched: Any = PrefetchedNearest(store, batch, list(vectors.values()), depth)
    training, doc_vectors = training_data(prefetched, collection, vectors, gains, hard_negatives)
    print(f"{len(training)} of {len(queries)} queries have a relevant, indexed product to learn from")
    return JudgedSet(encoder, store, collection, batch, judgments, judged, vectors, training, doc_vectors)


def plain_and_adapted_runs(
    args: argparse.Namespace,
    data: JudgedSet,
    adapters: dict[str, Any],
    query_ids: list[str],
    hybrid_variants: dict[str, QueryOptions] | None = None,
) -> dict[str, dict[str, list[str]]]:
    """Every mode for ``query_ids`` with plain query vectors, and semantic / hybrid with each query's
    out-of-fold adapter (the keyword hits are searched once and reused); each of ``hybrid_variants``
    (a name suffix and its options) runs as "hybrid<suffix>" and "hybrid+adapter<suffix>" too."""
    plain = np.stack([data.vectors[qid] for qid in query_ids])
    adapted = adapted_vectors(adapters, query_ids, plain)
    texts = [data.judged[qid] for qid in query_ids]
    options = mode_options(args)
    bar = progress_bar(args, f"{args.folds}-fold search")
    variants = hybrid_variants or {}
    plain_runs = options | {f"hybrid{suffix}": variant for suffix, variant in variants.items()}
    runs = ranked_runs(data.batch, query_ids, texts, plain, plain_runs, bar)
    adapted_runs = {f"{mode}+adapter": options[mode] for mode in ("semantic", "hybrid")}
    adapted_runs |= {f"hybrid+adapter{suffix}": variant for suffix, variant in variants.items()}
    return runs | ranked_runs(data.batch, query_ids, texts, adapted, adapted_runs, bar)


def cmd_adapt(args: argparse.Namespace) -> int:
    """Learn a query adapter from judged queries; with --folds, first measure it by cross-validation."""
    from semantic_catalog.engine.search.evaluation import evaluate, results_table
    from semantic_catalog.engine.search.query_adapter import (
        AdapterSettings,
        out_of_fold_adapters,
        train_query_adapter,
    )

    settings = AdapterSettings(epochs=args.epochs, l2=args.l2, hard_negatives=args.hard_negatives)
    data = judged_set(args, settings.hard_negatives)
    model = data.encoder.name
    report: dict[str, Any] = {"records": args.records, "model": model, "queries": len(data.training)}
    if args.folds:
        adapters = out_of_fold_adapters(data.training, data.doc_vectors, model, args.folds, settings)
        runs = plain_and_adapted_runs(args, data, adapters, list(adapters))
        results = {m: evaluate(r, data.judgments, args.relevant_at, args.gain_offset) for m, r in runs.items()}
        print(f"cross-validated over {args.folds} folds (each query scored by an adapter that never saw it):")
        print(results_table(results))
        report["cross_validation"] = {"folds": args.folds, "results": results}
    adapter = train_query_adapter(list(data.training.values()), data.doc_vectors, model, settings)
    adapter.save(args.out)
    print(f"wrote {args.out}: adapter for {model} from {len(data.training)} queries")
    if args.output:
        Path(args.output).write_text(json.dumps(report, indent=2))
        print(f"wrote {args.output}")
    return 0


def add_judged_arguments(command: argparse.ArgumentParser) -> None:
    """Arguments of the commands that search an export file with judged queries (evaluate, adapt)."""
    command.add_argument("records", help="export file (JSONL or Parquet) from semantic_export or `pull`")
    command.add_argument("--queries", required=True, help="CSV (query_id,query) or JSONL")
    command.add_argument("--judgments", required=True, help="CSV (query_id,id,relevance) or JSONL")
    command.add_argument("--vectors", default=None, help="reuse vectors from `embed` (same model) instead of encoding")
    command.add_argument("--db", default=None, help="LanceDB folder to build in (default: a new temporary one)")
    command.add_argument("--relevant-at", type=float, default=1.0, help="relevance counted as relevant (>=)")
    command.add_argument("--gain-offset", type=float, default=0.0, help="nDCG gain = relevance - offset")
    defaults = QueryOptions()
    command.add_argument(
        "--candidates", type=int, default=defaults.candidates, help="hits per retriever fused by hybrid"
    )
    command.add_argument("--fusion", default=defaults.fusion, choices=FUSIONS, help="hybrid fusion")
    command.add_argument(
        "--keyword-weight", type=float, default=defaults.keyword_weight, help="keyword share in convex fusion"
    )
    command.add_argument("--rrf-k", type=int, default=defaults.rrf_k, help="reciprocal rank fusion constant")
    add_model_arguments(command, "texts per model call")
