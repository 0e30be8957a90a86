"""URLs of the latency benchmark's server: the demo's, plus ``/naive/search``."""

from __future__ import annotations

import functools

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.urls import path

from demo.urls import urlpatterns as demo_urls


@functools.cache
def _naive_parts() -> tuple:
    """The model and the table, opened once per process (loading them is not what is measured)."""
    import lancedb

    from semantic_catalog.collections import require_searchable
    from semantic_catalog.engine.encoders import SentenceTransformerEncoder
    from semantic_catalog.registry import registry

    collection = require_searchable(registry.get("products"))
    table = lancedb.connect(str(settings.DATA_DIR / "lancedb")).open_table(collection.table)
    # What gluing the parts by hand gives: sentence-transformers on torch, as many threads as the server's.
    return SentenceTransformerEncoder(device="cpu", num_threads=settings.ENCODER_THREADS, backend="torch"), table


@transaction.non_atomic_requests  # like the library's search views: no transaction for a read
def naive_search(request: HttpRequest) -> JsonResponse:
    """sentence-transformers on torch; with ?encoder=server, the server's own query encoder instead
    (by default the model's ONNX export), to separate the encoder's share of the gain."""
    from semantic_catalog.backends import get_encoder
    from shop.models import Product

    encoder, table = _naive_parts()
    if request.GET.get("encoder") == "server":
        encoder = get_encoder()
    vector = encoder.encode_query(request.GET["q"])
    rows = table.search(vector).distance_type("dot").bypass_vector_index().limit(10).select(["id", "_distance"])
    ids = rows.to_arrow().column("id").to_pylist()
    products = Product.objects.in_bulk([int(i) for i in ids])
    results = [{"id": i, "name": products[int(i)].name} for i in ids if int(i) in products]
    return JsonResponse({"results": results})


urlpatterns = [*demo_urls, path("naive/search", naive_search)]
