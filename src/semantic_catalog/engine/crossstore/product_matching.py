"""The very same product sold by two shops under different wording.

Two steps. Candidates: for each product of shop A, the nearest products of shop B by embedding
and by shared title words (an embedding alone confuses near variants, words alone miss rewording),
both from indexes (``candidates``), never a loop over every target. Scoring: a similar product is
not the same product, so the score weighs what identifies an item, read the way shops write it
(``listing_signals``): model numbers (a shared one is strong evidence; a variant, "KX100B" against
"KX100W", counts against; two unrelated ones rule a match out), the brand (normalised; unknown is
neutral), measurements, the price (smoothly, and not at all between a bundle and a single unit),
and only then the overall similarity. Each product is matched at most once, best pairs first, when
the score reaches the threshold.

``match_features`` returns a plain dict of named numbers, the same keys for every pair (a learned
matcher can read them as they are):

============== ===================================================================================
cosine         cosine of the two listings' vectors
title_words    share of the shorter title's words found in the other title (containment)
text_words     the same with descriptions: the larger share of one title's words found in the other
               listing's title and description (equals title_words when neither has a description)
model_shared   1 when a model number is shared (titles and model-number fields; also one found in the
               other title written with spaces, "SRT 32HC2003")
model_variant  1 when the only related model numbers differ by a short suffix (KX100B / KX100W)
model_conflict 1 when both have model numbers and none is shared or a variant
number_shared  1 when, without model-number evidence either way, both titles carry a bare 3-4 digit
               number (no unit) and share one ("Vostro 5510")
number_conflict  the same, sharing none (weaker than model_conflict: "5400" may be a speed)
brand_agree    1 when the brands agree (normalised; one contained in the other; a declared brand
               found in the other's title; without brands, the same first title word)
brand_conflict 1 when both declare brands and they do not agree
spec_conflict  1 when a measurement in the same unit differs (10 in. against 12 in.)
bundle_differs 1 when one listing is a pack, kit or set the other is not (or of another count)
price_used     1 when both prices are known and comparable (no bundle_differs)
price_ratio    lower price / higher price when price_used, else 0
============== ===================================================================================
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Protocol

import numpy as np

from semantic_catalog.engine.crossstore import listing_signals as sig
from semantic_catalog.engine.crossstore.assignment import one_to_one
from semantic_catalog.engine.crossstore.candidates import Neighbours, WordIndex, nearest_by_vector
from semantic_catalog.engine.errors import InvalidQuery

# Re-exported: the signal readers live in listing_signals.
model_numbers = sig.model_numbers
specs = sig.specs
words = sig.words

# Best mean F1 of the demo's 48 same-item pairs (end to end) and ProMapCz's 299 labelled pairs, both
# used to choose it (benchmarks/matching_quality.py prints the sweep).
DEFAULT_THRESHOLD = 0.6

# Points each signal adds (or takes away) in match_score; the reasons of a pair are these times its features.
WEIGHTS = {
    "cosine": 0.35,
    "title_words": 0.25,
    "model_shared": 0.35,
    "model_variant": -0.15,
    "model_conflict": -0.4,
    "number_shared": 0.2,
    "number_conflict": -0.15,
    "brand_agree": 0.1,
    "brand_conflict": -0.3,
    "spec_conflict": -0.3,
    "price": 0.1,  # times price_agreement(price_ratio), from -1 to 1, when price_used
}


@dataclass(frozen=True)
class ProductRecord:
    """What matching reads of a product: its title, and when known its brand, price, description and
    model number (a manufacturer part number, MPN or SKU as the shop lists it)."""

    id: str
    shop: str
    title: str
    brand: str = ""
    price: float | None = None
    description: str = ""
    model_number: str = ""


@dataclass(frozen=True)
class ProductMatch:
    """A scored pair; ``reasons`` are the signals that moved the score, each with the points it added or
    took away; ``rank`` is the target's place among the source's candidates (1 = best) when ranked."""

    source: str
    target: str
    score: float
    features: dict[str, float] = field(default_factory=dict, compare=False)
    reasons: dict[str, float] = field(default_factory=dict, compare=False)
    rank: int = field(default=0, compare=False)


class PairScorer(Protocol):
    """A scorer learned from labelled pairs (``trained_matcher.TrainedMatcher``) in place of ``match_score``:
    it scores every candidate pair in one call (a cross-encoder reads them in batches) and brings the
    threshold it was tuned for."""

    threshold: float

    def score_pairs(
        self, pairs: Sequence[tuple[ProductRecord, ProductRecord]], features: Sequence[Mapping[str, float]]
    ) -> list[tuple[float, dict[str, float]]]:
        """(score in [0, 1], reasons) per pair."""
        ...


class Listing:
    """A record's signals, read once per record (a record meets many candidates)."""

    def __init__(self, record: ProductRecord) -> None:
        self.record = record
        self.title_words = sig.words(record.title)
        self.models = sig.model_numbers(record.title) | sig.model_numbers(record.model_number)
        if record.model_number.strip() and not sig.model_numbers(record.model_number):
            self.models.add(record.model_number.strip().upper().replace("-", "").replace(" ", ""))
        self.numbers = sig.short_numbers(record.title)
        self.specs = sig.specs(record.title)
        self.bundle = sig.bundle(record.title)
        self.brand = sig.brand_tokens(record.brand)
        self.first_word = sig.brand_tokens(next(iter(sig.WORD.findall(record.title)), ""))

    @cached_property
    def joined(self) -> set[str]:
        return sig.joined_tokens(self.record.title)

    @cached_property
    def all_words(self) -> set[str]:
        return self.title_words | sig.words(self.record.description)


