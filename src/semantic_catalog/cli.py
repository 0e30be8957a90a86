"""`semantic-catalog`: the offline machine's command. Imports no Django; talks to files or HTTP.

semantic-catalog embed products.jsonl --out vectors/ [--model NAME_OR_PATH] [--batch-size 64] [--device auto]
semantic-catalog export-onnx --out onnx-model/ [--model NAME_OR_PATH] [--int8]
semantic-catalog pull URL --index products --out products.parquet --token TOKEN
semantic-catalog push URL --index products vectors/ --token TOKEN [--dry-run]
semantic-catalog evaluate products.jsonl --queries q.csv --judgments j.csv [--vectors vectors/] [--adapter a.npz]
semantic-catalog adapt products.jsonl --queries q.csv --judgments j.csv --out adapter.npz [--folds 5]
semantic-catalog analyze products.jsonl --out results/
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from .engine.errors import SemanticCatalogError


def encoder_factory(args: argparse.Namespace) -> Any:
    """A picklable callable that builds the encoder (Ray builds one per worker).

    ``--backend auto`` is the encoder's own choice: torch on a GPU, the fp32 ONNX export on a CPU (same
    vectors, several times faster: benchmarks/embed_throughput.py; search queries, as in ``evaluate``,
    take the export's int8 weights when its check passed). int8 documents (``onnx-int8``) are faster
    still but move stored vectors, so they are opt-in.
    """
    from .engine.encoders.onnx import OnnxEncoder
    from .engine.encoders.sentence_transformers import SentenceTransformerEncoder

    if args.onnx_dir:
        return partial(OnnxEncoder, model_dir=args.onnx_dir, batch_size=args.batch_size)
    if args.backend == "onnx-int8":
        from .engine.onnx_export import cached_export

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


def cmd_embed(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .engine.embedding import embed_file
    from .engine.offline import count_records

    if args.batch_size < 1:
        raise SemanticCatalogError("--batch-size must be at least 1.")
    make_encoder = encoder_factory(args)
    encoder = make_encoder()
    if args.ray is not None:
        from .engine.ray_embed import embed_with_ray

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
        total = count_records(args.input)
        with tqdm(total=total, unit="rec", desc=f"embed {Path(args.input).name}", disable=args.quiet) as bar:
            report = embed_file(args.input, args.out, encoder, batch_size=args.batch_size, progress=bar.update)
    print(
        f"{report.embedded} embedded, {report.skipped} already done, {report.total} in the input; "
        f"model {encoder.name} ({describe(encoder)}), dimension {encoder.dimension}, {report.rate:.0f} records/s, "
        f"final batch size {report.batch_size}; vectors in {args.out}"
    )
    return 0


def describe(encoder: Any) -> str:
    backend = getattr(encoder, "backend_in_use", None)
    return f"{type(encoder).__name__}, {backend}" if backend else type(encoder).__name__


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


def local_index(args: argparse.Namespace) -> tuple[Any, Any, str, int]:
    """Index an export file in a local LanceDB (reusing `embed` vectors when given): encoder, store,
    collection name and document count."""
    import tempfile

    from tqdm import tqdm

    from .engine.documents import Document
    from .engine.indexer import index_documents
    from .engine.offline import read_records
    from .engine.stores.lancedb import LanceDBStore

    documents = [Document(str(r["id"]), r["text"], r.get("fields") or {}) for r in read_records(args.records)]
    encoder = encoder_factory(args)()
    store = LanceDBStore(args.db or tempfile.mkdtemp(prefix="semantic-catalog-evaluate-"), ann_threshold=None)
    collection = "evaluate"
    store.drop_collection(collection)
    store.create_collection(collection, encoder.dimension, [])
    if args.vectors:
        by_id = {d.id: d for d in documents}
        reused = load_vectors(args.vectors, encoder.name, {(d.id, d.content_hash): d.id for d in documents})
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
    """search(vector, text, mode) -> ranked ids, with the command's fusion options."""
    from .engine.evaluation import DEPTH
    from .engine.search import search

    def run(vector: np.ndarray | None, text: str, mode: str) -> list[str]:
        hits = search(
            store,
            collection,
            None if mode == "keyword" else vector,
            text,
            mode,  # type: ignore[arg-type]
            DEPTH,
            candidates=args.candidates,
            rrf_k=args.rrf_k,
            fusion=args.fusion,
            keyword_weight=args.keyword_weight,
        )
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

    from .engine.evaluation import read_judgments, read_queries, results_table, run_modes
    from .engine.query_adapter import QueryAdapter
    from .engine.search import MODES, check_mode

    modes = [check_mode(m.strip()) for m in args.modes.split(",") if m.strip()] or list(MODES)
    queries, judgments = read_queries(args.queries), read_judgments(args.judgments)
    adapter = QueryAdapter.load(args.adapter) if args.adapter else None  # a bad file stops before indexing
    encoder, store, collection, count = local_index(args)
    if adapter is not None:
        check_adapter_model(adapter, args.adapter, encoder.name)
    search = searcher(args, store, collection)
    texts = sorted({text for text in queries.values() if text.strip()})
    vectors = dict(zip(texts, encoder.encode_queries(texts))) if set(modes) - {"keyword"} else {}
    if adapter is not None and vectors:
        vectors = dict(zip(vectors, adapter.apply(np.stack(list(vectors.values())))))

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

    from .engine.evaluation import evaluate, read_judgments, read_queries, results_table
    from .engine.query_adapter import AdapterSettings, out_of_fold_adapters, train_query_adapter, training_data

    settings = AdapterSettings(epochs=args.epochs, l2=args.l2, hard_negatives=args.hard_negatives)
    queries, judgments = read_queries(args.queries), read_judgments(args.judgments)
    judged = {q: text for q, text in queries.items() if q in judgments and text.strip()}
    encoder, store, collection, _ = local_index(args)
    vectors = dict(zip(judged, encoder.encode_queries(list(judged.values()))))
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


