"""The matcher as it was before issue 22 (commit 41d707c), frozen so benchmarks/matching_quality.py can
measure before and after on the same data. Not used by the library."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from semantic_catalog.engine.crossstore.assignment import one_to_one
from semantic_catalog.engine.errors import InvalidQuery

WORD = re.compile(r"[^\W_]+(?:[-/.][^\W_]+)*", re.UNICODE)
UNITS = (
    "in|inch|inches|ft|yd|mm|cm|m|oz|qt|gal|l|ml|lb|lbs|kg|g|v|w|kw|ah|mah|wh|cfm|psi|rpm|pc|pcs|piece|pack|"
    "cup|cc|tb|gb|mb|hz|mp"
)
SPEC = re.compile(rf"(\d+(?:[.,]\d+)?(?:[-/ ]\d+/\d+)?)\s*-?\s*({UNITS})\b\.?", re.IGNORECASE)
SPEC_TOKEN = re.compile(rf"^\d+(?:[.,]\d+)?-?({UNITS})$", re.IGNORECASE)


# Best F1 on the demo's 48 same-item pairs (precision 0.900, recall 0.938; tests/test_product_matching.py);
# benchmarks/matching_quality.py reports it on ProMapCz, which was not used to choose it.
DEFAULT_THRESHOLD = 0.6


@dataclass(frozen=True)
class ProductRecord:
    """What matching reads of a product: its title, brand and price (None when unknown)."""

    id: str
    shop: str
    title: str
    brand: str = ""
    price: float | None = None


@dataclass(frozen=True)
class ProductMatch:
    source: str
    target: str
    score: float
    features: dict[str, float] = field(default_factory=dict, compare=False)


def words(text: str) -> set[str]:
    return {w.lower() for w in WORD.findall(text)}


def model_numbers(text: str) -> set[str]:
    """Tokens that look like model or part numbers, normalised (case, dashes, slashes and dots
    dropped, so "48-22-2761" equals "48222761"): a run of 3 digits with letters ("DCS570P1"), or at
    least 4 digits alone ("5200"); "11-in-1" is not one. Measurements ("5.0Ah", "4-Pack") are specs, not models."""
    found = set()
    for token in WORD.findall(text):
        if SPEC_TOKEN.match(token):
            continue
        plain = re.sub(r"[-/.]", "", token).upper()
        if (plain.isdigit() and len(plain) >= 4) or (not plain.isdigit() and re.search(r"\d{3,}", plain)):
            found.add(plain)
    return found


def specs(text: str) -> dict[str, set[str]]:
    """Measurements by unit: "10 in. x 60 yd." -> {"in": {"10"}, "yd": {"60"}}."""
    found: dict[str, set[str]] = {}
    for value, unit in SPEC.findall(text):
        unit = {"inch": "in", "inches": "in", "lbs": "lb", "pcs": "pc", "piece": "pc"}.get(unit.lower(), unit.lower())
        found.setdefault(unit, set()).add(value.replace(",", ".").replace(" ", "-"))
    return found


def brand(product: ProductRecord) -> str:
    """The brand, or else the title's first word (listings usually start with it)."""
    name = product.brand.strip() or next(iter(WORD.findall(product.title)), "")
    return name.lower()


def match_features(a: ProductRecord, b: ProductRecord, cosine: float) -> dict[str, float]:
    models_a, models_b = model_numbers(a.title), model_numbers(b.title)
    words_a, words_b = words(a.title), words(b.title)
    specs_a, specs_b = specs(a.title), specs(b.title)
    features = {
        "cosine": cosine,
        # containment, not Jaccard: one shop adds colour or pack words the other leaves out
        "title_words": len(words_a & words_b) / max(1, min(len(words_a), len(words_b))),
        "model_shared": float(bool(models_a & models_b)),
        "model_conflict": float(bool(models_a and models_b and not models_a & models_b)),
        "brand_equal": float(bool(brand(a)) and brand(a) == brand(b)),
        "brand_conflict": float(bool(a.brand.strip() and b.brand.strip()) and brand(a) != brand(b)),
        # the same measurement with different values: a near variant (10 in. vs 12 in.), not the item
        "spec_conflict": float(any(not specs_a[u] & specs_b[u] for u in specs_a.keys() & specs_b.keys())),
    }
    if a.price and b.price:
        features["price_ratio"] = min(a.price, b.price) / max(a.price, b.price)
    return features


def match_score(features: Mapping[str, float]) -> float:
    """A score in [0, 1]: evidence of identity adds, evidence of a different item takes away."""
    score = 0.35 * features["cosine"] + 0.25 * features["title_words"] + 0.35 * features["model_shared"]
    score += 0.1 * features["brand_equal"] - 0.3 * features["brand_conflict"] - 0.4 * features["model_conflict"]
    score -= 0.3 * features["spec_conflict"]
    if "price_ratio" in features:
        score += 0.1 * features["price_ratio"] - (0.2 if features["price_ratio"] < 0.6 else 0.0)
    return float(min(1.0, max(0.0, score)))


def match_products(
    source: Sequence[ProductRecord],
    target: Sequence[ProductRecord],
    vectors: Mapping[str, np.ndarray],
    threshold: float = DEFAULT_THRESHOLD,
    candidates: int = 10,
) -> list[ProductMatch]:
    """Same-product pairs from ``source`` to ``target``, at most one per product, best first."""
    if not 0.0 <= threshold <= 1.0:
        raise InvalidQuery(f"threshold must be from 0 to 1, not {threshold!r}.")
    if candidates < 1:
        raise InvalidQuery(f"candidates must be at least 1, not {candidates!r}.")
    source = [p for p in source if p.id in vectors]
    target = [p for p in target if p.id in vectors]
    if not source or not target:
        return []
    cosines = np.stack([vectors[p.id] for p in source]) @ np.stack([vectors[p.id] for p in target]).T
    target_words = [words(p.title) for p in target]
    scored: list[ProductMatch] = []
    for i, a in enumerate(source):
        by_meaning = np.argsort(-cosines[i], kind="stable")[:candidates]
        mine = words(a.title)
        overlap = np.array([len(mine & w) for w in target_words])
        by_words = np.argsort(-overlap, kind="stable")[:candidates]
        for j in dict.fromkeys([*by_meaning.tolist(), *by_words.tolist()]):
            features = match_features(a, target[j], float(cosines[i, j]))
            score = match_score(features)
            if score >= threshold:
                scored.append(ProductMatch(a.id, target[j].id, score, features))
    scored.sort(key=lambda m: (-m.score, m.source, m.target))
    return one_to_one(scored)
