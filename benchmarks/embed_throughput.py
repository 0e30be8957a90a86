"""Embedding throughput on the Home Depot titles: plain sentence-transformers vs our paths.

Lines, all with the same threads in one run: baseline `SentenceTransformer.encode(batch_size=64)`;
the `semantic-catalog embed` job end to end (export file in, Parquet out) with its CPU default (ONNX
fp32), with torch and with ONNX int8;
ONNX fp32 and int8 encoders. For each: titles/s, share of this CPU's float32 matrix-multiply ceiling
(measured in the same run; FLOPs counted from the real token counts, no padding), mean cosine to
the baseline vectors, and top-10 overlap of search results for dev queries (exact search over the
same titles, queries embedded by the same method); for the job lines, their rate as a share of their own
encoder's raw rate measured in the same run (``% enc``). Also: single-query latency (server encoder),
time spent tokenising, and padding with and without length-sorted batches.

    .venv/bin/python benchmarks/embed_throughput.py [--limit N] [--queries 500] [--threads 2]

Needs ../shared/data/search/homedepot (skips with a message otherwise). Writes
benchmarks/results/embed_throughput.json.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "search" / "homedepot"
sys.path.insert(0, str(ROOT / "src"))
from _results import write_report  # noqa: E402


def load(limit: int | None, queries: int) -> tuple[list[str], list[str]]:
    with (DATA / "products.csv").open(encoding="utf-8") as f:
        titles = [row["product_title"] for row in csv.DictReader(f)]
    with (DATA / "queries_dev.csv").open(encoding="utf-8") as f:
        texts = [row["query"] for row in csv.DictReader(f)]
    return titles[:limit] if limit else titles, texts[:queries]


def matmul_gflops(threads: int) -> dict[str, float]:
    """Best of 5 float32 2048^3 matrix multiplies with numpy's BLAS, torch and onnxruntime: the fastest
    is this CPU's dense float32 ceiling for the run (libraries differ in which vector units they use)."""
    import onnxruntime
    import torch
    from onnx import TensorProto, helper

    n = 2048
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    t = torch.from_numpy(a)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "y"], ["z"])],
        "gemm",
        [helper.make_tensor_value_info(v, TensorProto.FLOAT, [n, n]) for v in ("x", "y")],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [n, n])],
    )
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    session = onnxruntime.InferenceSession(model.SerializeToString(), options)
    runs = {
        "numpy": lambda: a @ a,
        "torch": lambda: t @ t,
        "onnxruntime": lambda: session.run(None, {"x": a, "y": a}),
    }
    best = dict.fromkeys(runs, 0.0)
    for _ in range(5):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            best[name] = max(best[name], 2 * n**3 / (time.perf_counter() - start) / 1e9)
    return best


def flops_per_text(token_counts: np.ndarray, layers: int = 6, hidden: int = 384, ffn: int = 1536) -> float:
    """Mean FLOPs of one MiniLM-L6 forward pass per text, from real token counts (no padding)."""
    dense = 2 * (4 * hidden * hidden + 2 * hidden * ffn) * layers  # per token
    attention = 2 * 2 * hidden * layers  # per token pair
    return float(np.mean(token_counts * dense + token_counts**2 * attention))


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def top10(corpus: np.ndarray, queries: np.ndarray) -> np.ndarray:
    return np.argsort(-(queries @ corpus.T), axis=1)[:, :10]


def overlap(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean([len(set(x) & set(y)) / 10 for x, y in zip(a, b)]))


