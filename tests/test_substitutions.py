"""Substitutes at level 3 and 4 across the demo's two stores, never the item itself or its twin."""

from __future__ import annotations

import pytest

from semantic_catalog.engine.crossstore.category_links import link_categories
from semantic_catalog.engine.crossstore.substitutions import ProductRef, find_substitutions
from semantic_catalog.engine.errors import InvalidQuery


@pytest.fixture(scope="module")
def world(demo):
    data = demo["data"]
    products = [ProductRef(pk, str(f["store"]), str(f["category"])) for pk, f in data.products.items()]
    links = link_categories(demo["leaves"]["1"], demo["leaves"]["2"], demo["encoder"], demo["centroids"])
    return {
        "products": products,
        "matches": data.same_items,
        "links": links,
        "vectors": demo["vectors"],
        "nodes": demo["nodes"],
    }


def run(world, level, matches=None, k=5):
    return find_substitutions(
        world["products"],
        world["nodes"],
        world["vectors"],
        level,
        world["links"],
        world["matches"] if matches is None else matches,
        k=k,
    )


def test_substitutes_skip_the_item_and_its_twin_and_cross_stores(world):
    assert len(world["matches"]) >= 40  # the demo's same-item pairs
    store = {p.id: p.shop for p in world["products"]}
    for level in (3, 4):
        subs = run(world, level)
        pairs = {(s.product, s.substitute) for s in subs}
        assert not any(s.product == s.substitute for s in subs)
        assert not any((a, b) in pairs or (b, a) in pairs for a, b in world["matches"])
        assert any(store[s.product] != store[s.substitute] for s in subs)  # linked categories of the other store
        assert all(s.level == level for s in subs)
        by_product: dict[str, list] = {}
        for s in subs:
            by_product.setdefault(s.product, []).append(s)
        for found in by_product.values():
            assert [s.rank for s in found] == list(range(1, len(found) + 1)) and len(found) <= 5
            assert [s.score for s in found] == sorted((s.score for s in found), reverse=True)
    # without the exclusion, most twins would be each other's first substitute: the exclusion matters
    unguarded = {(s.product, s.substitute) for s in run(world, 4, matches=[]) if s.rank == 1}
    assert sum((a, b) in unguarded for a, b in world["matches"]) >= len(world["matches"]) // 2


def test_level_three_pools_are_wider_than_level_four(world):
    four = {(s.product, s.substitute) for s in run(world, 4, k=50)}
    three = {(s.product, s.substitute) for s in run(world, 3, k=50)}
    assert four < three


def test_bad_level_and_k(world):
    with pytest.raises(InvalidQuery, match="level must be 3 or 4"):
        run(world, 2)
    with pytest.raises(InvalidQuery, match="k must be"):
        run(world, 3, k=0)