def _brand(a: Listing, b: Listing) -> tuple[float, float]:
    """(agree, conflict). Both declared: compared; one declared: found in the other's title or neutral;
    none: the titles' first words compared (agreement only: an unknown brand is never a conflict)."""
    if a.brand and b.brand:
        agree = sig.brands_agree(a.brand, b.brand)
        return float(agree), float(not agree)
    if a.brand or b.brand:
        known, other = (a, b) if a.brand else (b, a)
        return float(sig.brand_in_title(known.brand, other.record.title)), 0.0
    return float(sig.brands_agree(a.first_word, b.first_word)), 0.0


def _cover(part: set[str], whole: set[str]) -> float:
    return len(part & whole) / len(part) if part else 0.0


def _features(a: Listing, b: Listing, cosine: float) -> dict[str, float]:
    relation = sig.model_relation(a.models, b.models, a.joined if b.models else "", b.joined if a.models else "")
    numbers = ""
    if not relation and a.numbers and b.numbers:
        numbers = "shared" if a.numbers & b.numbers else "conflict"
    shorter = min(len(a.title_words), len(b.title_words))
    title_words = len(a.title_words & b.title_words) / max(1, shorter)
    if a.record.description or b.record.description:
        text_words = max(_cover(a.title_words, b.all_words), _cover(b.title_words, a.all_words))
    else:
        text_words = title_words
    agree, conflict = _brand(a, b)
    bundle_differs = a.bundle != b.bundle
    price_used = bool(a.record.price and b.record.price and not bundle_differs)
    ratio = min(a.record.price, b.record.price) / max(a.record.price, b.record.price) if price_used else 0.0  # type: ignore[arg-type, type-var]
    return {
        "cosine": float(cosine),
        "title_words": title_words,
        "text_words": text_words,
        "model_shared": float(relation == "shared"),
        "model_variant": float(relation == "variant"),
        "model_conflict": float(relation == "conflict"),
        "number_shared": float(numbers == "shared"),
        "number_conflict": float(numbers == "conflict"),
        "brand_agree": agree,
        "brand_conflict": conflict,
        "spec_conflict": float(any(not a.specs[u] & b.specs[u] for u in a.specs.keys() & b.specs.keys())),
        "bundle_differs": float(bundle_differs),
        "price_used": float(price_used),
        "price_ratio": ratio,
    }


def match_features(a: ProductRecord, b: ProductRecord, cosine: float) -> dict[str, float]:
    """The named signals of one pair (see the module's table)."""
    return _features(Listing(a), Listing(b), cosine)


def score_reasons(features: Mapping[str, float]) -> dict[str, float]:
    """The points each signal adds (positive) or takes away (negative), rounded; signals that did not
    fire are left out."""
    reasons = {name: weight * features[name] for name, weight in WEIGHTS.items() if name != "price"}
    if features.get("price_used"):
        reasons["price"] = WEIGHTS["price"] * sig.price_agreement(features["price_ratio"])
    return {name: round(value, 4) for name, value in reasons.items() if value}


def match_score(features: Mapping[str, float]) -> float:
    """A score in [0, 1]: evidence of identity adds, evidence of a different item takes away."""
    return float(min(1.0, max(0.0, sum(score_reasons(features).values()))))


