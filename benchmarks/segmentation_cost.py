"""What a segmentation run costs on the local LLM (``bash scripts/llm.sh``): a fixed stratified sample of
Indonesian recipes (the same number from each of the 8 main-ingredient files, recipes listed under one
ingredient only), segmented end to end.

    .venv/bin/python benchmarks/segmentation_cost.py [--items 200] [--per-prompt 20] [--replay 2] [--storage DIR]

Reports, per stage (extract, consolidate, refine): wall time and tokens (in / out) per 1,000 items; the cache
hit rate of a second identical run on the same log storage (the goal: 100%, and no request reaches the
server: every chat request is counted by a client that wraps the engine's own); and the server's throughput
with 1 vs several concurrent requests (``--replay`` logged extraction requests sent again one at a time, then
the next ``--replay`` all at once: different requests, so the server's prompt cache does not favour either
pass). Also the sample's purity against the 8 ingredient classes, as a sanity check.
``--storage DIR`` keeps the runs' logs there (default: a temporary folder, removed at the end); a kept folder
is a cache that segmentation_quality.py ``--storage DIR`` reuses for its full-mode row on the same sample.
Needs ../shared/data/multilingual/indonesian-recipes and a server answering at ``--url`` (default: the
SEMANTIC_CATALOG_TEST_LLM_URL environment variable, else http://127.0.0.1:8088/v1); skips with a message
otherwise. Writes benchmarks/results/segmentation_cost.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _recipes import CLASSES, DATA, load_sample
from _results import ROOT, write_report

sys.path.insert(0, str(ROOT / "src"))

from semantic_catalog.engine.segmentation import (  # noqa: E402
    ChatReply,
    OpenAIChatClient,
    SegmentationConfig,
    run_segmentation,
    validate_result,
)
from semantic_catalog.engine.segmentation.quality import agreement, contingency  # noqa: E402
from semantic_catalog.engine.segmentation.types import Item, SegmentationResult  # noqa: E402

DEFAULT_URL = "http://127.0.0.1:8088/v1"


def server_model(url: str) -> str | None:
    """The served model's name; llama-cpp-python answers /models only between completions, so a server that
    is busy counts as up with scripts/llm.sh's 1.5B alias (or SEMANTIC_CATALOG_TEST_LLM_MODEL)."""
    busy = os.environ.get("SEMANTIC_CATALOG_TEST_LLM_MODEL", "qwen2.5-coder-1.5b-instruct")
    try:
        with urllib.request.urlopen(f"{url}/models", timeout=5) as answer:
            return json.load(answer)["data"][0]["id"]
    except TimeoutError:
        return busy
    except urllib.error.URLError as exc:
        return busy if isinstance(exc.reason, TimeoutError) else None
    except (OSError, ValueError, KeyError, IndexError):
        return None


class CountingClient:
    """The engine's own chat client, counting the requests that really leave for the server."""

    def __init__(self, inner: OpenAIChatClient):
        self.inner = inner
        self.model = inner.model
        self.temperature = inner.temperature
        self.requests = 0
        self._lock = threading.Lock()

    def complete(self, messages: list[dict[str, str]], schema: dict[str, Any], schema_name: str) -> ChatReply:
        with self._lock:
            self.requests += 1
        return self.inner.complete(messages, schema, schema_name)


def per_thousand(result: SegmentationResult, items: int) -> dict[str, dict[str, float]]:
    scale = 1000 / items
    return {
        stage: {
            "calls": usage.calls,
            "cached_calls": usage.cached_calls,
            "seconds_per_1000_items": round(usage.seconds * scale, 1),
            "llm_seconds_per_1000_items": round(usage.llm_seconds * scale, 1),
            "tokens_in_per_1000_items": round(usage.tokens_in * scale),
            "tokens_out_per_1000_items": round(usage.tokens_out * scale),
        }
        for stage, usage in result.usage.items()
    }


def purity(result: SegmentationResult, labels: dict[str, str]) -> float:
    """Share of items whose segment's most common ingredient class is their own."""
    truth = [labels[a.item_id] for a in result.refined]
    return agreement(contingency(truth, [a.segment for a in result.refined])).get("purity", 0.0)


def timed_run(items: list[Item], config: SegmentationConfig, storage: str) -> tuple[SegmentationResult, float, int]:
    client = CountingClient(OpenAIChatClient(config))
    started = time.perf_counter()
    result = run_segmentation(items, config, storage_url=storage, client=client)
    return result, time.perf_counter() - started, client.requests


def logged_requests(storage: Path, count: int) -> list[dict[str, Any]]:
    """The first ``count`` extraction requests (first attempts) as the run logged them: messages and schema."""
    paths = sorted(storage.glob("RUN_*/segmentation/*_a1_*.json"))
    return [json.loads(path.read_text()) for path in paths[:count]]


