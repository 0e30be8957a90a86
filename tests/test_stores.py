"""The vector store contract, run against every store: LanceDB on disk and PostgreSQL with pgvector.

The PostgreSQL variant needs a server: ``export SEMANTIC_CATALOG_TEST_PG_DSN="$(bash scripts/postgres.sh)"``
starts one from the project's venv (PostgreSQL 16 with pgvector) and prints its DSN; without the
variable those tests are skipped. Vectors are random unit vectors (no model), so order is known exactly.
"""

from __future__ import annotations

import os
import uuid

import numpy as np
import pytest

from semantic_catalog.engine import Document, FieldSpec, build_filters
from semantic_catalog.engine.errors import CollectionMissing, ConfigurationError
from semantic_catalog.engine.loading import load_backend
from semantic_catalog.engine.search.pipeline import QueryOptions, search
from semantic_catalog.engine.stores.base import VectorStore
from tests.helpers import same_hits

PG_DSN_VARIABLE = "SEMANTIC_CATALOG_TEST_PG_DSN"
PG_BACKEND = "semantic_catalog.engine.stores.pgvector.PgVectorStore"
SPECS = [
    FieldSpec("store", "int"),
    FieldSpec("tags", "str", many=True),
    FieldSpec("price", "float"),
    FieldSpec("active", "bool"),
]
DIMENSION = 16


def pg_dsn() -> str:
    dsn = os.environ.get(PG_DSN_VARIABLE)
    if not dsn:
        pytest.skip(
            f"PostgreSQL tests need {PG_DSN_VARIABLE}: "
            f'export {PG_DSN_VARIABLE}="$(bash scripts/postgres.sh)" starts a local server and prints it'
        )
    return dsn


def make_store(kind: str, tmp_path, **options) -> VectorStore:
    if kind == "lancedb":
        return load_backend(
            "semantic_catalog.engine.stores.lancedb.LanceDBStore", VectorStore, {"uri": tmp_path / "lance", **options}
        )
    return load_backend(PG_BACKEND, VectorStore, {"dsn": pg_dsn(), **options})


@pytest.fixture(params=["lancedb", "postgres"])
def kind(request):
    return request.param


@pytest.fixture
def store(kind, tmp_path):
    store = make_store(kind, tmp_path)
    yield store
    if kind == "postgres":
        for name in store.list_collections():
            if name.startswith("test_"):
                store.drop_collection(name)
        store.close()


@pytest.fixture
def name(store):
    """A collection of the test's own (PostgreSQL keeps collections between tests and runs)."""
    collection = f"test_{uuid.uuid4().hex[:12]}"
    store.create_collection(collection, DIMENSION, SPECS)
    return collection


