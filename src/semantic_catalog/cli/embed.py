"""`embed` (an export file into Parquet vector parts, resumable, optionally on Ray) and `export-onnx`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from semantic_catalog.cli.models import add_model_arguments, describe, encoder_factory
from semantic_catalog.engine.errors import SemanticCatalogError


def register(sub: Any) -> None:
    embed = sub.add_parser("embed", help="embed an export file (JSONL or Parquet) into Parquet vector parts")
    embed.add_argument("input", help="export file from semantic_export or `pull`")
    embed.add_argument("--out", required=True, help="output folder (re-running continues where it stopped)")
    add_model_arguments(embed, "texts per model call (halved on out-of-memory)")
    embed.add_argument(
        "--ray",
        nargs="?",
        const="local",
        default=None,
        metavar="ADDRESS",
        help="run on Ray Data: a local Ray, or the cluster at ADDRESS (e.g. ray://head:10001)",
    )
    embed.add_argument("--ray-workers", type=int, default=1, help="model replicas (actors) on Ray")
    embed.set_defaults(func=cmd_embed)

    onnx = sub.add_parser("export-onnx", help="export a sentence-transformers model to ONNX for torch-free servers")
    onnx.add_argument("--model", default=None, help="name or path (default: bundled MiniLM)")
    onnx.add_argument("--out", required=True, help="output folder")
    onnx.add_argument("--int8", action="store_true", help="also write a dynamically quantised int8 model")
    onnx.set_defaults(func=cmd_export_onnx)


def cmd_embed(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from semantic_catalog.engine.offline.embedding import embed_file
    from semantic_catalog.engine.offline.records import count_records

    if args.batch_size < 1:
        raise SemanticCatalogError("--batch-size must be at least 1.")
    make_encoder = encoder_factory(args)
    encoder = make_encoder()
    if args.ray is not None:
        from semantic_catalog.engine.offline.ray_embed import embed_with_ray

        report = embed_with_ray(
            args.input,
            args.out,
            make_encoder,
            encoder.name,
            batch_size=args.batch_size,
            address=None if args.ray == "local" else args.ray,
            workers=args.ray_workers,
            gpus_per_worker=1 if args.device == "cuda" else 0,
        )
    else:
        # the bar's total: the one counting pass (free for Parquet); embed_file only reads, once
        total = None if args.quiet else count_records(args.input)
        with tqdm(total=total, unit="rec", desc=f"embed {Path(args.input).name}", disable=args.quiet) as bar:
            report = embed_file(args.input, args.out, encoder, batch_size=args.batch_size, progress=bar.update)
    print(
        f"{report.embedded} embedded, {report.skipped} already done, {report.total} in the input; "
        f"model {encoder.name} ({describe(encoder)}), dimension {encoder.dimension}, {report.rate:.0f} records/s, "
        f"final batch size {report.batch_size}; vectors in {args.out}"
    )
    return 0


def cmd_export_onnx(args: argparse.Namespace) -> int:
    from semantic_catalog.engine.encoders.onnx_export import export_onnx

    path = export_onnx(args.model, args.out, quantize=args.int8)
    print(f"ONNX model written to {path}")
    return 0