def replay(config: SegmentationConfig, requests: list[dict[str, Any]], concurrency: int) -> dict[str, float]:
    """Sends logged requests again, ``concurrency`` at a time: requests per minute and output tokens/s."""
    client = OpenAIChatClient(config)
    client.mode = requests[0]["metadata"].get("response_format", client.mode)  # what the server accepted

    def send(request: dict[str, Any]) -> int:
        return client.complete(request["messages"], request["schema"], "ExtractAnswer").tokens_out

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        tokens = sum(pool.map(send, requests))
    seconds = time.perf_counter() - started
    return {
        "concurrency": concurrency,
        "requests": len(requests),
        "seconds": round(seconds, 1),
        "requests_per_minute": round(len(requests) / seconds * 60, 2),
        "output_tokens_per_second": round(tokens / seconds, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200, help="recipes in the sample (a multiple of 8)")
    parser.add_argument("--per-prompt", type=int, default=20, help="products per extraction / refinement prompt")
    parser.add_argument("--concurrency", type=int, default=1, help="the runs' concurrent requests")
    parser.add_argument("--max-output-tokens", type=int, default=1536, help="caps an answer that loops")
    parser.add_argument(
        "--replay", type=int, default=2, help="extraction requests replayed one at a time, as many others at once"
    )
    parser.add_argument("--storage", type=Path, help="keep the logs (the cache) in this folder")
    parser.add_argument("--resume", action="store_true", help="--storage may hold an interrupted run's calls")
    parser.add_argument("--url", default=os.environ.get("SEMANTIC_CATALOG_TEST_LLM_URL", DEFAULT_URL))
    args = parser.parse_args()
    if not DATA.is_dir():
        print(f"skipped: {DATA} is absent (the shared evaluation data)")
        return
    url = args.url.rstrip("/")
    model = server_model(url)
    if model is None:
        print(f"skipped: no LLM server answers at {url}; start one with `bash scripts/llm.sh`")
        return

    items, labels = load_sample(args.items // len(CLASSES))
    config = SegmentationConfig(
        model=model,
        base_url=url,
        category="resep masakan Indonesia (Indonesian recipes)",
        products_per_prompt=args.per_prompt,
        products_per_refinement=args.per_prompt,
        concurrency=args.concurrency,
        context_tokens=8192,
        max_output_tokens=args.max_output_tokens,
        request_timeout=1800.0,
    )
    with tempfile.TemporaryDirectory(prefix="segmentation-cost-") as folder:
        storage = args.storage.resolve() if args.storage else Path(folder) / "logs"
        if args.storage and any(storage.glob("RUN_*")) and not args.resume:
            sys.exit(
                f"{storage} holds earlier runs (a cache): the first run would not be timed; pick a new folder, or "
                "pass --resume to go on from an interrupted run (its cached calls count their logged LLM seconds)"
            )
        print(f"{len(items)} recipes, {args.per_prompt} per prompt, model {model} at {url}", flush=True)
        first, first_seconds, first_requests = timed_run(items, config, str(storage))
        print(f"first run: {first_seconds:.0f} s, {first_requests} requests", flush=True)
        second, second_seconds, second_requests = timed_run(items, config, str(storage))
        print(f"second run: {second_seconds:.1f} s, {second_requests} requests", flush=True)
        # different requests for each pass: the server keeps the last prompt's cache, so replaying the same
        # requests again would skip most of their prompt evaluation and flatter the second pass
        requests = logged_requests(storage, 2 * args.replay)
        one, many = requests[: args.replay], requests[args.replay : 2 * args.replay]
        throughput = [replay(config, one, 1), replay(config, many, len(many))] if many else []

    calls = sum(u.calls for u in second.usage.values())
    cached = sum(u.cached_calls for u in second.usage.values())
    report = {
        "items": len(items),
        "classes": len(CLASSES),
        "model": model,
        "config": config.as_dict(),
        "first_run": {
            "seconds": round(first_seconds, 1),
            "seconds_per_1000_items": round(first_seconds * 1000 / len(items), 1),
            "requests": first_requests,
            "cached_calls": sum(u.cached_calls for u in first.usage.values()),  # from an interrupted run (--resume)
            "llm_seconds": round(sum(u.llm_seconds for u in first.usage.values()), 1),
            "segments": len(first.segments),
            "problems": len(first.problems),
            "invalid": validate_result(first, [item.id for item in items]),
            "purity": purity(first, labels),
            "stages": per_thousand(first, len(items)),
        },
        "second_run": {
            "seconds": round(second_seconds, 2),
            "requests": second_requests,
            "calls": calls,
            "cached_calls": cached,
            "cache_hit_rate": round(cached / calls, 4) if calls else None,
            "same_segments": [s.name for s in second.segments] == [s.name for s in first.segments],
        },
        "throughput": throughput,
    }
    print(json.dumps(report, indent=2))
    write_report("segmentation_cost", report)


if __name__ == "__main__":
    main()
