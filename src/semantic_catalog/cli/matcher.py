"""`train-matcher`: a product matcher learned from labelled pairs, for `analyze --matcher` and the
MATCHERS setting."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from semantic_catalog.cli.models import add_model_arguments, encoder_factory
from semantic_catalog.engine.crossstore.trained_matcher import DEFAULT_FOLDS

REPORT_ROWS = {
    "unsupervised": "unsupervised scorer at its threshold",
    "unsupervised_tuned": "unsupervised scorer, threshold chosen per fold",
    "classifier": "trained: classifier over the scorer's features",
    "cross_encoder_alone": "trained: cross-encoder alone",
    "classifier_cross_encoder": "trained: classifier with the cross-encoder",
}


def register(sub: Any) -> None:
    train = sub.add_parser(
        "train-matcher",
        help="learn a product matcher from labelled pairs (confirmed / rejected matches)",
        description="Cross-validates on the labels (precision / recall / F1 against the unsupervised scorer), "
        "then trains on all of them and writes a matcher folder for `analyze --matcher` or the MATCHERS setting.",
    )
    train.add_argument("input", help="export file (JSONL or Parquet) from semantic_export or `pull`")
    train.add_argument(
        "--labels", default=None, help="label file, CSV or JSONL (left, right, label); default: <export>.labels.jsonl"
    )
    train.add_argument("--out", required=True, help="matcher folder to write (an earlier matcher there is replaced)")
    train.add_argument("--vectors", default=None, help="reuse vectors from `embed` (same model)")
    train.add_argument("--folds", type=int, default=DEFAULT_FOLDS, help=f"k of the k-fold report ({DEFAULT_FOLDS})")
    train.add_argument(
        "--no-cross-encoder",
        action="store_true",
        help="the classifier alone: seconds instead of minutes, no torch needed to score",
    )
    train.add_argument("--epochs", type=int, default=4, help="cross-encoder training epochs (4)")
    train.add_argument("--seed", type=int, default=0, help="folds and training seed (0)")
    train.add_argument("--report", default=None, help="also write the cross-validation report here (JSON)")
    add_model_arguments(train, "texts per model call")
    train.set_defaults(func=cmd_train_matcher)


def cmd_train_matcher(args: argparse.Namespace) -> int:
    from semantic_catalog.engine.crossstore.analysis import product_record
    from semantic_catalog.engine.crossstore.labels import labels_path, read_label_file
    from semantic_catalog.engine.crossstore.trained_matcher import train_matcher
    from semantic_catalog.engine.errors import BadFile
    from semantic_catalog.engine.offline.records import read_records, read_vectors

    labels_file = Path(args.labels) if args.labels else labels_path(args.input)
    if not args.labels and not labels_file.exists():
        raise BadFile(
            f"{labels_file}: no such file. semantic_export writes it beside the export when the index has labelled "
            "pairs; or give a label file with --labels."
        )
    labels = read_label_file(labels_file)
    wanted = {i for pair in labels for i in (pair.left, pair.right)}
    records = [r for r in read_records(args.input) if str(r["id"]) in wanted]
    missing_analysis = sorted(str(r["id"]) for r in records if not r.get("analysis"))
    if missing_analysis:
        raise BadFile(
            f"{args.input}: {len(missing_analysis)} labelled records carry no 'analysis' data (first: "
            f"{missing_analysis[0]}); declare shop_field and category_field (CrossStoreMixin) and export again."
        )
    products = {str(r["id"]): product_record(str(r["id"]), r["analysis"]) for r in records}
    encoder = encoder_factory(args)()
    vectors = {}
    if args.vectors:
        wanted_vectors = {(str(r["id"]), r["content_hash"]): str(r["id"]) for r in records}
        vectors = read_vectors(args.vectors, encoder.name, wanted_vectors)
    todo = [r for r in records if str(r["id"]) not in vectors]
    if todo:
        print(f"encoding {len(todo)} labelled records with {encoder.name}", file=sys.stderr)
        vectors.update(zip((str(r["id"]) for r in todo), encoder.encode([r["text"] for r in todo])))

    def note(message: str) -> None:
        print(message, file=sys.stderr)

    matcher = train_matcher(
        products,
        vectors,
        labels,
        encoder.name,
        folds=args.folds,
        cross_encoder=not args.no_cross_encoder,
        epochs=args.epochs,
        seed=args.seed,
        progress=None if args.quiet else note,
    )
    report = matcher.report
    counts = report["labels"]
    print(f"{counts['pairs']} labelled pairs ({counts['same']} same item, {counts['different']} not), ", end="")
    print(f"{args.folds}-fold cross-validation:")
    print(f"{'':50} {'precision':>9} {'recall':>7} {'F1':>6}")
    for key, title in REPORT_ROWS.items():
        if key in report:
            row = report[key]
            print(f"{title:50} {row['precision']:>9.3f} {row['recall']:>7.3f} {row['f1']:>6.3f}")
    folder = matcher.save(args.out)
    uses = "with a cross-encoder" if matcher.uses_cross_encoder else "without cross-encoder"
    print(f"wrote {folder}: threshold {matcher.threshold:.3f}, {len(matcher.features)} features, {uses}")
    if args.report:
        Path(args.report).write_text(json.dumps(report, indent=1))
    return 0
