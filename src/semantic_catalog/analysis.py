"""Cross-store analysis on the server (for catalogs small enough to hold in memory): category links,
same-product matches and substitutions from the index's stored vectors, saved as new runs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.utils import timezone

from .backends import get_encoder, get_store
from .collections import require_searchable
from .engine.category_links import CategoryLink, CategoryPath, category_centroids, link_categories
from .engine.product_matching import DEFAULT_THRESHOLD, ProductMatch, ProductRecord, match_products
from .engine.substitutions import LEVELS, ProductRef, check_level, find_substitutions
from .indexes import SemanticIndex
from .results import RunReport, save_run

KINDS = ("links", "substitutions", "matches")


@dataclass
class Catalog:
    """The index's rows as the analysis functions see them."""

    categories: dict[str, CategoryPath]
    products: list[ProductRef]
    records: list[ProductRecord]
    vectors: dict


def load_catalog(index: SemanticIndex, table: str) -> Catalog:
    objects = list(index.get_queryset())
    stored = get_store().fetch(table, [str(obj.pk) for obj in objects], with_vectors=True)
    categories: dict[str, CategoryPath] = {}
    products, records = [], []
    for obj in objects:
        store, chain = index.store_of(obj), index.category_chain(obj)
        if not chain:
            continue
        for depth in range(1, len(chain) + 1):
            category_id = chain[depth - 1][0]
            categories.setdefault(category_id, CategoryPath(category_id, store, tuple(n for _, n in chain[:depth])))
        products.append(ProductRef(str(obj.pk), store, chain[-1][0]))
        records.append(index.product_record(obj))
    return Catalog(categories, products, records, {i: r.vector for i, r in stored.items()})


def _store_pairs(catalog: Catalog) -> list[tuple[str, str]]:
    stores = sorted({p.store for p in catalog.products})
    return [(a, b) for i, a in enumerate(stores) for b in stores[i + 1 :]]


def analyze(
    index: SemanticIndex,
    kinds: Sequence[str] = KINDS,
    levels: Sequence[int] = LEVELS,
    k: int = 5,
    link_threshold: float = 0.6,
    match_threshold: float = DEFAULT_THRESHOLD,
    dry_run: bool = False,
) -> list[RunReport]:
    """Compute and save the asked kinds. Substitutions use the links and matches computed here."""
    for level in levels:
        check_level(level)
    collection = require_searchable(index)
    encoder = get_encoder(collection.encoder)
    catalog = load_catalog(index, collection.table)
    leaves = {p.category for p in catalog.products}
    centroids = category_centroids(
        list(catalog.categories.values()), {p.id: p.category for p in catalog.products}, catalog.vectors
    )
    links: list[CategoryLink] = []
    matches: list[ProductMatch] = []
    for a, b in _store_pairs(catalog):
        shelves = {s: [c for c in catalog.categories.values() if c.store == s and c.id in leaves] for s in (a, b)}
        links += link_categories(shelves[a], shelves[b], encoder, centroids, threshold=link_threshold)
        listed = {s: [r for r in catalog.records if r.store == s] for s in (a, b)}
        matches += match_products(listed[a], listed[b], catalog.vectors, threshold=match_threshold)
    now, parameters = timezone.now(), {"k": k, "link_threshold": link_threshold, "match_threshold": match_threshold}
    reports = []
    if "links" in kinds:
        rows = [
            {
                "source_store": catalog.categories[link.source].store,
                "source_category": link.source,
                "target_store": catalog.categories[link.target].store,
                "target_category": link.target,
                "score": link.score,
            }
            for link in links
        ]
        reports.append(save_run(index, "links", rows, encoder.name, now, parameters=parameters, dry_run=dry_run))
    if "matches" in kinds:
        rows = [{"product": m.source, "match": m.target, "score": m.score} for m in matches]
        reports.append(save_run(index, "matches", rows, encoder.name, now, parameters=parameters, dry_run=dry_run))
    if "substitutions" in kinds:
        pairs = [(m.source, m.target) for m in matches]
        found = [
            s
            for level in levels
            for s in find_substitutions(
                catalog.products, list(catalog.categories.values()), catalog.vectors, level, links, pairs, k=k
            )
        ]
        rows = [
            {"product": s.product, "substitute": s.substitute, "level": s.level, "score": s.score, "rank": s.rank}
            for s in found
        ]
        reports.append(
            save_run(index, "substitutions", rows, encoder.name, now, parameters=parameters, dry_run=dry_run)
        )
    return reports
