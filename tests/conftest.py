from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

import pytest

from semantic_catalog.engine.crossstore.category_links import CategoryPath, category_centroids
from tests.encoders import CountingEncoder

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session", autouse=True)
def onnx_cache(tmp_path_factory):
    """`semantic-catalog embed` caches ONNX exports under XDG_CACHE_HOME: keep it inside the test run."""
    cache = tmp_path_factory.mktemp("xdg-cache")
    previous = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(cache)
    yield cache
    if previous is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = previous


@pytest.fixture(autouse=True)
def semantic_data_dir(tmp_path, settings):
    """A fresh LanceDB folder per test; the (expensive) encoder instance is shared."""
    from semantic_catalog.search.service import clear_query_cache

    config = dict(settings.SEMANTIC_CATALOG)
    config["DATA_DIR"] = tmp_path / "semantic"
    settings.SEMANTIC_CATALOG = config
    clear_query_cache()
    CountingEncoder.reset()
    _empty_pg_store(config)
    yield tmp_path / "semantic"


def _empty_pg_store(config):
    """With the PostgreSQL store (tests.settings_pg), each test starts without collections, as with a
    fresh LanceDB folder: drop whatever an earlier test (or run) left in the store's schema."""
    store_config = config.get("VECTOR_STORE") or {}
    if not str(store_config.get("BACKEND", "")).endswith("PgVectorStore"):
        return
    from semantic_catalog.backends import get_store

    store = get_store()
    for name in store.list_collections():
        store.drop_collection(name)


@pytest.fixture
def counting():
    CountingEncoder.reset()
    return CountingEncoder


@pytest.fixture
def shop(db):
    """Two stores with small category trees (depth 3) and a handful of products."""
    from shop.models import Category, Store

    a = Store.objects.create(name="Brightfield Home", slug="brightfield")
    b = Store.objects.create(name="Tooler & Co", slug="tooler")
    tools_a = Category.objects.create(store=a, name="Tools")
    drills_a = Category.objects.create(store=a, parent=tools_a, name="Drills")
    kitchen_a = Category.objects.create(store=a, name="Kitchen")
    pans_a = Category.objects.create(store=a, parent=kitchen_a, name="Cookware")
    garden_b = Category.objects.create(store=b, name="Outdoor")
    hoses_b = Category.objects.create(store=b, parent=garden_b, name="Watering")
    return {"a": a, "b": b, "drills": drills_a, "tools": tools_a, "pans": pans_a, "hoses": hoses_b}


@pytest.fixture
def make_product(shop):
    from shop.models import Product

    def make(name: str, category="drills", store="a", description="", brand="", price="10.00", active=True):
        return Product.objects.create(
            name=name,
            description=description,
            brand=brand,
            price=Decimal(price),
            active=active,
            category=shop[category],
            store=shop[store],
        )

    return make


def shared_data(*parts: str) -> Path:
    """Path under ../shared/data, or skip the test with a clear message when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent: this test needs the shared evaluation data (../shared/data).")
    return path


os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def demo():
    """The demo's categories as paths, its products' vectors, and the intended A -> B leaf links."""
    from shop.fixtures.demo_data import load_demo

    data = load_demo()
    nodes = [CategoryPath(pk, str(store), names) for pk, store, names in data.paths.values()]
    encoder = CountingEncoder(device="cpu")
    vectors = dict(zip(data.products, encoder.encode([data.product_text(pk) for pk in data.products])))
    centroids = category_centroids(nodes, {k: str(p["category"]) for k, p in data.products.items()}, vectors)
    parents = {n.path[:-1] for n in nodes}
    leaves = {store: [n for n in nodes if n.shop == store and n.path not in parents] for store in ("1", "2")}
    return {
        "data": data,
        "nodes": nodes,
        "leaves": leaves,
        "vectors": vectors,
        "centroids": centroids,
        "encoder": encoder,
        "intended": data.intended_links,
    }
