"""`semantic-catalog`: the offline machine's command. Imports no Django; talks to files or HTTP.

    semantic-catalog embed products.jsonl --out vectors/ [--model NAME_OR_PATH] [--batch-size 64] [--device auto]
    semantic-catalog export-onnx --out onnx-model/ [--model NAME_OR_PATH] [--int8]
    semantic-catalog pull URL --index products --out products.parquet --token TOKEN
    semantic-catalog push URL --index products vectors/ --token TOKEN [--dry-run]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .engine.errors import SemanticCatalogError


def _encoder(args: argparse.Namespace) -> Any:
    if args.onnx_dir:
        from .engine.encoders.onnx import OnnxEncoder

        return OnnxEncoder(model_dir=args.onnx_dir, batch_size=args.batch_size)
    from .engine.encoders.sentence_transformers import SentenceTransformerEncoder

    return SentenceTransformerEncoder(model=args.model, device=args.device, batch_size=args.batch_size)


def cmd_embed(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .engine.embedding import embed_file
    from .engine.offline import count_records

    if args.batch_size < 1:
        raise SemanticCatalogError("--batch-size must be at least 1.")
    encoder = _encoder(args)
    total = count_records(args.input)
    with tqdm(total=total, unit="rec", desc=f"embed {Path(args.input).name}", disable=args.quiet) as bar:
        report = embed_file(args.input, args.out, encoder, batch_size=args.batch_size, progress=bar.update)
    print(
        f"{report.embedded} embedded, {report.skipped} already done, {report.total} in the input; "
        f"model {encoder.name}, dimension {encoder.dimension}, {report.rate:.0f} records/s, "
        f"final batch size {report.batch_size}; vectors in {args.out}"
    )
    return 0


def cmd_export_onnx(args: argparse.Namespace) -> int:
    from .engine.onnx_export import export_onnx

    path = export_onnx(args.model, args.out, quantize=args.int8)
    print(f"ONNX model written to {path}")
    return 0


def _client(args: argparse.Namespace) -> Any:
    import httpx

    headers = {"Authorization": f"Token {args.token}"} if args.token else {}
    return httpx.Client(base_url=args.url.rstrip("/") + "/api/semantic/", headers=headers, timeout=args.timeout)


def _raise_for(response: Any) -> None:
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        raise SemanticCatalogError(f"{response.request.method} {response.request.url}: {response.status_code} {detail}")


def cmd_pull(args: argparse.Namespace) -> int:
    out = Path(args.out)
    params = {"file_format": "parquet" if out.suffix == ".parquet" else "jsonl"}
    if args.limit:
        params["limit"] = str(args.limit)
    if args.since:
        params["since"] = args.since
    with _client(args) as client, client.stream("GET", f"{args.index}/export", params=params) as response:
        if response.status_code >= 400:
            response.read()
            _raise_for(response)
        with out.open("wb") as handle:
            for chunk in response.iter_bytes():
                handle.write(chunk)
    print(f"exported {args.index} to {out}")
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    from .engine.offline import vector_parts

    table = pa.concat_tables([pq.read_table(p) for p in vector_parts(args.vectors)])
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    params = {"dry_run": "1" if args.dry_run else "0", "skip_invalid": "1" if args.skip_invalid else "0"}
    with _client(args) as client:
        response = client.post(
            f"{args.index}/import",
            params=params,
            content=buffer.getvalue(),
            headers={"Content-Type": "application/vnd.apache.parquet"},
        )
    _raise_for(response)
    print(json.dumps(response.json(), indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="semantic-catalog", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    embed = sub.add_parser("embed", help="embed an export file (JSONL or Parquet) into Parquet vector parts")
    embed.add_argument("input", help="export file from semantic_export or `pull`")
    embed.add_argument("--out", required=True, help="output folder (re-running continues where it stopped)")
    embed.add_argument("--model", default=None, help="sentence-transformers name or path (default: bundled MiniLM)")
    embed.add_argument("--onnx-dir", default=None, help="use an ONNX model folder from export-onnx instead")
    embed.add_argument("--batch-size", type=int, default=64, help="texts per model call (halved on out-of-memory)")
    embed.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="auto: CUDA when present")
    embed.add_argument("--quiet", action="store_true", help="no progress bar")
    embed.set_defaults(func=cmd_embed)

    onnx = sub.add_parser("export-onnx", help="export a sentence-transformers model to ONNX for torch-free servers")
    onnx.add_argument("--model", default=None, help="name or path (default: bundled MiniLM)")
    onnx.add_argument("--out", required=True, help="output folder")
    onnx.add_argument("--int8", action="store_true", help="also write a dynamically quantised int8 model")
    onnx.set_defaults(func=cmd_export_onnx)

    for name, func, text in (("pull", cmd_pull, "download an export"), ("push", cmd_push, "upload vectors")):
        command = sub.add_parser(name, help=text)
        command.add_argument("url", help="the site, e.g. https://shop.example.com")
        command.add_argument("--index", required=True)
        command.add_argument("--token", default=None, help="API token of a staff user")
        command.add_argument("--timeout", type=float, default=300.0)
        command.set_defaults(func=func)
        if name == "pull":
            command.add_argument("--out", required=True, help="file to write (.jsonl or .parquet)")
            command.add_argument("--limit", type=int, default=None)
            command.add_argument("--since", default=None, help="ISO time: only rows changed after it")
        else:
            command.add_argument("vectors", help="vector file or folder from `embed`")
            command.add_argument("--dry-run", action="store_true", help="report what would change, change nothing")
            command.add_argument("--skip-invalid", action="store_true", help="apply valid records, skip invalid ones")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SemanticCatalogError as exc:
        print(f"semantic-catalog: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
