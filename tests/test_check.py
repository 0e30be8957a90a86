"""semantic_check: SQL against the index, with differences made by going around the sync (bulk
writes, raw SQL, the store itself), then --repair and a drain."""

from __future__ import annotations

import json
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from semantic_catalog.backends import get_store
from semantic_catalog.collections import active_collection, start_rebuild
from semantic_catalog.models import Collection, SyncEvent
from semantic_catalog.registry import registry
from semantic_catalog.sync.check import check_index
from tests.helpers import run

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def offline(settings):
    """Changes are recorded in the outbox but not drained automatically (ENQUEUE_DRAIN off)."""
    settings.SEMANTIC_CATALOG = {**settings.SEMANTIC_CATALOG, "ENQUEUE_DRAIN": False}


def check(*args: str) -> tuple[list[dict], CommandError | None]:
    """semantic_check --json: its reports, and the CommandError it ended with (None: exit status 0)."""
    out = StringIO()
    try:
        call_command("semantic_check", "--json", *args, stdout=out, stderr=StringIO())
    except CommandError as exc:
        return json.loads(out.getvalue()), exc
    return json.loads(out.getvalue()), None


def counts(report: dict) -> dict[str, int]:
    kinds = ("missing", "stale", "orphaned", "unbuildable", "wrong_collection")
    return {kind: report[kind]["count"] for kind in kinds}


NONE = {"missing": 0, "stale": 0, "orphaned": 0, "unbuildable": 0, "wrong_collection": 0}


def test_a_clean_index_has_no_differences(offline, make_product):
    for n in range(3):
        make_product(f"Drill {n}")
    run("semantic_index")
    run("semantic_sync")  # the saves' events: nothing left to write
    (report,), error = check()
    assert error is None
    assert counts(report) == NONE and report["differences"] == 0
    assert (report["in_queryset"], report["indexed"], report["pending"], report["failed"]) == (3, 3, 0, 0)
    assert report["collection"] == active_collection(registry.get("products")).table
    assert "products: 3 rows in the queryset, 3 documents in" in run("semantic_check")
    assert "no differences" in run("semantic_check", "--index", "products")


def test_each_difference_is_found_and_repair_queues_what_the_drain_fixes(offline, make_product, shop):
    from shop.models import Product

    rows = [make_product(f"Cordless drill {n}", description=f"model {n}") for n in range(6)]
    run("semantic_index")
    run("semantic_sync")
    index = registry.get("products")
    table = active_collection(index).table
    store = get_store()
    renamed, deactivated, deleted, dropped = rows[0], rows[1], rows[2], rows[3]

    Product.objects.filter(pk=renamed.pk).update(name="Garden hose")  # stale
    (added,) = Product.objects.bulk_create(  # missing
        [Product(name="Leaf blower", price=Decimal("99.00"), category=shop["drills"], store=shop["a"])]
    )
    Product.objects.filter(pk=deactivated.pk).update(active=False)  # orphaned: left the queryset
    with connection.cursor() as cursor:  # orphaned: deleted behind the ORM's back
        cursor.execute(f"DELETE FROM {Product._meta.db_table} WHERE id = %s", [deleted.pk])
    store.delete(table, [str(dropped.pk)])  # missing: gone from the store
    assert SyncEvent.objects.count() == 0  # none of it went through the outbox

    (report,), error = check()
    assert error is not None and error.returncode == 1 and "5 differences found" in str(error)
    assert counts(report) == {**NONE, "missing": 2, "stale": 1, "orphaned": 2}
    assert report["missing"]["ids"] == sorted([str(dropped.pk), str(added.pk)], key=int)
    assert report["stale"]["ids"] == [str(renamed.pk)]
    assert report["orphaned"]["ids"] == sorted([str(deactivated.pk), str(deleted.pk)], key=int)
    assert (report["in_queryset"], report["indexed"], report["differences"], report["repair"]) == (5, 5, 5, None)

    (one,), _ = check("--sample", "1")
    assert one["missing"] == {"count": 2, "queued": 0, "ids": [str(min(dropped.pk, added.pk))]}
    with pytest.raises(CommandError, match="5 differences found"):
        run("semantic_check")

    stored = store.content_hashes(table)
    (report,), error = check("--repair")
    assert error is None
    assert report["repair"] == {"upserts": 3, "deletes": 2, "unrepairable": 0}
    assert store.content_hashes(table) == stored  # repair only queues: the store is untouched
    events = SyncEvent.objects.filter(index="products", status="pending")
    assert sorted(events.filter(op="upsert").values_list("object_id", flat=True)) == sorted(
        [str(dropped.pk), str(added.pk), str(renamed.pk)]
    )
    assert sorted(events.filter(op="delete").values_list("object_id", flat=True)) == sorted(
        [str(deactivated.pk), str(deleted.pk)]
    )

    (waiting,), error = check()  # the fixes are queued, not applied: still differences, each queued
    assert error is not None and waiting["pending"] == 5
    assert {kind: waiting[kind]["queued"] for kind in ("missing", "stale", "orphaned")} == {
        "missing": 2,
        "stale": 1,
        "orphaned": 2,
    }

    assert "5 events applied" in run("semantic_sync")
    (report,), error = check()
    assert error is None and counts(report) == NONE
    assert (report["in_queryset"], report["indexed"], report["pending"]) == (5, 5, 0)
    assert (
        store.content_hashes(table)[str(renamed.pk)]
        == index.to_document(Product.objects.get(pk=renamed.pk)).content_hash
    )


