"""Fixtures the segmentation tests share: a scripted LLM server over real HTTP, settings pointing at it
with small batches, and a dozen demo products whose first words make the expected segments."""

from __future__ import annotations

import pytest

from tests.llm_server import ScriptedLLMServer

NAMES = [
    ("Drill cordless 18V", "drills"),
    ("Drill hammer 750W", "drills"),
    ("Drill bit set", "drills"),
    ("Hose 25 m garden", "hoses"),
    ("Hose reel", "hoses"),
    ("Hose nozzle", "hoses"),
    ("Pan non-stick 28 cm", "pans"),
    ("Pan cast iron", "pans"),
    ("Pan lid glass", "pans"),
]


@pytest.fixture
def llm():
    with ScriptedLLMServer() as server:
        yield server


@pytest.fixture
def segmentation_settings(settings, llm):
    """Small batches (3 items a prompt, 2 taxonomies a consolidation) so a few products make several calls;
    AUTO_SYNC off: the tests segment rows, they need no vectors."""
    config = dict(settings.SEMANTIC_CATALOG)
    config["AUTO_SYNC"] = False
    config["SEGMENTATION"] = {
        "BASE_URL": llm.base_url,
        "MODEL": "scripted",
        "PRODUCTS_PER_PROMPT": 3,
        "TAXONOMIES_PER_CONSOLIDATION": 2,
        "PRODUCTS_PER_REFINEMENT": 3,
        "CONCURRENCY": 2,
        "MAX_RETRIES": 2,
        "REQUEST_TIMEOUT": 10.0,
    }
    settings.SEMANTIC_CATALOG = config
    return config["SEGMENTATION"]


@pytest.fixture
def products(segmentation_settings, make_product):
    """Nine products, three each of drills, hoses and pans (ids as strings, in creation order)."""
    return [str(make_product(name, category=category).pk) for name, category in NAMES]
