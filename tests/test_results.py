"""Storing analysis results: validated, replaced atomically, dry runs change nothing."""

from __future__ import annotations

import pytest
from django.utils import timezone

from semantic_catalog.crossstore.results import ResultsRejected, category_links, save_run
from semantic_catalog.engine.errors import InvalidQuery
from semantic_catalog.models import AnalysisRun, ProductMatch, Substitution
from semantic_catalog.registry import registry

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def products(make_product):
    return [
        make_product("Cordless drill driver"),
        make_product("Hammer drill", store="b"),
        make_product("Impact driver", store="b"),
    ]


def subs(a, b, level=4, score=0.8, rank=1):
    return {"product": str(a.pk), "substitute": str(b.pk), "level": level, "score": score, "rank": rank}


def test_a_new_run_replaces_the_previous_one(products):
    index = registry.get("products")
    drill, hammer, impact = products
    first = save_run(index, "substitutions", [subs(drill, hammer)], "all-MiniLM-L6-v2", timezone.now())
    assert first.rows == 1 and first.replaced == 0
    second = save_run(
        index, "substitutions", [subs(drill, impact), subs(drill, hammer, level=3)], "m", timezone.now(), "f.json"
    )
    assert second.replaced == 1
    assert AnalysisRun.objects.filter(kind="substitutions").count() == 1
    assert set(Substitution.objects.values_list("substitute", "level")) == {(str(impact.pk), 4), (str(hammer.pk), 3)}
    dry = save_run(
        index,
        "matches",
        [{"product": str(drill.pk), "match": str(hammer.pk), "score": 0.9}],
        "m",
        timezone.now(),
        dry_run=True,
    )
    assert dry.dry_run and dry.run_id is None and not ProductMatch.objects.exists()


@pytest.mark.parametrize(
    "rows, words",
    [
        (lambda d, h: [subs(d, h, level=5)], "level must be 3 or 4"),
        (lambda d, h: [subs(d, d)], "are the same"),
        (lambda d, h: [subs(d, h, score=float("nan"))], "is not a number"),
        (lambda d, h: [subs(d, h), subs(d, h)], "duplicate"),
        (lambda d, h: [{**subs(d, h), "substitute": "99999"}], "ids not in index"),
        (lambda d, h: [{"product": str(d.pk), "level": 4}], "missing substitute"),
        (lambda d, h: [subs(d, h, level=[3])], "level must be 3 or 4, not \\[3\\]"),
        (lambda d, h: [subs(d, h, level=3.0)], "level must be 3 or 4, not 3.0"),
        (lambda d, h: [subs(d, h, score=True)], "score True is not a number"),
        (lambda d, h: [{**subs(d, h), "rank": 2**70}], "rank must be a whole number from 1 to 32767"),
    ],
)
def test_bad_rows_are_rejected_and_change_nothing(products, rows, words):
    index = registry.get("products")
    drill, hammer, _ = products
    save_run(index, "substitutions", [subs(drill, hammer)], "m", timezone.now())
    with pytest.raises(ResultsRejected, match=words):
        save_run(index, "substitutions", rows(drill, hammer), "m", timezone.now())
    assert Substitution.objects.count() == 1 and AnalysisRun.objects.count() == 1


def test_links_must_join_two_stores(products):
    index = registry.get("products")
    same = {"source_store": "1", "source_category": "4", "target_store": "1", "target_category": "9", "score": 0.7}
    with pytest.raises(ResultsRejected, match="joins two stores"):
        save_run(index, "links", [same], "m", timezone.now())
    ok = save_run(index, "links", [{**same, "target_store": "2"}], "m", timezone.now())
    assert ok.run_id and AnalysisRun.objects.get().category_links.count() == 1


def test_results_are_listed_read_only_in_the_admin(products, client):
    from django.contrib.auth.models import User

    index = registry.get("products")
    drill, hammer, _ = products
    save_run(index, "substitutions", [subs(drill, hammer)], "m", timezone.now())
    client.force_login(User.objects.create_superuser("root", "r@example.com", "pw"))
    for model in ("analysisrun", "categorylink", "substitution", "productmatch"):
        page = client.get(f"/admin/semantic_catalog/{model}/")
        assert page.status_code == 200, model
    assert client.get("/admin/semantic_catalog/substitution/add/").status_code == 403


def test_an_index_without_stores_says_what_to_declare(products):
    from django.core.exceptions import ImproperlyConfigured

    from semantic_catalog.crossstore import CrossStoreMixin
    from semantic_catalog.crossstore.analysis import analyze
    from semantic_catalog.crossstore.declaration import analysis_ready
    from semantic_catalog.indexes import SemanticIndex
    from shop.models import Product

    class Plain(SemanticIndex):
        model = Product
        name = "plain"
        text_fields = ["name"]

    class Undeclared(CrossStoreMixin, SemanticIndex):
        model = Product
        name = "undeclared"
        text_fields = ["name"]

    plain, undeclared, declared = Plain(), Undeclared(), registry.get("products")
    assert not analysis_ready(plain) and plain.analysis_data(products[0]) is None
    with pytest.raises(ImproperlyConfigured, match="CrossStoreMixin with shop_field"):
        analyze(plain)
    with pytest.raises(InvalidQuery, match="'plain' declares no shop and category tree"):
        category_links(plain, "1")
    assert not analysis_ready(undeclared) and undeclared.analysis_data(products[0]) is None
    with pytest.raises(ImproperlyConfigured, match="set shop_field"):
        undeclared.shop_of(products[0])
    data = declared.analysis_data(products[0])
    assert analysis_ready(declared) and data["title"] == "Cordless drill driver" and data["category"]


def test_category_links_of_an_unknown_or_invalid_category_are_404(products, shop, client):
    index = registry.get("products")
    drills, hoses = shop["drills"], shop["hoses"]
    link = {
        "source_store": str(shop["a"].pk),
        "source_category": str(drills.pk),
        "target_store": str(shop["b"].pk),
        "target_category": str(hoses.pk),
        "score": 0.7,
    }
    save_run(index, "links", [link], "m", timezone.now())
    base = "/api/semantic/products/categories"
    body = client.get(f"{base}/{hoses.pk}/links").json()
    assert body["links"] == [{"category": str(drills.pk), "store": str(shop["a"].pk), "score": 0.7}]
    body = client.get(f"{base}/{shop['pans'].pk}/links").json()  # a category without links
    assert body["count"] == 0 and body["links"] == []

    for category, detail in [
        ("999999", "links: there is no category 999999 in index 'products'."),
        ("abc", "links: abc is not a valid category id of 'products'."),
        ("99999999999999999999999", "links: there is no category 99999999999999999999999 in index 'products'."),
    ]:
        response = client.get(f"{base}/{category}/links")
        assert response.status_code == 404, category
        assert response.json() == {"detail": detail}
