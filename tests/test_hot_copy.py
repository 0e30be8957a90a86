"""Hot copies (engine/stores/hot.py): hybrid searches read their keyword hits' texts and vectors from memory
and run on a pinned handle, with the same results as reading the files, and never a stale one after a write."""

from __future__ import annotations

import dataclasses
import itertools
import time

import numpy as np
import pytest

from semantic_catalog.engine import Document, FieldSpec, build_filters
from semantic_catalog.engine.errors import ConfigurationError
from semantic_catalog.engine.stores.hot import HotCopies, HotCopy
from semantic_catalog.engine.stores.lancedb import LanceDBStore
from tests.encoders import CountingEncoder
from tests.helpers import same_hits

SPECS = [FieldSpec("store", "int")]
BRANDS = ["Bosch", "Makita", "DeWalt", "Ryobi", "Milwaukee", "Stanley"]
THINGS = ["cordless drill", "impact driver", "circular saw", "garden hose", "paint roller", "tile cutter", "work light"]
SIZES = ["12 volt", "18 volt", "1/2 in.", "50 ft.", "9 in.", "kit"]
QUERIES = ["drill", "cordless drill 18 volt", "garden hose 50 ft", "saw blade", "bosch", "light kit", "paint"]


@pytest.fixture(scope="module")
def encoder():
    return CountingEncoder(device="cpu")


@pytest.fixture(scope="module")
def catalog(encoder):
    texts = [f"{b} {t} {s}" for b, t, s in itertools.product(BRANDS, THINGS, SIZES)]
    documents = [Document(str(i), text, {"store": i % 3}) for i, text in enumerate(texts)]
    return documents, encoder.encode(texts), encoder.encode_queries(QUERIES)


def loaded(path, documents, vectors, **options) -> LanceDBStore:
    store = LanceDBStore(path, **options)
    store.create_collection("c", vectors.shape[1], SPECS)
    store.upsert("c", documents, vectors)
    store.optimize("c")
    return store


def test_hot_copy_gives_the_hits_of_the_files(tmp_path, catalog):
    documents, vectors, queries = catalog
    hot = loaded(tmp_path / "hot", documents, vectors)
    files = loaded(tmp_path / "files", documents, vectors, hot_copy_mb=0)
    assert hot.warm("c") and not files.warm("c")
    assert hot._hot.current("c").matrix.shape == (len(documents), 384)
    one_store = build_filters(SPECS, {"store": 1})
    for text, vector in zip(QUERIES, queries):
        for filters in ((), one_store):
            expected = files.keyword_search("c", text, 20, filters)
            assert expected and hot.keyword_search("c", text, 20, filters) == expected
            semantic, keyword = hot.hybrid_candidates("c", vector, text, 20, filters)
            file_semantic, file_keyword = files.hybrid_candidates("c", vector, text, 20, filters)
            assert same_hits(semantic, file_semantic)
            assert [(h.id, h.score, h.text) for h in keyword] == [(h.id, h.score, h.text) for h in file_keyword]
            assert [h.similarity for h in keyword] == pytest.approx([h.similarity for h in file_keyword], abs=1e-6)
            assert all(h.similarity is not None for h in keyword)


