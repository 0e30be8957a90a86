"""Products that can stand in for a product: the same kind of thing, not the same item.

A substitute of product p at level L (3: broad, 4: narrow) is a product whose category, cut at
depth L, is p's category cut at depth L in the same shop, or a category linked to it in another
shop (links between deeper categories count for their level-L ancestors). Within that pool the
top k by cosine similarity are kept, never p itself nor a product matched as the very same item.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from semantic_catalog.engine.crossstore.category_links import CategoryLink, CategoryPath
from semantic_catalog.engine.errors import InvalidQuery

LEVELS = (3, 4)
DEFAULT_K = 5  # substitutes kept per product and level


@dataclass(frozen=True)
class ProductRef:
    """What substitution needs of a product: its id, shop and (leaf) category id."""

    id: str
    shop: str
    category: str


@dataclass(frozen=True)
class Substitution:
    product: str
    substitute: str
    level: int
    score: float
    rank: int


def check_level(level: int) -> int:
    if level not in LEVELS:
        raise InvalidQuery(f"level must be 3 or 4, not {level!r}.")
    return level


def _ancestors_at(categories: Sequence[CategoryPath], level: int) -> dict[str, str]:
    """Category id -> id of its ancestor (or itself) at depth ``level``; shallower ones are left out."""
    by_path = {(c.shop, c.path): c.id for c in categories}
    return {
        c.id: by_path[(c.shop, c.path[:level])]
        for c in categories
        if c.level >= level and (c.shop, c.path[:level]) in by_path
    }


def find_substitutions(
    products: Sequence[ProductRef],
    categories: Sequence[CategoryPath],
    vectors: Mapping[str, np.ndarray],
    level: int,
    links: Iterable[CategoryLink] = (),
    matches: Iterable[tuple[str, str]] = (),
    k: int = DEFAULT_K,
    min_score: float | None = None,
) -> list[Substitution]:
    """Top-``k`` substitutes per product at ``level``, best first; products filed above that depth,
    or without a vector, get none."""
    check_level(level)
    if k < 1:
        raise InvalidQuery(f"k must be at least 1, not {k!r}.")
    at_level = _ancestors_at(categories, level)
    linked: dict[str, set[str]] = defaultdict(set)  # level-L category -> its pool of level-L categories
    for link in links:
        a, b = at_level.get(link.source), at_level.get(link.target)
        if a and b:
            linked[a].add(b)
            linked[b].add(a)
    excluded: dict[str, set[str]] = defaultdict(set)
    for a, b in matches:
        excluded[a].add(b)
        excluded[b].add(a)

    members: dict[str, list[ProductRef]] = defaultdict(list)  # level-L category -> its products
    for product in products:
        group = at_level.get(product.category)
        if group is not None and product.id in vectors:
            members[group].append(product)

    results: list[Substitution] = []
    for group, own in members.items():
        pool = own + [p for other in sorted(linked[group] - {group}) for p in members.get(other, [])]
        matrix = np.stack([np.asarray(vectors[p.id], dtype=np.float32) for p in pool])
        scores = matrix[: len(own)] @ matrix.T
        for row, product in enumerate(own):
            order = np.argsort(-scores[row], kind="stable")
            rank = 0
            for column in order:
                candidate = pool[column]
                score = float(scores[row, column])
                if candidate.id == product.id or candidate.id in excluded[product.id]:
                    continue
                if min_score is not None and score < min_score:
                    break
                rank += 1
                results.append(Substitution(product.id, candidate.id, level, score, rank))
                if rank == k:
                    break
    return results
