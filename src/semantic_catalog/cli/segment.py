"""`segment`: LLM market segmentation of an export file on the offline machine (the same pipeline as the web
server's runs), writing the log tree and ``segmentation.json`` for ``semantic_import``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

DEFAULT_BASE_URL = "http://127.0.0.1:8088/v1"  # where scripts/llm.sh serves the local LLM


def register(sub: Any) -> None:
    seg = sub.add_parser("segment", help="LLM market segmentation of an export file -> segmentation.json")
    seg.add_argument("input", help="export file (JSONL or Parquet) from semantic_export or `pull`")
    seg.add_argument("--out", required=True, help="folder for segmentation.json (and the logs, unless --logs)")
    seg.add_argument("--logs", default=None, help="log storage: a folder or an fsspec URL such as s3://bucket/prefix")
    seg.add_argument("--storage-options", default=None, help="JSON object of fsspec options for --logs")
    seg.add_argument("--ids", default=None, help="segment only these ids (comma-separated); default: every record")
    seg.add_argument("--run-id", default=None, help="resume this run (its answers come from the cache)")
    seg.add_argument("--base-url", default=os.environ.get("OPENAI_BASE_URL", DEFAULT_BASE_URL))
    seg.add_argument("--model", required=True, help="the model name the endpoint serves")
    seg.add_argument(
        "--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key (never an argument)"
    )
    seg.add_argument("--temperature", type=float, default=0.0)
    seg.add_argument("--category", default="", help="what the items are, shown to the LLM")
    seg.add_argument("--products-per-prompt", type=int, default=40)
    seg.add_argument("--taxonomies-per-consolidation", type=int, default=20)
    seg.add_argument("--products-per-refinement", type=int, default=40)
    seg.add_argument("--max-retries", type=int, default=3)
    seg.add_argument("--concurrency", type=int, default=4)
    seg.add_argument("--requests-per-minute", type=int, default=None)
    seg.add_argument("--tokens-per-minute", type=int, default=None)
    seg.add_argument("--context-tokens", type=int, default=32768)
    seg.add_argument("--max-output-tokens", type=int, default=4096)
    seg.add_argument("--max-item-chars", type=int, default=500)
    seg.add_argument("--timeout", type=float, default=300.0, help="seconds per LLM request")
    seg.add_argument("--prompts-dir", default=None, help="your own prompt templates (default: the bundled ones)")
    seg.add_argument("--quiet", action="store_true", help="no progress bar")
    seg.set_defaults(func=cmd_segment)


def load_items(path: str, ids: str | None) -> list[Any]:
    """The export's records as Items (one index only), restricted to ``ids`` when given."""
    from semantic_catalog.engine.errors import BadFile, SegmentationInputError
    from semantic_catalog.engine.offline.records import read_records
    from semantic_catalog.engine.segmentation import Item

    records = list(read_records(path))
    indexes = {r["index"] for r in records}
    if len(indexes) > 1:
        raise BadFile(f"{Path(path).name}: expected the records of one index, found {sorted(indexes)}.")
    items = [Item(str(r["id"]), r["text"]) for r in records]
    if ids is not None:
        wanted = [i.strip() for i in ids.split(",") if i.strip()]
        known = {item.id: item for item in items}
        if unknown := [i for i in wanted if i not in known]:
            raise SegmentationInputError(f"ids not in {Path(path).name}: {', '.join(unknown[:10])}.")
        items = [known[i] for i in dict.fromkeys(wanted)]
    return items


def check_resumable(logs: str, run_id: str, options: dict[str, Any] | None) -> None:
    """--run-id names a run of the log storage (a typo would silently start a new run)."""
    from semantic_catalog.engine.errors import SegmentationInputError
    from semantic_catalog.engine.segmentation.logs import LogStorage, check_run_id

    check_run_id(run_id)
    if not LogStorage(logs, options).files(run_id):
        raise SegmentationInputError(f"no run {run_id} in {logs}; leave out --run-id to start a new run.")


def cmd_segment(args: argparse.Namespace) -> int:
    """Runs extract -> consolidate -> refine and writes OUT/segmentation.json."""
    from tqdm import tqdm

    from semantic_catalog.engine.errors import ConfigurationError
    from semantic_catalog.engine.segmentation import SegmentationConfig, run_segmentation, write_result

    items = load_items(args.input, args.ids)
    options = None
    if args.storage_options:
        try:
            options = json.loads(args.storage_options)
        except json.JSONDecodeError:
            options = None
        if not isinstance(options, dict):
            raise ConfigurationError("--storage-options must be a JSON object, e.g. '{\"anon\": false}'.")
    config = SegmentationConfig(
        model=args.model,
        base_url=args.base_url,
        api_key=os.environ.get(args.api_key_env, "") or "not-needed",
        temperature=args.temperature,
        category=args.category,
        products_per_prompt=args.products_per_prompt,
        taxonomies_per_consolidation=args.taxonomies_per_consolidation,
        products_per_refinement=args.products_per_refinement,
        max_retries=args.max_retries,
        concurrency=args.concurrency,
        requests_per_minute=args.requests_per_minute,
        tokens_per_minute=args.tokens_per_minute,
        context_tokens=args.context_tokens,
        max_output_tokens=args.max_output_tokens,
        max_item_chars=args.max_item_chars,
        request_timeout=args.timeout,
        prompts_dir=args.prompts_dir,
    )
    out = Path(args.out)
    logs = args.logs or str(out / "logs")
    if args.run_id is not None:
        check_resumable(logs, args.run_id, options)
    bars: dict[str, Any] = {}

    def progress(update: Any) -> None:
        bar = bars.get(update.stage)
        if bar is None:
            for other in bars.values():
                other.close()
            bar = bars[update.stage] = tqdm(total=update.total, desc=update.stage, unit="item", disable=args.quiet)
        bar.total = update.total
        bar.n = update.processed
        bar.refresh()

    try:
        result = run_segmentation(
            items, config, storage_url=logs, run_id=args.run_id, storage_options=options, progress=progress
        )
    finally:
        for bar in bars.values():
            bar.close()
    out.mkdir(parents=True, exist_ok=True)
    path = write_result(result, str(out / "segmentation.json"))
    calls = sum(u.calls for u in result.usage.values())
    cached = sum(u.cached_calls for u in result.usage.values())
    print(
        f"run {result.run_id}: {len(result.segments)} segments, {len(result.refined)} items, {calls} LLM calls "
        f"({cached} from the cache), logs in {logs}"
    )
    for problem in result.problems[:20]:
        print(f"note: {problem}", file=sys.stderr)
    print(f"wrote {path}")
    return 0
