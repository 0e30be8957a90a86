"""How well a hit matches the query: keyword hits know how much of the query they contain, hybrid weighs
that, and searches say "strong" or "weak" per hit (STRONG_MATCH_SIMILARITY)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from semantic_catalog.engine import Document, SearchHit, index_documents
from semantic_catalog.engine.search.fusion import convex_fusion
from semantic_catalog.engine.search.pipeline import QueryOptions, match_strength, search
from semantic_catalog.engine.stores.lancedb import LanceDBStore
from semantic_catalog.search import search as search_index
from tests.encoders import CountingEncoder

SEARCH = "/api/semantic/products/search"


@pytest.fixture(scope="module")
def encoder():
    return CountingEncoder(device="cpu")


@pytest.fixture
def store(tmp_path, encoder):
    store = LanceDBStore(tmp_path / "lance")
    store.create_collection("c", encoder.dimension, [])
    texts = {
        "manual": "Stanley 10-piece cushion grip screwdriver set",
        "powered": "Ryobi 18V drill driver kit, battery powered",
        "tile": "Ceramic floor tile 12 in. x 12 in.",
        "glued": "Vinyl tile 12x12",
    }
    index_documents(store, "c", encoder, [Document(key, text) for key, text in texts.items()])
    return store


def test_the_stores_terms_are_the_full_text_indexs(store):
    """Lower-cased, accents folded, stop words dropped, stemmed: "drills" and "drilling" are one term."""
    assert store.terms("Drilling DRILLS for the Café!") == {"drill", "cafe"}
    assert [hit.id for hit in store.keyword_search("c", "drills", 4)] == ["powered"]


def test_keyword_hits_say_how_much_of_the_query_they_contain(store):
    keyword = QueryOptions("keyword", 4)
    coverage = {hit.id: hit.coverage for hit in search(store, "c", "battery powered screwdriver", None, keyword)}
    assert coverage == {"manual": pytest.approx(1 / 3), "powered": pytest.approx(2 / 3)}
    # a word with a number glued to letters is covered by itself or by its parts
    assert {hit.id: hit.coverage for hit in search(store, "c", "12x12 tile", None, keyword)} == {
        "tile": 1.0,
        "glued": 1.0,
    }
    assert all(hit.text is None for hit in search(store, "c", "tile", None, keyword))  # texts are not kept


def test_convex_fusion_weighs_each_keyword_hit_by_its_coverage():
    """The best BM25 hit matching one word of three no longer outweighs a closer meaning."""
    keyword = [SearchHit("manual", 6.0, coverage=1 / 3), SearchHit("powered", 4.0, coverage=2 / 3)]
    semantic = [SearchHit("powered", 0.53), SearchHit("manual", 0.47)]
    similarity = {"powered": 0.53, "manual": 0.47}
    fused = convex_fusion(keyword, semantic, similarity, 2, keyword_weight=0.6)
    assert [hit.id for hit in fused] == ["powered", "manual"]
    uncovered = [SearchHit(h.id, h.score) for h in keyword]  # as before coverage: the manual one first
    assert [hit.id for hit in convex_fusion(uncovered, semantic, similarity, 2, 0.6)] == ["manual", "powered"]


def test_match_strength():
    assert match_strength(SearchHit("a", 1.0, similarity=0.5), 0.45) == "strong"
    assert match_strength(SearchHit("a", 1.0, similarity=0.3, coverage=1.0), 0.45) == "strong"
    assert match_strength(SearchHit("a", 1.0, similarity=0.3, coverage=0.5), 0.45) == "weak"
    assert match_strength(SearchHit("a", 1.0, similarity=0.5), None) is None
    assert match_strength(SearchHit("a", 1.0), 0.45) is None  # nothing known: similar items, substitutes


@pytest.mark.django_db(transaction=True)
def test_descriptive_queries_rank_by_meaning_and_nonsense_is_weak_on_the_demo_catalog():
    call_command("loaddata", "demo_catalog", verbosity=0)
    call_command("semantic_index", "--no-progress", stdout=StringIO())
    top = search_index("products", "battery powered screwdriver", mode="hybrid", limit=3)
    assert "V " in top[0].object.name and "Driver" in top[0].object.name  # a powered (volt-rated) driver first
    assert not all("Screwdriver" in hit.object.name for hit in top)  # was: three manual screwdrivers
    assert {hit.match for hit in search_index("products", "garden hose", limit=5)} == {"strong"}
    for mode in ("semantic", "hybrid"):
        assert {hit.match for hit in search_index("products", "xyzzy nonsense", mode=mode, limit=10)} == {"weak"}
    assert search_index("products", "DCD771C2", mode="keyword")[0].match == "strong"  # every word found


@pytest.mark.django_db(transaction=True)
def test_the_api_returns_match_per_hit(client, make_product, settings):
    make_product("Gardena garden hose 30 m", category="hoses", store="b")
    make_product("Cordless drill driver")
    hits = client.get(SEARCH, {"q": "garden hose", "mode": "hybrid"}).json()["results"]
    assert hits[0]["match"] == "strong" and {hit["match"] for hit in hits} <= {"strong", "weak"}
    settings.SEMANTIC_CATALOG = {**settings.SEMANTIC_CATALOG, "STRONG_MATCH_SIMILARITY": None}
    assert {hit["match"] for hit in client.get(SEARCH, {"q": "garden hose"}).json()["results"]} == {None}
    pk = hits[0]["id"]
    similar = client.get(f"/api/semantic/products/{pk}/similar").json()["results"]
    assert similar and {hit["match"] for hit in similar} == {None}


@pytest.mark.parametrize("value", [1.5, "high", True])
def test_a_bad_strong_match_setting_is_refused(settings, value):
    from django.core.exceptions import ImproperlyConfigured

    from semantic_catalog.conf import semantic_settings

    settings.SEMANTIC_CATALOG = {**settings.SEMANTIC_CATALOG, "STRONG_MATCH_SIMILARITY": value}
    with pytest.raises(ImproperlyConfigured, match="STRONG_MATCH_SIMILARITY"):
        semantic_settings.STRONG_MATCH_SIMILARITY  # noqa: B018


@pytest.mark.django_db(transaction=True)
def test_the_demo_page_says_when_nothing_matched_well(client, make_product):
    make_product("Gardena garden hose 30 m", category="hoses", store="b")
    make_product("Cordless drill driver", description="battery drill")
    nonsense = client.get("/", {"q": "xyzzy nonsense", "mode": "semantic"}).content.decode()
    assert "No close matches for “xyzzy nonsense”: showing related items." in nonsense
    found = client.get("/", {"q": "garden hose"}).content.decode()
    assert "Gardena garden hose" in found and "No close matches" not in found
