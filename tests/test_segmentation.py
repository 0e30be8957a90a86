"""Segmentation runs on the Django side, against the scripted OpenAI-compatible server over real HTTP:
the command, results in SQL, the cache as one SQL lookup, cancel and resume without repeated calls,
settings checks, admin pages with the log file link, the import of segmentation.json, moving logs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from django.core.management.base import CommandError

from semantic_catalog.engine.segmentation.types import Assignment, Item, Segment, SegmentationResult, Usage
from semantic_catalog.models import (
    ItemSegment,
    LLMInteraction,
    RefinedItemSegment,
    RunItem,
    SegmentationRun,
)
from semantic_catalog.models import Segment as SegmentRow
from semantic_catalog.registry import registry
from semantic_catalog.segmentation.callindex import SqlCallIndex
from semantic_catalog.segmentation.items import items_by_ids
from semantic_catalog.segmentation.runs import create_run, execute_run
from tests import segmentation_helpers
from tests.helpers import run

llm = segmentation_helpers.llm  # fixtures
products = segmentation_helpers.products
segmentation_settings = segmentation_helpers.segmentation_settings

pytestmark = pytest.mark.django_db

EXPECTED = {"Drill products": 3, "Hose products": 3, "Pan products": 3}


def segment(*args: str) -> str:
    return run("semantic_segment", "--no-progress", *args)


def only_run() -> SegmentationRun:
    (found,) = SegmentationRun.objects.all()
    return found


def test_command_segments_ids_and_stores_everything(products, llm):
    out = segment("--index", "products", "--category", "home and garden", *products)
    seg_run = only_run()
    assert seg_run.status == "completed" and seg_run.stage == "done" and seg_run.error == ""
    assert f"{seg_run.run_id}: 3 segments, 9 of 9 items assigned" in out
    assert {s.name: s.item_count for s in SegmentRow.objects.filter(run=seg_run)} == EXPECTED
    assert RunItem.objects.filter(run=seg_run).count() == 9
    assert ItemSegment.objects.filter(run=seg_run).count() == 9
    refined = {r.item_id: r.segment.name for r in RefinedItemSegment.objects.filter(run=seg_run)}
    assert refined[products[0]] == "Drill products" and refined[products[4]] == "Hose products"
    assert seg_run.category == "home and garden" and seg_run.model_config["model"] == "scripted"
    assert seg_run.params["products_per_prompt"] == 3 and "api_key" not in json.dumps(seg_run.params)
    # every LLM call is a file in the run's folder, indexed with its checksum
    calls = list(LLMInteraction.objects.filter(run=seg_run))
    assert len(calls) == llm.count and llm.count >= 3 + 1 + 3  # 3 extract, >= 1 consolidate, 3 refine
    assert {c.interaction_type for c in calls} == {"segmentation", "consolidate_taxonomy", "refine_assignments"}
    for call in calls:
        data = Path(call.path).read_bytes()
        assert hashlib.sha256(data).hexdigest() == call.sha256
        assert seg_run.run_id in call.path and not call.cached
        assert json.loads(data)["metadata"]["cache_key"] == call.cache_key
    totals = seg_run.totals
    assert sum(stage["calls"] for stage in totals.values()) == llm.count
    assert sum(stage["tokens_in"] for stage in totals.values()) > 0


def test_the_cache_is_one_sql_lookup_and_a_rerun_asks_nothing(products, llm, django_assert_num_queries):
    segment("--index", "products", *products)
    first = only_run()
    asked = llm.count
    call = LLMInteraction.objects.filter(run=first).first()
    with django_assert_num_queries(1):
        assert SqlCallIndex(first).find(call.cache_key) == call.path
    with django_assert_num_queries(1):
        assert SqlCallIndex(first).find("0" * 64) is None
    segment("--index", "products", *products)
    assert llm.count == asked  # no repeated LLM call
    second = SegmentationRun.objects.exclude(pk=first.pk).get()
    assert second.status == "completed" and second.run_id != first.run_id
    again = LLMInteraction.objects.filter(run=second)
    assert again.count() == asked and all(c.cached for c in again)
    assert {s.name: s.item_count for s in second.segments.all()} == EXPECTED
    assert sum(stage["cached_calls"] for stage in second.totals.values()) == asked


class Crash(BaseException):
    """What a killed process looks like to the run: nothing after it runs (not even `except Exception`)."""


def test_a_crashed_run_resumes_from_the_cache_with_no_repeated_call(products, llm, monkeypatch):
    from semantic_catalog.segmentation import runs

    original = runs._Reporter.progress

    def crash_in_refine(self, progress):
        original(self, progress)
        if progress.stage == "refine":
            raise Crash

    monkeypatch.setattr(runs._Reporter, "progress", crash_in_refine)
    with pytest.raises(Crash):
        segment("--index", "products", *products)
    crashed = only_run()
    assert crashed.status == "running"  # the process died: nobody marked it
    asked = {stage: llm.stage_count(stage) for stage in ("extract", "consolidate", "refine")}
    assert asked["extract"] == 3 and asked["consolidate"] >= 1
    monkeypatch.setattr(runs._Reporter, "progress", original)
    with pytest.raises(CommandError, match="marked running.*--force"):
        segment("--resume", crashed.run_id)
    out = segment("--resume", crashed.run_id, "--force")
    crashed.refresh_from_db()
    assert crashed.status == "completed" and "3 segments" in out
    assert llm.stage_count("extract") == asked["extract"] and llm.stage_count("consolidate") == asked["consolidate"]
    assert llm.stage_count("refine") == 3  # what was asked before the crash was not asked again
    assert SegmentationRun.objects.count() == 1


def test_cancel_stops_the_run_and_resume_finishes_it(products, llm, monkeypatch):
    from semantic_catalog.segmentation import runs

    original = runs._Reporter.progress

    def cancel_after_extract(self, progress):
        original(self, progress)
        if progress.stage == "extract" and progress.processed == progress.total:
            runs.cancel_run(self.run.run_id)

    monkeypatch.setattr(runs._Reporter, "progress", cancel_after_extract)
    with pytest.raises(CommandError, match="cancelled"):
        segment("--index", "products", *products)
    cancelled = only_run()
    assert cancelled.status == "cancelled" and cancelled.finished_at is not None
    assert llm.stage_count("refine") == 0 and not cancelled.segments.exists()
    monkeypatch.setattr(runs._Reporter, "progress", original)
    with pytest.raises(runs.RunConflict, match="only a running run"):
        runs.cancel_run(cancelled.run_id)
    extract = llm.stage_count("extract")
    segment("--resume", cancelled.run_id)
    cancelled.refresh_from_db()
    assert cancelled.status == "completed" and not cancelled.cancel_requested
    assert llm.stage_count("extract") == extract
    with pytest.raises(CommandError, match="completed: there is nothing to resume"):
        segment("--resume", cancelled.run_id)


def test_an_llm_that_never_answers_usably_fails_the_run_with_its_reason(products, llm):
    llm.fail_next("extract", "malformed", "malformed", "malformed")  # MAX_RETRIES 2: three tries, all bad
    with pytest.raises(CommandError, match="no usable answer after 3 attempts.*Resume it with"):
        segment("--index", "products", *products[:3])
    failed = only_run()
    assert failed.status == "failed" and "not valid JSON" in failed.error and failed.finished_at
    assert LLMInteraction.objects.filter(run=failed, interaction_type="segmentation", attempt=3).exists()


def test_a_run_failed_by_an_llm_outage_resumes(products, llm):
    from semantic_catalog.engine.segmentation import OpenAIChatClient
    from semantic_catalog.segmentation.conf import build_config

    seg_run = create_run(registry.get("products"), items_by_ids(registry.get("products"), products))
    llm.fail_next("extract", "http500")
    impatient = OpenAIChatClient(build_config(), transport_retries=0)  # no 31 s of backoff in a test
    failed = execute_run(seg_run.run_id, client=impatient)
    assert failed.status == "failed" and "failed 1 times in a row" in failed.error
    answered = LLMInteraction.objects.filter(run=seg_run).count()
    asked = llm.count
    segment("--resume", seg_run.run_id)
    seg_run.refresh_from_db()
    assert seg_run.status == "completed"
    # only what had no answer was asked again
    assert llm.count - asked == LLMInteraction.objects.filter(run=seg_run).count() - answered


def test_command_selects_rows_with_a_filter(products, shop, make_product, llm):
    make_product("Rake steel", category="hoses", store="b")
    make_product("Rake leaf", category="hoses", store="b", price="30.00")
    segment("--index", "products", "--filter", f"store__in={shop['b'].pk},999", "--filter", "price__lte=20")
    seg_run = only_run()
    assert seg_run.total_items == 1
    assert [s.name for s in seg_run.segments.all()] == ["Rake products"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "Name the index"),
        (("--index", "products"), "Say which rows: ids, --filter FIELD=VALUE or --all"),
        (("--index", "products", "--all", "1"), "one of them"),
        (("--index", "products", "--mode", "embedding_first", "--segments", "2", "1"), "more than items"),
        (("--index", "products", "--naming", "keywords", "1"), "only with mode embedding_first"),
        (("--index", "nope", "1"), "Unknown index 'nope'"),
        (("--index", "products", "999999"), "not rows of index 'products'"),
        (("--index", "products", "99999999999999999999999"), "beyond the range"),
        (("--index", "products", "abc"), "Invalid ids"),
        (("--index", "products", "--filter", "secret=1"), "Cannot filter 'products' on 'secret'"),
        (("--index", "products", "--filter", "price__gte=cheap"), "does not suit its field"),
        (("--index", "products", "--filter", "price"), "FIELD=VALUE"),
        (("--index", "products", "--temperature", "3", "1"), "--temperature must be from 0 to 2"),
        (("--resume", "RUN_missing"), "no segmentation run 'RUN_missing'"),
    ],
)
def test_command_refuses_bad_input_and_changes_nothing(products, llm, args, message):
    with pytest.raises(CommandError, match=message):
        segment(*args)
    assert SegmentationRun.objects.count() == 0 and llm.count == 0


def test_duplicated_ids_and_rows_without_text_are_refused(products, make_product):
    from semantic_catalog.engine.errors import InvalidQuery

    index = registry.get("products")
    with pytest.raises(InvalidQuery, match="more than once"):
        items_by_ids(index, [products[0], products[0]])
    with pytest.raises(InvalidQuery, match="strings or whole numbers"):
        items_by_ids(index, [True])


def test_an_index_whose_rows_have_no_text_is_refused(products, llm, monkeypatch):
    index = registry.get("products")
    monkeypatch.setattr(type(index), "get_text", lambda self, obj: "  ")
    with pytest.raises(CommandError, match="9 rows of index 'products' have no text to segment"):
        segment("--index", "products", *products)
    assert SegmentationRun.objects.count() == 0 and llm.count == 0


def test_settings_are_checked(settings, segmentation_settings):
    from django.core.checks import run_checks

    config = dict(settings.SEMANTIC_CATALOG)
    config["SEGMENTATION"] = {"PRODUCTS_PER_PROMPT": 0, "TEMPERATURE": "warm", "BATCH": 3, "BASE_URL": ""}
    settings.SEMANTIC_CATALOG = config
    errors = [e for e in run_checks() if e.id == "semantic_catalog.E020"]
    text = " ".join(e.msg for e in errors)
    assert len(errors) == 4
    assert "Unknown SEMANTIC_CATALOG['SEGMENTATION'] keys: BATCH" in text
    assert "['PRODUCTS_PER_PROMPT'] must be a whole number, 1 or more, not 0" in text
    assert "['TEMPERATURE'] must be a number from 0 to 2.0, not 'warm'" in text
    assert "['BASE_URL'] must be a non-empty string" in text
    with pytest.raises(CommandError, match="PRODUCTS_PER_PROMPT"):
        segment("--index", "products", "1")


# -- admin -------------------------------------------------------------------------------------------


@pytest.fixture
def admin_client(client, django_user_model):
    django_user_model.objects.create_superuser("admin", "a@example.com", "pw")
    client.login(username="admin", password="pw")
    return client


def test_admin_shows_runs_segments_and_each_calls_log_file(products, admin_client):
    segment("--index", "products", *products)
    seg_run = only_run()
    runs_page = admin_client.get("/admin/semantic_catalog/segmentationrun/").content.decode()
    assert seg_run.run_id in runs_page and "completed" in runs_page
    change = admin_client.get(f"/admin/semantic_catalog/segmentationrun/{seg_run.pk}/change/").content.decode()
    assert "Drill products" in change and "Products whose description starts with" in change
    assert "Hose products" in admin_client.get("/admin/semantic_catalog/segment/").content.decode()
    listing = admin_client.get("/admin/semantic_catalog/llminteraction/").content.decode()
    call = LLMInteraction.objects.filter(run=seg_run, interaction_type="segmentation").order_by("batch").first()
    link = f"/admin/semantic_catalog/llminteraction/{call.pk}/content/"
    assert link in listing
    page = admin_client.get(link)
    assert page.status_code == 200
    text = page.content.decode()
    assert "&quot;metadata&quot;" in text and call.cache_key in text and "P_1: Drill" in text
    assert admin_client.get("/admin/semantic_catalog/llminteraction/add/").status_code == 403
    Path(call.path).unlink()
    missing = admin_client.get(link)
    assert missing.status_code == 404 and "not in its storage" in missing.content.decode()
    assert admin_client.get("/admin/semantic_catalog/llminteraction/999999/content/").status_code == 404


def test_admin_log_file_needs_staff(products, client, django_user_model):
    segment("--index", "products", *products)
    call = LLMInteraction.objects.first()
    django_user_model.objects.create_user("someone", password="pw")
    client.login(username="someone", password="pw")
    response = client.get(f"/admin/semantic_catalog/llminteraction/{call.pk}/content/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


# -- import of segmentation.json ----------------------------------------------------------------------


def result_for(ids: list[str], **changes) -> SegmentationResult:
    segments = [Segment("S_1", "Drill products", "Drills.", 0), Segment("S_2", "Other", "The rest.", 0)]
    refined = [Assignment(i, "S_1" if n < 3 else "S_2", 0.8) for n, i in enumerate(ids)]
    first = [Assignment(i, "Drill products" if n < 3 else "Other", 0.9) for n, i in enumerate(ids)]
    data = {
        "run_id": "RUN_20260101T000000Z_abcdef123456",
        "config": {"model": "offline-model", "base_url": "http://gpu:8080/v1", "temperature": 0.0, "category": "x"},
        "item_ids": list(ids),
        "segments": segments,
        "first_pass": first,
        "refined": refined,
        "usage": {"extract": Usage(calls=3, tokens_in=100, tokens_out=50)},
        "problems": [],
    }
    data.update(changes)
    return SegmentationResult(**data)


def write(result: SegmentationResult, folder: Path) -> Path:
    from semantic_catalog.engine.segmentation import write_result

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "segmentation.json"
    write_result(result, str(path))
    return path


def test_import_with_dry_run_then_for_real(products, tmp_path):
    path = write(result_for(products), tmp_path / "offline")
    out = run("semantic_import", str(path), "--index", "products", "--dry-run")
    assert "would import segmentation run RUN_20260101T000000Z_abcdef123456: 2 segments, 9 items" in out
    assert SegmentationRun.objects.count() == 0
    out = run("semantic_import", str(path.parent), "--index", "products")  # the folder works too
    assert "imported segmentation run" in out
    imported = only_run()
    assert imported.status == "completed" and imported.model_config["model"] == "offline-model"
    assert {s.key: s.item_count for s in imported.segments.all()} == {"S_1": 3, "S_2": 6}
    assert RefinedItemSegment.objects.filter(run=imported).count() == 9
    assert RunItem.objects.get(run=imported, item_id=products[0]).text.startswith("Drill cordless")
    out = run("semantic_import", str(path), "--index", "products")
    assert "replacing the run of that id" in out and SegmentationRun.objects.count() == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("unknown", "unknown item id"),
        ("twice", "more than once|exactly once|twice"),
        ("missing_segment", "S_9"),
        ("unassigned", "without a segment"),
    ],
)
def test_import_refuses_a_file_that_does_not_fit_and_changes_nothing(products, tmp_path, change, message):
    ids = list(products)
    result = result_for(ids)
    if change == "unknown":
        result = result_for([*ids, "987654"])
    elif change == "twice":
        result.refined.append(Assignment(ids[0], "S_2", 0.5))
    elif change == "missing_segment":
        result.refined[0] = Assignment(ids[0], "S_9", 0.5)
    elif change == "unassigned":
        result.refined.pop()
    path = write(result, tmp_path)
    with pytest.raises(CommandError, match=message):
        run("semantic_import", str(path), "--index", "products")
    assert SegmentationRun.objects.count() == 0 and RunItem.objects.count() == 0


def test_import_refuses_a_broken_file(products, tmp_path):
    path = tmp_path / "segmentation.json"
    path.write_text("{not json")
    with pytest.raises(CommandError):
        run("semantic_import", str(path), "--index", "products")
    assert SegmentationRun.objects.count() == 0


def test_store_result_of_an_engine_run_matches_the_api_shape(products, segmentation_settings):
    index = registry.get("products")
    items = items_by_ids(index, products[:3])
    assert [i.id for i in items] == products[:3] and all(isinstance(i, Item) for i in items)
    seg_run = create_run(index, items, category="tools")
    assert seg_run.status == "running" and seg_run.stage == "queued" and seg_run.run_id.startswith("RUN_")
    done = execute_run(seg_run.run_id)
    assert done.status == "completed" and done.result_summary["assigned"] == 3


# -- moving the logs ----------------------------------------------------------------------------------


def storage(*args: str) -> str:
    return run("semantic_segmentation_storage", *args)


def test_logs_move_to_another_folder_and_back_and_the_cache_follows(products, llm, tmp_path, admin_client):
    segment("--index", "products", *products)
    seg_run = only_run()
    source = seg_run.storage_url
    before = {c.pk: c.path for c in LLMInteraction.objects.all()}
    out = storage(seg_run.run_id, "--to", str(tmp_path / "archive"))
    assert f"{len(before)} indexed calls updated; source kept" in out
    seg_run.refresh_from_db()
    assert seg_run.storage_url == str(tmp_path / "archive") and seg_run.params["previous_log_storages"] == [source]
    for call in LLMInteraction.objects.all():
        assert call.path.startswith(str(tmp_path / "archive") + "/") and Path(call.path).exists()
        assert hashlib.sha256(Path(call.path).read_bytes()).hexdigest() == call.sha256
        assert Path(before[call.pk]).exists()  # kept: not asked to delete
    page = admin_client.get(f"/admin/semantic_catalog/llminteraction/{call.pk}/content/")
    assert page.status_code == 200 and "&quot;metadata&quot;" in page.content.decode()
    # the cache finds the moved files: a second run of the same items asks nothing
    asked = llm.count
    segment("--index", "products", *products)
    assert llm.count == asked
    # back, removing the archive copy
    out = storage(seg_run.run_id, "--rollback", "--delete-source")
    assert "source removed" in out
    seg_run.refresh_from_db()
    assert seg_run.storage_url == source and seg_run.params["previous_log_storages"] == []
    assert {c.pk: c.path for c in LLMInteraction.objects.filter(run=seg_run)} == {
        pk: path for pk, path in before.items() if LLMInteraction.objects.get(pk=pk).run_id == seg_run.pk
    }
    assert not (tmp_path / "archive" / seg_run.run_id).exists()
    # moved with --delete-source: only the destination holds the files
    storage(seg_run.run_id, "--to", str(tmp_path / "elsewhere"), "--delete-source")
    assert not (Path(source) / seg_run.run_id).exists()
    assert all(Path(c.path).exists() for c in LLMInteraction.objects.filter(run=seg_run))


def test_a_changed_log_file_stops_the_move_and_changes_nothing(products, llm, tmp_path):
    segment("--index", "products", *products)
    seg_run = only_run()
    call = LLMInteraction.objects.filter(run=seg_run).first()
    Path(call.path).write_text('{"tampered": true}')
    with pytest.raises(CommandError, match="SHA-256 does not match|differ from the checksums"):
        storage(seg_run.run_id, "--to", str(tmp_path / "archive"), "--delete-source")
    seg_run.refresh_from_db()
    assert seg_run.storage_url != str(tmp_path / "archive")
    assert LLMInteraction.objects.get(pk=call.pk).path == call.path and Path(call.path).exists()
    assert not (tmp_path / "archive" / seg_run.run_id).exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("RUN_missing", "--to", "/tmp/x"), "no segmentation run 'RUN_missing'"),
        (("RUN_missing",), "Give --to STORAGE, or --rollback"),
        (("RUN_missing", "--to", "/tmp/x", "--rollback"), "Give --to STORAGE, or --rollback"),
        (("RUN_missing", "--to", "/tmp/x", "--options", "[1"), "--options takes a JSON object"),
    ],
)
def test_storage_command_refuses_bad_input(segmentation_settings, args, message):
    with pytest.raises(CommandError, match=message):
        storage(*args)


def test_rollback_of_logs_never_moved_is_refused(products, llm):
    segment("--index", "products", *products[:3])
    with pytest.raises(CommandError, match="never moved"):
        storage(only_run().run_id, "--rollback")


@pytest.fixture
def s3_options():
    import socket

    boto3 = pytest.importorskip("boto3", reason="moto[server] and s3fs (the dev extra) run the S3 test")
    pytest.importorskip("s3fs", reason="moto[server] and s3fs (the dev extra) run the S3 test")
    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id="k", aws_secret_access_key="s", region_name="us-east-1"
    ).create_bucket(Bucket="segment-logs")
    yield {
        "key": "k",
        "secret": "s",
        "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"},
        "skip_instance_cache": True,
    }
    server.stop()


def test_logs_move_to_s3_and_the_admin_reads_them_there(products, llm, settings, s3_options, admin_client):
    segment("--index", "products", *products[:3])
    seg_run = only_run()
    local = seg_run.storage_url
    options = json.dumps(s3_options)
    storage(seg_run.run_id, "--to", "s3://segment-logs/runs", "--options", options, "--delete-source")
    calls = list(LLMInteraction.objects.filter(run=seg_run))
    assert all(c.path.startswith(f"s3://segment-logs/runs/{seg_run.run_id}/") for c in calls)
    assert not (Path(local) / seg_run.run_id).exists()
    config = dict(settings.SEMANTIC_CATALOG)  # the logs now live on S3: the admin reads them with these options
    config["SEGMENTATION"] = {
        **config["SEGMENTATION"],
        "LOG_STORAGE": "s3://segment-logs/runs",
        "STORAGE_OPTIONS": s3_options,
    }
    settings.SEMANTIC_CATALOG = config
    page = admin_client.get(f"/admin/semantic_catalog/llminteraction/{calls[0].pk}/content/")
    assert page.status_code == 200 and calls[0].cache_key in page.content.decode()
    storage(seg_run.run_id, "--rollback", "--source-options", options, "--options", "{}", "--delete-source")
    seg_run.refresh_from_db()
    assert seg_run.storage_url == local
    assert all(Path(c.path).exists() for c in LLMInteraction.objects.filter(run=seg_run))


# -- a real local LLM (bash scripts/llm.sh), when one answers ------------------------------------------


def local_llm() -> tuple[str, str] | None:
    """(base URL, first model) of the server at SEMANTIC_CATALOG_TEST_LLM_URL or scripts/llm.sh's default."""
    import os
    import urllib.request

    url = os.environ.get("SEMANTIC_CATALOG_TEST_LLM_URL", "http://127.0.0.1:8088/v1").rstrip("/")
    try:
        with urllib.request.urlopen(f"{url}/models", timeout=5) as answer:
            models = json.load(answer)["data"]
    except (OSError, ValueError, KeyError):
        return None
    return (url, models[0]["id"]) if models else None


