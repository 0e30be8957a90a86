"""Cross-store analysis of a whole catalog, and its result files.

The same computation serves ``manage.py semantic_analyze`` (rows from the database) and
``semantic-catalog analyze`` (rows from an export file): category links between every pair of
shops, same-product matches, then substitutes that exclude those matches. Result files are JSON:
``{"kind", "index", "model", "computed_at", "parameters", "rows": [...]}``, one per kind.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from semantic_catalog.engine.crossstore.category_links import (
    DEFAULT_LINK_THRESHOLD,
    CategoryLink,
    CategoryPath,
    category_centroids,
    link_categories,
)
from semantic_catalog.engine.crossstore.product_matching import (
    DEFAULT_THRESHOLD,
    PairScorer,
    ProductMatch,
    ProductRecord,
    match_products,
    rank_candidates,
)
from semantic_catalog.engine.crossstore.substitutions import (
    DEFAULT_K,
    LEVELS,
    ProductRef,
    check_level,
    find_substitutions,
)
from semantic_catalog.engine.encoders.base import Encoder
from semantic_catalog.engine.errors import BadFile

KINDS = ("links", "substitutions", "matches")
FILE_NAMES = {"links": "category_links.json", "substitutions": "substitutions.json", "matches": "product_matches.json"}


@dataclass
class Catalog:
    """A catalog as the analysis reads it: category paths, products with their leaf category,
    what matching reads of them, and their vectors."""

    categories: dict[str, CategoryPath]
    products: list[ProductRef]
    records: list[ProductRecord]
    vectors: Mapping[str, np.ndarray]


def catalog_from_rows(rows: Iterable[tuple[str, Mapping[str, Any]]], vectors: Mapping[str, np.ndarray]) -> Catalog:
    """``rows``: (product id, ``{"store", "category": [[id, name], ...] root first, "title", "brand",
    "price", "description", "model_number"}``; the last two optional), the ``analysis`` part of an export
    record. Rows without a category are skipped."""
    categories: dict[str, CategoryPath] = {}
    products, records = [], []
    for product_id, data in rows:
        shop, chain = str(data["store"]), [(str(i), str(name)) for i, name in data.get("category") or []]
        if not chain:
            continue
        for depth in range(1, len(chain) + 1):
            category_id = chain[depth - 1][0]
            categories.setdefault(category_id, CategoryPath(category_id, shop, tuple(n for _, n in chain[:depth])))
        products.append(ProductRef(product_id, shop, chain[-1][0]))
        records.append(product_record(product_id, data))
    return Catalog(categories, products, records, vectors)


def product_record(product_id: str, data: Mapping[str, Any]) -> ProductRecord:
    """What matching reads of a product, from the ``analysis`` part of its export record."""
    price = data.get("price")
    return ProductRecord(
        product_id,
        str(data["store"]),
        str(data.get("title") or ""),
        data.get("brand") or "",
        float(price) if price else None,
        str(data.get("description") or ""),
        str(data.get("model_number") or ""),
    )


def analysis_parameters(
    k: int, link_threshold: float, match_threshold: float | None, levels: Sequence[int], scorer: PairScorer | None
) -> dict[str, Any]:
    """A run's parameters as its results record them: the match threshold resolved (the scorer's own
    unless one is given; ``DEFAULT_THRESHOLD`` without a scorer) and which trained matcher scored."""
    if match_threshold is None:
        match_threshold = DEFAULT_THRESHOLD if scorer is None else scorer.threshold
    parameters = {"k": k, "link_threshold": link_threshold, "match_threshold": match_threshold, "levels": list(levels)}
    if scorer is not None:  # a TrainedMatcher says when it was made and from how many labels
        made = {name: getattr(scorer, name, None) for name in ("created_at", "labels")}
        parameters["matcher"] = made
    return parameters


def analyze_catalog(
    catalog: Catalog,
    encoder: Encoder,
    kinds: Sequence[str] = KINDS,
    levels: Sequence[int] = LEVELS,
    k: int = DEFAULT_K,
    link_threshold: float = DEFAULT_LINK_THRESHOLD,
    match_threshold: float | None = None,
    scorer: PairScorer | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Result rows per asked kind, in the shape the result files and the database take. Matches are
    scored by ``scorer`` (a trained matcher) when given, at its threshold unless ``match_threshold`` is set."""
    for level in levels:
        check_level(level)
    leaves = {p.category for p in catalog.products}
    centroids = category_centroids(
        list(catalog.categories.values()), {p.id: p.category for p in catalog.products}, catalog.vectors
    )
    shops = sorted({p.shop for p in catalog.products})
    links: list[CategoryLink] = []
    matches: list[ProductMatch] = []
    for i, a in enumerate(shops):
        for b in shops[i + 1 :]:
            shelves = {s: [c for c in catalog.categories.values() if c.shop == s and c.id in leaves] for s in (a, b)}
            links += link_categories(shelves[a], shelves[b], encoder, centroids, threshold=link_threshold)
            listed = {s: [r for r in catalog.records if r.shop == s] for s in (a, b)}
            matches += match_products(
                listed[a], listed[b], catalog.vectors, threshold=match_threshold, scorer=scorer
            )
    results: dict[str, list[dict[str, Any]]] = {}
    if "links" in kinds:
        results["links"] = [
            {
                "source_store": catalog.categories[link.source].shop,
                "source_category": link.source,
                "target_store": catalog.categories[link.target].shop,
                "target_category": link.target,
                "score": link.score,
            }
            for link in links
        ]
    if "matches" in kinds:
        results["matches"] = [
            {"product": m.source, "match": m.target, "score": m.score, "reasons": m.reasons} for m in matches
        ]
    if "substitutions" in kinds:
        pairs = [(m.source, m.target) for m in matches]
        categories = list(catalog.categories.values())
        results["substitutions"] = [
            {"product": s.product, "substitute": s.substitute, "level": s.level, "score": s.score, "rank": s.rank}
            for level in levels
            for s in find_substitutions(catalog.products, categories, catalog.vectors, level, links, pairs, k=k)
        ]
    return results


