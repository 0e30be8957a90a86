"""The segmentation HTTP API (staff only) against the scripted LLM server over real HTTP: a start answers
at once with the ImmediateBackend (the run goes on in a background thread), status progresses, results,
cancel, every bad input a 4xx that changes nothing, the OpenAPI schema, and the database task backend."""

from __future__ import annotations

import time

import pytest
from django.core.management import call_command

from semantic_catalog.models import LLMInteraction, SegmentationRun
from semantic_catalog.segmentation.tasks import wait_for_run
from tests import segmentation_helpers

llm = segmentation_helpers.llm  # fixtures
products = segmentation_helpers.products
segmentation_settings = segmentation_helpers.segmentation_settings

pytestmark = pytest.mark.django_db(transaction=True)

START = "/api/semantic/segmentation/start"


def url(run_id: str, what: str) -> str:
    return f"/api/semantic/segmentation/{run_id}/{what}"


@pytest.fixture
def staff(client, django_user_model):
    user = django_user_model.objects.create_user("staff", password="pw", is_staff=True)
    client.force_login(user)
    return client


def wait_until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_start_answers_at_once_then_status_progresses_then_results(staff, products, llm, segmentation_settings):
    assert staff.post(START, {"index": "products", "ids": []}, "application/json").status_code == 400  # warm up
    llm.delay = 3.0  # the first answers take 3 s each
    started = time.monotonic()
    response = staff.post(START, {"index": "products", "ids": products, "category": "home"}, "application/json")
    assert llm.count == 0  # answered before the LLM answered anything: the request did not wait for it
    assert time.monotonic() - started < 3.0
    llm.delay = 0.3
    assert response.status_code == 202, response.content
    body = response.json()
    run_id = body["run_id"]
    assert body["status"] == "running" and body["total_items"] == 9 and body["status_url"] == url(run_id, "status")
    # while the first answers are on their way (the run is blocked in HTTP, not writing), read the status
    wait_until(lambda: llm.in_flight >= 1)
    first = staff.get(url(run_id, "status")).json()
    assert first["status"] == "running" and first["stage"] in ("queued", "extract") and first["processed"] == 0
    assert staff.get(url(run_id, "results")).status_code == 409  # no results yet
    wait_until(lambda: llm.stage_count("refine") >= 1 and llm.in_flight >= 1)
    later = staff.get(url(run_id, "status")).json()
    assert later["stage"] == "refine" and later["total"] == 9
    assert wait_for_run(run_id, timeout=30)
    done = staff.get(url(run_id, "status")).json()
    assert done["status"] == "completed" and done["percent"] == 100.0 and done["eta_seconds"] == 0.0
    results = staff.get(url(run_id, "results")).json()
    assert {s["name"]: s["item_count"] for s in results["segments"]} == {
        "Drill products": 3,
        "Hose products": 3,
        "Pan products": 3,
    }
    assert all(s["definition"] for s in results["segments"])
    items = {i["id"]: i for i in results["items"]}
    assert set(items) == set(products)
    assert items[products[0]]["segment_name"] == "Drill products" and items[products[0]]["confidence"] == 0.8
    assert results["model"] == "scripted" and results["category"] == "home"
    assert LLMInteraction.objects.filter(run__run_id=run_id).count() == llm.count


def test_status_reports_an_eta_from_the_observed_rate(staff, products, llm, segmentation_settings):
    from datetime import timedelta

    from django.utils import timezone

    seg = SegmentationRun.objects.create(
        run_id="RUN_x",
        index="products",
        storage_url="/tmp/x",
        stage="extract",
        processed=3,
        total=9,
        stage_started_at=timezone.now() - timedelta(seconds=60),
    )
    status = staff.get(url(seg.run_id, "status")).json()  # 3 done in 60 s (and the request's own time)
    assert status["percent"] == 33.3 and 0.045 < status["rate"] <= 0.05
    assert status["eta_seconds"] == pytest.approx(6 / status["rate"], rel=0.01) and status["eta_seconds"] >= 120


