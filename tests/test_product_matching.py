"""Same-product matching across the demo's two stores, and the signals it reads from titles."""

from __future__ import annotations

import pytest

from semantic_catalog.engine.crossstore.product_matching import ProductRecord, match_products, model_numbers, specs
from semantic_catalog.engine.errors import InvalidQuery


def test_model_numbers_and_specs_are_told_apart():
    assert model_numbers("Milwaukee 48-22-2761 11-in-1 Screwdriver") == {"48222761"}
    assert model_numbers("DEWALT DCS570P1 20V MAX 7-1/4 in. Saw with 5.0Ah Battery, 4-Pack") == {"DCS570P1"}
    # a bare short number is a quantity or a speed, not a model number; a long one is an article number
    assert model_numbers("Vitamix 5200 Blender") == set() and model_numbers("Dyson V8 Vacuum") == set()
    assert model_numbers("Wera Kraftform Plus 334/6 Set (05347099001)") == {"05347099001"}
    assert model_numbers("TP-Link Archer C6 300Mbps 128-bit 5400 rpm 2.4GHz 65W 5000mAh 55in 6ft 14x15") == set()
    assert model_numbers("Bosch GLL30 laser, Estwing E3-16C, Stanley 33-425") == {"GLL30", "E316C", "33425"}
    assert specs("Tape 1.88 in. x 45 yd., 20V, 4-Pack") == {"in": {"1.88"}, "yd": {"45"}, "v": {"20"}, "pack": {"4"}}
    assert specs("Klíč 14x15 mm, 2,5 kg") == {"mm": {"15"}, "kg": {"2.5"}}


@pytest.fixture(scope="module")
def stores(demo):
    data = demo["data"]
    records = [
        ProductRecord(pk, str(f["store"]), f["name"], f["brand"], float(f["price"])) for pk, f in data.products.items()
    ]
    texts = [f"{f['name']}. {f['brand']}" for f in data.products.values()]
    return {
        "a": [r for r in records if r.shop == "1"],
        "b": [r for r in records if r.shop == "2"],
        "vectors": dict(zip(data.products, demo["encoder"].encode(texts))),
        "truth": set(data.same_items),
    }


def test_demo_twins_are_found_with_high_precision(stores):
    matches = match_products(stores["a"], stores["b"], stores["vectors"])
    found = {(m.source, m.target) for m in matches}
    precision = len(found & stores["truth"]) / len(found)
    recall = len(found & stores["truth"]) / len(stores["truth"])
    assert precision >= 0.88 and recall >= 0.9, (precision, recall)
    assert len({m.source for m in matches}) == len(matches) == len({m.target for m in matches})
    assert all(0.6 <= m.score <= 1 for m in matches) and [m.score for m in matches] == sorted(
        (m.score for m in matches), reverse=True
    )
    loose = {(m.source, m.target) for m in match_products(stores["a"], stores["b"], stores["vectors"], threshold=0.3)}
    assert len(loose) > len(found)  # a lower threshold trades precision for recall


def test_near_variants_are_not_matches():
    knife_8 = ProductRecord("a", "1", "Victorinox Fibrox Pro 8 in. Chef's Knife (40520)", "Victorinox", 45.0)
    knife_10 = ProductRecord("b", "2", "Victorinox Fibrox Pro 10 in. Chef's Knife (40521)", "Victorinox", 49.0)
    same = ProductRecord("c", "2", "Victorinox 8-Inch Fibrox Pro Chef Knife 40520, Black", "Victorinox", 44.0)
    vectors = {"a": [1.0, 0.0], "b": [0.99, 0.141], "c": [0.97, 0.243]}
    import numpy as np

    vectors = {k: np.asarray(v, dtype=np.float32) for k, v in vectors.items()}
    matches = match_products([knife_8], [knife_10, same], vectors)
    assert [(m.source, m.target) for m in matches] == [("a", "c")]
    assert match_products([knife_8], [knife_10], vectors) == []


def test_bad_arguments(stores):
    with pytest.raises(InvalidQuery, match="threshold"):
        match_products(stores["a"], stores["b"], stores["vectors"], threshold=1.5)
    with pytest.raises(InvalidQuery, match="candidates"):
        match_products(stores["a"], stores["b"], stores["vectors"], candidates=0)
