"""Matching's richer inputs and outputs: description and model-number fields, reasons, top-k ranked
candidates, the indexes the candidates come from, and the errors bad input gets."""

from __future__ import annotations

import numpy as np
import pytest
from django.core import checks

from semantic_catalog.crossstore import CrossStoreMixin
from semantic_catalog.engine.crossstore.analysis import catalog_from_rows
from semantic_catalog.engine.crossstore.candidates import WordIndex, nearest_by_vector
from semantic_catalog.engine.crossstore.product_matching import ProductRecord, match_products, rank_candidates
from semantic_catalog.engine.errors import InvalidQuery
from semantic_catalog.indexes import SemanticIndex
from semantic_catalog.registry import registry
from shop.models import Product


def unit(*values: float) -> np.ndarray:
    vector = np.asarray(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


SOURCE = [
    ProductRecord("a1", "1", "Makita 18V LXT Drill Driver Kit", "Makita", 199.0, model_number="XFD131"),
    ProductRecord("a2", "1", "Bosch 7 Amp Top-Handle Jig Saw JS470E", "Bosch", 149.0),
]
TARGET = [
    ProductRecord("b1", "2", "Makita XFD131 Brushless Driver-Drill Kit, 3.0Ah", "Makita", 189.0),
    ProductRecord("b2", "2", "Makita XFD130 Brushless Driver-Drill (Tool Only)", "Makita", 99.0),
    ProductRecord("b3", "2", "BOSCH Power Tools JS470E 7.0 Amp Jigsaw", "BOSCH Power Tools", 139.0),
]
VECTORS = {
    "a1": unit(1, 0.1, 0),
    "a2": unit(0, 1, 0.1),
    "b1": unit(1, 0.2, 0),
    "b2": unit(1, 0.15, 0.05),
    "b3": unit(0, 1, 0.2),
}


def test_pairs_carry_reasons_and_candidates_are_ranked():
    matches = {m.source: m for m in match_products(SOURCE, TARGET, VECTORS)}
    assert {s: m.target for s, m in matches.items()} == {"a1": "b1", "a2": "b3"}
    # the model number came from the model-number field; the brand agreed although written differently
    assert matches["a1"].reasons["model_shared"] == 0.35 and matches["a2"].reasons["brand_agree"] == 0.1
    assert matches["a1"].score == pytest.approx(min(1.0, sum(matches["a1"].reasons.values())))
    ranked = rank_candidates(SOURCE, TARGET, VECTORS, top_k=2)
    assert [m.target for m in ranked["a1"]] == ["b1", "b2"] and [m.rank for m in ranked["a1"]] == [1, 2]
    assert ranked["a1"][1].features["model_variant"] == 1.0 and ranked["a1"][1].reasons["model_variant"] < 0
    assert ranked["a1"][0].score >= ranked["a1"][1].score
    assert len(rank_candidates(SOURCE, TARGET, VECTORS)["a1"]) == 3  # no top_k: every candidate


def test_an_approximate_index_can_supply_the_vector_candidates():
    asked = []

    def neighbours(rows: np.ndarray, k: int) -> list[list[str]]:
        asked.append((rows.shape, k))
        return [["b3", "unknown"], ["b3"]]  # ids outside the target catalog are dropped

    ranked = rank_candidates(SOURCE, TARGET, VECTORS, candidates=1, neighbours=neighbours)
    assert asked == [((2, 3), 1)]
    # a1 still finds b1 through its title words (the word index), b3 came from the neighbours
    assert {m.target for m in ranked["a1"]} == {"b3", "b1"} and ranked["a1"][0].target == "b1"


def test_bad_input_is_refused_with_a_clear_error():
    with pytest.raises(InvalidQuery, match="top_k must be a whole number of at least 1"):
        rank_candidates(SOURCE, TARGET, VECTORS, top_k=0)
    with pytest.raises(InvalidQuery, match="candidates must be a whole number of at least 1"):
        match_products(SOURCE, TARGET, VECTORS, candidates=0)
    untitled = [ProductRecord("b1", "2", " "), ProductRecord("b2", "2", "")]
    with pytest.raises(InvalidQuery, match="The target catalog has no titles"):
        match_products(SOURCE, untitled, VECTORS)


def test_the_word_index_and_the_blocked_vector_search_agree_with_brute_force():
    rng = np.random.default_rng(3)
    vocabulary = [f"w{i}" for i in range(300)]
    documents = [set(rng.choice(vocabulary, 6, replace=False)) for _ in range(500)]
    index = WordIndex(documents)
    query = set(rng.choice(vocabulary, 5, replace=False))
    expected = sorted(range(len(documents)), key=lambda j: (-sum(index.idf[w] for w in query & documents[j]), j))
    expected = [j for j in expected if query & documents[j]][:10]
    assert index.nearest(query, 10) == expected
    assert WordIndex(documents, max_postings=0).nearest(query, 10) == []  # every word too common: none
    source, target = rng.normal(size=(70, 8)).astype(np.float32), rng.normal(size=(90, 8)).astype(np.float32)
    exact = np.argsort(-(source @ target.T), axis=1, kind="stable")[:, :5]
    assert (nearest_by_vector(source, target, 5, block=16) == exact).all()


def test_catalog_rows_carry_description_and_model_number():
    row = {"store": "1", "category": [["c", "Tools"]], "title": "Drill", "description": "18V", "model_number": "X1"}
    record = catalog_from_rows([("p", row)], {}).records[0]
    assert (record.description, record.model_number) == ("18V", "X1")
    old = {"store": "1", "category": [["c", "Tools"]], "title": "Drill", "brand": "", "price": None}
    assert catalog_from_rows([("p", old)], {}).records[0].model_number == ""  # older exports still read


@pytest.mark.django_db
def test_the_declaration_reads_the_new_fields_and_a_misnamed_one_is_reported():
    class Described(CrossStoreMixin, SemanticIndex):
        model = Product
        name = "described"
        text_fields = ["name"]
        shop_field, category_field, title_field = "store", "category", "name"
        description_field = "description"

    class Misnamed(Described):
        name = "misnamed"
        model_number_field = "mpn"

    registry.register(Described)
    registry.register(Misnamed)
    try:
        messages = [m for m in checks.run_checks(tags=["semantic_catalog"]) if m.id == "semantic_catalog.E006"]
        assert len(messages) == 1 and "model_number_field is 'mpn'" in messages[0].msg
        assert messages[0].obj is Misnamed
    finally:
        registry.unregister("described")
        registry.unregister("misnamed")
        registry.invalid.clear()
    from shop.models import Category, Store

    store = Store.objects.create(name="A", slug="a")
    product = Product.objects.create(
        store=store,
        category=Category.objects.create(name="Tools", store=store),
        name="Drill",
        description="18V kit",
        price=99,
    )
    data = Described().analysis_data(product)
    assert data["description"] == "18V kit" and data["model_number"] == ""


def test_candidate_rows_rank_every_product_against_the_other_shop():
    from semantic_catalog.engine.crossstore.analysis import Catalog, candidate_rows

    catalog = Catalog({}, [], SOURCE + TARGET, VECTORS)
    rows = candidate_rows(catalog, top_k=2)
    assert {r["product"] for r in rows} == {"a1", "a2"} and all(r["rank"] in (1, 2) for r in rows)
    best = {r["product"]: r["candidate"] for r in rows if r["rank"] == 1}
    assert best == {"a1": "b1", "a2": "b3"} and all(isinstance(r["reasons"], dict) for r in rows)


@pytest.mark.django_db
def test_match_reasons_are_stored_and_bad_ones_refused(client):
    from django.utils import timezone

    from semantic_catalog.crossstore.results import ResultsRejected, save_run
    from semantic_catalog.models import ProductMatch
    from shop.models import Category, Store

    a, b = Store.objects.create(name="A", slug="a"), Store.objects.create(name="B", slug="b")
    made = [
        Product.objects.create(store=s, category=Category.objects.create(name="T", store=s), name="Drill", price=9)
        for s in (a, b)
    ]
    index = registry.get("products")
    row = {"product": str(made[0].pk), "match": str(made[1].pk), "score": 0.8}
    with pytest.raises(ResultsRejected, match="reasons must be an object"):
        save_run(index, "matches", [{**row, "reasons": {"cosine": "high"}}], "m", timezone.now())
    assert not ProductMatch.objects.exists()
    save_run(index, "matches", [{**row, "reasons": {"model_shared": 0.35, "cosine": 0.3}}], "m", timezone.now())
    assert ProductMatch.objects.get().reasons == {"model_shared": 0.35, "cosine": 0.3}
    for this, other in ((made[0], made[1]), (made[1], made[0])):  # either side of the pair
        (hit,) = client.get(f"/api/semantic/products/{this.pk}/matches").json()["results"]
        assert hit["id"] == str(other.pk) and hit["reasons"] == {"model_shared": 0.35, "cosine": 0.3}
    save_run(index, "matches", [row], "m", timezone.now())  # files without reasons still import
    assert ProductMatch.objects.get().reasons == {}


def test_the_offline_command_writes_ranked_candidates(tmp_path, capsys):
    import json

    from semantic_catalog.cli import main as cli

    def line(pk: str, shop: str, title: str, mpn: str = "") -> str:
        analysis = {"store": shop, "category": [["c" + shop, "Tools"]], "title": title, "brand": "Makita"}
        analysis |= {"price": 99.0, "description": "", "model_number": mpn}
        record = {"id": pk, "index": "products", "text": title, "fields": {}, "content_hash": pk, "analysis": analysis}
        return json.dumps(record)

    export = tmp_path / "products.jsonl"
    rows = [
        line("a1", "1", "Makita cordless drill driver", "XFD131"),
        line("a2", "1", "Makita circular saw 7-1/4 in."),
        line("b1", "2", "Makita XFD131 18V drill driver"),
        line("b2", "2", "Makita 7-1/4 in. circular saw"),
        line("b3", "2", "Makita XFD130 18V drill (tool only)"),
    ]
    export.write_text("\n".join(rows) + "\n")
    out = tmp_path / "results"
    args = ["analyze", str(export), "--out", str(out), "--matches", "--backend", "torch", "--quiet"]
    assert cli([*args, "--match-candidates", "0"]) == 2
    assert "--match-candidates must be at least 1" in capsys.readouterr().err and not out.exists()
    assert cli([*args, "--match-candidates", "2"]) == 0
    report = json.loads((out / "match_candidates.json").read_text())
    assert report["kind"] == "match_candidates" and report["top_k"] == 2
    best = {r["product"]: r["candidate"] for r in report["rows"] if r["rank"] == 1}
    assert best == {"a1": "b1", "a2": "b2"} and len(report["rows"]) == 4
    matches = json.loads((out / "product_matches.json").read_text())["rows"]
    assert {(m["product"], m["match"]) for m in matches} == {("a1", "b1"), ("a2", "b2")}
    assert all(m["reasons"] for m in matches)