def test_cancel_stops_a_running_run(staff, products, llm, segmentation_settings):
    llm.delay = 0.3
    run_id = staff.post(START, {"index": "products", "ids": products}, "application/json").json()["run_id"]
    wait_until(lambda: llm.in_flight >= 1)
    response = staff.post(url(run_id, "cancel"))
    assert response.status_code == 202 and response.json()["cancel_requested"] is True
    assert wait_for_run(run_id, timeout=30)
    status = staff.get(url(run_id, "status")).json()
    assert status["status"] == "cancelled" and status["error"].startswith("Cancelled")
    assert llm.stage_count("refine") == 0
    again = staff.post(url(run_id, "cancel"))
    assert again.status_code == 409 and "only a running run" in again.json()["detail"]
    assert staff.get(url(run_id, "results")).status_code == 409


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ({"index": "products", "ids": ["999999"]}, 400, "not rows of index"),
        ({"index": "products", "ids": []}, 400, "ids"),
        ({"index": "products"}, 400, "either ids or filters"),
        ({"index": "products", "ids": ["1"], "filters": {"price": 1}}, 400, "either ids or filters"),
        ({"index": "products", "ids": ["99999999999999999999999"]}, 400, "beyond the range"),
        ({"index": "products", "ids": "1,2"}, 400, "ids"),
        ({"index": "products", "ids": [{"a": 1}]}, 400, "ids"),
        ({"index": "products", "ids": [True]}, 400, "ids"),
        ({"index": "products", "ids": [str(i) for i in range(21)]}, 400, "no more than 20"),
        ({"index": "products", "ids": ["1"], "temperature": "hot"}, 400, "temperature"),
        ({"index": "products", "ids": ["1"], "temperature": 9}, 400, "temperature"),
        ({"index": "products", "ids": ["1"], "model": "m" * 201}, 400, "model"),
        ({"index": 5, "ids": ["1"]}, 404, "Unknown index '5'"),
        ({"index": "nope", "ids": ["1"]}, 404, "Unknown index 'nope'"),
        ({"index": "products", "filters": {"secret": 1}}, 400, "Cannot filter"),
        ({"index": "products", "filters": {"price__gte": "cheap"}}, 400, "does not suit"),
        ({"index": "products", "filters": {"price__in": 3}}, 400, "takes a list"),
        ({"index": "products", "filters": {"price__gte": 1000000}}, 400, "No rows"),
        ({"index": "products", "filters": "price"}, 400, "filters"),
        (["products"], 400, "JSON object"),
    ],
)
def test_bad_start_requests_are_4xx_and_change_nothing(staff, products, llm, settings, body, code, message):
    config = dict(settings.SEMANTIC_CATALOG)
    config["SEGMENTATION"] = {**config["SEGMENTATION"], "MAX_ITEMS": 20}
    settings.SEMANTIC_CATALOG = config
    response = staff.post(START, body, "application/json")
    assert response.status_code == code, response.content
    assert message in response.json()["detail"]
    assert "/tmp" not in response.json()["detail"] and "Traceback" not in response.json()["detail"]
    assert SegmentationRun.objects.count() == 0 and llm.count == 0


def test_a_filter_starts_a_run_over_the_matching_rows(staff, products, shop, make_product, llm):
    make_product("Rake steel", category="hoses", store="b")
    response = staff.post(START, {"index": "products", "filters": {"store": shop["b"].pk}}, "application/json")
    assert response.status_code == 202, response.content
    run_id = response.json()["run_id"]
    assert response.json()["total_items"] == 1
    assert wait_for_run(run_id, timeout=30)
    assert [s["name"] for s in staff.get(url(run_id, "results")).json()["segments"]] == ["Rake products"]


def test_unknown_runs_are_404(staff, segmentation_settings):
    for what in ("status", "results"):
        response = staff.get(url("RUN_nope", what))
        assert response.status_code == 404 and response.json()["detail"] == "There is no segmentation run 'RUN_nope'."
    assert staff.post(url("RUN_nope", "cancel")).status_code == 404
    assert staff.get(url("R" * 500, "status")).status_code == 404


def test_only_staff(client, django_user_model, products, llm, segmentation_settings):
    requests = [
        ("post", START, {"index": "products", "ids": products}),
        ("get", url("RUN_x", "status"), None),
        ("get", url("RUN_x", "results"), None),
        ("post", url("RUN_x", "cancel"), None),
    ]
    for method, path, body in requests:
        response = getattr(client, method)(path, body, content_type="application/json")
        assert response.status_code in (401, 403), path
    django_user_model.objects.create_user("shopper", password="pw")
    client.login(username="shopper", password="pw")
    for method, path, body in requests:
        response = getattr(client, method)(path, body, content_type="application/json")
        assert response.status_code == 403, path
    assert SegmentationRun.objects.count() == 0 and llm.count == 0


def test_openapi_schema_lists_the_endpoints_with_bounds(staff, segmentation_settings):
    schema = staff.get("/api/semantic/schema", HTTP_ACCEPT="application/json").json()
    paths = schema["paths"]
    for path in ("start", "{run_id}/status", "{run_id}/results", "{run_id}/cancel"):
        assert f"/api/semantic/segmentation/{path}" in paths
    start = schema["components"]["schemas"]["SegmentationStart"]["properties"]
    assert start["ids"]["maxItems"] == 20000 and start["ids"]["minItems"] == 1
    assert start["temperature"]["maximum"] == 2.0 and start["temperature"]["minimum"] == 0.0


def test_the_database_task_backend_runs_it_in_a_worker(staff, products, llm, settings, segmentation_settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    response = staff.post(START, {"index": "products", "ids": products[:3]}, "application/json")
    run_id = response.json()["run_id"]
    assert response.status_code == 202 and llm.count == 0  # queued, not run in this process
    call_command("db_worker", "--batch", "--no-startup-delay", verbosity=0)
    assert staff.get(url(run_id, "status")).json()["status"] == "completed"
    assert len(staff.get(url(run_id, "results")).json()["items"]) == 3
