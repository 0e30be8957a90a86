"""Batch evaluation (engine.search.batch) against the per-query pipeline it replaces in `evaluate`, `adapt`
and `semantic_evaluate`: the demo catalog's 428 products in a real LanceDB collection (below its
ann_threshold, so the store's vector search is exact like the batch's), the bundled model, and a few
hundred queries (product titles cut and reworded, single words) in every mode.

How rankings are compared: the store and the matrix product sum a cosine's products in another order, so
scores may differ by float rounding (about 1e-6). Positions must hold the same id wherever the per-query
scores around them differ by more than TIE; hits within TIE of each other form a tie group, whose ids
must match as a set (a group cut by the end of the list may differ); with rank fusion, hits whose cosines
are within TIE may swap places (``cosine_ties``). Keyword mode runs the same store calls and must match
exactly.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import numpy as np
import pytest

from semantic_catalog.engine import Document
from semantic_catalog.engine.documents import SearchHit
from semantic_catalog.engine.indexer import index_documents
from semantic_catalog.engine.search.batch import BatchSearch, ranked_ids
from semantic_catalog.engine.search.pipeline import QueryOptions, search
from semantic_catalog.engine.stores.lancedb import LanceDBStore
from tests.encoders import CountingEncoder

TIE = 1e-6
COLLECTION = "demo"
RUNS = {
    "semantic": QueryOptions("semantic", 100),
    "keyword": QueryOptions("keyword", 100),
    "hybrid": QueryOptions("hybrid", 100),
    "hybrid-rrf": QueryOptions("hybrid", 100, fusion="rrf"),
    # fewer hits than candidates: the keyword list is fetched at a second depth, the vector one cut
    "hybrid-30": QueryOptions("hybrid", 30, candidates=50, keyword_weight=0.3),
}


def demo_queries(names: list[str]) -> list[str]:
    """Titles cut and reworded four ways, then a few words (one with a glued size, one of stop words)."""
    queries = []
    for i, name in enumerate(sorted(names)[:280]):
        words = name.split()
        queries.append(
            [
                " ".join(words[:3]).lower(),  # the start, as typed
                " ".join(words[-3:]),  # the end
                " ".join(words[1:5]),  # without the brand
                max(words, key=len),  # one word
            ][i % 4]
        )
    return queries + ["drill", "garden hose", "12x12 tile", "cordless 18V driver", "the and of", "zzqx wvvk"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from shop.fixtures.demo_data import load_demo

    data = load_demo()
    encoder = CountingEncoder(device="cpu")
    store = LanceDBStore(tmp_path_factory.mktemp("batch") / "lance")  # default ann_threshold: 50,000 rows
    store.create_collection(COLLECTION, encoder.dimension, [])
    index_documents(store, COLLECTION, encoder, [Document(pk, data.product_text(pk)) for pk in data.products])
    store.optimize(COLLECTION)
    assert not store.has_vector_index(COLLECTION)  # so its vector search is exact too
    queries = demo_queries([p["name"] for p in data.products.values()])
    return store, encoder, queries, encoder.encode_queries(queries)


def tie_groups(scores: list[float]) -> list[tuple[int, int]]:
    """(start, end) of each run of consecutive scores within TIE of the one before."""
    groups, start = [], 0
    for i in range(1, len(scores) + 1):
        if i == len(scores) or abs(scores[i] - scores[i - 1]) > TIE:
            groups.append((start, i))
            start = i
    return groups


def same_ranking(expected: list[SearchHit], got: list[SearchHit]) -> str:
    """'exact', 'ties' (ids differ only within tie groups), 'cosine ties' (see ``cosine_ties``), or why
    the rankings differ."""
    outcome = same_ids([h.id for h in expected], [h.score for h in expected], [h.id for h in got])
    if outcome == "ties" and not np.allclose([h.score for h in got], [h.score for h in expected], rtol=0, atol=TIE):
        return "scores differ by more than float rounding"
    if outcome not in ("exact", "ties") and cosine_ties(expected, got):
        return "cosine ties"
    return outcome


def cosine_ties(expected: list[SearchHit], got: list[SearchHit]) -> bool:
    """Reciprocal rank fusion scores ranks: two hits whose cosines are equal but for float rounding may
    take each other's semantic rank, and with it each other's fused score. True when the same hits differ
    only so: wherever the ids differ, the two hits' cosines (the pipeline's) are within TIE."""
    cosine = {h.id: h.similarity for h in expected}
    if sorted(cosine) != sorted(h.id for h in got) or None in cosine.values():
        return False
    return all(abs(cosine[g.id] - cosine[e.id]) <= TIE for e, g in zip(expected, got) if e.id != g.id)


def same_ids(want: list[str], scores: list[float], have: list[str]) -> str:
    """``same_ranking`` on ids, with the tie groups of the expected ``scores``."""
    if want == have:
        return "exact"
    if len(want) != len(have):
        return f"{len(have)} hits instead of {len(want)}"
    for start, end in tie_groups(scores):
        if end < len(want) and set(want[start:end]) != set(have[start:end]):
            return f"positions {start + 1}-{end} hold {have[start:end]} instead of {want[start:end]}"
    return "ties"


def test_batch_rankings_equal_the_per_query_pipeline(demo):
    store, _, queries, vectors = demo
    started = time.perf_counter()
    expected = {
        name: [search(store, COLLECTION, q, None if o.mode == "keyword" else v, o) for q, v in zip(queries, vectors)]
        for name, o in RUNS.items()
    }
    per_query = time.perf_counter() - started
    started = time.perf_counter()
    got = BatchSearch(store, COLLECTION).search(queries, vectors, RUNS)
    batch = time.perf_counter() - started
    print(f"{len(queries)} queries x {len(RUNS)} runs: per query {per_query:.2f} s, batch {batch:.2f} s")

    assert set(got) == set(RUNS) and all(len(got[name]) == len(queries) for name in RUNS)
    assert got["keyword"] == expected["keyword"]  # the same store calls: hits, scores and coverage
    for name in RUNS:
        outcomes = Counter(same_ranking(e, g) for e, g in zip(expected[name], got[name]))
        assert set(outcomes) <= {"exact", "ties", "cosine ties"}, (name, outcomes)
        assert outcomes["exact"] >= 0.98 * len(queries), (name, outcomes)  # tie leniency is rare
        if RUNS[name].mode != "keyword":
            assert {len(hits) for hits in got[name]} == {RUNS[name].limit}
    # hybrid hits carry the query's cosine and keyword coverage as the pipeline's do
    first = next(i for i, hits in enumerate(expected["hybrid"]) if any(h.coverage is not None for h in hits))
    for e, g in zip(expected["hybrid"][first], got["hybrid"][first]):
        if e.id == g.id:
            assert g.similarity == pytest.approx(e.similarity, abs=TIE) and g.coverage == e.coverage
            assert g.retrievers == e.retrievers


def test_keyword_hits_are_fetched_once_per_query_and_depth(demo):
    store, _, queries, vectors = demo
    calls = Counter()
    original, lock = store.keyword_search, threading.Lock()

    def counted(name, query, limit, filters=(), exclude_ids=()):
        with lock:
            calls[limit] += 1
        return original(name, query, limit, filters, exclude_ids)

    store.keyword_search = counted
    try:
        batch = BatchSearch(store, COLLECTION, workers=2)
        batch.search(queries[:40], vectors[:40], {m: RUNS[m] for m in ("semantic", "keyword", "hybrid")})
        assert calls == {100: 40}  # keyword and hybrid share one list per query
        adapted = vectors[:40] * np.float32(0.5) + vectors[40:80] * np.float32(0.5)
        batch.search(queries[:40], adapted, {"hybrid+adapter": RUNS["hybrid"], "hybrid-30": RUNS["hybrid-30"]})
        assert calls == {100: 40, 50: 40}  # other vectors reuse it; another depth is one more call
    finally:
        del store.keyword_search


def test_adapt_answers_hard_negative_searches_from_one_batch(demo):
    """`adapt` hands training_data a stand-in store whose vector searches come from one batched search."""
    from semantic_catalog.cli.evaluate import PrefetchedNearest

    store, _, _, vectors = demo
    batch = BatchSearch(store, COLLECTION)
    prefetched = PrefetchedNearest(store, batch, list(vectors[:20]), 15)
    prefetched.store = None  # prefetched answers must not reach the store
    for vector, limit in [(vectors[0], 15), (vectors[1], 3), (vectors[2], 40), (vectors[30], 12)]:
        expected = store.vector_search(COLLECTION, vector, limit)
        got = prefetched.vector_search(COLLECTION, vector, limit)
        assert same_ranking(expected, got) in ("exact", "ties") and len(got) == limit
    prefetched.store = store
    ids = [h.id for h in prefetched.vector_search(COLLECTION, vectors[0], 5, exclude_ids=["1"])]
    assert ids == [h.id for h in store.vector_search(COLLECTION, vectors[0], 5, exclude_ids=["1"])] and "1" not in ids
    assert set(prefetched.fetch(COLLECTION, ids, with_vectors=True)) == set(ids)


def test_nearest_is_exact_with_ties_in_row_order(tmp_path):
    rng = np.random.default_rng(3)
    matrix = rng.standard_normal((300, 16)).astype(np.float32)
    matrix[7] = matrix[250]  # an exact tie, found at rows 7 and 250
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    store = LanceDBStore(tmp_path / "lance")
    store.create_collection("c", 16, [])
    store.upsert("c", [Document(f"d{i}", f"item {i}") for i in range(300)], matrix)
    batch = BatchSearch(store, "c")
    ids, stored = store.all_vectors("c")
    queries = np.vstack([stored[ids.index("d250")], rng.standard_normal((4, 16)).astype(np.float32)])
    for query, hits in zip(queries, batch.nearest(queries, 20)):
        scores = stored @ query
        order = sorted(range(len(ids)), key=lambda r: (-scores[r], r))[:20]
        assert [h.id for h in hits] == [ids[r] for r in order]
        assert [h.score for h in hits] == pytest.approx([float(scores[r]) for r in order], abs=1e-6)
        assert [h.retrievers for h in hits] == [{"semantic": rank} for rank in range(1, 21)]
    tied = [h.id for h in batch.nearest(queries[:1], 2)[0]]
    assert sorted(tied) == ["d250", "d7"] and tied == sorted(tied, key=ids.index)
    assert len(batch.nearest(queries, 1000)[0]) == 300  # deeper than the collection: all of it
    assert ranked_ids(batch.nearest(queries[:2], 3)) == [[h.id for h in q] for q in batch.nearest(queries[:2], 3)]


def test_bad_input_is_refused_clearly(tmp_path):
    store = LanceDBStore(tmp_path / "lance")
    store.create_collection("c", 16, [])
    empty = BatchSearch(store, "c")
    assert empty.search(["drill"], np.ones((1, 16), np.float32), RUNS)["semantic"] == [[]]
    store.upsert("c", [Document("a", "cordless drill")], np.eye(16, dtype=np.float32)[:1])
    batch = BatchSearch(store, "c")
    with pytest.raises(ValueError, match="need the query vectors"):
        batch.search(["drill"], None, {"semantic": RUNS["semantic"]})
    with pytest.raises(ValueError, match="one query vector per text: 2 texts"):
        batch.search(["drill", "saw"], np.ones((1, 16), np.float32), {"hybrid": RUNS["hybrid"]})
    with pytest.raises(ValueError, match="8 dimensions, the collection 16"):
        batch.search(["drill"], np.ones((1, 8), np.float32), {"semantic": RUNS["semantic"]})
    with pytest.raises(ValueError, match="workers"):
        BatchSearch(store, "c", workers=0)
    assert ranked_ids(batch.search(["drill"], None, {"keyword": RUNS["keyword"]})["keyword"]) == [["a"]]


@pytest.mark.django_db(transaction=True)
def test_semantic_evaluate_ranks_as_the_search_service_does(settings):
    """The command's batch path against `semantic_catalog.search.search` per query, with rows that left
    the queryset still in the store (the service drops them and asks for more hits)."""
    from django.core.management import call_command

    from semantic_catalog.management.commands.semantic_evaluate import ranked_runs
    from semantic_catalog.registry import registry
    from semantic_catalog.search import search as service_search
    from shop.models import Product

    call_command("loaddata", "demo_catalog", verbosity=0)  # indexed through the outbox
    names = list(Product.objects.filter(active=True).values_list("name", flat=True))
    queries = {str(i): q for i, q in enumerate(demo_queries(names)[::3])}
    stale = list(Product.objects.filter(active=True).order_by("pk").values_list("pk", flat=True)[::3])
    Product.objects.filter(pk__in=stale).update(active=False)  # no signal: the store still has them
    index = registry.get("products")
    runs = ranked_runs(index, queries, ["semantic", "keyword", "hybrid"], lambda desc: lambda items: items)
    stale_ids = {str(pk) for pk in stale}
    for mode, ranked in runs.items():
        outcomes = Counter()
        for qid, text in queries.items():
            results = service_search(index, text, mode=mode, limit=100)
            assert not stale_ids & set(ranked[qid])
            outcomes[same_ids([r.id for r in results], [r.score for r in results], ranked[qid])] += 1
        assert set(outcomes) <= {"exact", "ties"} and outcomes["exact"] >= 0.98 * len(queries), (mode, outcomes)
    assert {len(ranked) for ranked in runs["semantic"].values()} == {100}  # filled up past the stale rows
