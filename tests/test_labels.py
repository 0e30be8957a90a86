"""Labelled pairs (match / non-match): stored from the admin's confirm / reject actions, the API and label
files, validated against the index (rows of its queryset, two stores), exported beside the catalog."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import CommandError
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from semantic_catalog.engine.crossstore.labels import LabelledPair, read_label_file
from semantic_catalog.models import AnalysisRun, MatchLabel, ProductMatch
from tests.helpers import run

pytestmark = pytest.mark.django_db

URL = "/api/semantic/products/match-labels"


@pytest.fixture(autouse=True)
def no_drains(settings):
    """Labels need rows, not vectors: changes wait in the outbox instead of being encoded."""
    settings.SEMANTIC_CATALOG = {**settings.SEMANTIC_CATALOG, "ENQUEUE_DRAIN": False}


@pytest.fixture
def rows(make_product):
    """Two products in each store, and one in store b that the index's queryset hides (inactive)."""
    made = {
        "a1": make_product("Cordless drill driver", brand="Makita", price="99.00"),
        "a2": make_product("Drill bit set", brand="Bosch", price="19.00"),
        "b1": make_product("Makita cordless drill", category="hoses", store="b", brand="Makita", price="95.00"),
        "b2": make_product("Bosch drill bits", category="hoses", store="b", brand="Bosch", price="18.00"),
        "hidden": make_product("Old drill", category="hoses", store="b", active=False),
    }
    return {name: str(product.pk) for name, product in made.items()}


def stored() -> set[tuple[str, str, bool, str, str]]:
    return set(MatchLabel.objects.values_list("left", "right", "label", "source", "labelled_by"))


def pair(a: str, b: str) -> tuple[str, str]:
    return tuple(sorted((a, b)))  # type: ignore[return-value]


@pytest.fixture
def superuser_client(client):
    client.force_login(User.objects.create_superuser("admin", "a@example.com", "pw"))
    return client


# -- the admin ------------------------------------------------------------------------------------------


@pytest.fixture
def matches(rows):
    """A matches run: a1 = b1, and b2 = a2 written the other way round (product > match)."""
    run_row = AnalysisRun.objects.create(
        index="products", kind="matches", model="m", source="server", computed_at=timezone.now()
    )
    return {
        "m1": ProductMatch.objects.create(run=run_row, product=rows["a1"], match=rows["b1"], score=0.9),
        "m2": ProductMatch.objects.create(run=run_row, product=rows["b2"], match=rows["a2"], score=0.8),
        "run": run_row,
    }


CHANGELIST = "/admin/semantic_catalog/productmatch/"


def act(client, action: str, *selected: ProductMatch):
    return client.post(
        CHANGELIST, {"action": action, "_selected_action": [m.pk for m in selected]}, follow=True
    ).content.decode()


def label_cell(page: str, match: ProductMatch) -> str:
    row = page.split(f"/admin/semantic_catalog/productmatch/{match.pk}/change/")[1].split("</tr>")[0]
    return row.split('<td class="field-label">')[1].split("</td>")[0]


def test_confirm_and_reject_actions_store_labels(superuser_client, rows, matches):
    page = superuser_client.get(CHANGELIST).content.decode()
    assert 'value="confirm"' in page and 'value="reject"' in page
    assert label_cell(page, matches["m1"]) == "-" == label_cell(page, matches["m2"])  # the empty value

    page = act(superuser_client, "confirm", matches["m1"], matches["m2"])
    assert "Stored 2 labelled pair(s): the same item." in page
    assert stored() == {
        (*pair(rows["a1"], rows["b1"]), True, "admin", "admin"),
        (*pair(rows["a2"], rows["b2"]), True, "admin", "admin"),
    }
    assert label_cell(page, matches["m1"]) == "confirmed" == label_cell(page, matches["m2"])

    page = act(superuser_client, "reject", matches["m2"])
    assert "Stored 1 labelled pair(s): not the same item." in page
    assert MatchLabel.objects.count() == 2  # the pair flipped, not added
    assert MatchLabel.objects.get(left=min(rows["a2"], rows["b2"])).label is False
    assert label_cell(page, matches["m2"]) == "rejected" and label_cell(page, matches["m1"]) == "confirmed"


def test_the_label_column_costs_no_query_per_row(superuser_client, rows, matches):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert superuser_client.get(CHANGELIST).status_code == 200
        return len(captured)

    act(superuser_client, "confirm", matches["m1"])
    few = queries()
    for n in range(10):
        ProductMatch.objects.create(run=matches["run"], product=rows["a1"], match=str(1000 + n), score=0.5)
    assert queries() == few


