"""The rules that read listings the way shops write them: brands, model numbers, bundles, price."""

from __future__ import annotations

import numpy as np
import pytest

from semantic_catalog.engine.crossstore.listing_signals import (
    brand_tokens,
    brands_agree,
    bundle,
    model_relation,
    price_agreement,
    short_numbers,
    specs,
)
from semantic_catalog.engine.crossstore.product_matching import (
    ProductRecord,
    match_features,
    match_score,
    score_reasons,
)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("LG-Electronics", "LG"),
        ("Bosch", "BOSCH Power Tools"),
        ("Adobe Software", "adobe"),
        ("Apple Inc.", "APPLE"),
        ("De Walt", "DeWALT"),
        ("Sony", "Sony Pictures"),
        ("Kärcher", "Karcher"),
        ("The Hewlett-Packard Company", "Hewlett Packard"),
    ],
)
def test_brands_written_differently_agree(a, b):
    assert brands_agree(brand_tokens(a), brand_tokens(b))


def test_brand_normalisation_keeps_what_names_the_brand():
    assert brand_tokens("LG-Electronics") == ("lg",) and brand_tokens("Samsung Electronics America") == ("samsung",)
    assert brand_tokens("Tools") == ("tools",)  # never stripped to nothing
    assert not brands_agree(brand_tokens("Apple"), brand_tokens("Pineapple Co"))
    assert not brands_agree(brand_tokens("Makita"), brand_tokens("DEWALT"))
    assert not brands_agree((), brand_tokens("Makita"))


def record(title: str, brand: str = "", price: float | None = None, **extra) -> ProductRecord:
    return ProductRecord("x", "s", title, brand, price, **extra)


def test_an_unknown_brand_is_neutral_and_a_declared_one_is_read_in_the_other_title():
    features = match_features(record("LG 27UL500 Monitor", "LG-Electronics"), record("LG 27UL500-W monitor"), 0.8)
    assert features["brand_agree"] == 1.0 and features["brand_conflict"] == 0.0
    features = match_features(record("27UL500 Monitor", "LG"), record("UltraFine 27UL500 display"), 0.8)
    assert features["brand_agree"] == 0.0 and features["brand_conflict"] == 0.0
    features = match_features(record("Drill", "Bosch"), record("Drill", "BOSCH Power Tools"), 0.8)
    assert features["brand_agree"] == 1.0 and features["brand_conflict"] == 0.0
    assert match_features(record("Drill", "Makita"), record("Drill", "Ryobi"), 0.8)["brand_conflict"] == 1.0


def test_model_numbers_shared_variant_or_conflicting():
    assert model_relation({"KX100B"}, {"KX100W"}) == "variant"
    assert model_relation({"DCS570B"}, {"DCS570P1"}) == "variant"
    assert model_relation({"GSJ960PZBZ"}, {"GSL960PZBZ"}) == "variant"  # one character apart
    assert model_relation({"DCS570B"}, {"XFD131"}) == "conflict"
    assert model_relation({"DCS570B"}, set()) == ""
    # written with a space on one side: found among the other title's glued neighbouring tokens
    assert model_relation({"SRT32HC2003"}, {"32HC2003"}, "STRONG SRT32HC2003", "STRONG SRT 32HC2003") == "shared"
    assert model_relation({"BL5000"}, {"GBL5000"}, "Blackview BL5000", "Blackview GBL5000") == "conflict"
    assert short_numbers("Dell Vostro 5510, 5400 rpm, 128 GB") == {"5510"}


def test_a_variant_is_reported_weaker_than_a_conflict():
    base = record("Panasonic KX100B Cordless Phone", "Panasonic", 40.0)
    variant = match_features(base, record("Panasonic KX100W Cordless Phone", "Panasonic", 40.0), 0.95)
    conflict = match_features(base, record("Panasonic KX290 Cordless Phone", "Panasonic", 40.0), 0.95)
    assert variant["model_variant"] == 1.0 and variant["model_conflict"] == 0.0
    assert score_reasons(variant)["model_variant"] == -0.15 and score_reasons(conflict)["model_conflict"] == -0.4
    assert match_score(conflict) < match_score(variant) < 0.9


def test_speeds_and_capacities_are_measurements_not_model_numbers():
    a = record("TP-Link Archer AC1200 router 300Mbps 128-bit WPA2", "TP-Link", 50.0)
    b = record("TP-Link Archer AC1200 Wireless Router, 867Mbps, 64-bit", "TP-Link", 50.0)
    features = match_features(a, b, 0.9)
    assert features["model_shared"] == 1.0 and features["model_conflict"] == 0.0
    assert specs(a.title)["mbps"] == {"300"} and features["spec_conflict"] == 1.0
    assert specs("7.0 Amp") == specs("7 Amp") == {"amp": {"7"}}


def test_price_is_smooth_and_ignored_for_bundles():
    ratios = np.linspace(0.05, 1.0, 200)
    values = [price_agreement(r) for r in ratios]
    assert values == sorted(values) and max(np.diff(values)) < 0.1  # no cliff
    assert price_agreement(1.0) == 1.0 and price_agreement(0.5) == 0.0 and price_agreement(0.1) == -1.0
    assert bundle("AA Batteries (2-Pack)") == bundle("AA batteries, twin pack") == {"2"}
    assert bundle("Set of 3 bowls") == {"3", "set"} and bundle("Drill Kit") == {"kit"} and bundle("Drill") == set()
    assert bundle("1-Pack") == set()
    single, pack = (
        record("Duracell AA Battery", "Duracell", 2.0),
        record("Duracell AA Battery 8-Pack", "Duracell", 12.0),
    )
    features = match_features(single, pack, 0.9)
    assert (
        features["bundle_differs"] == 1.0 and features["price_used"] == 0.0 and "price" not in score_reasons(features)
    )
    cheap = match_features(single, record("Duracell AA Battery", "Duracell", 0.9), 0.9)
    assert cheap["price_used"] == 1.0 and score_reasons(cheap)["price"] < 0


def test_model_number_and_description_fields_are_read():
    a = record("Makita cordless drill", "Makita", model_number="XFD13-1")
    b = record("Makita 18V drill driver XFD131 kit", "Makita")
    assert match_features(a, b, 0.8)["model_shared"] == 1.0
    assert match_features(record("Makita drill"), record("Makita drill"), 0.8)["model_shared"] == 0.0
    plain = match_features(record("Cordless drill"), record("Drill, brushless, 18V"), 0.8)
    described = match_features(
        record("Cordless drill", description="Brushless 18V drill"), record("Drill, brushless, 18V"), 0.8
    )
    assert described["text_words"] > plain["text_words"] == plain["title_words"]


def test_features_are_a_plain_dict_of_the_same_named_numbers_for_every_pair():
    one = match_features(record("A 1"), record("B 2"), 0.1)
    two = match_features(
        record("Makita XFD131", "Makita", 1.0), record("Makita XFD131", "Makita", 2.0, description="d"), 0.9
    )
    assert list(one) == list(two) and all(isinstance(v, float) for v in one.values())
