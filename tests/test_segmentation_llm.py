"""The segmentation pipeline end to end against a real local LLM (``bash scripts/llm.sh``).

Runs only when an OpenAI-compatible server answers: ``SEMANTIC_CATALOG_TEST_LLM_URL`` (its base URL,
``.../v1``) or, without it, the default of scripts/llm.sh (http://127.0.0.1:8088/v1). Otherwise it is
skipped with a message saying how to start one. On 2 CPU cores with the 1.5B model it takes minutes.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from semantic_catalog.engine.segmentation import SegmentationConfig

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_URL = "http://127.0.0.1:8088/v1"
DEFAULT_MODEL = "qwen2.5-coder-1.5b-instruct"
ITEMS = 20


def llm_server() -> tuple[str, str] | None:
    """The server's base URL and model name, or None when nothing listens there.

    llama-cpp-python answers ``/models`` only between completions (one lock for both): a server that
    accepts the connection but is busy counts as up, with ``SEMANTIC_CATALOG_TEST_LLM_MODEL`` (default:
    scripts/llm.sh's 1.5B alias) as the model.
    """
    url = os.environ.get("SEMANTIC_CATALOG_TEST_LLM_URL", DEFAULT_URL).rstrip("/")
    model = os.environ.get("SEMANTIC_CATALOG_TEST_LLM_MODEL", DEFAULT_MODEL)
    try:
        with urllib.request.urlopen(f"{url}/models", timeout=5) as answer:
            models = json.load(answer)["data"]
    except TimeoutError:
        return url, model
    except urllib.error.URLError as exc:
        return (url, model) if isinstance(exc.reason, TimeoutError) else None
    except (OSError, ValueError, KeyError):
        return None
    return (url, models[0]["id"]) if models else None


SERVER = llm_server()
pytestmark = pytest.mark.skipif(
    SERVER is None,
    reason="no local LLM server answers: start one with `bash scripts/llm.sh` "
    "(or set SEMANTIC_CATALOG_TEST_LLM_URL to an OpenAI-compatible base URL)",
)


def demo_products(count: int) -> list[tuple[str, str]]:
    """A fixed spread of the demo catalogue's products (drills, paint, garden, ...): (id, name)."""
    fixture = json.loads((ROOT / "example/shop/fixtures/demo_catalog.json").read_text())
    products = sorted((row["pk"], row["fields"]["name"]) for row in fixture if row["model"] == "shop.product")
    step = len(products) // count
    return [(str(pk), name) for pk, name in products[::step][:count]]


def config_for(url: str, model: str) -> SegmentationConfig:
    """Small batches: on 2 CPU cores the 1.5B model writes a few tokens a second."""
    from semantic_catalog.engine.segmentation import SegmentationConfig

    return SegmentationConfig(
        model=model,
        base_url=url,
        category="home improvement products",
        products_per_prompt=10,
        taxonomies_per_consolidation=20,
        products_per_refinement=10,
        concurrency=1,  # llama-cpp-python's server answers one request at a time
        context_tokens=8192,
        max_output_tokens=1024,  # a looping answer costs minutes; 10 products need about 500
        request_timeout=900.0,
    )


def test_the_client_falls_back_to_json_object_on_the_real_server():
    """llama-cpp-python's server answers a json_schema response format with an HTTP 500 naming it."""
    from semantic_catalog.engine.segmentation import OpenAIChatClient

    assert SERVER is not None
    client = OpenAIChatClient(config_for(*SERVER), transport_retries=1, backoff_base=0.1)
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    reply = client.complete([{"role": "user", "content": 'Answer {"ok": true}.'}], schema, "Ok")
    assert json.loads(reply.text) == {"ok": True}
    assert reply.response_format == "json_object"


def test_a_run_on_the_local_llm_assigns_every_product_once(tmp_path):
    from semantic_catalog.engine.segmentation import run_segmentation, validate_result
    from semantic_catalog.engine.segmentation.types import Item

    assert SERVER is not None
    config = config_for(*SERVER)
    items = [Item(id=pk, text=name) for pk, name in demo_products(ITEMS)]
    storage = tmp_path / "llm-logs"

    result = run_segmentation(items, config, storage_url=str(storage))

    ids = [item.id for item in items]
    assert validate_result(result, ids) == []
    assert sorted(a.item_id for a in result.refined) == sorted(ids)
    assert result.segments, "the consolidated taxonomy has no segment"
    for segment in result.segments:
        assert segment.id.startswith("S_") and segment.name.strip() and segment.definition.strip()
    segment_ids = {segment.id for segment in result.segments}
    assert {a.segment for a in result.refined} <= segment_ids
    assert sum(segment.item_count for segment in result.segments) == len(ids)

    usage = result.usage
    calls = sum(stage.calls for stage in usage.values())
    assert calls >= 3 and sum(stage.cached_calls for stage in usage.values()) == 0
    assert all(stage.tokens_in > 0 and stage.tokens_out > 0 for stage in usage.values() if stage.calls)
    logs = [path for path in storage.rglob("*") if path.is_file() and path.suffix == ".json"]
    assert len(logs) >= calls, f"{calls} LLM calls but {len(logs)} log files under {storage}"