def test_a_match_that_left_the_index_stores_no_label(superuser_client, rows, matches):
    gone = ProductMatch.objects.create(run=matches["run"], product=rows["a2"], match=rows["hidden"], score=0.7)
    page = act(superuser_client, "confirm", matches["m1"], gone)
    assert "No labels were stored: 1 invalid pairs, nothing was changed: ids not in index" in page
    assert not MatchLabel.objects.exists()


def test_labelling_needs_the_add_matchlabel_permission(client, rows, matches):
    staff = User.objects.create_user("viewer", password="pw", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_productmatch"))
    client.force_login(staff)
    page = client.get(CHANGELIST).content.decode()
    assert 'value="confirm"' not in page and 'value="reject"' not in page
    act(client, "confirm", matches["m1"])
    assert not MatchLabel.objects.exists()

    staff.user_permissions.add(Permission.objects.get(codename="add_matchlabel"))
    staff = User.objects.get(pk=staff.pk)  # a fresh permission cache
    client.force_login(staff)
    assert "Stored 1 labelled pair(s)" in act(client, "confirm", matches["m1"])
    assert stored() == {(*pair(rows["a1"], rows["b1"]), True, "admin", "viewer")}


def test_labels_in_the_admin_are_flipped_and_deleted_never_added(superuser_client, rows):
    label = MatchLabel.objects.create(index="products", left="1", right="2", label=True, source="import")
    base = "/admin/semantic_catalog/matchlabel/"
    page = superuser_client.get(base, {"q": "2"}).content.decode()
    assert f"{base}{label.pk}/change/" in page and f'href="{base}add/"' not in page
    assert superuser_client.get(f"{base}add/").status_code == 403

    superuser_client.post(f"{base}{label.pk}/change/", {})  # the label's checkbox cleared
    label.refresh_from_db()
    assert (label.label, label.source, label.labelled_by, label.left) == (False, "admin", "admin", "1")

    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_matchlabel"))
    superuser_client.force_login(viewer)
    assert superuser_client.post(f"{base}{label.pk}/change/", {"label": "on"}).status_code == 403
    assert superuser_client.post(f"{base}{label.pk}/delete/", {"post": "yes"}).status_code == 403
    assert MatchLabel.objects.get(pk=label.pk).label is False

    superuser_client.force_login(User.objects.get(username="admin"))
    superuser_client.post(f"{base}{label.pk}/delete/", {"post": "yes"})
    assert not MatchLabel.objects.exists()


def test_a_pair_is_two_products_and_stored_once(db):
    MatchLabel.objects.create(index="products", left="1", right="2", label=True, source="api")
    for left, right in (("1", "2"), ("3", "3")):
        with pytest.raises(IntegrityError), transaction.atomic():
            MatchLabel.objects.create(index="products", left=left, right=right, label=False, source="api")
    MatchLabel.objects.create(index="other", left="1", right="2", label=False, source="api")  # another index
    assert MatchLabel.objects.count() == 2


# -- the API ----------------------------------------------------------------------------------------------


def post(client, body, query: str = ""):
    data = body if isinstance(body, bytes) else json.dumps(body)
    return client.post(URL + query, data, content_type="application/json")


def test_api_stores_lists_and_relabels(superuser_client, rows):
    response = post(superuser_client, {"left": rows["b1"], "right": rows["a1"], "label": "match"})
    assert response.status_code == 200, response.content
    assert response.json() == {"created": 1, "updated": 0, "unchanged": 0, "dry_run": False}
    assert stored() == {(*pair(rows["a1"], rows["b1"]), True, "api", "admin")}

    body = [
        {"left": int(rows["a1"]), "right": rows["b1"], "label": 1},  # the same label again
        {"left": rows["a2"], "right": rows["b2"], "label": "non-match"},
        {"left": rows["a1"], "right": rows["b2"], "label": False},
    ]
    dry = post(superuser_client, body, "?dry_run=1").json()
    assert dry == {"created": 2, "updated": 0, "unchanged": 1, "dry_run": True}
    assert MatchLabel.objects.count() == 1  # a dry run stores nothing
    assert post(superuser_client, body).json() == {"created": 2, "updated": 0, "unchanged": 1, "dry_run": False}
    flipped = post(superuser_client, [{"left": rows["a1"], "right": rows["b1"], "label": "false"}]).json()
    assert flipped == {"created": 0, "updated": 1, "unchanged": 0, "dry_run": False}
    assert stored() == {
        (*pair(rows["a1"], rows["b1"]), False, "api", "admin"),
        (*pair(rows["a2"], rows["b2"]), False, "api", "admin"),
        (*pair(rows["a1"], rows["b2"]), False, "api", "admin"),
    }

    listed = superuser_client.get(URL).json()
    assert listed["index"] == "products" and listed["count"] == 3
    assert {(x["left"], x["right"], x["label"], x["source"], x["labelled_by"]) for x in listed["labels"]} == stored()
    assert all(x["updated_at"] for x in listed["labels"])


def test_api_refuses_bad_pairs_and_changes_nothing(superuser_client, rows, settings):
    settings.SEMANTIC_CATALOG = {**settings.SEMANTIC_CATALOG, "MAX_UPLOAD_BYTES": 1024 * 1024}
    post(superuser_client, {"left": rows["a1"], "right": rows["b1"], "label": True})
    before = stored()
    good = {"left": rows["a2"], "right": rows["b2"], "label": 1}
    cases = [
        ({"left": rows["a1"], "right": rows["hidden"], "label": 1}, f"ids not in index 'products': {rows['hidden']}"),
        ({"left": rows["a1"], "right": "999999", "label": 1}, "ids not in index 'products': 999999"),
        ({"left": rows["a1"], "right": "99999999999999999999", "label": 1}, "ids not in index 'products'"),
        ({"left": rows["a1"], "right": "x" * 65, "label": 1}, "an id is longer than 64 characters"),
        ({"left": rows["a1"], "right": "drill", "label": 1}, "ids not in index 'products': drill"),
        ({"left": rows["a1"], "right": rows["a2"], "label": 0}, "both products are in store"),
        ({"left": rows["a1"], "right": rows["a1"], "label": 1}, "left and right are the same product"),
        ({"left": rows["a1"], "right": rows["b2"], "label": "maybe"}, "label 'maybe' is not 1/0"),
        ({"left": rows["a1"], "right": rows["b2"], "label": 2}, "label 2 is not 1/0"),
        ({"left": rows["a1"], "right": rows["b2"]}, "label None is not 1/0"),
        ({"left": True, "right": rows["b2"], "label": 1}, "left and right must be product ids"),
        ({"left": [1], "right": rows["b2"], "label": 1}, "left and right must be product ids"),
        ({"left": 1.5, "right": rows["b2"], "label": 1}, "left and right must be product ids"),
        ("a pair", "expected an object with left, right and label"),
    ]
    for bad, words in cases:
        response = post(superuser_client, [good, bad])
        assert response.status_code == 400, (bad, response.content)
        body = response.json()
        assert body["detail"].startswith("1 invalid pairs, nothing was changed: ") and words in body["detail"], body
        assert len(body["problems"]) == 1 and words in body["problems"][0], body
    # a hidden row and an absent one are refused alike: the answer never tells whether a row exists
    hidden = post(superuser_client, {"left": rows["a1"], "right": rows["hidden"], "label": 1}).json()
    absent = post(superuser_client, {"left": rows["a1"], "right": "999999", "label": 1}).json()
    assert hidden["detail"].replace(rows["hidden"], "ID") == absent["detail"].replace("999999", "ID")

    twice = [good, {**good, "label": 0}]
    assert "labelled the other way in an earlier row" in post(superuser_client, twice).json()["detail"]
    for body, status, words in [
        (b"", 400, "The body must be one labelled pair"),
        (b"not json", 400, "The body must be one labelled pair"),
        (b"\x00\xff" * 100, 400, "The body must be one labelled pair"),
        (b"[]", 400, "The body must be one labelled pair"),
        (b"42", 400, "The body must be one labelled pair"),
        (b"[" * 100_000, 400, "The body must be one labelled pair"),  # nested deep: no 500
        (b"[" * (2 * 1024 * 1024), 413, "SEMANTIC_CATALOG['MAX_UPLOAD_BYTES']"),
    ]:
        response = post(superuser_client, body)
        assert response.status_code == status and words in response.json()["detail"], response.content
    assert stored() == before
    assert superuser_client.get("/api/semantic/nope/match-labels").status_code == 404
    assert post(superuser_client, good, "").status_code == 200  # the good pair alone goes in


def test_api_labels_need_staff_unless_configured(client, rows, settings):
    pair_body = {"left": rows["a1"], "right": rows["b1"], "label": 1}
    assert post(client, pair_body).status_code in (401, 403)
    assert client.get(URL).status_code in (401, 403)
    client.force_login(User.objects.create_user("shopper", password="pw"))
    assert post(client, pair_body).status_code == 403
    assert not MatchLabel.objects.exists()

    settings.SEMANTIC_CATALOG = {
        **settings.SEMANTIC_CATALOG,
        "LABEL_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    }
    assert post(client, pair_body).status_code == 200
    assert stored() == {(*pair(rows["a1"], rows["b1"]), True, "api", "shopper")}
    assert client.get(URL).json()["count"] == 1


# -- label files and the export ----------------------------------------------------------------------------


def test_label_files_import_and_export_round_trip(rows, tmp_path):
    csv_file = tmp_path / "labels.csv"
    csv_file.write_text(
        f"left,right,label\n{rows['b1']},{rows['a1']},1\n{rows['a2']},{rows['b2']},non-match\n", encoding="utf-8"
    )
    printed = run("semantic_labels", "import", str(csv_file), "--index", "products", "--dry-run")
    assert "would store 2 labelled pairs" in printed and "(2 new, 0 updated, 0 unchanged)" in printed
    assert not MatchLabel.objects.exists()
    assert "(2 new, 0 updated, 0 unchanged)" in run("semantic_labels", "import", str(csv_file), "--index", "products")
    expected = {
        (*pair(rows["a1"], rows["b1"]), True, "import", ""),
        (*pair(rows["a2"], rows["b2"]), False, "import", ""),
    }
    assert stored() == expected

    for name in ("out.jsonl", "out.csv"):
        printed = run("semantic_labels", "export", str(tmp_path / name), "--index", "products")
        assert f"products: 2 labelled pairs -> {tmp_path / name}" in printed
        assert read_label_file(tmp_path / name) == sorted(
            [LabelledPair.of(rows["a1"], rows["b1"], True), LabelledPair.of(rows["a2"], rows["b2"], False)]
        )
    first = json.loads((tmp_path / "out.jsonl").read_text().splitlines()[0])
    assert set(first) == {"left", "right", "label"} and first["label"] in (0, 1)

    MatchLabel.objects.all().delete()
    assert "(2 new," in run("semantic_labels", "import", str(tmp_path / "out.jsonl"), "--index", "products")
    assert stored() == expected
    flipped = tmp_path / "flipped.jsonl"
    flipped.write_text(json.dumps({"left": rows["a1"], "right": rows["b1"], "label": "non-match"}) + "\n")
    assert "(0 new, 1 updated, 0 unchanged)" in run("semantic_labels", "import", str(flipped), "--index", "products")
    assert MatchLabel.objects.get(left=min(rows["a1"], rows["b1"])).label is False


def test_bad_label_files_change_nothing(rows, tmp_path):
    MatchLabel.objects.create(index="products", left="1", right="2", label=True, source="api")
    before = stored()
    same_store = json.dumps({"left": rows["a1"], "right": rows["a2"], "label": 1})
    unknown = f"left,right,label\n{rows['a1']},{rows['b1']},1\n{rows['a1']},{rows['hidden']},0\n"
    files = {
        "unknown.csv": (unknown, "ids not in index"),
        "same-store.jsonl": (same_store, "both products are in store"),
        "bad-label.csv": (f"left,right,label\n{rows['a1']},{rows['b1']},perhaps\n", "label 'perhaps' is not"),
        "no-header.csv": (f"{rows['a1']},{rows['b1']},1\n", "needs the header left,right,label"),
        "broken.jsonl": ('{"left": 1,\n', "line 1: not JSON"),
    }
    for name, (text, words) in files.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(CommandError, match=words):
            run("semantic_labels", "import", str(tmp_path / name), "--index", "products")
    with pytest.raises(CommandError, match="no such file"):
        run("semantic_labels", "import", str(tmp_path / "absent.csv"), "--index", "products")
    with pytest.raises(CommandError, match="nope"):
        run("semantic_labels", "import", str(tmp_path / "unknown.csv"), "--index", "nope")
    assert stored() == before


def test_semantic_export_writes_the_labels_beside_the_catalog(rows, tmp_path):
    export = tmp_path / "products.jsonl"
    beside = tmp_path / "products.labels.jsonl"
    printed = run("semantic_export", "--index", "products", "--output", str(export))
    assert export.exists() and not beside.exists() and "labelled pairs" not in printed

    run("semantic_labels", "import", str(_file(tmp_path, rows)), "--index", "products")
    printed = run("semantic_export", "--index", "products", "--output", str(export))
    assert f"products: 2 labelled pairs -> {beside}" in printed
    assert read_label_file(beside) == sorted(
        [LabelledPair.of(rows["a1"], rows["b1"], True), LabelledPair.of(rows["a2"], rows["b2"], False)]
    )

    MatchLabel.objects.all().delete()
    run("semantic_export", "--index", "products", "--output", str(export))
    assert export.exists() and not beside.exists()  # no stale labels for a later train-matcher


def _file(folder, rows):
    path = folder / "in.csv"
    path.write_text(f"left,right,label\n{rows['a1']},{rows['b1']},1\n{rows['b2']},{rows['a2']},0\n")
    return path
