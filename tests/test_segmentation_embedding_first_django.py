"""Embedding-first runs through Django (issue 17): the vectors come from the index's active collection,
the scripted LLM server (real HTTP) only names clusters and arbitrates, the calls are indexed as
``name_clusters`` interactions; the API and ``semantic_segment`` take the mode and its options, and
every bad option is a 4xx (or a CommandError) that stores nothing."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from semantic_catalog.models import LLMInteraction, SegmentationRun
from semantic_catalog.segmentation.tasks import wait_for_run
from tests import segmentation_helpers

llm = segmentation_helpers.llm  # fixtures
products = segmentation_helpers.products
segmentation_settings = segmentation_helpers.segmentation_settings

pytestmark = pytest.mark.django_db(transaction=True)

START = "/api/semantic/segmentation/start"


@pytest.fixture
def staff(client, django_user_model):
    user = django_user_model.objects.create_user("staff", password="pw", is_staff=True)
    client.force_login(user)
    return client


@pytest.fixture
def indexed(products):
    """The nine products with their vectors in the index (the bundled model)."""
    call_command("semantic_index", "--index", "products", "--no-progress", stdout=StringIO())
    return products


def test_an_embedding_first_run_over_http_clusters_the_index_vectors(staff, indexed, llm):
    body = {"index": "products", "ids": indexed, "mode": "embedding_first", "segments": 3}
    response = staff.post(START, body, "application/json")
    assert response.status_code == 202, response.content
    run_id = response.json()["run_id"]
    assert wait_for_run(run_id, timeout=60)
    status = staff.get(f"/api/semantic/segmentation/{run_id}/status").json()
    assert status["status"] == "completed", status
    results = staff.get(f"/api/semantic/segmentation/{run_id}/results").json()
    assert results["mode"] == "embedding_first" and results["naming"] == "llm"
    assert len(results["segments"]) == 3 and sum(s["item_count"] for s in results["segments"]) == 9
    by_segment: dict[str, set[str]] = {}
    for item in results["items"]:
        by_segment.setdefault(item["segment"], set()).add(item["id"])
    # drills, hoses and pans: the bundled model's vectors put each kind in a cluster of its own
    assert sorted(map(sorted, by_segment.values())) == sorted(map(sorted, [indexed[:3], indexed[3:6], indexed[6:]]))
    assert llm.stage_count("extract") == llm.stage_count("consolidate") == 0
    assert llm.stage_count("name") == 1
    types = set(LLMInteraction.objects.filter(run__run_id=run_id).values_list("interaction_type", flat=True))
    assert "name_clusters" in types and types <= {"name_clusters", "refine_assignments"}
    assert set(results["totals"]) == {"cluster", "name", "refine"}


def test_the_command_runs_embedding_first(indexed, llm):
    out = StringIO()
    call_command(
        "semantic_segment", "--index", "products", "--mode", "embedding_first", "--segments", "3",
        "--no-progress", *indexed, stdout=out, stderr=StringIO(),
    )  # fmt: skip
    run = SegmentationRun.objects.get()
    assert run.status == "completed" and run.params["mode"] == "embedding_first" and run.params["segments"] == 3
    assert "3 segments, 9 of 9 items assigned" in out.getvalue()
    assert llm.stage_count("extract") == 0 and llm.stage_count("name") == 1


@pytest.mark.parametrize(
    ("extra", "code", "message"),
    [
        ({"mode": "embedding_first", "segments": 10}, 400, "10 segments asked for 9 item(s)"),
        ({"mode": "embedding_first", "segments": 1}, 400, "segments"),
        ({"mode": "embedding_first", "segments": 2**70}, 400, "segments"),
        ({"mode": "embedding_first", "segments": "many"}, 400, "segments"),
        ({"mode": "embedding_first", "min_segments": 6, "max_segments": 3}, 400, "makes no sense"),
        ({"mode": "embedding_first", "min_segments": 9}, 400, "needs more items"),
        ({"mode": "embedding_first", "segments": 3, "max_segments": 5}, 400, "not both"),
        ({"segments": 3}, 400, "only with mode embedding_first"),
        ({"mode": "full", "naming": "keywords"}, 400, "only with mode embedding_first"),
        ({"mode": "embedding_first", "naming": "poetry"}, 400, "naming"),
        ({"mode": "clusters"}, 400, "mode"),
        ({"mode": ["embedding_first"]}, 400, "mode"),
    ],
)
def test_bad_mode_options_are_400_and_store_nothing(staff, indexed, llm, extra, code, message):
    response = staff.post(START, {"index": "products", "ids": indexed, **extra}, "application/json")
    assert response.status_code == code, response.content
    assert message in response.json()["detail"]
    assert SegmentationRun.objects.count() == 0 and llm.count == 0


def test_an_index_without_vectors_is_a_409_that_says_what_to_do(staff, products, llm):
    response = staff.post(
        START, {"index": "products", "ids": products, "mode": "embedding_first"}, "application/json"
    )
    assert response.status_code == 409, response.content
    detail = response.json()["detail"]
    assert "no vectors yet" in detail and "semantic_index" in detail and 'mode "full"' in detail
    assert SegmentationRun.objects.count() == 0 and llm.count == 0


def test_items_added_since_the_index_was_built_are_named(staff, indexed, make_product, llm):
    late = str(make_product("Drill press", category="drills").pk)  # AUTO_SYNC off: no vector
    response = staff.post(
        START, {"index": "products", "ids": [*indexed, late], "mode": "embedding_first"}, "application/json"
    )
    assert response.status_code == 409, response.content
    assert f"1 of the 10 items have no vector in index 'products' yet ({late})" in response.json()["detail"]
    assert SegmentationRun.objects.count() == 0


def test_the_command_refuses_clustering_options_in_full_mode(indexed, llm):
    with pytest.raises(CommandError, match="only with mode embedding_first"):
        call_command("semantic_segment", "--index", "products", "--segments", "3", *indexed, stderr=StringIO())
    assert SegmentationRun.objects.count() == 0


def test_hostile_requests_are_4xx_and_store_nothing(staff, indexed, make_product, llm, django_user_model):
    hidden = str(make_product("Drill old stock", category="drills", active=False).pk)  # outside the queryset
    for body, code, message in [
        ({}, 400, "index"),
        ({"index": "products", "ids": [hidden], "mode": "embedding_first"}, 400, "not rows of index"),
        ({"index": "products", "ids": indexed, "mode": "embedding_first", "min_segments": 2**64}, 400, "min_segments"),
        ({"index": "products", "ids": indexed, "mode": "embedding_first", "naming": None}, 400, "naming"),
    ]:
        response = staff.post(START, body, "application/json")
        assert response.status_code == code, (body, response.content)
        assert message in response.json()["detail"]
    huge = staff.post(START, '{"index": "products", "category": "' + "x" * 5_000_000 + '"}', "application/json")
    assert huge.status_code in (400, 413)
    report = f"/admin/semantic_catalog/segmentationrun/{2**70}/report/"
    assert staff.get(report).status_code == 403  # staff without the view permission
    staff.force_login(django_user_model.objects.create_superuser("boss", password="pw"))
    assert staff.get(report).status_code == 404  # beyond 64 bits: no such run, not a 500
    assert SegmentationRun.objects.count() == 0 and llm.count == 0
