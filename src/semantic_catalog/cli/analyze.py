"""`analyze`: category links, same-product matches and substitutes from an export file."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from semantic_catalog.cli.models import add_model_arguments, encoder_factory
from semantic_catalog.engine.crossstore.category_links import DEFAULT_LINK_THRESHOLD
from semantic_catalog.engine.crossstore.product_matching import DEFAULT_THRESHOLD
from semantic_catalog.engine.crossstore.substitutions import DEFAULT_K
from semantic_catalog.engine.offline.records import read_vectors


def register(sub: Any) -> None:
    analyze = sub.add_parser("analyze", help="category links, matches and substitutes from an export file")
    analyze.add_argument("input", help="export file (JSONL or Parquet) from semantic_export or `pull`")
    analyze.add_argument("--out", required=True, help="folder for category_links.json, substitutions.json, ...")
    analyze.add_argument("--vectors", default=None, help="reuse vectors from `embed` (same model)")
    for kind in ("links", "substitutions", "matches"):
        analyze.add_argument(f"--{kind}", action="store_true", help=f"compute {kind} (default: all three)")
    analyze.add_argument("--levels", default="3,4", help="substitution levels (3 and/or 4)")
    analyze.add_argument("--k", type=int, default=DEFAULT_K, help="substitutes per product and level")
    analyze.add_argument("--link-threshold", type=float, default=DEFAULT_LINK_THRESHOLD)
    analyze.add_argument(
        "--match-threshold",
        type=float,
        default=None,
        help=f"default: the matcher's own threshold, else {DEFAULT_THRESHOLD}",
    )
    analyze.add_argument("--matcher", default=None, help="score match candidates with a train-matcher folder")
    analyze.add_argument(
        "--match-candidates",
        type=int,
        default=None,
        metavar="K",
        help="also write match_candidates.json: each product's K best ranked match candidates with scores and "
        "reasons (to measure the candidates' recall@K)",
    )
    add_model_arguments(analyze, "texts per model call")
    analyze.set_defaults(func=cmd_analyze)


def write_candidates(out: str, index: str, model: str, catalog: Any, top_k: int) -> Path:
    """match_candidates.json: the ranked candidates of every product (a report, not an importable kind)."""
    from semantic_catalog.engine.crossstore.analysis import candidate_rows

    path = Path(out) / "match_candidates.json"
    payload = {"kind": "match_candidates", "index": index, "model": model, "top_k": top_k}
    path.write_text(json.dumps({**payload, "rows": candidate_rows(catalog, top_k)}, ensure_ascii=False, indent=1))
    return path


def cmd_analyze(args: argparse.Namespace) -> int:
    """Category links, same-product matches and substitutes from an export, written as JSON files."""
    from semantic_catalog.engine.crossstore.analysis import (
        KINDS,
        analysis_parameters,
        analyze_catalog,
        catalog_from_rows,
        write_result_files,
    )
    from semantic_catalog.engine.errors import BadFile, InvalidQuery
    from semantic_catalog.engine.offline.records import read_records

    if args.match_candidates is not None and args.match_candidates < 1:
        raise InvalidQuery(f"--match-candidates must be at least 1, not {args.match_candidates}.")

    records = list(read_records(args.input))
    indexes = {r["index"] for r in records}
    if len(indexes) != 1:
        raise BadFile(f"{args.input}: expected the records of one index, found {sorted(indexes)}.")
    rows = [(str(r["id"]), r["analysis"]) for r in records if r.get("analysis")]
    if not rows:
        raise BadFile(
            f"{args.input}: no record carries 'analysis' data; declare shop_field and category_field "
            "(CrossStoreMixin) on the index and export again."
        )
    kinds = [kind for kind in KINDS if getattr(args, kind)] or list(KINDS)
    levels = [int(level) for level in args.levels.split(",") if level.strip()]
    encoder = encoder_factory(args)()
    vectors: dict[str, np.ndarray] = {}
    if args.vectors:
        vectors = read_vectors(
            args.vectors, encoder.name, {(str(r["id"]), r["content_hash"]): str(r["id"]) for r in records}
        )
    missing = [r for r in records if str(r["id"]) not in vectors]
    if missing:
        print(f"encoding {len(missing)} records with {encoder.name}", file=sys.stderr)
        vectors.update(zip((str(r["id"]) for r in missing), encoder.encode([r["text"] for r in missing])))
    scorer = None
    if args.matcher:
        from semantic_catalog.engine.crossstore.trained_matcher import load_matcher

        scorer = load_matcher(args.matcher, encoder.name, encoder.dimension)
    parameters = analysis_parameters(args.k, args.link_threshold, args.match_threshold, levels, scorer)
    results = analyze_catalog(
        catalog_from_rows(rows, vectors),
        encoder,
        kinds,
        levels,
        args.k,
        args.link_threshold,
        parameters["match_threshold"],
        scorer,
    )
    index = indexes.pop()
    for path in write_result_files(args.out, index, encoder.name, results, parameters):
        print(f"wrote {path}")
    if args.match_candidates is not None:
        path = write_candidates(args.out, index, encoder.name, catalog_from_rows(rows, vectors), args.match_candidates)
        print(f"wrote {path}")
    return 0
