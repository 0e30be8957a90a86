"""`evaluate` and `adapt`: index an export file in a local LanceDB and score search on judged queries,
or learn a query adapter from them. Searches go through the engine's one query pipeline."""

from __future__ import annotations

import argparse
import json
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


def searcher(args: argparse.Namespace, store: Any, collection: str) -> Any:
    """search(vector, text, mode) -> ranked ids (DEPTH of them), with the command's fusion options."""
    from semantic_catalog.engine.search.evaluation import DEPTH
    from semantic_catalog.engine.search.pipeline import check_mode, search

    def options(mode: str) -> QueryOptions:
        return QueryOptions(check_mode(mode), DEPTH, args.candidates, args.fusion, args.keyword_weight, args.rrf_k)

    per_mode = {mode: options(mode) for mode in ("semantic", "keyword", "hybrid")}

    def run(vector: np.ndarray | None, text: str, mode: str) -> list[str]:
        hits = search(store, collection, text, None if mode == "keyword" else vector, per_mode[mode])
        return [hit.id for hit in hits]

    return run


def check_adapter_model(adapter: Any, path: str, model: str) -> None:
    if adapter.model != model:
        raise SemanticCatalogError(
            f"{path} adapts queries of {adapter.model!r}, but the model here is {model!r}: "
            "pass the --model you trained it with, or train a new one with `adapt`."
        )


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Index an export file in a local LanceDB (reusing `embed` vectors when given) and score every mode."""
    from tqdm import tqdm

    from semantic_catalog.engine.search.evaluation import read_judgments, read_queries, results_table, run_modes
    from semantic_catalog.engine.search.pipeline import MODES, check_mode
    from semantic_catalog.engine.search.query_adapter import QueryAdapter

    modes = [check_mode(m.strip()) for m in args.modes.split(",") if m.strip()] or list(MODES)
    queries, judgments = read_queries(args.queries), read_judgments(args.judgments)
    adapter = QueryAdapter.load(args.adapter) if args.adapter else None  # a bad file stops before indexing
    encoder, store, collection, count = local_index(args)
    if adapter is not None:
        check_adapter_model(adapter, args.adapter, encoder.name)
    search = searcher(args, store, collection)
    texts = sorted({text for text in queries.values() if text.strip()})
    encode = QueryVectors(encoder, adapter)
    vectors = dict(zip(texts, encode.vectors(texts))) if set(modes) - {"keyword"} else {}

    def run(text: str, mode: str) -> list[str]:
        return search(vectors.get(text), text, mode)

    def progress(items: Any, desc: str) -> Any:
        return tqdm(items, desc=desc, unit="query", disable=args.quiet)

    results = run_modes(run, queries, judgments, modes, args.relevant_at, args.gain_offset, progress)
    print(results_table(results))
    if args.output:
        report = {"records": args.records, "model": encoder.name, "documents": count, "results": results}
        report["adapter"] = args.adapter
        Path(args.output).write_text(json.dumps(report, indent=2))
        print(f"wrote {args.output}")
    return 0


def cmd_adapt(args: argparse.Namespace) -> int:
    """Learn a query adapter from judged queries; with --folds, first measure it by cross-validation."""
    from tqdm import tqdm

    from semantic_catalog.engine.search.evaluation import evaluate, read_judgments, read_queries, results_table
    from semantic_catalog.engine.search.query_adapter import (
        AdapterSettings,
        out_of_fold_adapters,
        train_query_adapter,
        training_data,
    )

    settings = AdapterSettings(epochs=args.epochs, l2=args.l2, hard_negatives=args.hard_negatives)
    queries, judgments = read_queries(args.queries), read_judgments(args.judgments)
    judged = {q: text for q, text in queries.items() if q in judgments and text.strip()}
    encoder, store, collection, _ = local_index(args)
    vectors = dict(zip(judged, QueryVectors(encoder).vectors(list(judged.values()))))
    gains = {q: {doc: rel - args.gain_offset for doc, rel in judgments[q].items()} for q in judged}
    training, doc_vectors = training_data(store, collection, vectors, gains, settings.hard_negatives)
    print(f"{len(training)} of {len(queries)} queries have a relevant, indexed product to learn from")
    report: dict[str, Any] = {"records": args.records, "model": encoder.name, "queries": len(training)}
    if args.folds:
        search = searcher(args, store, collection)
        runs: dict[str, dict[str, list[str]]] = {}
        adapters = out_of_fold_adapters(training, doc_vectors, encoder.name, args.folds, settings)
        for qid, adapter in tqdm(adapters.items(), desc=f"{args.folds}-fold search", disable=args.quiet):
            adapted = adapter.apply(vectors[qid])
            for mode in ("keyword", "semantic", "hybrid"):
                runs.setdefault(mode, {})[qid] = search(vectors[qid], judged[qid], mode)
            for mode in ("semantic", "hybrid"):
                runs.setdefault(f"{mode}+adapter", {})[qid] = search(adapted, judged[qid], mode)
        results = {m: evaluate(r, judgments, args.relevant_at, args.gain_offset) for m, r in runs.items()}
        print(f"cross-validated over {args.folds} folds (each query scored by an adapter that never saw it):")
        print(results_table(results))
        report["cross_validation"] = {"folds": args.folds, "results": results}
    adapter = train_query_adapter(list(training.values()), doc_vectors, encoder.name, settings)
    adapter.save(args.out)
    print(f"wrote {args.out}: adapter for {encoder.name} from {len(training)} queries")
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