def unit_vectors(n: int, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((n, DIMENSION)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def products() -> list[Document]:
    return [
        Document(
            "1", "Cordless drill driver 18V", {"store": 1, "tags": ["tools", "power"], "price": 99.0, "active": True}
        ),
        Document("2", "Garden hose 30 m", {"store": 2, "tags": ["garden"], "price": 25.0, "active": True}),
        Document("3", "Cast iron skillet XK-900", {"store": 1, "tags": ["kitchen"], "price": 35.5, "active": False}),
        Document("4", "Impact driver brushless", {"store": 2, "tags": ["tools"], "price": 149.0, "active": True}),
        Document("it's", "O'Brien's hammer; 50% off \\ back", {"store": 3, "tags": ["a'b", "%s"], "price": 9.5}),
    ]


def ids(hits) -> list[str]:
    return [h.id for h in hits]


def test_create_upsert_fetch_update_delete(store, name):
    assert store.has_collection(name) and store.count(name) == 0
    store.create_collection(name, DIMENSION, SPECS)  # a no-op with the same dimension
    with pytest.raises(ConfigurationError, match=f"dimension {DIMENSION}"):
        store.create_collection(name, DIMENSION + 1, SPECS)
    docs, vectors = products(), unit_vectors(5)
    before = store.version(name)
    store.upsert(name, docs, vectors)
    after = store.version(name)
    assert store.count(name) == 5 and after != before
    assert store.content_hashes(name) == {d.id: d.content_hash for d in docs}
    records = store.fetch(name, ["1", "it's", "unknown", "1"])
    assert set(records) == {"1", "it's"} and records["1"].vector is None
    assert (records["it's"].content_hash, records["it's"].text_hash) == (docs[4].content_hash, docs[4].text_hash)
    with_vectors = store.fetch(name, ["2", "3"], with_vectors=True)
    assert with_vectors["2"].vector.dtype == np.float32
    assert np.allclose(with_vectors["3"].vector, vectors[2], atol=1e-6)
    assert store.fetch(name, []) == {}

    changed = Document("2", "Garden hose reel", {**docs[1].fields, "price": 30.0})
    store.upsert(name, [changed], vectors[:1])  # replaces by id
    assert store.count(name) == 5 and store.version(name) not in (before, after)
    record = store.fetch(name, ["2"], with_vectors=True)["2"]
    assert record.content_hash == changed.content_hash and np.allclose(record.vector, vectors[0], atol=1e-6)
    assert ids(store.keyword_search(name, "reel", 5)) == ["2"]
    with pytest.raises(ValueError, match="shape"):
        store.upsert(name, docs[:2], vectors[:1])

    version = store.version(name)
    store.delete(name, ["1", "unknown"])
    assert store.count(name) == 4 and "1" not in store.content_hashes(name) and store.version(name) != version
    store.delete(name, [])
    store.upsert(name, [], np.zeros((0, DIMENSION), dtype=np.float32))
    assert store.count(name) == 4
    store.optimize(name)
    assert store.count(name) == 4 and ids(store.vector_search(name, vectors[3], 1)) == ["4"]


def test_upsert_is_idempotent(store, name):
    docs, vectors = products(), unit_vectors(5)
    store.upsert(name, docs, vectors)
    hashes = store.content_hashes(name)
    store.upsert(name, docs, vectors)
    store.upsert(name, docs[:2], vectors[:2])
    assert store.count(name) == 5 and store.content_hashes(name) == hashes
    assert ids(store.vector_search(name, vectors[1], 1)) == ["2"]


def test_vector_search_order_scores_and_filters(store, name):
    docs, vectors = products(), unit_vectors(5, seed=1)
    store.upsert(name, docs, vectors)
    query = unit_vectors(1, seed=2)[0]
    cosines = vectors @ query
    expected = [docs[i].id for i in np.argsort(-cosines)]
    hits = store.vector_search(name, query, 5)
    assert ids(hits) == expected
    assert [h.score for h in hits] == pytest.approx(sorted(cosines, reverse=True), abs=1e-5)
    assert [h.retrievers for h in hits] == [{"semantic": r} for r in range(1, 6)]
    assert ids(store.vector_search(name, query, 2)) == expected[:2]

    def filtered(conditions, exclude=()):
        return ids(store.vector_search(name, query, 10, build_filters(SPECS, conditions), exclude))

    keep = lambda wanted: [i for i in expected if i in wanted]  # noqa: E731
    assert filtered({"store": "2"}) == keep({"2", "4"})
    assert filtered({"store": [1, 3]}) == keep({"1", "3", "it's"})
    assert filtered({"tags": "tools"}) == keep({"1", "4"})  # a `many` field holds the value
    assert filtered({"tags": ["garden", "kitchen"]}) == keep({"2", "3"})  # any of the values
    assert filtered({"tags": ["garden", "kitchen"], "price__lt": 30}) == ["2"]
    assert filtered({"price__gte": 35.5, "price__lte": 99}) == keep({"1", "3"})
    assert filtered({"price__gt": 35.5}) == keep({"1", "4"})
    assert filtered({"store__gt": 1, "store__lt": 3}) == keep({"2", "4"})
    assert filtered({"active": "false"}) == ["3"]
    assert filtered({"active": True}) == keep({"1", "2", "4"})  # a missing value matches nothing
    assert filtered({"tags": "a'b"}) == filtered({"tags": "%s"}) == ["it's"]  # values are bound, not formatted
    assert filtered({"tags": "nothing"}) == []
    assert filtered({}, exclude=["1", "4"]) == keep({"2", "3", "it's"})
    assert filtered({"store": 1}, exclude=["1"]) == ["3"]


def test_a_filter_keeping_one_percent_still_fills_the_limit(store, name):
    """1,000 rows, 10 in store 7 and 10 tagged "rare": every mode returns all 10 for limit=10."""
    rows = [
        Document(
            str(i),
            f"Cordless drill model {i} with case",
            {"store": 7 if i % 100 == 0 else 1, "tags": ["rare"] if i % 100 == 50 else ["common"], "price": float(i)},
        )
        for i in range(1000)
    ]
    vectors = unit_vectors(1000, seed=3)
    for start in range(0, 1000, 250):
        store.upsert(name, rows[start : start + 250], vectors[start : start + 250])
    store.optimize(name)
    query = unit_vectors(1, seed=4)[0]
    for conditions, wanted in (
        ({"store": 7}, {str(i) for i in range(0, 1000, 100)}),
        ({"tags": "rare"}, {str(i) for i in range(50, 1000, 100)}),
        ({"price__lt": 10}, {str(i) for i in range(10)}),
    ):
        filters = build_filters(SPECS, conditions)
        for mode in ("semantic", "keyword", "hybrid"):
            hits = search(store, name, "cordless drill", query, QueryOptions(mode, 10), filters)
            assert {h.id for h in hits} == wanted, (conditions, mode)
        exact = sorted(wanted, key=lambda i: -float(vectors[int(i)] @ query))
        assert ids(store.vector_search(name, query, 10, filters)) == exact, conditions
    assert len(store.vector_search(name, query, 300)) == 300  # a limit above the HNSW search list
    unfiltered = ids(store.vector_search(name, query, 10))
    assert len(set(unfiltered) & {str(i) for i in np.argsort(-(vectors @ query))[:10]}) >= 9


def test_keyword_search_with_filters_and_texts(store, name):
    docs = products()
    store.upsert(name, docs, unit_vectors(5))
    hits = store.keyword_search(name, "drivers", 5)
    assert set(ids(hits)) == {"1", "4"} and all(h.retrievers == {"keyword": r} for r, h in zip((1, 2), hits))
    assert {h.id: h.text for h in hits} == {"1": docs[0].text, "4": docs[3].text}
    assert hits[0].score >= hits[1].score > 0
    assert ids(store.keyword_search(name, "drivers", 5, build_filters(SPECS, {"store": 1}))) == ["1"]
    assert ids(store.keyword_search(name, "drivers", 5, exclude_ids=["1"])) == ["4"]
    assert ids(store.keyword_search(name, "XK-900", 5)) == ["3"]
    assert ids(store.keyword_search(name, "cordless impact driver", 1)) in (["1"], ["4"])
    both = store.keyword_search(name, "cordless drill driver", 5)
    assert ids(both)[0] == "1" and set(ids(both)) == {"1", "4"}  # any word matches; more words rank first
    quoted = store.keyword_search(name, "O'Brien's", 5, build_filters(SPECS, {"tags": "a'b"}))
    assert ids(quoted) == ["it's"] and quoted[0].text == docs[4].text
    for odd in ("the", "", "!!!", "a & b | c", "'", "\\", ":*", "(", "<->", "!drill"):  # stop words, tsquery syntax
        assert set(ids(store.keyword_search(name, odd, 5))) <= {"it's", "1"}, odd
    assert ids(store.keyword_search(name, "50% off", 5)) == ["it's"]


def test_keyword_ranking_weighs_rare_words_more(store, name):
    """BM25 on both stores: a hit with the query's rare word outranks hits with only its common word,
    even when it is longer (PostgreSQL's ts_rank_cd, without inverse document frequency, ranked the short
    common ones first: Home Depot dev queries' keyword nDCG@10 0.248, against 0.378 with this ranking)."""
    common = [Document(str(i), f"cordless model {i}", {"store": i % 2}) for i in range(30)]
    rare = Document("rare", "heavy duty claw hammer with fibreglass handle and grip", {"store": 1})
    store.upsert(name, [*common, rare], unit_vectors(31, seed=5))
    hits = store.keyword_search(name, "cordless hammer", 10)
    assert hits[0].id == "rare" and len(hits) == 10 and hits[0].score > hits[1].score
    assert store.keyword_search(name, "hammer cordless", 10, build_filters(SPECS, {"store": 1}))[0].id == "rare"
    assert set(ids(store.keyword_search(name, "cordless hammer", 40))) == {"rare", *(d.id for d in common)}


def test_hybrid_candidates_carry_the_keyword_hits_cosine(store, name):
    docs, vectors = products(), unit_vectors(5, seed=5)
    store.upsert(name, docs, vectors)
    query = unit_vectors(1, seed=6)[0]
    semantic, keyword = store.hybrid_candidates(name, query, "driver", 10)
    assert same_hits(store.vector_search(name, query, 10), semantic)  # LanceDB: the files or a hot copy
    assert ids(keyword) == ids(store.keyword_search(name, "driver", 10))
    cosine = {d.id: float(v @ query) for d, v in zip(docs, vectors)}
    assert [h.similarity for h in keyword] == pytest.approx([cosine[h.id] for h in keyword], abs=1e-5)
    generic = VectorStore.hybrid_candidates(store, name, lambda: query, "driver", 10)
    assert same_hits(generic[0], semantic) and [h.similarity for h in generic[1]] == pytest.approx(
        [h.similarity for h in keyword], abs=1e-5
    )
    filters = build_filters(SPECS, {"store": 2})
    semantic, keyword = store.hybrid_candidates(name, lambda: query, "driver", 10, filters)
    assert set(ids(semantic)) == {"2", "4"} and ids(keyword) == ["4"]

    def encoder_down():
        raise RuntimeError("encoder down")

    with pytest.raises(RuntimeError, match="encoder down"):
        store.hybrid_candidates(name, encoder_down, "driver", 10)
    hits = search(store, name, "cordless drivers", query, QueryOptions("hybrid", 5))
    assert {h.id: h.coverage for h in hits if h.coverage is not None} == {"1": 1.0, "4": 0.5}  # from the texts


def test_all_vectors_reads_every_id_with_its_vector(store, name):
    ids, matrix = store.all_vectors(name)
    assert ids == [] and matrix.shape == (0, DIMENSION) and matrix.dtype == np.float32
    docs, vectors = products(), unit_vectors(5, seed=7)
    store.upsert(name, docs, vectors)
    store.delete(name, ["2"])
    expected = {d.id: v for d, v in zip(docs, vectors) if d.id != "2"}
    ids, matrix = store.all_vectors(name)
    assert sorted(ids) == sorted(expected) and matrix.shape == (4, DIMENSION) and matrix.dtype == np.float32
    assert np.allclose(matrix, np.stack([expected[i] for i in ids]), atol=1e-6)  # row i is ids[i]'s vector
    default_ids, default_matrix = VectorStore.all_vectors(store, name)  # the fetch-based default
    assert sorted(default_ids) == sorted(ids)
    assert np.allclose(default_matrix, np.stack([expected[i] for i in default_ids]), atol=1e-6)
    with pytest.raises(CollectionMissing):
        store.all_vectors("test_missing_collection")


def test_drop_and_missing_collections(store, name):
    store.upsert(name, products()[:1], unit_vectors(1))
    other = f"test_{uuid.uuid4().hex[:12]}"
    store.create_collection(other, 8, [])
    assert store.has_collection(other) and store.count(other) == 0
    store.drop_collection(name)
    store.drop_collection(name)  # a no-op
    assert not store.has_collection(name) and store.has_collection(other)
    for call in (store.count, store.content_hashes, store.version):
        with pytest.raises(CollectionMissing, match="semantic_index --rebuild"):
            call(name)
    with pytest.raises(CollectionMissing):
        store.vector_search(name, unit_vectors(1)[0], 5)
    store.create_collection(name, DIMENSION, SPECS)  # the name can be used again, empty
    assert store.count(name) == 0
    store.drop_collection(other)


# -- PostgreSQL only ------------------------------------------------------------------------------------


@pytest.fixture
def pg(tmp_path):
    store = make_store("postgres", tmp_path)
    yield store
    for collection in store.list_collections():
        if collection.startswith("test_"):
            store.drop_collection(collection)
    store.close()


def test_pg_options_are_checked():
    with pytest.raises(ConfigurationError, match="dsn"):
        load_backend(PG_BACKEND, VectorStore, {"dsn": ""})
    with pytest.raises(ConfigurationError, match="iterative_scan"):
        load_backend(PG_BACKEND, VectorStore, {"dsn": "postgresql://x/y", "iterative_scan": "fast"})
    with pytest.raises(ConfigurationError, match="ef_search"):
        load_backend(PG_BACKEND, VectorStore, {"dsn": "postgresql://x/y", "ef_search": 0})
    with pytest.raises(ConfigurationError, match="hnsw"):
        load_backend(PG_BACKEND, VectorStore, {"dsn": "postgresql://x/y", "hnsw": {"lists": 3}})
    for threshold in (-1, 1.5, True, "100"):
        with pytest.raises(ConfigurationError, match="ann_threshold"):
            load_backend(PG_BACKEND, VectorStore, {"dsn": "postgresql://x/y", "ann_threshold": threshold})


def test_pg_terms_drop_postgres_stop_words():
    from semantic_catalog.engine.stores.pgvector import STOP_WORDS, PgVectorStore

    store = PgVectorStore("postgresql://x/y")  # no connection is made until a query
    assert len(STOP_WORDS) == 127
    assert store.terms("Pull-up bar, over the door: drills") == {"pull", "bar", "door", "drill"}
    assert store.terms("Café XK-900") == {"cafe", "xk", "900"}


def test_pg_long_names_indexes_and_iterative_scan(pg, tmp_path):
    """A name longer than PostgreSQL's 63-byte identifiers gets a table of its own; the HNSW index
    answers a filtered query that pushes the filter into its iterative scan, and still fills the limit."""
    from psycopg import sql

    pg = make_store("postgres", tmp_path, ann_threshold=0)  # the index made with the table (the pg fixture cleans up)
    long_name = "test_" + "x" * 70
    other = "test_" + "x" * 70 + "y"
    pg.create_collection(long_name, DIMENSION, SPECS)
    pg.create_collection(other, DIMENSION, SPECS)
    vectors = unit_vectors(600, seed=7)
    docs = [Document(str(i), f"item {i}", {"store": 7 if i % 20 == 0 else 1}) for i in range(600)]
    pg.upsert(long_name, docs, vectors)
    assert pg.count(long_name) == 600 and pg.count(other) == 0 and pg.has_vector_index(long_name)
    with pg._using(long_name) as (conn, collection):
        # as on a large table where the filter is not selective enough for its own index: the planner
        # takes the HNSW index and the filter is applied while it scans
        index = conn.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = %s AND indexdef LIKE %s",
            (collection.table, "%(f_store)%"),
        ).fetchone()[0]
        conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(pg.schema, index)))
        conn.execute("SET enable_seqscan = off")
        try:
            where, params = pg._where(collection, build_filters(SPECS, {"store": 7}), ())
            query = unit_vectors(1, seed=8)[0]
            runs = []  # exact=True would be the fallback: the iterative scan alone must fill the limit
            run_search = pg._run_search
            pg._run_search = lambda *args, exact: runs.append(exact) or run_search(*args, exact=exact)
            hits = pg._vector_hits(conn, collection, query, 25, where, params)
            explain = "EXPLAIN SELECT id FROM {} WHERE f_store = 7 ORDER BY vector <#> %s LIMIT 25"
            plan = conn.execute(sql.SQL(explain).format(collection.ident), (query,)).fetchall()
        finally:
            conn.execute("RESET ALL")
    assert "_hnsw" in " ".join(row[0] for row in plan) and runs == [False]
    wanted = sorted((str(i) for i in range(0, 600, 20)), key=lambda i: -float(vectors[int(i)] @ query))[:25]
    assert len(hits) == 25 and set(ids(hits)) <= {str(i) for i in range(0, 600, 20)}
    assert len(set(ids(hits)) & set(wanted)) >= 23
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_pg_optimize_builds_the_hnsw_index_past_ann_threshold(pg, tmp_path):
    """A first load writes no HNSW graph row by row (benchmarks/store_compare.py: 100 rows/s with the
    index, 2,389 without, on the Home Depot titles): searches are exact until the first ``optimize``
    past ``ann_threshold`` builds the index in one pass; later writes are added to it, and two
    processes optimizing at once build it once."""
    from concurrent.futures import ThreadPoolExecutor

    store = make_store("postgres", tmp_path, ann_threshold=500)
    name = f"test_{uuid.uuid4().hex[:12]}"
    store.create_collection(name, DIMENSION, SPECS)
    vectors = unit_vectors(700, seed=11)
    docs = [Document(str(i), f"item {i}", {"store": i % 3}) for i in range(700)]
    store.upsert(name, docs[:400], vectors[:400])
    store.optimize(name)
    assert not store.has_vector_index(name)  # 400 < 500
    query = unit_vectors(1, seed=12)[0]
    exact = [str(i) for i in np.argsort(-(vectors[:400] @ query))[:20]]
    assert ids(store.vector_search(name, query, 20)) == exact  # no index: exact order

    store.upsert(name, docs[400:600], vectors[400:600])
    assert not store.has_vector_index(name)  # writes alone never build it
    other = make_store("postgres", tmp_path, ann_threshold=500)  # another process's store
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda s: s.optimize(name), (store, other)))
    other.close()
    assert store.has_vector_index(name)
    with store._using(name) as (conn, collection):
        indexes = conn.execute(
            "SELECT count(*) FROM pg_indexes WHERE schemaname = %s AND tablename = %s AND indexdef LIKE %s",
            (store.schema, collection.table, "% USING hnsw %"),
        ).fetchone()[0]
    assert indexes == 1

    store.upsert(name, docs[600:], vectors[600:])  # written after the build: found through the index
    for i in (600, 650, 699):
        assert ids(store.vector_search(name, vectors[i], 1)) == [str(i)]
    filtered = store.vector_search(name, vectors[650], 5, build_filters(SPECS, {"store": 650 % 3}))
    assert filtered[0].id == "650" and len(filtered) == 5

    never = make_store("postgres", tmp_path, ann_threshold=None)
    never.optimize(name)  # None: optimize never builds one (this one exists already and stays)
    fresh = f"test_{uuid.uuid4().hex[:12]}"
    never.create_collection(fresh, DIMENSION, SPECS)
    never.upsert(fresh, docs, vectors)
    never.optimize(fresh)
    assert not never.has_vector_index(fresh) and store.has_vector_index(name)
    never.close()
    store.close()


def test_pg_version_and_settings_select_the_store(pg, settings):
    name = f"test_{uuid.uuid4().hex[:12]}"
    pg.create_collection(name, DIMENSION, SPECS)
    versions = {pg.version(name)}
    pg.upsert(name, products(), unit_vectors(5))
    versions.add(pg.version(name))
    pg.delete(name, ["1"])
    versions.add(pg.version(name))
    pg.drop_collection(name)
    pg.create_collection(name, DIMENSION, SPECS)
    versions.add(pg.version(name))  # a recreated collection never repeats an old version
    assert len(versions) == 4

    from semantic_catalog.backends import get_store, reset_backends

    config = dict(settings.SEMANTIC_CATALOG)
    config["VECTOR_STORE"] = {"BACKEND": PG_BACKEND, "OPTIONS": {"dsn": pg.dsn}}
    settings.SEMANTIC_CATALOG = config
    reset_backends()
    try:
        configured = get_store()
        assert type(configured).__name__ == "PgVectorStore" and configured.count(name) == 0
        configured.close()
    finally:
        reset_backends()