def test_an_unindexed_collection_is_searched_exactly_in_memory(tmp_path, catalog, monkeypatch):
    documents, vectors, queries = catalog
    twins = [Document(key, "Makita orbital sander", {"store": 1}) for key in ("t2", "t0", "t1")]
    documents, vectors = documents + twins, np.vstack([vectors, np.repeat(queries[:1], 3, axis=0)])
    hot = loaded(tmp_path / "hot", documents, vectors)
    files = loaded(tmp_path / "files", documents, vectors, hot_copy_mb=0)
    assert hot.warm("c") and not hot._hot.current("c").indexed

    def no_lance_vector_search(*args, **kwargs):
        raise AssertionError("the vector search ran on LanceDB, not on the hot copy")

    monkeypatch.setattr(hot, "_vector_rows", no_lance_vector_search)
    one_store = build_filters(SPECS, {"store": 1})
    for vector in queries:
        for filters in ((), one_store):
            for exclude in ((), ("t1", "5", "212")):
                expected = files.vector_search("c", vector, 12, filters, exclude)
                assert same_hits(hot.vector_search("c", vector, 12, filters, exclude), expected)
    first = hot.vector_search("c", queries[0], 3)
    assert [h.id for h in first] == ["t2", "t0", "t1"]  # equal distances in LanceDB's order: row by row
    assert [h.id for h in files.vector_search("c", queries[0], 3)] == ["t2", "t0", "t1"]
    assert hot.vector_search("c", queries[0], 2, exclude_ids=["t2"])[0].id == "t0"
    assert hot.vector_search("c", queries[0], 5, build_filters(SPECS, {"store": 7})) == []


def test_an_exact_search_sees_a_write_at_once(tmp_path, catalog):
    documents, vectors, queries = catalog
    store = loaded(tmp_path / "lance", documents, vectors)
    assert store.warm("c")
    store.upsert("c", [Document("new", "the query itself", {"store": 2})], queries[3:4])
    assert store.vector_search("c", queries[3], 1)[0].id == "new"  # the stale copy is not used
    semantic, _ = store.hybrid_candidates("c", queries[3], "light", 1)
    assert semantic[0].id == "new"
    assert store.warm("c") and store.vector_search("c", queries[3], 1)[0].id == "new"  # from the new copy


def test_an_indexed_collection_keeps_the_index_search(tmp_path, catalog):
    documents, vectors, queries = catalog
    hot = loaded(tmp_path / "hot", documents, vectors, ann_threshold=100)
    files = loaded(tmp_path / "files", documents, vectors, hot_copy_mb=0, ann_threshold=100)
    assert hot.has_vector_index("c") and hot.warm("c") and hot._hot.current("c").indexed
    for text, vector in zip(QUERIES, queries):
        semantic, _ = hot.hybrid_candidates("c", vector, text, 20)
        assert semantic == files.hybrid_candidates("c", vector, text, 20)[0]  # the same index's hits
        assert hot.vector_search("c", vector, 10) == files.vector_search("c", vector, 10)


def test_a_write_is_seen_at_once_and_the_copy_follows(tmp_path, catalog, encoder):
    documents, vectors, queries = catalog
    store = loaded(tmp_path / "lance", documents, vectors)
    assert store.warm("c")
    before = store._hot.current("c").version
    router = encoder.encode(["Festool plunge router"])
    store.upsert("c", [Document("0", "Festool plunge router", {"store": 0})], router)

    def searches():
        hits = store.keyword_search("c", "router", 10)
        _, keyword = store.hybrid_candidates("c", queries[0], "router festool", 10)
        return [(h.id, h.text) for h in hits], [(h.id, h.text, round(h.similarity, 5)) for h in keyword]

    similarity = round(float(router[0] @ queries[0]), 5)
    expected = ([("0", "Festool plunge router")], [("0", "Festool plunge router", similarity)])
    assert store._hot.current("c").version == before and searches() == expected  # the copy is stale: the files
    latest = store.version("c")  # as the search service reads it before a search
    _, keyword = store.hybrid_candidates("c", queries[0], "router festool", 10, version=latest)
    assert [h.id for h in keyword] == ["0"]
    _, keyword = store.hybrid_candidates("c", queries[0], "router festool", 10, version=str(before))
    assert keyword == []  # the caller read the copy's version: the copy answers, without a check of its own
    assert store.warm("c") and store._hot.current("c").version != before
    assert searches() == expected  # from the copy of the new version
    store.delete("c", ["0"])
    assert searches() == ([], [])
    assert store.warm("c") and "0" not in store._hot.current("c").ids and searches() == ([], [])


