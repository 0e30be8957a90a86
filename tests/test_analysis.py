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