def load_vectors(path: str, model: str, wanted: dict[tuple[str, str], str]) -> dict[str, np.ndarray]:
    """Vectors of `embed` for the records ``wanted`` ((id, content hash) -> id); all must be of ``model``."""
    from .engine.offline import BadFile, read_vector_rows, vector_problem

    vectors: dict[str, np.ndarray] = {}
    for where, row in read_vector_rows(path):
        problem = vector_problem(row)
        if problem:
            raise BadFile(f"{where}: {problem}.")
        if row["model"] != model:
            raise BadFile(
                f"{where}: embedded with {row['model']!r}, but this run encodes with {model!r}; "
                "pass the --model / --backend / --onnx-dir you gave `embed`."
            )
        key = wanted.get((str(row["id"]), row["content_hash"]))
        if key is not None:
            vectors[key] = np.asarray(row["vector"], dtype=np.float32)
    return vectors


def cmd_analyze(args: argparse.Namespace) -> int:
    """Category links, same-product matches and substitutes from an export, written as JSON files."""
    from .engine.cross_store import KINDS, analyze_catalog, catalog_from_rows, write_result_files
    from .engine.offline import BadFile, read_records

    records = list(read_records(args.input))
    indexes = {r["index"] for r in records}
    if len(indexes) != 1:
        raise BadFile(f"{args.input}: expected the records of one index, found {sorted(indexes)}.")
    rows = [(str(r["id"]), r["analysis"]) for r in records if r.get("analysis")]
    if not rows:
        raise BadFile(
            f"{args.input}: no record carries 'analysis' data; declare store_field and category_field on the "
            "index and export again."
        )
    kinds = [kind for kind in KINDS if getattr(args, kind)] or list(KINDS)
    levels = [int(level) for level in args.levels.split(",") if level.strip()]
    encoder = encoder_factory(args)()
    vectors: dict[str, np.ndarray] = {}
    if args.vectors:
        vectors = load_vectors(
            args.vectors, encoder.name, {(str(r["id"]), r["content_hash"]): str(r["id"]) for r in records}
        )
    missing = [r for r in records if str(r["id"]) not in vectors]
    if missing:
        print(f"encoding {len(missing)} records with {encoder.name}", file=sys.stderr)
        vectors.update(zip((str(r["id"]) for r in missing), encoder.encode([r["text"] for r in missing])))
    parameters = {
        "k": args.k,
        "link_threshold": args.link_threshold,
        "match_threshold": args.match_threshold,
        "levels": levels,
    }
    results = analyze_catalog(
        catalog_from_rows(rows, vectors), encoder, kinds, levels, args.k, args.link_threshold, args.match_threshold
    )
    for path in write_result_files(args.out, indexes.pop(), encoder.name, results, parameters):
        print(f"wrote {path}")
    return 0