def candidate_rows(catalog: Catalog, top_k: int) -> list[dict[str, Any]]:
    """Each product's ``top_k`` best ranked match candidates in every other shop, ``{"product",
    "candidate", "rank", "score", "reasons"}``: what the matcher considered, so the candidate step's
    recall@k can be measured against known pairs (a report; not a kind the import takes)."""
    shops = sorted({r.shop for r in catalog.records})
    rows: list[dict[str, Any]] = []
    for i, a in enumerate(shops):
        for b in shops[i + 1 :]:
            listed = {s: [r for r in catalog.records if r.shop == s] for s in (a, b)}
            for found in rank_candidates(listed[a], listed[b], catalog.vectors, top_k=top_k).values():
                rows += [
                    {"product": m.source, "candidate": m.target, "rank": m.rank, "score": m.score, "reasons": m.reasons}
                    for m in found
                ]
    return rows


def write_result_files(
    out_dir: str | Path, index: str, model: str, results: Mapping[str, list[dict[str, Any]]], parameters: dict
) -> list[Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    computed_at = datetime.now(UTC).isoformat()
    paths = []
    for kind, rows in results.items():
        path = out / FILE_NAMES[kind]
        payload = {
            "kind": kind,
            "index": index,
            "model": model,
            "computed_at": computed_at,
            "parameters": parameters,
            "rows": rows,
        }
        path.write_text(json.dumps(payload, ensure_ascii=False, indent=1))
        paths.append(path)
    return paths


def read_result_file(path: str | Path) -> dict[str, Any]:
    """A result file, its shape checked (the rows themselves are checked on import)."""
    path = Path(path)
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadFile(f"{path}: no such file.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadFile(f"{path}: not JSON ({exc}).") from None
    return check_result_payload(payload, str(path))


def check_result_payload(payload: Any, where: str) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise BadFile(f"{where}: expected an object with kind, index, model, computed_at and rows.")
    missing = [key for key in ("kind", "index", "model", "computed_at", "rows") if key not in payload]
    if missing:
        raise BadFile(f"{where}: missing {', '.join(missing)}.")
    if payload["kind"] not in KINDS:
        raise BadFile(f"{where}: kind {payload['kind']!r} is not one of {', '.join(KINDS)}.")
    if not isinstance(payload["rows"], list) or not all(isinstance(r, dict) for r in payload["rows"]):
        raise BadFile(f"{where}: 'rows' must be a list of objects.")
    try:
        datetime.fromisoformat(str(payload["computed_at"]))
    except ValueError:
        raise BadFile(f"{where}: computed_at {payload['computed_at']!r} is not an ISO date-time.") from None
    return payload
