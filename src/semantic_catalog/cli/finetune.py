"""`finetune`: the embedding model fine-tuned on judged queries, measured by cross-validation against the
base model and a query adapter first."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from semantic_catalog.cli.evaluate import add_judged_arguments, judged_set, mode_options, plain_and_adapted_runs
from semantic_catalog.engine.errors import SemanticCatalogError
from semantic_catalog.engine.search.finetune import FinetuneSettings


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
    command.add_argument(
        "--out", default=None, help="model folder to write (sentence-transformers format); without it, only measure"
    )
    command.add_argument("--folds", type=int, default=5, help="cross-validation folds to measure it first (0: skip)")
    defaults = FinetuneSettings()
    command.add_argument("--epochs", type=int, default=defaults.epochs, help="passes over the examples (1)")
    command.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    command.add_argument("--train-batch-size", type=int, default=defaults.batch_size, help="examples per step (32)")
    command.add_argument(
        "--positives-per-query", type=int, default=defaults.positives_per_query, help="relevant products per query (3)"
    )
    command.add_argument("--hard-negatives", type=int, default=10, help="unjudged top hits mined per query (10)")
    command.add_argument(
        "--negatives-from",
        choices=("semantic", "hybrid"),
        default="semantic",
        help="the base model's search that the fine-tuning's hard negatives are mined from (semantic); the query "
        "adapter it is compared with always mines from semantic search",
    )
    command.add_argument("--output", default=None, help="write the cross-validation results as JSON here")
    command.add_argument(
        "--keyword-weights",
        type=keyword_weights,
        default=(),
        help="with --folds, also hybrid with each of these convex keyword weights (comma-separated, 0 to 1) for "
        "every model: a fine-tuned model's stronger semantic side may want a lower weight than the base model's",
    )
    command.set_defaults(func=cmd_finetune)


def keyword_weights(text: str) -> tuple[float, ...]:
    """``--keyword-weights``: comma-separated numbers from 0 to 1."""
    try:
        weights = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"give numbers from 0 to 1 separated by commas, got {text!r}") from None
    if not all(0.0 <= weight <= 1.0 for weight in weights):
        raise argparse.ArgumentTypeError(f"keyword weights must be from 0 to 1, got {text!r}")
    return weights


def hybrid_ranking(args: argparse.Namespace, data: Any, query_ids: list[str], options: Any) -> dict[str, list[str]]:
    """The base model's hybrid search of the judged queries: ranked ids per query id."""
    from semantic_catalog.cli.evaluate import ranked_runs

    vectors = np.stack([data.vectors[qid] for qid in query_ids])
    texts = [data.judged[qid] for qid in query_ids]
    return ranked_runs(data.batch, query_ids, texts, vectors, {"hybrid": options}, lambda items: items)["hybrid"]


def fold_encoder(args: argparse.Namespace, cache_dir: str, folder: str) -> Any:
    """The encoder of a fold's model, with the command's model options (on a CPU its ONNX export, made in
    ``cache_dir``, a temporary folder: a fold's model is thrown away after its fold)."""
    from semantic_catalog.cli.models import encoder_factory

    options = {**vars(args), "model": folder, "onnx_dir": None, "cache_dir": cache_dir}
    return encoder_factory(argparse.Namespace(**options))()


def cmd_finetune(args: argparse.Namespace) -> int:
    from semantic_catalog.engine.documents import Document
    from semantic_catalog.engine.offline.records import read_records
    from semantic_catalog.engine.search.evaluation import evaluate, results_table
    from semantic_catalog.engine.search.finetune import (
        check_model_folder,
        finetune,
        out_of_fold_runs,
        ranked_negatives,
        save_model,
        triples,
    )
    from semantic_catalog.engine.search.query_adapter import AdapterSettings, out_of_fold_adapters

    settings = FinetuneSettings(args.epochs, args.train_batch_size, args.learning_rate, args.positives_per_query)
    if args.out is None and not args.folds:
        raise SemanticCatalogError("Nothing to do: give --out (the model folder to write), --folds, or both.")
    if args.out is not None:
        check_model_folder(args.out)
    data = judged_set(args, args.hard_negatives)
    documents = [Document(str(r["id"]), r["text"], r.get("fields") or {}) for r in read_records(args.records)]
    model = data.encoder.name
    report: dict[str, Any] = {"records": args.records, "model": model, "queries": len(data.training)}
    query_ids = sorted(data.training)
    options = mode_options(args)
    training = data.training
    runs: dict[str, dict[str, list[str]]] = {}
    weighted = {f"@{w:g}": replace(options["hybrid"], keyword_weight=w) for w in args.keyword_weights}
    if args.folds:
        adapters = out_of_fold_adapters(data.training, data.doc_vectors, model, args.folds, AdapterSettings())
        runs = plain_and_adapted_runs(args, data, adapters, query_ids, weighted)
    if args.negatives_from == "hybrid":
        base = runs.get("hybrid") or hybrid_ranking(args, data, query_ids, options["hybrid"])
        training = ranked_negatives(training, base, args.hard_negatives)
    if args.folds:
        tuned_runs = {f"{mode}+finetuned": options[mode] for mode in ("semantic", "hybrid")}
        tuned_runs |= {f"hybrid+finetuned{suffix}": weighted_options for suffix, weighted_options in weighted.items()}
        note = None if args.quiet else partial(print, file=sys.stderr)
        with tempfile.TemporaryDirectory(prefix="finetune-onnx-") as exports:
            runs |= out_of_fold_runs(
                data.store, documents, {q: training[q] for q in query_ids}, data.judged, tuned_runs,
                args.folds, partial(fold_encoder, args, exports), args.model, settings, note,
            )
        results = {m: evaluate(r, data.judgments, args.relevant_at, args.gain_offset) for m, r in runs.items()}
        print(f"cross-validated over {args.folds} folds (each query scored by an adapter / a model that never saw it):")
        print(results_table(results))
        report["cross_validation"] = {"folds": args.folds, "results": results}
    if args.out is not None:
        doc_texts = {d.id: d.text for d in documents}
        tuned = finetune(triples(training, data.judged, doc_texts, settings), args.model, settings, not args.quiet)
        folder = save_model(tuned, args.out, progress=not args.quiet)
        print(f"wrote {folder}: {model} fine-tuned on {len(data.training)} queries")
    if args.output:
        Path(args.output).write_text(json.dumps(report, indent=2))
        print(f"wrote {args.output}")
    return 0
