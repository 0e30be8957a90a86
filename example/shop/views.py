"""Demo pages: search with a semantic / keyword / hybrid toggle and filters; a product with similar
items, alternatives (substitutes) and the same item at the other store."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from semantic_catalog.crossstore.results import matches, substitutes
from semantic_catalog.engine.errors import SemanticCatalogError
from semantic_catalog.registry import registry
from semantic_catalog.search import search, similar
from semantic_catalog.search.service import query_limits

from .models import Category, Product, Store

MODES = [("hybrid", "Hybrid"), ("semantic", "Semantic"), ("keyword", "Keyword")]


def _filters(params: Any) -> list[tuple[str, str]]:
    filters = []
    params_to_filters = (
        ("store", "store"),
        ("category", "category"),
        ("min_price", "price__gte"),
        ("max_price", "price__lte"),
    )
    for param, key in params_to_filters:
        value = params.get(param, "").strip()
        if value:
            filters.append((key, value))
    return filters


def search_page(request: HttpRequest) -> HttpResponse:
    index = registry.get("products")
    query = request.GET.get("q", "")
    mode = request.GET.get("mode", "hybrid")
    results, error = [], ""
    if query.strip():
        try:
            results = search(index, query, mode=mode, filters=_filters(request.GET), limit=24)
        except SemanticCatalogError as exc:
            error = str(exc)  # shown instead of the results: the page never repeats a rejected query
    max_length = query_limits().max_query_length
    categories = sorted(
        Category.objects.select_related("store", "parent__parent__parent"), key=lambda c: (c.store_id, c.path)
    )
    context = {
        "query": query.strip(),
        # the search box keeps what can be searched, so an over-long query comes back cut to the limit
        "query_value": query.strip()[:max_length],
        "max_query_length": max_length,
        "mode": mode,
        "modes": MODES,
        "results": results,
        "error": error,
        "stores": Store.objects.order_by("name"),
        "categories": categories,
        "params": request.GET,
        "browse": [] if query.strip() else index.get_queryset().order_by("?")[:12],
    }
    return render(request, "shop/search.html", context)


def product_page(request: HttpRequest, pk: int) -> HttpResponse:
    index = registry.get("products")
    try:
        product = index.get_queryset().get(pk=pk)
    except Product.DoesNotExist:
        raise Http404("No such product (or it is no longer on sale).") from None
    nearest, alternatives, sold_elsewhere, error = [], [], [], ""
    try:
        nearest = similar(index, product.pk, limit=8)
        # From the latest `semantic_analyze` run: narrow substitutes first, broad ones to fill up.
        alternatives = substitutes(index, product.pk, 4, limit=4)
        seen = {hit.id for hit in alternatives}
        broad = [hit for hit in substitutes(index, product.pk, 3, limit=8) if hit.id not in seen]
        alternatives += broad[: max(0, 4 - len(alternatives))]
        sold_elsewhere = matches(index, product.pk)
    except SemanticCatalogError as exc:
        error = str(exc)
    context = {
        "product": product,
        "similar": nearest,
        "alternatives": alternatives,
        "sold_elsewhere": sold_elsewhere,
        "error": error,
    }
    return render(request, "shop/product.html", context)
