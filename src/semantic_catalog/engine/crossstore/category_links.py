"""Which category of shop B is the same as this category of shop A.

Each category is compared by two signals: the embedding of its full path ("Tools > Power Tools >
Drills"), which knows what the names mean, and the centroid of its products' vectors, which knows
what the shop actually files there (two shops name the same shelf differently, and a vague name
like "Accessories" only makes sense through its products). The link score is a weighted sum of the
two cosines; categories without products are scored on their path alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from semantic_catalog.engine.crossstore.assignment import one_to_one
from semantic_catalog.engine.encoders.base import Encoder, normalise
from semantic_catalog.engine.errors import InvalidQuery

LinkMode = Literal["one_to_one", "one_to_many"]
PATH_SEPARATOR = " > "
DEFAULT_LINK_THRESHOLD = 0.6  # least cosine of two shelves' centroids for a link


@dataclass(frozen=True)
class CategoryPath:
    """One shop's category: its id and the names from the root down to it."""

    id: str
    shop: str
    path: tuple[str, ...]

    @property
    def level(self) -> int:
        return len(self.path)

    @property
    def text(self) -> str:
        return PATH_SEPARATOR.join(self.path)


@dataclass(frozen=True)
class CategoryLink:
    """``source`` (shop A) is the same kind of shelf as ``target`` (shop B), with a score in [-1, 1]."""

    source: str
    target: str
    score: float
    path_score: float
    product_score: float | None


def category_centroids(
    categories: Sequence[CategoryPath], product_categories: Mapping[str, str], vectors: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Unit centroid of the products filed in each category or below it.

    ``product_categories`` maps a product id to its (leaf) category id; ``vectors`` maps product ids
    to their vectors. Categories with no product get no entry."""
    by_id = {c.id: c for c in categories}
    by_path = {(c.shop, c.path): c.id for c in categories}
    sums: dict[str, np.ndarray] = {}
    for product, category_id in product_categories.items():
        category = by_id.get(category_id)
        vector = vectors.get(product)
        if category is None or vector is None:
            continue
        for depth in range(1, category.level + 1):  # the category and every ancestor
            ancestor = by_path.get((category.shop, category.path[:depth]))
            if ancestor is not None:
                sums[ancestor] = sums.get(ancestor, 0) + np.asarray(vector, dtype=np.float32)
    if not sums:
        return {}
    ids = list(sums)
    return dict(zip(ids, normalise(np.stack([sums[i] for i in ids]))))


def link_categories(
    source: Sequence[CategoryPath],
    target: Sequence[CategoryPath],
    encoder: Encoder,
    centroids: Mapping[str, np.ndarray] | None = None,
    mode: LinkMode = "one_to_many",
    threshold: float = DEFAULT_LINK_THRESHOLD,
    path_weight: float = 0.5,
    same_level: bool = False,
    margin: float = 0.03,
) -> list[CategoryLink]:
    """Links from ``source`` categories to ``target`` categories scoring at least ``threshold``.

    ``one_to_many``: for each source, every target above the threshold and within ``margin`` of that
    source's best (a category of A may be split in two in B). ``one_to_one``: each category appears
    at most once, taken greedily from the best score down. ``same_level`` compares only categories
    at the same depth. Defaults chosen on the demo's intended mapping (tests/test_category_links.py).
    Best links first.
    """
    if mode not in ("one_to_one", "one_to_many"):
        raise InvalidQuery(f"mode must be 'one_to_one' or 'one_to_many', not {mode!r}.")
    if not 0.0 <= path_weight <= 1.0:
        raise InvalidQuery(f"path_weight must be from 0 to 1, not {path_weight!r}.")
    if not source or not target:
        return []
    centroids = centroids or {}
    paths = encoder.encode([c.text for c in source] + [c.text for c in target])
    path_scores = paths[: len(source)] @ paths[len(source) :].T
    links = []
    for i, a in enumerate(source):
        for j, b in enumerate(target):
            if same_level and a.level != b.level:
                continue
            path_score = float(path_scores[i, j])
            product_score = None
            score = path_score
            if a.id in centroids and b.id in centroids:
                product_score = float(np.dot(centroids[a.id], centroids[b.id]))
                score = path_weight * path_score + (1 - path_weight) * product_score
            if score >= threshold:
                links.append(CategoryLink(a.id, b.id, score, path_score, product_score))
    links.sort(key=lambda link: (-link.score, link.source, link.target))
    if mode == "one_to_many":
        best: dict[str, float] = {}
        for link in links:
            best.setdefault(link.source, link.score)
        return [link for link in links if link.score >= best[link.source] - margin]
    return one_to_one(links)