def add_model_arguments(command: argparse.ArgumentParser, batch_help: str) -> None:
    command.add_argument("--model", default=None, help="sentence-transformers name or path (default: bundled MiniLM)")
    command.add_argument("--onnx-dir", default=None, help="use an ONNX model folder from export-onnx instead")
    command.add_argument("--batch-size", type=int, default=64, help=batch_help)
    command.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="auto: CUDA when present")
    command.add_argument(
        "--backend",
        default="auto",
        choices=["auto", "torch", "onnx", "onnx-int8"],
        help="auto: torch (float16) on a GPU, else the ONNX export when onnxruntime is installed "
        "(fp32; queries int8 when the export's check passed)",
    )
    command.add_argument(
        "--cache-dir", default=None, help="where ONNX exports are kept (default ~/.cache/semantic-catalog/onnx)"
    )
    command.add_argument("--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="semantic-catalog", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

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

    analyze = sub.add_parser("analyze", help="category links, matches and substitutes from an export file")
    analyze.add_argument("input", help="export file (JSONL or Parquet) from semantic_export or `pull`")
    analyze.add_argument("--out", required=True, help="folder for category_links.json, substitutions.json, ...")
    analyze.add_argument("--vectors", default=None, help="reuse vectors from `embed` (same model)")
    for kind in ("links", "substitutions", "matches"):
        analyze.add_argument(f"--{kind}", action="store_true", help=f"compute {kind} (default: all three)")
    analyze.add_argument("--levels", default="3,4", help="substitution levels (3 and/or 4)")
    analyze.add_argument("--k", type=int, default=5, help="substitutes per product and level")
    analyze.add_argument("--link-threshold", type=float, default=0.6)
    analyze.add_argument("--match-threshold", type=float, default=0.6)
    add_model_arguments(analyze, "texts per model call")
    analyze.set_defaults(func=cmd_analyze)

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


def add_judged_arguments(command: argparse.ArgumentParser) -> None:
    """Arguments of the commands that search an export file with judged queries (evaluate, adapt)."""
    command.add_argument("records", help="export file (JSONL or Parquet) from semantic_export or `pull`")
    command.add_argument("--queries", required=True, help="CSV (query_id,query) or JSONL")
    command.add_argument("--judgments", required=True, help="CSV (query_id,id,relevance) or JSONL")
    command.add_argument("--vectors", default=None, help="reuse vectors from `embed` (same model) instead of encoding")
    command.add_argument("--db", default=None, help="LanceDB folder to build in (default: a new temporary one)")
    command.add_argument("--relevant-at", type=float, default=1.0, help="relevance counted as relevant (>=)")
    command.add_argument("--gain-offset", type=float, default=0.0, help="nDCG gain = relevance - offset")
    command.add_argument("--candidates", type=int, default=100, help="hits per retriever fused by hybrid")
    command.add_argument("--fusion", default="convex", choices=["convex", "rrf"], help="hybrid fusion")
    command.add_argument("--keyword-weight", type=float, default=0.6, help="keyword share in convex fusion")
    command.add_argument("--rrf-k", type=int, default=60, help="reciprocal rank fusion constant")
    add_model_arguments(command, "texts per model call")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    show_progress_notes()
    try:
        return args.func(args)
    except SemanticCatalogError as exc:
        print(f"semantic-catalog: error: {exc}", file=sys.stderr)
        return 2


class StderrNotes(logging.Handler):
    """Prints a log record to whatever ``sys.stderr`` is at the time."""

    def emit(self, record: logging.LogRecord) -> None:
        print(f"semantic-catalog: {record.getMessage()}", file=sys.stderr)


def show_progress_notes() -> None:
    """The library's own INFO notes (such as a one-time ONNX export) on stderr; other libraries stay quiet."""
    logger = logging.getLogger("semantic_catalog")
    if not any(isinstance(handler, StderrNotes) for handler in logger.handlers):
        logger.addHandler(StderrNotes())
        logger.setLevel(logging.INFO)


if __name__ == "__main__":
    sys.exit(main())