def _check(source: Sequence[ProductRecord], target: Sequence[ProductRecord], threshold: float, k: int) -> None:
    if not 0.0 <= threshold <= 1.0:
        raise InvalidQuery(f"threshold must be from 0 to 1, not {threshold!r}.")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InvalidQuery(f"candidates must be a whole number of at least 1, not {k!r}.")
    for side, records in (("source", source), ("target", target)):
        if records and not any(r.title.strip() for r in records):
            raise InvalidQuery(f"The {side} catalog has no titles: matching reads each product's title.")


def rank_candidates(
    source: Sequence[ProductRecord],
    target: Sequence[ProductRecord],
    vectors: Mapping[str, np.ndarray],
    candidates: int = 10,
    top_k: int | None = None,
    neighbours: Neighbours | None = None,
    scorer: PairScorer | None = None,
) -> dict[str, list[ProductMatch]]:
    """Each source product's candidates (``candidates`` nearest by vector and as many by title words),
    scored and ranked best first, the ``top_k`` best kept (all when None). Products without a vector
    are left out. ``neighbours`` replaces the exact vector search (an approximate index); ``scorer``
    (a trained matcher) replaces ``match_score``."""
    _check(source, target, 0.0, candidates)
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise InvalidQuery(f"top_k must be a whole number of at least 1, not {top_k!r}.")
    source = [p for p in source if p.id in vectors]
    target = [p for p in target if p.id in vectors]
    if not source or not target:
        return {}
    matrix_a = np.stack([np.asarray(vectors[p.id], dtype=np.float32) for p in source])
    matrix_b = np.stack([np.asarray(vectors[p.id], dtype=np.float32) for p in target])
    if neighbours is None:
        by_meaning = nearest_by_vector(matrix_a, matrix_b, candidates).tolist()
    else:  # an approximate index answers with target ids; ids outside ``target`` are dropped
        position = {p.id: j for j, p in enumerate(target)}
        by_meaning = [[position[t] for t in ids if t in position] for ids in neighbours(matrix_a, candidates)]
    listings_b = [Listing(p) for p in target]
    index = WordIndex([b.title_words for b in listings_b])
    found: list[tuple[int, int, dict[str, float]]] = []  # (source, target, features) of every candidate pair
    for i, record in enumerate(source):
        a = Listing(record)
        pool = dict.fromkeys(by_meaning[i] + index.nearest(a.title_words, candidates))
        cosines = matrix_b[list(pool)] @ matrix_a[i]
        found += [(i, j, _features(a, listings_b[j], cosine)) for j, cosine in zip(pool, cosines.tolist())]
    if scorer is None:
        scores = []
        for _, _, features in found:
            reasons = score_reasons(features)
            scores.append((float(min(1.0, max(0.0, sum(reasons.values())))), reasons))
    else:
        scores = scorer.score_pairs([(source[i], target[j]) for i, j, _ in found], [f for _, _, f in found])
    scored: dict[str, list[ProductMatch]] = {p.id: [] for p in source}
    for (i, j, features), (score, reasons) in zip(found, scores):
        scored[source[i].id].append(ProductMatch(source[i].id, target[j].id, score, features, reasons))
    ranked: dict[str, list[ProductMatch]] = {}
    for source_id, matches in scored.items():
        matches.sort(key=lambda m: (-m.score, m.target))
        ranked[source_id] = [
            ProductMatch(m.source, m.target, m.score, m.features, m.reasons, rank)
            for rank, m in enumerate(matches[:top_k], start=1)
        ]
    return ranked


def match_products(
    source: Sequence[ProductRecord],
    target: Sequence[ProductRecord],
    vectors: Mapping[str, np.ndarray],
    threshold: float | None = None,
    candidates: int = 10,
    neighbours: Neighbours | None = None,
    scorer: PairScorer | None = None,
) -> list[ProductMatch]:
    """Same-product pairs from ``source`` to ``target``, at most one per product, best first, each with
    its features and reasons. ``threshold`` defaults to the scorer's own (``DEFAULT_THRESHOLD`` without one)."""
    if threshold is None:
        threshold = DEFAULT_THRESHOLD if scorer is None else scorer.threshold
    _check(source, target, threshold, candidates)
    ranked = rank_candidates(source, target, vectors, candidates, neighbours=neighbours, scorer=scorer)
    scored = [m for found in ranked.values() for m in found if m.score >= threshold]
    scored.sort(key=lambda m: (-m.score, m.source, m.target))
    return one_to_one(scored)