def test_a_collection_past_the_budget_gets_no_copy(tmp_path, catalog):
    documents, vectors, queries = catalog  # 252 rows x 384 x 4 bytes: 0.37 MB
    many = [Document(f"{i}-{d.id}", d.text, d.fields) for i in range(3) for d in documents]
    store = loaded(tmp_path / "lance", many, np.vstack([vectors] * 3), hot_copy_mb=1)
    assert not store.warm("c") and store._hot.current("c") is None
    _, keyword = store.hybrid_candidates("c", queries[2], "garden hose", 5)  # from the files
    assert len(keyword) == 5 and all("garden hose" in h.text and h.similarity > 0.3 for h in keyword)
    with pytest.raises(ConfigurationError, match="hot_copy_mb"):
        LanceDBStore(tmp_path / "x", hot_copy_mb=-1)


def test_equally_scored_keyword_hits_come_in_id_order(tmp_path, catalog):
    documents, vectors, queries = catalog
    twins = [Document(key, "Makita orbital sander", {"store": 1}) for key in ("b7", "a3", "c1", "a10")]
    store = loaded(tmp_path / "lance", documents + twins, np.vstack([vectors, vectors[:4]]))
    assert store.warm("c")
    for _ in range(5):
        assert [h.id for h in store.keyword_search("c", "orbital sander", 10)] == ["a10", "a3", "b7", "c1"]
        _, keyword = store.hybrid_candidates("c", queries[0], "orbital sander", 10)  # from the hot copy
        assert [h.id for h in keyword] == ["a10", "a3", "b7", "c1"]


def test_a_hit_the_copy_does_not_hold_is_read_from_the_files(tmp_path, catalog):
    documents, vectors, queries = catalog
    store = loaded(tmp_path / "lance", documents, vectors)
    assert store.warm("c")
    expected = store.hybrid_candidates("c", queries[1], QUERIES[1], 20)
    copy = store._hot.current("c")
    assert copy.rows_of(copy.row_ids[[5, 2]]).tolist() == copy.order[[5, 2]].tolist()
    assert copy.rows_of(copy.row_ids[-1:] + 1) is None and copy.rows_of(np.array([], np.uint64)).size == 0
    store._hot._copies["c"] = dataclasses.replace(copy, row_ids=copy.row_ids + 2**40)  # same version, other rows
    semantic, keyword = store.hybrid_candidates("c", queries[1], QUERIES[1], 20)
    assert keyword == expected[1]  # from the files: their texts, not the copy's
    assert same_hits(semantic, expected[0])


def copy_of(rows: int, version: int = 1) -> HotCopy:
    ids = [str(i) for i in range(rows)]
    return HotCopy.of(version, None, ids, [""] * rows, np.zeros((rows, 256), np.float32), range(rows))


def test_copies_stay_within_the_budget_least_recently_used_first():
    copies = HotCopies(max_bytes=3 * copy_of(100).nbytes, refresh_seconds=60)
    for name in ("a", "b", "c"):
        copies.refresh(name, lambda budget: copy_of(100), wait=True)  # 100 KB of vectors each
    assert copies.current("a") is not None  # used: "b" is now the least recently used
    copies.refresh("d", lambda budget: copy_of(100), wait=True)
    assert {n for n in "abcd" if copies.current(n) is not None} == {"a", "c", "d"}
    copies.refresh("a", lambda budget: copy_of(100, 2))  # too soon after the last read: skipped
    assert copies.current("a").version == 1
    copies.refresh_seconds = 0
    copies.refresh("a", lambda budget: copy_of(100, 2))  # in a background thread
    for _ in range(100):
        if copies.current("a").version == 2:
            break
        time.sleep(0.05)
    assert copies.current("a").version == 2
    copies.refresh("a", lambda budget: None, wait=True)  # grew past the budget: the old copy goes too
    assert copies.current("a") is None
    copies.refresh("c", lambda budget: 1 / 0, wait=True)  # a failed read keeps nothing stale and raises nothing
    assert copies.current("c") is None and copies.current("d") is not None
