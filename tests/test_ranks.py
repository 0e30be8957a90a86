"""Ranks count only rows that can be shown: a row that left the queryset after indexing (the index still
holds it: no resync) is dropped at hydration, and the hits after it move up, without a gap, on every page."""

from __future__ import annotations

import pytest

from semantic_catalog.registry import registry
from semantic_catalog.search import search
from semantic_catalog.search.service import similar

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def drills(make_product):
    made = [
        make_product(f"Drill model {n}", description="cordless drill" * (n + 1), price=f"{10 + n}.00") for n in range(9)
    ]
    make_product("Cast iron skillet", category="pans", description="searing pan", price="1.00")
    return made


def deactivate_without_resync(product) -> None:
    """``QuerySet.update`` writes no outbox row: the index keeps the row until the next sync."""
    type(product).objects.filter(pk=product.pk).update(active=False)


def ranks(results, retriever: str) -> list[tuple[int, int]]:
    return [(r.rank, r.retrievers[retriever]) for r in results]


@pytest.mark.parametrize("mode", ["keyword", "semantic"])
def test_hits_after_a_dropped_row_move_up_on_every_page(drills, mode):
    index = registry.get("products")
    before = [r.id for r in search(index, "drill", mode, limit=8)]
    gone = before[1]  # the second hit leaves the queryset; the store still returns it
    deactivate_without_resync(next(p for p in drills if str(p.pk) == gone))

    first = search(index, "drill", mode, limit=3)
    second = search(index, "drill", mode, limit=3, offset=3)
    assert [r.id for r in first + second] == [i for i in before if i != gone][:6]
    assert ranks(first, mode) == [(1, 1), (2, 2), (3, 3)]
    assert ranks(second, mode) == [(4, 4), (5, 5), (6, 6)]
    # a sorted page numbers its places in the sorted order; retriever ranks still count only shown rows
    cheap = search(index, "drill", mode, limit=3, offset=3, sort="price")
    assert [r.rank for r in cheap] == [4, 5, 6]
    everything = search(index, "drill", mode, limit=20)
    assert gone not in [r.id for r in everything]
    assert sorted(r.retrievers[mode] for r in everything) == list(range(1, len(everything) + 1))


def test_hybrid_retriever_ranks_skip_no_dropped_row(drills):
    index = registry.get("products")
    gone = search(index, "drill", "keyword", limit=1)[0].id
    deactivate_without_resync(next(p for p in drills if str(p.pk) == gone))
    results = search(index, "drill", "hybrid", limit=20)
    assert gone not in [r.id for r in results] and [r.rank for r in results] == list(range(1, len(results) + 1))
    for retriever in ("keyword", "semantic"):
        found = sorted(r.retrievers[retriever] for r in results if retriever in r.retrievers)
        assert found == list(range(1, len(found) + 1)), (retriever, found)


def test_similar_and_the_api_renumber_too(drills, client):
    index = registry.get("products")
    source = str(drills[0].pk)
    gone = similar(index, source, limit=1)[0].id
    deactivate_without_resync(next(p for p in drills if str(p.pk) == gone))
    results = similar(index, source, limit=5)
    assert gone not in [r.id for r in results]
    assert ranks(results, "semantic") == [(n, n) for n in range(1, 6)]

    page = client.get("/api/semantic/products/search", {"q": "drill", "mode": "keyword", "limit": 3, "offset": 3})
    hits = page.json()["results"]
    assert [h["rank"] for h in hits] == [4, 5, 6] and [h["retrievers"]["keyword"] for h in hits] == [4, 5, 6]
