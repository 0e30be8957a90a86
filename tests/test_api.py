"""HTTP API: shapes, filters, and a clear 4xx for every mistake a caller can make."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

pytestmark = pytest.mark.django_db(transaction=True)

SEARCH = "/api/semantic/products/search"


@pytest.fixture
def catalog(make_product):
    return {
        "drill": make_product("Cordless drill driver", description="battery drill", brand="Makita", price="99.00"),
        "bits": make_product("Drill bit set", description="titanium bits", brand="Bosch", price="19.00"),
        "pan": make_product("Cast iron skillet", category="pans", description="searing pan", brand="Lodge"),
        "hose": make_product("Garden hose 30 m", category="hoses", store="b", brand="Gardena", price="35.00"),
    }


def test_search_returns_hits_with_display_fields(client, catalog):
    body = client.get(SEARCH, {"q": "drill", "mode": "hybrid", "limit": 2}).json()
    assert body["index"] == "products" and body["mode"] == "hybrid" and body["count"] == 2
    top = body["results"][0]
    assert top["id"] in {str(catalog["drill"].pk), str(catalog["bits"].pk)}
    assert set(top["fields"]) == {"name", "brand", "price", "store", "category"}
    assert set(top["retrievers"]) <= {"semantic", "keyword"} and top["score"] > 0


def test_api_reads_display_fields_as_values_the_same_as_from_instances(client, catalog, monkeypatch):
    """The HTTP API loads only the display columns (no instances); it returns exactly what the Python
    API's instances give, and an index overriding display() still gets instances."""
    from semantic_catalog.registry import registry
    from semantic_catalog.search.service import search
    from shop.models import Product

    index = registry.get("products")
    expected = [(r.id, r.fields) for r in search(index, "drill", "hybrid", limit=3)]
    assert expected[0][1]["price"] in (99.0, 19.0) and isinstance(expected[0][1]["store"], int)
    body = client.get(SEARCH, {"q": "drill", "mode": "hybrid", "limit": 3}).json()
    assert [(r["id"], r["fields"]) for r in body["results"]] == expected
    values_only = search(index, "drill", "hybrid", limit=3, objects=False)
    assert [r.object for r in values_only] == [None] * 3 and [(r.id, r.fields) for r in values_only] == expected

    monkeypatch.setattr(type(index), "display", lambda self, obj: {"label": obj.name.upper()}, raising=False)
    assert index.display_by_id([expected[0][0]]) is None
    top = client.get(SEARCH, {"q": "drill", "mode": "hybrid", "limit": 1}).json()["results"][0]
    assert top["fields"] == {"label": Product.objects.get(pk=top["id"]).name.upper()}


def test_display_fields_must_be_columns():
    from django.core.exceptions import ImproperlyConfigured

    from semantic_catalog.indexes import SemanticIndex
    from shop.models import Category

    class CategoryIndex(SemanticIndex):
        model = Category
        text_fields = ["name"]
        display_fields = ["name", "products"]  # a reverse relation: many rows per category

    with pytest.raises(ImproperlyConfigured, match="display field 'products' is not a column"):
        CategoryIndex()


def test_filters_are_pushed_down(client, catalog, shop):
    body = client.get(SEARCH, {"q": "tool", "mode": "semantic", "store": shop["b"].pk, "limit": 10}).json()
    assert [hit["id"] for hit in body["results"]] == [str(catalog["hose"].pk)]
    body = client.get(SEARCH, {"q": "drill", "mode": "semantic", "price__lte": "20", "price__gte": "1"}).json()
    assert str(catalog["drill"].pk) not in [hit["id"] for hit in body["results"]]
    body = client.get(SEARCH + "?q=drill&mode=keyword&brand=Bosch&brand=Makita").json()
    assert {hit["id"] for hit in body["results"]} == {str(catalog["drill"].pk), str(catalog["bits"].pk)}


