"""`finetune`: the embedding model fine-tuned on judged queries, measured by cross-validation against the
base model and a query adapter first."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from semantic_catalog.cli.evaluate import (
    PrefetchedNearest,
    adapted_vectors,
    add_judged_arguments,
    local_index,
    mode_options,
    progress_bar,
    ranked_runs,
)
from semantic_catalog.engine.search.finetune import FinetuneSettings
from semantic_catalog.engine.search.vectors import QueryVectors


def register(sub: Any) -> None:
    command = sub.add_parser(
        "finetune",
        help="fine-tune the embedding model on your judgments, from an export file",
        description="With --folds, first prints nDCG@10 and the other measures of the base model, a query adapter "
        "and the fine-tuned model on queries each has not seen (k-fold); then fine-tunes on all queries and writes "
        "the model folder. Use it like any other model: a new collection, built (semantic_index --model) or "
        "embedded offline (embed --model) and imported, then switched.",
    )
    add_judged_arguments(command)
    command.add_argument("--out", required=True, help="model folder to write (sentence-transformers format)")
    command.add_argument("--folds", type=int, default=5, help="cross-validation folds to measure it first (0: skip)")
    defaults = FinetuneSettings()
    command.add_argument("--epochs", type=int, default=defaults.epochs, help="passes over the examples (1)")
    command.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    command.add_argument("--train-batch-size", type=int, default=defaults.batch_size, help="examples per step (32)")
    command.add_argument(
        "--positives-per-query", type=int, default=defaults.positives_per_query, help="relevant products per query (3)"
    )
    command.add_argument("--hard-negatives", type=int, default=10, help="unjudged top hits mined per query (10)")
    command.add_argument("--output", default=None, help="write the cross-validation results as JSON here")
    command.set_defaults(func=cmd_finetune)


def fold_encoder(args: argparse.Namespace, cache_dir: str, folder: str) -> Any:
    """The encoder of a fold's model, with the command's model options (on a CPU its ONNX export, made in
    ``cache_dir``, a temporary folder: a fold's model is thrown away after its fold)."""
    from semantic_catalog.cli.models import encoder_factory

    options = {**vars(args), "model": folder, "onnx_dir": None, "cache_dir": cache_dir}
    return encoder_factory(argparse.Namespace(**options))()


def cmd_finetune(args: argparse.Namespace) -> int:
    from semantic_catalog.engine.documents import Document
    from semantic_catalog.engine.offline.records import read_records
    from semantic_catalog.engine.search.batch import BatchSearch
    from semantic_catalog.engine.search.evaluation import (
        evaluate,
        judged_queries,
        read_judgments,
        read_queries,
        results_table,
    )
    from semantic_catalog.engine.search.finetune import (
        check_model_folder,
        finetune,
        out_of_fold_runs,
        save_model,
        triples,
    )
    from semantic_catalog.engine.search.query_adapter import AdapterSettings, out_of_fold_adapters, training_data

    settings = FinetuneSettings(args.epochs, args.train_batch_size, args.learning_rate, args.positives_per_query)
    check_model_folder(args.out)
    queries, judgments = read_queries(args.queries), read_judgments(args.judgments)
    judged = judged_queries(queries, judgments)
    encoder, store, collection, _ = local_index(args)
    vectors = dict(zip(judged, QueryVectors(encoder).vectors(list(judged.values()))))
    gains = {q: {doc: rel - args.gain_offset for doc, rel in judgments[q].items()} for q in judged}
    batch = BatchSearch(store, collection)
    depth = args.hard_negatives and args.hard_negatives + max((len(g) for g in gains.values()), default=0)
    prefetched: Any = PrefetchedNearest(store, batch, list(vectors.values()), depth)
    training, doc_vectors = training_data(prefetched, collection, vectors, gains, args.hard_negatives)
    documents = [Document(str(r["id"]), r["text"], r.get("fields") or {}) for r in read_records(args.records)]
    doc_texts = {d.id: d.text for d in documents}
    print(f"{len(training)} of {len(queries)} queries have a relevant, indexed product to learn from")
    report: dict[str, Any] = {"records": args.records, "model": encoder.name, "queries": len(training)}
    note = None if args.quiet else partial(print, file=sys.stderr)
    if args.folds:
        query_ids = sorted(training)
        texts = [judged[q] for q in query_ids]
        options = mode_options(args)
        plain = np.stack([vectors[q] for q in query_ids])
        bar = progress_bar(args, "search")
        runs = ranked_runs(batch, query_ids, texts, plain, options, bar)
        adapters = out_of_fold_adapters(training, doc_vectors, encoder.name, args.folds, AdapterSettings())
        adapted = adapted_vectors(adapters, query_ids, plain)
        adapted_runs = {f"{mode}+adapter": options[mode] for mode in ("semantic", "hybrid")}
        runs |= ranked_runs(batch, query_ids, texts, adapted, adapted_runs, bar)
        tuned_runs = {f"{mode}+finetuned": options[mode] for mode in ("semantic", "hybrid")}
        with tempfile.TemporaryDirectory(prefix="finetune-onnx-") as exports:
            runs |= out_of_fold_runs(
                store, documents, training, judged, tuned_runs, args.folds, partial(fold_encoder, args, exports),
                args.model, settings, note,
            )
        results = {m: evaluate(r, judgments, args.relevant_at, args.gain_offset) for m, r in runs.items()}
        print(f"cross-validated over {args.folds} folds (each query scored by an adapter / a model that never saw it):")
        print(results_table(results))
        report["cross_validation"] = {"folds": args.folds, "results": results}
    model = finetune(triples(training, judged, doc_texts, settings), args.model, settings, progress=not args.quiet)
    folder = save_model(model, args.out, progress=not args.quiet)
    print(f"wrote {folder}: {encoder.name} fine-tuned on {len(training)} queries")
    if args.output:
        Path(args.output).write_text(json.dumps(report, indent=2))
        print(f"wrote {args.output}")
    return 0
