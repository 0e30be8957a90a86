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
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
    row = {"id": [str(catalog["drill"].pk)], "index": ["products"], "content_hash": ["h"], "model": ["m"]}
    good = parquet_bytes({**row, "dimension": [3], "vector": [[0.1, 0.2, 0.3]]})
    cases = [
        (b"", 400, "The upload is empty: send a vector file of `semantic-catalog embed` (Parquet) as the body."),
        (b"x" * (2 * 1024 * 1024), 413, "(DATA_UPLOAD_MAX_MEMORY_SIZE, 1048576 bytes)"),
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
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
    for body, status, words in [
        (b"", 400, "must be a result file (JSON)"),
        (b"\x00\xff" * 1000, 400, "must be a result file (JSON)"),
        (parquet_bytes({"a": [1]}), 400, "must be a result file (JSON)"),
        (b"[" * (2 * 1024 * 1024), 413, "DATA_UPLOAD_MAX_MEMORY_SIZE"),
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