@pytest.mark.parametrize(
    "params, status, words",
    [
        ({"q": ""}, 400, "empty"),
        ({"q": "   "}, 400, "empty"),
        ({"q": "x" * 501}, 400, "at most 500"),
        ({"q": "x" * 600}, 400, "The query is 600 characters long; at most 500 are allowed."),
        (
            {"q": "drill " * 100},
            400,
            "The query is 600 characters long (599 with runs of whitespace collapsed); at most 500 are allowed.",
        ),
        ({"q": "drill", "mode": "fuzzy"}, 400, "semantic, keyword, hybrid"),
        ({"q": "drill", "colour": "red"}, 400, "Allowed filter fields: brand, category, price, store"),
        ({"q": "drill", "limit": "0"}, 400, "between 1 and 100"),
        ({"q": "drill", "limit": "101"}, 400, "between 1 and 100"),
        ({"q": "drill", "limit": "ten"}, 400, "whole number"),
        ({"q": "drill", "price__gte": "cheap"}, 400, "type float"),
        ({"q": "drill", "brand__gte": "A"}, 400, "numeric"),
        ({"q": "drill", "price__near": "3"}, 400, "Unknown filter operator"),
    ],
)
def test_bad_search_requests_get_clear_400s(client, catalog, params, status, words):
    response = client.get(SEARCH, params)
    assert response.status_code == status
    assert words in response.json()["detail"]


def test_unknown_index_is_404_listing_known_ones(client):
    response = client.get("/api/semantic/nope/search", {"q": "x"})
    assert response.status_code == 404
    assert "Unknown index 'nope'" in response.json()["detail"] and "products" in response.json()["detail"]


def test_similar_excludes_itself_and_respects_filters(client, catalog, shop):
    drill = catalog["drill"]
    body = client.get(f"/api/semantic/products/{drill.pk}/similar", {"limit": 3}).json()
    hits = [hit["id"] for hit in body["results"]]
    assert str(drill.pk) not in hits and hits[0] == str(catalog["bits"].pk)
    body = client.get(f"/api/semantic/products/{drill.pk}/similar", {"store": shop["b"].pk}).json()
    assert [hit["id"] for hit in body["results"]] == [str(catalog["hose"].pk)]
    assert client.get("/api/semantic/products/999999/similar").status_code == 404
    response = client.get("/api/semantic/products/abc/similar")
    assert response.status_code == 404
    assert response.json()["detail"] == "similar: abc is not a valid id of 'products'."


def test_recommend_positive_and_negative(client, catalog):
    body = client.post(
        "/api/semantic/products/recommend",
        {"positive": [str(catalog["drill"].pk)], "negative": [str(catalog["pan"].pk)], "limit": 2},
        content_type="application/json",
    ).json()
    hits = [hit["id"] for hit in body["results"]]
    assert hits[0] == str(catalog["bits"].pk)
    assert str(catalog["drill"].pk) not in hits and str(catalog["pan"].pk) not in hits


@pytest.mark.parametrize(
    "payload, words",
    [
        ({"positive": ["424242"]}, "positive: 424242 is not in index 'products'."),
        ({"positive": ["424242", "424243"]}, "positive: 424242 and 424243 are not in index 'products'."),
        ({"positive": []}, "positive"),
        ({"negative": ["1"]}, "positive"),
        ({"positive": ["abc"]}, "positive: abc is not a valid id of 'products'."),
        ({"positive": ["1", "abc", "x y"]}, "positive: abc and 'x y' are not valid ids of 'products'."),
        ({"positive": ["1", "2", "", "3"]}, "Invalid request body: positive[2]: This field may not be blank."),
        ({"positive": ["1"], "filters": []}, "Invalid request body: filters: Expected a dictionary"),
    ],
)
def test_bad_recommend_requests(client, catalog, payload, words):
    response = client.post("/api/semantic/products/recommend", payload, content_type="application/json")
    assert response.status_code == 400
    assert words in response.json()["detail"]


def test_status_needs_staff_and_reports_counts(client, catalog):
    assert client.get("/api/semantic/status").status_code in (401, 403)
    User.objects.create_superuser("admin", "a@example.com", "pw")
    client.login(username="admin", password="pw")
    (status,) = client.get("/api/semantic/status").json()["indexes"]
    assert status["index"] == "products"
    assert status["in_queryset"] == 4 and status["indexed"] == 4
    assert status["pending"] == 0 and status["failed"] == 0
    assert status["model"] == "all-MiniLM-L6-v2" and status["dimension"] == 384


