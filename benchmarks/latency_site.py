"""The latency benchmark's server: the demo project as is, plus a naive baseline endpoint.

``/naive/search?q=`` is what gluing the parts together by hand gives: encode the query on every
request (no cache) and run LanceDB's flat search (no index), then load the products from SQL.
Run by benchmarks/search_latency.py with DJANGO_SETTINGS_MODULE=latency_site.
"""

from __future__ import annotations

import functools

from demo.settings import *  # noqa: F403
from demo.urls import urlpatterns as demo_urls
from django.http import HttpRequest, JsonResponse
from django.urls import path

ROOT_URLCONF = "latency_site"
DEBUG = False


@functools.cache
def _naive_parts() -> tuple:
    """The model and the table, opened once per process (loading them is not what is measured)."""
    import lancedb

    from semantic_catalog.collections import require_searchable
    from semantic_catalog.engine.encoders import SentenceTransformerEncoder
    from semantic_catalog.registry import registry

    collection = require_searchable(registry.get("products"))
    table = lancedb.connect(str(DATA_DIR / "lancedb")).open_table(collection.table)  # noqa: F405
    return SentenceTransformerEncoder(device="cpu"), table


def naive_search(request: HttpRequest) -> JsonResponse:
    from shop.models import Product

    encoder, table = _naive_parts()
    vector = encoder.encode_query(request.GET["q"])
    rows = table.search(vector).distance_type("dot").bypass_vector_index().limit(10).select(["id", "_distance"])
    ids = rows.to_arrow().column("id").to_pylist()
    products = Product.objects.in_bulk([int(i) for i in ids])
    results = [{"id": i, "name": products[int(i)].name} for i in ids if int(i) in products]
    return JsonResponse({"results": results})


urlpatterns = [*demo_urls, path("naive/search", naive_search)]