def test_the_exit_status_of_the_command_line(offline, make_product, capsys):
    """Run as `manage.py semantic_check`, differences give exit status 1 and a clean index 0."""
    from django.core.management import ManagementUtility

    drill = make_product("Drill")
    run("semantic_index")
    ManagementUtility(["manage.py", "semantic_check", "--json"]).execute()  # returns: exit status 0
    assert json.loads(capsys.readouterr().out)[0]["differences"] == 0
    store = get_store()
    store.delete(active_collection(registry.get("products")).table, [str(drill.pk)])
    with pytest.raises(SystemExit) as exited:
        ManagementUtility(["manage.py", "semantic_check", "--json"]).execute()
    assert exited.value.code == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)[0]["missing"]["ids"] == [str(drill.pk)]
    assert "1 differences found" in captured.err


def test_wrong_collections(offline, make_product, monkeypatch):
    from semantic_catalog.sync import check as check_module

    drill = make_product("Drill")
    make_product("Hose")
    index = registry.get("products")

    # Never built: every row is missing; repair queues them and the drain creates the collection.
    (report,), error = check()
    assert error is not None and report["collection"] is None
    assert counts(report) == {**NONE, "missing": 2, "wrong_collection": 1}
    assert report["missing"]["queued"] == 2  # the saves' own events wait too
    assert [p["problem"] for p in report["wrong_collection"]["problems"]] == ["not_built"]
    (report,), error = check("--repair")
    assert error is None and report["repair"] == {"upserts": 2, "deletes": 0, "unrepairable": 0}
    run("semantic_sync")
    (report,), error = check()
    assert error is None and counts(report) == NONE

    # A text_version the collection was not built with, and a build left behind: only a rebuild helps.
    monkeypatch.setattr(index, "text_version", index.text_version + 1)
    building = start_rebuild(index)
    (report,), error = check()
    problems = report["wrong_collection"]["problems"]
    assert [p["problem"] for p in problems] == ["text_version", "building"]
    assert problems[1]["collection"] == building.table and "--rebuild" in problems[0]["detail"]
    (report,), error = check("--repair")
    assert error is not None and error.returncode == 1 and "2 differences cannot be repaired" in str(error)
    assert report["repair"] == {"upserts": 0, "deletes": 0, "unrepairable": 2}
    monkeypatch.undo()
    Collection.objects.filter(pk=building.pk).delete()

    # A model that is not configured: rows are compared, but repair queues nothing the drain cannot write.
    active = active_collection(index)
    Collection.objects.filter(pk=active.pk).update(model="someone/else")
    get_store().delete(active.table, [str(drill.pk)])
    report = check_module.check_index(index)
    assert [p.problem for p in report.wrong_collection] == ["model_not_configured"]
    assert report.missing.ids == [str(drill.pk)] and not report.comparable and report.unrepairable == 2
    (report,), error = check("--repair")
    assert error is not None and report["repair"] == {"upserts": 0, "deletes": 0, "unrepairable": 2}
    assert SyncEvent.objects.count() == 0


def test_rows_whose_document_cannot_be_built(offline, make_product, monkeypatch):
    drill = make_product("Drill")
    hose = make_product("Hose")
    run("semantic_index")
    index = registry.get("products")
    real = index.get_text

    def get_text(obj):
        if obj.pk == hose.pk:
            raise ValueError("no text for you")
        return real(obj)

    monkeypatch.setattr(index, "get_text", get_text)
    report = check_index(index, batch_size=1)
    assert report.unbuildable.ids == [str(hose.pk)] and "no text for you" in report.errors[str(hose.pk)]
    assert (report.missing.count, report.stale.count, report.orphaned.count) == (0, 0, 0)
    assert report.in_queryset == 2 and report.unrepairable == 1
    assert str(drill.pk) not in report.errors
    with pytest.raises(CommandError, match="1 differences cannot be repaired"):
        run("semantic_check", "--repair")


def test_bad_arguments(db):
    with pytest.raises(CommandError, match="Unknown index 'nope'"):
        run("semantic_check", "--index", "nope")
    with pytest.raises(CommandError, match="--sample must be at least 0"):
        run("semantic_check", "--sample", "-1")
