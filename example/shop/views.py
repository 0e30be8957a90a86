"""Demo pages: search with a semantic / keyword / hybrid toggle and filters; a product with similar
items, alternatives (substitutes) and the same item at the other store; the market segments of the
latest finished segmentation run."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from semantic_catalog.conf import semantic_settings
from semantic_catalog.crossstore.results import matches, substitutes
from semantic_catalog.engine.errors import InvalidQuery, SemanticCatalogError
from semantic_catalog.models import SegmentationRun
from semantic_catalog.registry import registry
from semantic_catalog.search import search, similar
from semantic_catalog.search.service import query_limits

from .models import Category, Product, Store

MODES = [("hybrid", "Hybrid"), ("semantic", "Semantic"), ("keyword", "Keyword")]
SORTS = [("relevance", "Relevance"), ("price", "Price: low to high"), ("-price", "Price: high to low")]
PAGE_SIZE = 24
PRICE_BANDS = (25, 50, 100, 250)
# Counted over the relevance window; "category" holds every ancestor id, so its top-level ids count
# the products under each top-level category.
FACETS = {"store": None, "category": None, "price": PRICE_BANDS}


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


def _page_number(value: str | None) -> int:
    """The ``page`` parameter (1 when absent): pages of PAGE_SIZE within MAX_RESULT_WINDOW."""
    last = -(-semantic_settings.MAX_RESULT_WINDOW // PAGE_SIZE)
    try:
        number = int(value or 1)
    except ValueError:
        number = 0
    if not 1 <= number <= last:
        raise InvalidQuery(f"page must be a whole number from 1 to {last}, got {(value or '')[:20]!r}.")
    return number


def _link(params: Any, **changes: Any) -> str:
    """This page's query string with ``changes`` (None removes a parameter), back on the first page."""
    query = params.copy()
    query.pop("page", None)
    for key, value in changes.items():
        if value is None:
            query.pop(key, None)
        else:
            query[key] = str(value)
    return "?" + query.urlencode()


def _amount(value: float) -> str:
    return format(Decimal(str(value)).normalize(), "f")


def _price_band(band: dict[str, Any]) -> tuple[str, str, str]:
    """A price band's label and its min_price / max_price filter (prices have cents, so below 50 is up to 49.99)."""
    low, high = band["from"], band["to"]
    top = "" if high is None else format(Decimal(str(high)) - Decimal("0.01"), "f")
    if low is None:
        return f"under ${_amount(high)}", "", top
    if high is None:
        return f"${_amount(low)} and up", _amount(low), ""
    return f"${_amount(low)}–{_amount(high)}", _amount(low), top


def facet_links(params: Any, facets: dict[str, list[dict[str, Any]]]) -> list[tuple[str, list[tuple[str, int, str]]]]:
    """The facet counts as (title, [(label, count, link)]): stores by name, top-level categories
    (those without a parent) by name, price bands; each link applies that filter."""
    stores = dict(Store.objects.values_list("pk", "name"))
    roots = dict(Category.objects.filter(parent=None).values_list("pk", "name"))
    by_store = [
        (stores[f["value"]], f["count"], _link(params, store=f["value"]))
        for f in facets.get("store", [])
        if f["value"] in stores
    ]
    by_category = [
        (roots[f["value"]], f["count"], _link(params, category=f["value"]))
        for f in facets.get("category", [])
        if f["value"] in roots
    ]
    by_price = []
    for band in facets.get("price", []):
        if band["count"]:
            label, low, high = _price_band(band)
            by_price.append((label, band["count"], _link(params, min_price=low or None, max_price=high or None)))
    groups = [("Store", by_store), ("Category", by_category), ("Price", by_price)]
    return [(title, links) for title, links in groups if links]


def search_page(request: HttpRequest) -> HttpResponse:
    index = registry.get("products")
    query = request.GET.get("q", "")
    mode = request.GET.get("mode", "hybrid")
    sort = request.GET.get("sort") or "relevance"
    results, error, page, facets = [], "", 1, []
    if query.strip():
        try:
            page = _page_number(request.GET.get("page"))
            offset = (page - 1) * PAGE_SIZE
            # the last page of the window is shorter, so that offset + limit stays within it
            limit = max(1, min(PAGE_SIZE, semantic_settings.MAX_RESULT_WINDOW - offset))
            results = search(
                index,
                query,
                mode=mode,
                filters=_filters(request.GET),
                limit=limit,
                offset=offset,
                sort=sort,
                facets=FACETS,
            )
            facets = facet_links(request.GET, results.facets)
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
        "sort": sort,
        "sorts": SORTS,
        "results": results,
        # every hit says how well it matches; when none is strong, nothing in the catalog matched well
        "only_related": bool(results) and not any(hit.match == "strong" for hit in results),
        "facets": facets,
        "page": page,
        "previous_page": _link(request.GET, page=page - 1) if page > 1 and not error else "",
        "next_page": _link(request.GET, page=page + 1) if results and results.has_next else "",
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


SEGMENT_SAMPLES = 6  # products shown per segment, the most confidently assigned first


def segments_page(request: HttpRequest) -> HttpResponse:
    """The segments of the products' latest completed run, largest first, each with a few of its products."""
    index = registry.get("products")
    finished = SegmentationRun.objects.filter(index=index.name, status=SegmentationRun.Status.COMPLETED)
    run = finished.order_by("-finished_at", "-pk").first()
    segments = []
    if run is not None:
        for segment in run.segments.order_by("-item_count", "key"):
            ids = list(segment.items.order_by("-confidence", "pk").values_list("item_id", flat=True)[:SEGMENT_SAMPLES])
            rows, _ = index.rows_by_id(ids)  # rows since removed from the queryset are left out
            segments.append({"segment": segment, "samples": [rows[i] for i in ids if i in rows]})
    context = {
        "run": run,
        "segments": segments,
        "keywords": run is not None and run.params.get("naming") == "keywords",
    }
    return render(request, "shop/segments.html", context)