def query_latency_ms(encode_one, queries: list[str], n: int = 200) -> float:
    times = []
    for text in queries[:n]:
        start = time.perf_counter()
        encode_one(text)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="first N titles (default: all 54,667)")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if not DATA.exists():
        print(f"skipped: {DATA} is absent (this benchmark needs ../shared/data).")
        return
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch
    from sentence_transformers import SentenceTransformer

    from semantic_catalog.engine.encoders import SentenceTransformerEncoder
    from semantic_catalog.engine.encoders.bundled import bundled_model_path
    from semantic_catalog.engine.encoders.onnx import OnnxEncoder
    from semantic_catalog.engine.encoders.onnx_export import export_onnx
    from semantic_catalog.engine.offline.embedding import embed_file
    from semantic_catalog.engine.offline.records import write_records
    from semantic_catalog.engine.stores.lancedb import vector_matrix

    torch.set_num_threads(args.threads)
    titles, queries = load(args.limit, args.queries)
    work = Path(tempfile.mkdtemp(prefix="embed-bench-"))
    onnx_dir = export_onnx(None, work / "onnx", quantize=True)
    gemm = matmul_gflops(args.threads)
    ceiling = max(gemm.values())

    model = SentenceTransformer(bundled_model_path(), device="cpu")
    tokenizer = model.tokenizer
    (token_counts, tokenise_s) = timed(
        lambda: np.array([len(ids) for ids in tokenizer(titles, truncation=True, max_length=256)["input_ids"]])
    )
    flops = flops_per_text(token_counts)
    padded_unsorted = sum(
        max(token_counts[i : i + 64]) * len(token_counts[i : i + 64]) for i in range(0, len(titles), 64)
    )
    ordered = np.sort(token_counts)
    padded_sorted = sum(max(ordered[i : i + 64]) * len(ordered[i : i + 64]) for i in range(0, len(titles), 64))

    results: dict[str, dict[str, float]] = {}
    vectors: dict[str, np.ndarray] = {}
    query_vectors: dict[str, np.ndarray] = {}

    base, seconds = timed(lambda: model.encode(titles, batch_size=64, normalize_embeddings=True, convert_to_numpy=True))
    vectors["baseline"], results["baseline"] = base, {"seconds": seconds}
    query_vectors["baseline"] = model.encode(queries, batch_size=64, normalize_embeddings=True)
    results["baseline"]["query_ms_p50"] = query_latency_ms(
        lambda q: model.encode([q], normalize_embeddings=True), queries
    )

    encoders = {
        "onnx_fp32": OnnxEncoder(onnx_dir, file="model.onnx", num_threads=args.threads),
        "onnx_int8": OnnxEncoder(onnx_dir, file="model.int8.onnx", num_threads=args.threads),
    }
    for label, encoder in encoders.items():
        encoder.encode(["warm up"])
        vectors[label], seconds = timed(lambda e=encoder: e.encode(titles))
        results[label] = {"seconds": seconds, "query_ms_p50": query_latency_ms(encoder.encode_query, queries)}
        query_vectors[label] = encoder.encode(queries)

    export = work / "titles.jsonl"
    write_records(
        export,
        (
            {"id": str(i), "index": "bench", "text": t, "fields": {}, "content_hash": str(i)}
            for i, t in enumerate(titles)
        ),
    )
    jobs = {  # the `semantic-catalog embed` job end to end; on a CPU its default backend is ONNX fp32
        "embed_default_onnx_fp32": encoders["onnx_fp32"],
        "embed_torch": SentenceTransformerEncoder(device="cpu", batch_size=64, backend="torch"),
        "embed_onnx_int8": encoders["onnx_int8"],
    }
    raw_line = {  # the encoder each job line runs, measured raw above (torch: the baseline)
        "embed_default_onnx_fp32": "onnx_fp32",
        "embed_torch": "baseline",
        "embed_onnx_int8": "onnx_int8",
    }
    for label, encoder in jobs.items():
        out = work / f"out-{label}"
        _, seconds = timed(lambda e=encoder, o=out: embed_file(export, o, e, batch_size=64))
        table = pq.read_table(out)
        ids = np.array(table.column("id").to_pylist(), dtype=int)
        vectors[label] = vector_matrix(table.column("vector"))[np.argsort(ids)]  # back to title order
        results[label] = {"seconds": seconds}
        query_vectors[label] = encoder.encode(queries)

    base_top = top10(vectors["baseline"], query_vectors["baseline"])
    for label, row in results.items():
        row["titles_per_s"] = len(titles) / row["seconds"]
        row["ratio_to_baseline"] = (
            row["titles_per_s"] / results["baseline"]["titles_per_s"] if label != "baseline" else 1.0
        )
        row["ceiling_share"] = row["titles_per_s"] * flops / (ceiling * 1e9)
        row["mean_cosine"] = float(np.mean(np.sum(vectors[label] * vectors["baseline"], axis=1)))
        row["top10_overlap"] = overlap(top10(vectors[label], query_vectors[label]), base_top)
    for label, raw in raw_line.items():  # the job against its own encoder, both from this run
        results[label]["share_of_encoder"] = results[label]["titles_per_s"] / results[raw]["titles_per_s"]

    report = {
        "benchmark": "embed_throughput",
        "titles": len(titles),
        "queries": len(queries),
        "threads": args.threads,
        "matmul_gflops": gemm,
        "ceiling_gflops": ceiling,
        "mean_tokens_per_title": float(token_counts.mean()),
        "mflops_per_title": flops / 1e6,
        "ceiling_titles_per_s": ceiling * 1e9 / flops,
        "tokenise_seconds": tokenise_s,
        "tokenise_share_of_baseline": tokenise_s / results["baseline"]["seconds"],
        "padding_overhead_unsorted": padded_unsorted / token_counts.sum() - 1,
        "padding_overhead_sorted": padded_sorted / token_counts.sum() - 1,
        "results": results,
    }
    print(
        f"{len(titles)} titles, {args.threads} threads, matmul ceiling {ceiling:.1f} GFLOP/s, "
        f"{flops / 1e6:.0f} MFLOP/title -> ceiling {report['ceiling_titles_per_s']:.0f} titles/s"
    )
    print(f"{'line':<24}{'titles/s':>9}{'x base':>8}{'% ceil':>8}{'cos':>8}{'top10':>7}{'query ms':>10}{'% enc':>7}")
    for label, row in results.items():
        query_ms = f"{row['query_ms_p50']:.1f}" if "query_ms_p50" in row else "-"
        share = f"{100 * row['share_of_encoder']:.1f}" if "share_of_encoder" in row else "-"
        print(
            f"{label:<24}{row['titles_per_s']:>9.1f}{row['ratio_to_baseline']:>8.2f}{100 * row['ceiling_share']:>7.0f}%"
            f"{row['mean_cosine']:>8.4f}{row['top10_overlap']:>7.3f}{query_ms:>10}{share:>7}"
        )
    print(
        f"tokenising: {tokenise_s:.1f} s ({100 * report['tokenise_share_of_baseline']:.0f}% of the baseline's time); "
        f"padding: +{100 * report['padding_overhead_unsorted']:.0f}% tokens unsorted, "
        f"+{100 * report['padding_overhead_sorted']:.0f}% sorted by length"
    )
    write_report("embed_throughput", report)


if __name__ == "__main__":
    main()