def test_semantic_segment_on_the_local_llm(products, settings):
    server = local_llm()
    if server is None:
        pytest.skip(
            "no local LLM server answers: start one with `bash scripts/llm.sh` "
            "(or set SEMANTIC_CATALOG_TEST_LLM_URL to an OpenAI-compatible base URL)"
        )
    url, model = server
    config = dict(settings.SEMANTIC_CATALOG)
    config["SEGMENTATION"] = {
        "BASE_URL": url,
        "MODEL": model,
        "PRODUCTS_PER_PROMPT": 9,
        "PRODUCTS_PER_REFINEMENT": 9,
        "CONCURRENCY": 1,
        "CONTEXT_TOKENS": 8192,
        "MAX_OUTPUT_TOKENS": 1024,
    }
    settings.SEMANTIC_CATALOG = config
    out = segment("--index", "products", "--category", "hardware and kitchen products", *products)
    seg_run = only_run()
    assert seg_run.status == "completed", seg_run.error
    assert RefinedItemSegment.objects.filter(run=seg_run).count() == 9  # every product once
    assert seg_run.segments.exists() and all(s.name and s.definition for s in seg_run.segments.all())
    assert sum(s.item_count for s in seg_run.segments.all()) == 9 and "segments" in out
    assert LLMInteraction.objects.filter(run=seg_run, cached=False).exists()


def test_a_run_whose_settings_went_bad_fails_with_the_reason(products, llm, settings):
    seg_run = create_run(registry.get("products"), items_by_ids(registry.get("products"), products[:3]))
    config = dict(settings.SEMANTIC_CATALOG)
    config["SEGMENTATION"] = {**config["SEGMENTATION"], "TEMPERATURE": "warm"}
    settings.SEMANTIC_CATALOG = config
    failed = execute_run(seg_run.run_id)
    assert failed.status == "failed" and "['TEMPERATURE'] must be a number" in failed.error and llm.count == 0
