"""`semantic_analyze` on the demo catalog: links, matches and substitutes computed and stored."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from semantic_catalog.models import AnalysisRun, CategoryLink, ProductMatch, Substitution
from tests.helpers import run

pytestmark = pytest.mark.django_db(transaction=True)


def test_semantic_analyze_on_the_demo_catalog(demo):
    from shop.models import Category, Product

    call_command("loaddata", "demo_catalog", verbosity=0)
    run("semantic_index", "--no-progress")
    printed = run("semantic_analyze", "--index", "products")
    assert "stored" in printed and set(AnalysisRun.objects.values_list("kind", flat=True)) == {
        "links",
        "matches",
        "substitutions",
    }
    paths = {str(c.pk): c.path for c in Category.objects.all()}
    links = {(paths[link.source_category], paths[link.target_category]) for link in CategoryLink.objects.all()}
    assert all(link.source_store != link.target_store for link in CategoryLink.objects.all())
    assert len(links & demo["intended"]) / len(links) >= 0.85 and len(links & demo["intended"]) >= 40

    twins = set(demo["data"].same_items)
    matches = set(ProductMatch.objects.values_list("product", "match"))
    assert len(matches & twins) / len(matches) >= 0.85 and len(matches & twins) >= 35

    subs = list(Substitution.objects.values_list("product", "substitute", "level"))
    assert {level for _, _, level in subs} == {3, 4}
    assert not any(a == b for a, b, _ in subs)
    assert not {(a, b) for a, b, _ in subs} & (matches | {(b, a) for a, b in matches})
    inactive = Product.objects.filter(active=False).values_list("pk", flat=True)
    assert not {str(pk) for pk in inactive} & {b for _, b, _ in subs}  # only rows of the index

    before = (AnalysisRun.objects.count(), Substitution.objects.count())
    assert "would store" in run("semantic_analyze", "--index", "products", "--substitutions", "--dry-run")
    assert (AnalysisRun.objects.count(), Substitution.objects.count()) == before
    run("semantic_analyze", "--index", "products", "--matches")
    assert AnalysisRun.objects.filter(kind="matches").count() == 1  # replaced, not added
    with pytest.raises(CommandError, match="level must be 3 or 4"):
        run("semantic_analyze", "--index", "products", "--levels", "2")


def test_substitutes_matches_and_links_over_http(client, demo):
    from shop.models import Category, Product

    call_command("loaddata", "demo_catalog", verbosity=0)
    run("semantic_index", "--no-progress")
    run("semantic_analyze", "--index", "products")
    product, twin = next(iter(ProductMatch.objects.values_list("product", "match")))
    base = "/api/semantic/products"
    narrow = client.get(f"{base}/{product}/substitutions", {"level": 4, "limit": 3}).json()
    broad = client.get(f"{base}/{product}/substitutions", {"level": 3, "limit": 50}).json()
    assert narrow["level"] == 4 and 0 < narrow["count"] <= 3 and broad["count"] >= narrow["count"]
    assert [hit["retrievers"]["rank"] for hit in narrow["results"]] == list(range(1, narrow["count"] + 1))
    assert {"name", "price", "store"} <= set(narrow["results"][0]["fields"])
    assert twin not in {hit["id"] for hit in broad["results"]} and product not in {h["id"] for h in broad["results"]}
    assert twin in {hit["id"] for hit in client.get(f"{base}/{product}/matches").json()["results"]}
    assert product in {hit["id"] for hit in client.get(f"{base}/{twin}/matches").json()["results"]}

    assert client.get(f"{base}/{product}/substitutions", {"level": 5}).status_code == 400
    assert "level must be 3 or 4" in client.get(f"{base}/{product}/substitutions", {"level": "x"}).json()["detail"]
    assert client.get(f"{base}/999999/substitutions").status_code == 404
    assert client.get(f"{base}/999999/matches").status_code == 404

    drills = Category.objects.get(name="Cordless Drills")
    body = client.get(f"{base}/categories/{drills.pk}/links").json()
    linked = {Category.objects.get(pk=link["category"]).path for link in body["links"]}
    assert "Workshop > Electric Tools > Drilling > Battery Drill Drivers" in linked
    assert all(link["store"] != str(drills.store_id) for link in body["links"])

    page = client.get(f"/product/{product}/").content.decode()  # the demo's product page
    assert 'id="also-sold-at"' in page and 'id="alternatives"' in page
    other = Product.objects.select_related("store").get(pk=twin)
    also_sold_at = page.split('id="also-sold-at"')[1].split("</section>")[0]
    assert other.store.name.replace("&", "&amp;") in also_sold_at and f"/product/{twin}/" in also_sold_at
    alternatives = page.split('id="alternatives"')[1].split("</div>\n<h2>")[0]
    assert alternatives.count('class="card"') == 4


def test_offline_analyze_then_validated_import(tmp_path, client):
    """export -> `semantic-catalog analyze` (no Django) -> semantic_import / HTTP, with bad files refused."""
    import json

    from django.contrib.auth.models import User

    from semantic_catalog.cli import main as cli

    call_command("loaddata", "demo_catalog", verbosity=0)
    run("semantic_index", "--no-progress")
    run("semantic_export", "--index", "products", "--output-dir", str(tmp_path))
    export = next(tmp_path.glob("products-*.jsonl"))
    out = tmp_path / "results"
    assert cli(["analyze", str(export), "--out", str(out), "--backend", "torch", "--quiet"]) == 0
    files = {p.name: json.loads(p.read_text()) for p in out.glob("*.json")}
    assert set(files) == {"category_links.json", "substitutions.json", "product_matches.json"}
    assert files["substitutions.json"]["model"] == "all-MiniLM-L6-v2" and files["substitutions.json"]["computed_at"]

    assert "would store" in run("semantic_import", str(out), "--index", "products", "--dry-run")
    assert not AnalysisRun.objects.exists()
    printed = run("semantic_import", str(out), "--index", "products")
    assert printed.count("stored") == 3
    assert Substitution.objects.count() == len(files["substitutions.json"]["rows"])
    assert ProductMatch.objects.count() == len(files["product_matches.json"]["rows"]) > 0
    assert str(AnalysisRun.objects.get(kind="links").source).endswith("category_links.json")

    def broken(name, change):
        payload = json.loads((out / name).read_text())
        change(payload)
        path = tmp_path / f"bad-{len(list(tmp_path.glob('bad-*')))}-{name}"
        path.write_text(json.dumps(payload))
        return path

    bad = {
        "model": broken("substitutions.json", lambda p: p.update(model="e5-large")),
        "index": broken("substitutions.json", lambda p: p.update(index="recipes")),
        "level": broken("substitutions.json", lambda p: p["rows"][0].update(level=5)),
        "category": broken("category_links.json", lambda p: p["rows"][0].update(source_category="999999")),
        "self": broken("product_matches.json", lambda p: p["rows"][0].update(match=p["rows"][0]["product"])),
    }
    messages = {
        "model": "computed with model 'e5-large'",
        "index": "is for index 'recipes'",
        "level": "level must be 3 or 4",
        "category": "is not a category of index",
        "self": "are the same",
    }
    counts = (AnalysisRun.objects.count(), Substitution.objects.count(), ProductMatch.objects.count())
    for key, path in bad.items():
        with pytest.raises(CommandError, match=messages[key]):
            run("semantic_import", str(path), "--index", "products")
    assert (AnalysisRun.objects.count(), Substitution.objects.count(), ProductMatch.objects.count()) == counts

    body = (out / "product_matches.json").read_text()
    url = "/api/semantic/import/analysis"
    assert client.post(url, body, content_type="application/json").status_code in (401, 403)
    client.force_login(User.objects.create_superuser("root", "r@example.com", "pw"))
    dry = client.post(url + "?dry_run=1", body, content_type="application/json").json()
    assert dry["dry_run"] is True and dry["rows"] == len(files["product_matches.json"]["rows"])
    rejected = client.post(url, bad["model"].read_text(), content_type="application/json")
    assert rejected.status_code == 400 and "e5-large" in rejected.json()["detail"]
    assert client.post(url, body, content_type="application/json").json()["run_id"]
    assert AnalysisRun.objects.filter(kind="matches").count() == 1