def test_search_before_any_build_is_503_with_instructions(client, db):
    response = client.get(SEARCH, {"q": "drill"})
    assert response.status_code == 503
    assert "semantic_index" in response.json()["detail"]


def test_openapi_schema_lists_endpoints(client):
    response = client.get("/api/semantic/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert "/api/semantic/{index}/search" in schema["paths"]
    assert "/api/semantic/{index}/recommend" in schema["paths"]


def test_real_http_server(live_server, catalog):
    """The API over a real socket (Django's live server thread), not the test client."""
    import json
    import urllib.error
    import urllib.request

    with urllib.request.urlopen(f"{live_server.url}{SEARCH}?q=garden+hose&mode=hybrid&limit=1") as response:
        body = json.load(response)
    assert [hit["id"] for hit in body["results"]] == [str(catalog["hose"].pk)]
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(f"{live_server.url}{SEARCH}?q=x&mode=bad")
    assert error.value.code == 400


def test_repeated_searches_come_from_the_cache_until_the_collection_changes(client, catalog, monkeypatch):
    """The second identical search runs no retrieval; a save (drained at commit) makes the next one fresh."""
    import semantic_catalog.engine.search.pipeline as engine_search

    calls = []
    real_search = engine_search.search
    monkeypatch.setattr(engine_search, "search", lambda *a, **k: calls.append(a[4].mode) or real_search(*a, **k))
    first = client.get(SEARCH, {"q": "drill", "mode": "hybrid"}).json()["results"]
    again = client.get(SEARCH, {"q": "drill", "mode": "hybrid"}).json()["results"]
    assert again == first and calls == ["hybrid"]
    client.get(SEARCH, {"q": "drill", "mode": "keyword"})
    client.get(SEARCH, {"q": "drill", "mode": "hybrid", "brand": "Bosch"})
    assert calls == ["hybrid", "keyword", "hybrid"]  # mode and filters are part of the key

    catalog["pan"].name = "Cast iron drill press"
    catalog["pan"].save()
    fresh = client.get(SEARCH, {"q": "drill", "mode": "keyword"}).json()["results"]
    assert calls[-1] == "keyword" and len(calls) == 4
    assert str(catalog["pan"].pk) in [hit["id"] for hit in fresh]
    catalog["pan"].active = False
    catalog["pan"].save()
    assert str(catalog["pan"].pk) not in [
        h["id"] for h in client.get(SEARCH, {"q": "drill", "mode": "keyword"}).json()["results"]
    ]


def test_no_cache_when_its_size_is_zero(client, catalog, settings, monkeypatch):
    import semantic_catalog.engine.search.pipeline as engine_search

    settings.SEMANTIC_CATALOG = {**settings.SEMANTIC_CATALOG, "QUERY_CACHE_SIZE": 0}
    calls = []
    real_search = engine_search.search
    monkeypatch.setattr(engine_search, "search", lambda *a, **k: calls.append(a[4].mode) or real_search(*a, **k))
    client.get(SEARCH, {"q": "drill", "mode": "semantic"})
    client.get(SEARCH, {"q": "drill", "mode": "semantic"})
    assert calls == ["semantic", "semantic"]


@pytest.fixture
def staff_client(client):
    User.objects.create_superuser("admin", "a@example.com", "pw")
    client.login(username="admin", password="pw")
    return client


def parquet_bytes(columns: dict) -> bytes:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(pa.table(columns), buffer)
    return buffer.getvalue()


def assert_no_server_path(text: str) -> None:
    import tempfile

    assert tempfile.gettempdir() not in text and "semantic-import-" not in text and "/tmp" not in text, text


def test_vector_upload_errors_say_what_is_wrong_without_server_paths(staff_client, catalog, settings):
    """What an attacker (or a clumsy script) can send to the import endpoint: a 4xx saying what is wrong
    with the upload, never a 500 and never the server's temporary file path."""
    settings.SEMANTIC_CATALOG = {**settings.SEMANTIC_CATALOG, "MAX_UPLOAD_BYTES": 1024 * 1024}
    row = {"id": [str(catalog["drill"].pk)], "index": ["products"], "content_hash": ["h"], "model": ["m"]}
    good = parquet_bytes({**row, "dimension": [3], "vector": [[0.1, 0.2, 0.3]]})
    cases = [
        (b"", 400, "The upload is empty: send a vector file of `semantic-catalog embed` (Parquet) as the body."),
        (b"x" * (2 * 1024 * 1024), 413, "(1048576 bytes, SEMANTIC_CATALOG['MAX_UPLOAD_BYTES'])"),
        (b"not parquet" * 1000, 400, "The upload is not a Parquet file (Parquet magic bytes not found"),
        (b'{"index": "products", "rows": []}', 400, "The upload is not a Parquet file"),
        (good[:-30] + b"PAR1", 400, "The upload is not a Parquet file"),
        (good[:8] + b"\0" * 40 + good[48:], 400, "The upload: the Parquet data cannot be read"),
        (parquet_bytes({"a": [1]}), 400, "The upload: missing columns id, index, content_hash, model, dimension"),
        (parquet_bytes({**row, "dimension": [3], "vector": [["a", "b", "c"]]}), 400, "not numbers"),
        (parquet_bytes({**row, "dimension": [3], "vector": ["abc"]}), 400, "not numbers"),
        (parquet_bytes({**row, "dimension": [0], "vector": [[]]}), 400, "dimension must be at least 1, not 0"),
        (parquet_bytes({**row, "dimension": [2], "vector": [[1e40, 0.0]]}), 400, "beyond the float32 range"),
    ]
    for body, status, words in cases:
        for query in ("", "?dry_run=1&skip_invalid=1"):
            response = staff_client.post(
                f"/api/semantic/products/import{query}", body, content_type="application/vnd.apache.parquet"
            )
            text = response.content.decode()
            assert response.status_code == status or (query and response.status_code == 200), (words, text)
            assert words in text, text
            assert_no_server_path(text)
    rejected = staff_client.post(
        "/api/semantic/products/import",
        parquet_bytes({**row, "dimension": [3], "vector": [["a", "b", "c"]]}),
        content_type="application/vnd.apache.parquet",
    ).json()
    assert rejected["report"]["errors"] == ["upload.parquet row 1: the vector holds values that are not numbers"]


def test_analysis_upload_and_export_refuse_bad_input_with_4xx(staff_client, catalog, settings):
    settings.SEMANTIC_CATALOG = {**settings.SEMANTIC_CATALOG, "MAX_UPLOAD_BYTES": 1024 * 1024}
    for body, status, words in [
        (b"", 400, "must be a result file (JSON)"),
        (b"\x00\xff" * 1000, 400, "must be a result file (JSON)"),
        (parquet_bytes({"a": [1]}), 400, "must be a result file (JSON)"),
        (b"[" * (2 * 1024 * 1024), 413, "SEMANTIC_CATALOG['MAX_UPLOAD_BYTES']"),
        (b"[" * (1024 * 1024), 400, "must be a result file (JSON)"),  # nested a million deep: no 500
        (b'{"index": "products"}', 400, "upload: missing kind, model, computed_at, rows."),
    ]:
        response = staff_client.post("/api/semantic/import/analysis", body, content_type="application/json")
        assert response.status_code == status and words in response.json()["detail"], response.content
        assert_no_server_path(response.content.decode())
    for params in (
        {"limit": "99999999999999999999999"},
        {"file_format": "parquet", "limit": "99999999999999999999999"},
    ):
        response = staff_client.get("/api/semantic/products/export", params)
        assert response.status_code == 400
        assert response.json()["detail"] == "'limit' must be at most 9223372036854775807, got 99999999999999999999999."


# -- paging, sorting, facets ----------------------------------------------------------------------------


@pytest.fixture
def drills(make_product):
    """Twelve drills at twelve prices in two stores and two top-level categories, and a skillet."""
    made = [
        make_product(
            f"Drill model {n}",
            category="drills" if n % 3 else "hoses",
            store="a" if n % 3 else "b",
            description=f"drill number {n}",
            brand="Makita" if n % 2 else "Bosch",
            price=f"{(n * 37) % 100 + 5}.00",
        )
        for n in range(12)
    ]
    make_product("Cast iron skillet", category="pans", description="searing pan", price="1.00")
    return made


def keyword_ids(client, **params) -> list[str]:
    body = client.get(SEARCH, {"q": "drill", "mode": "keyword", **params}).json()
    return [hit["id"] for hit in body["results"]]


def test_search_pages_through_results_with_offset(client, drills):
    """Pages of `limit` from `offset` join up to the one long list; each says its offset, count and
    whether a next page exists."""
    everything = keyword_ids(client, limit=12)
    assert len(everything) == 12
    pages = [client.get(SEARCH, {"q": "drill", "mode": "keyword", "limit": 5, "offset": o}).json() for o in (0, 5, 10)]
    assert [hit["id"] for page in pages for hit in page["results"]] == everything
    assert [(p["offset"], p["count"], p["has_next"]) for p in pages] == [(0, 5, True), (5, 5, True), (10, 2, False)]
    assert keyword_ids(client, limit=5, offset=12) == []
    body = client.get(SEARCH, {"q": "drill", "mode": "keyword"}).json()
    assert body["offset"] == 0 and body["has_next"] is True and body["facets"] == {}  # defaults: 0, relevance


def test_paging_stays_correct_when_stale_hits_are_dropped(client, drills):
    """Rows that left the queryset behind the store's back (QuerySet.update, not yet marked dirty) are
    dropped at hydration: pages still join up without gaps or repeats, more stale rows than the
    hydration margin included, and facets and sorting never count or show them."""
    from shop.models import Product

    everything = keyword_ids(client, limit=12)
    stale = everything[1:8]  # seven of the best twelve, more than HYDRATION_MARGIN
    Product.objects.filter(pk__in=stale).update(active=False)
    remaining = [i for i in everything if i not in stale]
    for size in (1, 2, 3):
        pages, offset = [], 0
        while True:
            body = client.get(SEARCH, {"q": "drill", "mode": "keyword", "limit": size, "offset": offset}).json()
            pages += [hit["id"] for hit in body["results"]]
            if not body["has_next"]:
                break
            offset += size
        assert pages == remaining, size
    body = client.get(SEARCH, {"q": "drill", "mode": "keyword", "limit": 10, "sort": "price", "facets": "store"}).json()
    assert sorted(hit["id"] for hit in body["results"]) == sorted(remaining) and body["has_next"] is False
    assert sum(f["count"] for f in body["facets"]["store"]) == len(remaining)


def test_sort_by_a_numeric_field_reorders_the_relevance_window(client, drills, settings):
    prices = {str(p.pk): float(p.price) for p in drills}
    low_high = keyword_ids(client, sort="price", limit=6) + keyword_ids(client, sort="price", limit=6, offset=6)
    assert sorted(low_high) == sorted(prices) and [prices[i] for i in low_high] == sorted(prices.values())
    high_low = keyword_ids(client, sort="-price", limit=12)
    assert [prices[i] for i in high_low] == sorted(prices.values(), reverse=True)
    assert keyword_ids(client, sort="relevance", limit=12) == keyword_ids(client, limit=12)
    # the skillet (1.00, the cheapest row) matches no query word: sorting never scans the table
    assert all(i in prices for i in keyword_ids(client, sort="price", limit=12))

    # only the relevance window is re-ordered: with a window of 4, the best 4 hits by price
    settings.SEMANTIC_CATALOG = {**settings.SEMANTIC_CATALOG, "MAX_RESULT_WINDOW": 4}
    top4 = keyword_ids(client, limit=4)
    body = client.get(SEARCH, {"q": "drill", "mode": "keyword", "sort": "price", "limit": 4}).json()
    assert [hit["id"] for hit in body["results"]] == sorted(top4, key=prices.__getitem__)
    assert body["has_next"] is False


def test_facets_count_the_relevance_window_by_value_and_by_band(client, drills, shop):
    body = client.get(
        SEARCH, {"q": "drill", "mode": "keyword", "limit": 2, "facets": "store,category,brand,price:20:50"}
    ).json()
    facets = body["facets"]
    assert facets["store"] == [{"value": shop["a"].pk, "count": 8}, {"value": shop["b"].pk, "count": 4}]
    category = {f["value"]: f["count"] for f in facets["category"]}  # every ancestor id counts
    assert category == {shop["tools"].pk: 8, shop["drills"].pk: 8, shop["hoses"].pk: 4, shop["hoses"].parent_id: 4}
    assert facets["brand"] == [{"value": "Bosch", "count": 6}, {"value": "Makita", "count": 6}]
    prices = [float(p.price) for p in drills]
    assert facets["price"] == [
        {"from": None, "to": 20.0, "count": sum(p < 20 for p in prices)},
        {"from": 20.0, "to": 50.0, "count": sum(20 <= p < 50 for p in prices)},
        {"from": 50.0, "to": None, "count": sum(p >= 50 for p in prices)},
    ]
    assert body["count"] == 2  # facets count the window, not the page
    repeated = client.get(SEARCH + "?q=drill&mode=keyword&facets=store&facets=price:20:50").json()["facets"]
    assert repeated == {"store": facets["store"], "price": facets["price"]}
    filtered = client.get(SEARCH, {"q": "drill", "mode": "keyword", "store": shop["b"].pk, "facets": "store"}).json()
    assert filtered["facets"]["store"] == [{"value": shop["b"].pk, "count": 4}]  # the filters apply


def test_only_sorted_or_faceted_searches_read_the_whole_window(client, drills, monkeypatch):
    """A search in relevance order without facets asks the store for its page (and one more, and the
    hydration margin); sorting or facets ask for the window, never more."""
    import semantic_catalog.engine.search.pipeline as engine_search

    limits = []
    real_search = engine_search.search
    monkeypatch.setattr(engine_search, "search", lambda *a, **k: limits.append(a[4].limit) or real_search(*a, **k))
    client.get(SEARCH, {"q": "drill", "mode": "semantic", "limit": 10})
    client.get(SEARCH, {"q": "drill", "mode": "semantic", "limit": 10, "offset": 20})
    client.get(SEARCH, {"q": "drill", "mode": "semantic", "sort": "price"})
    client.get(SEARCH, {"q": "drill", "mode": "keyword", "facets": "store"})
    assert limits == [16, 36, 1005, 1005]


def test_python_api_pages_sorts_and_counts_facets(drills, shop):
    from semantic_catalog.search import search

    results = search("products", "drill", "keyword", limit=5, offset=5, sort="-price", facets={"price": [50]})
    assert len(results) == 5 and results.offset == 5 and results.has_next is True
    assert [r.object.price for r in results] == sorted((r.object.price for r in results), reverse=True)
    cheap = sum(p.price < 50 for p in drills)
    assert results.facets == {
        "price": [{"from": None, "to": 50.0, "count": cheap}, {"from": 50.0, "to": None, "count": 12 - cheap}]
    }
    plain = search("products", "drill", "keyword", limit=3)
    assert plain.offset == 0 and plain.has_next is True and plain.facets == {} and len(plain) == 3


@pytest.mark.parametrize(
    "params, words",
    [
        ({"offset": "-1"}, "offset must be 0 or more, got -1."),
        ({"offset": "99999999999999999999"}, "offset + limit must be at most 1000 (MAX_RESULT_WINDOW), got 9999"),
        ({"offset": "9" * 5000}, "offset must be a whole number from 0 to 990, got '99999"),
        ({"offset": "abc"}, "offset must be a whole number from 0 to 990, got 'abc'."),
        ({"offset": "1.5"}, "offset must be a whole number from 0 to 990, got '1.5'."),
        ({"offset": "1e3"}, "whole number"),
        ({"offset": "995"}, "offset + limit must be at most 1000 (MAX_RESULT_WINDOW), got 995 + 10: results past"),
        ({"offset": "950", "limit": "100"}, "got 950 + 100"),
        ({"limit": "99999999999999999999"}, "limit must be between 1 and 100"),
        ({"sort": "password"}, "Cannot sort by 'password'. Sort by one of: relevance, price, -price, store, -store"),
        ({"sort": "brand"}, "Cannot sort by 'brand'."),
        ({"sort": "--price"}, "Cannot sort by '--price'."),
        ({"sort": "x" * 500}, "Cannot sort by 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...'."),
        ({"facets": "unknown"}, "Cannot count facets of 'unknown'. Facet fields (the filter fields): brand, category"),
        ({"facets": "store,password"}, "Cannot count facets of 'password'."),
        ({"facets": "price:abc"}, "Facet 'price': band edges must be numbers, got 'abc'."),
        ({"facets": "price:nan"}, "band edges must be numbers"),
        ({"facets": "price:"}, "band edges must be numbers, got ''."),
        ({"facets": "price:50:20"}, "Facet 'price': band edges must increase, got 50, 20."),
        ({"facets": "price:" + ":".join(map(str, range(51)))}, "give 1 to 50 band edges, got 51"),
        ({"facets": "brand:10"}, "Facet 'brand' has band edges, but 'brand' is not a single numeric field."),
        ({"facets": "category:10"}, "not a single numeric field"),
    ],
)
def test_bad_paging_sorting_and_facet_requests_get_clear_400s(client, catalog, params, words):
    response = client.get(SEARCH, {"q": "drill", **params})
    assert response.status_code == 400, response.content
    assert words in response.json()["detail"]


def test_max_result_window_bounds_offset_and_is_validated(client, catalog, settings):
    from django.core.exceptions import ImproperlyConfigured

    from semantic_catalog.checks import check_settings
    from semantic_catalog.conf import semantic_settings

    settings.SEMANTIC_CATALOG = {**settings.SEMANTIC_CATALOG, "MAX_RESULT_WINDOW": 20}
    assert client.get(SEARCH, {"q": "drill", "offset": 10, "limit": 10}).status_code == 200
    response = client.get(SEARCH, {"q": "drill", "offset": 11, "limit": 10})
    assert response.status_code == 400 and "at most 20 (MAX_RESULT_WINDOW), got 11 + 10" in response.json()["detail"]
    for bad in (0, -5, 2.5, "100", True, None):
        settings.SEMANTIC_CATALOG = {**settings.SEMANTIC_CATALOG, "MAX_RESULT_WINDOW": bad}
        with pytest.raises(ImproperlyConfigured, match="MAX_RESULT_WINDOW'] must be a whole number of results"):
            semantic_settings.MAX_RESULT_WINDOW  # noqa: B018
        assert [e.id for e in check_settings()] == ["semantic_catalog.E010"]


def test_openapi_schema_documents_paging_sorting_and_facets(client):
    schema = client.get("/api/semantic/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    search_get = schema["paths"]["/api/semantic/{index}/search"]["get"]
    params = {p["name"]: p for p in search_get["parameters"]}
    assert {"offset", "sort", "facets"} <= set(params)
    assert "MAX_RESULT_WINDOW" in params["offset"]["description"] and "-price" in params["sort"]["description"]
    assert "price:25:50:100" in params["facets"]["description"]
    response = search_get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert {"offset", "has_next", "facets", "count"} <= set(schema["components"]["schemas"][response]["properties"])


BEYOND_64_BITS = "99999999999999999999999"


@pytest.mark.parametrize(
    "method, path, body, status, words",
    [
        ("get", f"{SEARCH}?q=drill&store={BEYOND_64_BITS}", None, 400, "takes a 64-bit integer"),
        ("get", f"{SEARCH}?q=drill&category=-{BEYOND_64_BITS}", None, 400, "takes a 64-bit integer"),
        ("get", f"/api/semantic/products/{BEYOND_64_BITS}/similar", None, 404, "is not a valid id of 'products'"),
        ("get", f"/api/semantic/products/{BEYOND_64_BITS}/substitutions", None, 404, "is not a valid id"),
        ("get", f"/api/semantic/products/{BEYOND_64_BITS}/matches", None, 404, "is not a valid id"),
        ("post", "/api/semantic/products/recommend", {"positive": [BEYOND_64_BITS]}, 400, "is not a valid id"),
        (
            "post",
            "/api/semantic/products/recommend",
            {"positive": ["1"], "filters": {"store": BEYOND_64_BITS}},
            400,
            "takes a 64-bit integer",
        ),
    ],
)
def test_integers_beyond_64_bits_are_4xx_not_500(client, catalog, method, path, body, status, words):
    response = client.get(path) if method == "get" else client.post(path, body, content_type="application/json")
    assert response.status_code == status and words in response.json()["detail"]
