"""The report page of a segmentation run (issue 17, item 3): through the test client (content, permissions,
a run not completed yet, the compare parameter, vectors gone) and in a real headless Chromium, where every
chart must be drawn by the vendored Chart.js. The runs are embedding-first with keyword naming: no LLM."""

from __future__ import annotations

import html
import json
import re
import shutil
from collections import Counter
from io import StringIO

import numpy as np
import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command

from semantic_catalog.backends import get_store
from semantic_catalog.collections import active_collection
from semantic_catalog.models import SegmentationRun
from semantic_catalog.registry import registry
from semantic_catalog.segmentation import report
from semantic_catalog.segmentation.runs import create_run
from tests import segmentation_helpers

llm = segmentation_helpers.llm  # fixtures
products = segmentation_helpers.products
segmentation_settings = segmentation_helpers.segmentation_settings

pytestmark = pytest.mark.django_db(transaction=True)

CHARTS = ["chart-sizes", "chart-map", "chart-confidence", "chart-seconds", "chart-tokens"]


@pytest.fixture
def finished(products):
    """The nine products indexed (the bundled model) and segmented embedding-first in 3 keyword-named segments."""
    call_command("semantic_index", "--index", "products", "--no-progress", stdout=StringIO())
    call_command(
        "semantic_segment", "--index", "products", "--all", "--mode", "embedding_first", "--naming", "keywords",
        "--segments", "3", "--no-progress", stdout=StringIO(), stderr=StringIO(),
    )  # fmt: skip
    run = SegmentationRun.objects.get()
    assert run.status == "completed", run.error
    return run


@pytest.fixture
def boss(django_user_model):
    return django_user_model.objects.create_superuser("boss", "boss@example.com", "pw")


def url(run: SegmentationRun | int) -> str:
    return f"/admin/semantic_catalog/segmentationrun/{getattr(run, 'pk', run)}/report/"


def chart_data(page: str) -> dict:
    return json.loads(page.split('<script id="report-data" type="application/json">')[1].split("</script>")[0])


def confusion_cells(page: str) -> dict[tuple[str, str], int]:
    """{(row label, segment key): count} read from the page's confusion table."""
    table = page.split('<table id="confusion">')[1].split("</table>")[0]
    keys = re.findall(r'<th class="number" title="[^"]*">(S_\d+)</th>', table.split("</thead>")[0])
    cells = {}
    for row in re.findall(r"<tr><td>(.*?)</td>(.*?)</tr>", table.split("<tbody>")[1].split("</tbody>")[0]):
        counts = [int(c) for c in re.findall(r'<td class="number">(\d+)</td>', row[1])][:-1]  # the last: row total
        cells.update({(html.unescape(row[0]), key): count for key, count in zip(keys, counts, strict=True)})
    return cells


def test_the_report_of_a_finished_run(client, boss, finished):
    client.force_login(boss)
    response = client.get(url(finished))
    assert response.status_code == 200
    page = response.content.decode()
    header = page.split('<table id="report-header">')[1].split("</table>")[0]
    for text in (finished.run_id, "products", "completed", "embedding_first, naming keywords", "9, 9 assigned"):
        assert text in header, text
    assert "<th>Problems</th><td>0</td>" in header
    for canvas in CHARTS:
        assert f'<canvas id="{canvas}"' in page
    assert "/static/semantic_catalog/vendor/chart.umd.min.js" in page and "cdn" not in page.lower()
    data = chart_data(page)
    segments = sorted(finished.segments.all(), key=lambda s: s.key)
    assert data["sizes"]["values"] == [s.item_count for s in segments] and sum(data["sizes"]["values"]) == 9
    assert data["sizes"]["labels"] == [f"{s.key} {s.name}"[:60] for s in segments]
    assert [len(d["points"]) for d in data["map"]] == [s.item_count for s in segments]  # every item, by segment
    assert "9 of 9 items shown" in page
    confidences = {
        s.key: sorted(s.items.values_list("confidence", flat=True)) for s in segments
    }  # the min-max bars are the stored confidences
    assert data["confidence"]["range"] == [[round(c[0], 3), round(c[-1], 3)] for c in confidences.values()]
    assert data["stages"]["labels"] == ["cluster", "name", "refine"]  # pipeline order, whatever the JSON's order
    assert data["stages"]["seconds"] == [
        round(finished.totals[stage]["seconds"], 3) for stage in data["stages"]["labels"]
    ]
    assert data["stages"]["tokens_in"] == [0, 0, 0]  # keyword naming: no LLM call
    assert "This run used no LLM tokens (its segments were named by their keywords)." in page
    assert 'id="compare-form"' in page and '<option value="category">' in page and 'id="confusion"' not in page

    listing = client.get("/admin/semantic_catalog/segmentationrun/").content.decode()
    assert f'<a href="{url(finished)}">Report</a>' in listing
    change = client.get(f"/admin/semantic_catalog/segmentationrun/{finished.pk}/change/").content.decode()
    assert f'href="{url(finished)}" id="report-link">Report</a>' in change
    results = client.get(f"/api/semantic/segmentation/{finished.run_id}/results").json()
    assert results["report_url"] == url(finished)


def test_only_staff_with_view_permission_see_it_and_an_unknown_run_is_404(client, django_user_model, finished):
    shopper = django_user_model.objects.create_user("shopper", password="pw")
    client.force_login(shopper)
    response = client.get(url(finished))
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    clerk = django_user_model.objects.create_user("clerk", password="pw", is_staff=True)
    client.force_login(clerk)
    assert client.get(url(finished)).status_code == 403
    clerk.user_permissions.add(Permission.objects.get(codename="view_segmentationrun"))
    clerk = django_user_model.objects.get(pk=clerk.pk)  # no cached permissions
    client.force_login(clerk)
    assert client.get(url(finished)).status_code == 200
    assert client.get(url(finished.pk + 1000)).status_code == 404


def test_a_run_not_completed_shows_its_status_and_no_charts(client, boss, products):
    from semantic_catalog.engine.segmentation.types import Item

    run = create_run(registry.get("products"), [Item(pk, f"item {pk}") for pk in products])
    client.force_login(boss)
    page = client.get(url(run)).content.decode()
    notice = page.split('id="not-completed">')[1].split("</p>")[0]
    assert "This run is running." in notice and "The report comes when the run has completed." in notice
    assert "<canvas" not in page and "report-data" not in page and "chart.umd.min.js" not in page
    SegmentationRun.objects.filter(pk=run.pk).update(status="failed", error="The LLM never answered.")
    page = client.get(url(run)).content.decode()
    assert "This run is failed: The LLM never answered." in page.split('id="not-completed">')[1]


def test_a_full_run_reports_its_tokens_and_why_there_is_no_map(client, boss, products, llm):
    """Mode full over the scripted LLM server, on an index never built: tokens per stage, no map."""
    call_command("semantic_segment", "--index", "products", "--all", "--no-progress", stdout=StringIO())
    run = SegmentationRun.objects.get()
    assert run.status == "completed", run.error
    client.force_login(boss)
    page = client.get(url(run)).content.decode()
    assert "No map: the vectors of this run&#x27;s items are not in index &#x27;products&#x27;" in page
    data = chart_data(page)
    assert data["map"] is None and data["stages"]["labels"] == ["extract", "consolidate", "refine"]
    assert data["stages"]["tokens_in"] == [run.totals[stage]["tokens_in"] for stage in data["stages"]["labels"]]
    assert all(data["stages"]["tokens_in"]) and 'id="no-tokens"' not in page
    header = page.split('<table id="report-header">')[1].split("</table>")[0]
    assert "<td>full</td>" in header and "<td>scripted</td>" in header


def test_a_bad_compare_value_is_a_message_on_the_page(client, boss, finished):
    client.force_login(boss)
    for bad in ("name", "nope", "<script>", "x" * 500):
        response = client.get(url(finished), {"compare": bad})
        assert response.status_code == 200
        error = html.unescape(response.content.decode().split('id="compare-error">')[1].split("</p>")[0])
        assert "not a declared filter field of index 'products' that is a column of its model" in error
        assert "Pick one of: store, brand, price, category." in error
        assert "<script>" not in response.content.decode().split('id="compare-error">')[1].split("</p>")[0]
    assert 'id="confusion"' not in response.content.decode()


def test_compare_category_counts_are_the_real_counts(client, boss, finished, monkeypatch):
    from shop.models import Product

    categories = {str(p.pk): p.category.path for p in Product.objects.select_related("category")}
    real = Counter(
        (categories[item_id], key) for item_id, key in finished.refined.values_list("item_id", "segment__key")
    )
    client.force_login(boss)
    page = client.get(url(finished), {"compare": "category"}).content.decode()
    cells = confusion_cells(page)
    assert {cell: count for cell, count in cells.items() if count} == dict(real)
    assert sum(cells.values()) == 9 and len({label for label, _ in cells}) == 3
    assert '<option value="category" selected>' in page
    metrics = page.split('id="agreement">')[1].split("</p>")[0]
    keys = [key for _, key in sorted(real)]
    table = np.array([[real[(label, key)] for key in sorted(set(keys))] for label in sorted(set(categories.values()))])
    expected = report.agreement(table)
    assert f"NMI {expected['nmi']}, ARI {expected['ari']}" in metrics
    assert f"harmonic purity {expected['harmonic_purity']}" in metrics

    monkeypatch.setattr(report, "TOP_VALUES", 2)  # the rest summed as "other"
    cells = confusion_cells(client.get(url(finished), {"compare": "category"}).content.decode())
    labels = sorted({label for label, _ in cells})
    assert len(labels) == 3 and labels[-1] == "other (1 values)"
    assert sum(count for (label, _), count in cells.items() if label == "other (1 values)") == 3


def test_a_run_whose_vectors_are_gone_shows_a_notice_instead_of_the_map(client, boss, finished):
    from shop.models import Product

    ids = list(finished.refined.values_list("item_id", flat=True))
    get_store().delete(active_collection(registry.get("products")).table, ids[:2])
    Product.objects.filter(pk=ids[0]).delete()  # its row is gone too
    client.force_login(boss)
    response = client.get(url(finished), {"compare": "category"})
    assert response.status_code == 200
    page = response.content.decode()
    notice = page.split('id="map-notice">')[1].split("</p>")[0]
    assert "No map: the vectors of this run&#x27;s items are not in index &#x27;products&#x27; (it is" in notice
    assert '<canvas id="chart-map"' not in page and chart_data(page)["map"] is None
    assert '<canvas id="chart-sizes"' in page  # the other charts stay
    assert confusion_cells(page)[("(row deleted)", finished.refined.get(item_id=ids[0]).segment.key)] == 1


def test_pca_2d_projects_on_the_two_main_axes():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(200, 2)) * [5.0, 1.0]  # most variance on one axis, some on a second
    rotation, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    vectors = np.hstack([base, rng.normal(scale=0.01, size=(200, 6))]) @ rotation + 3.0
    projected = report.pca_2d(vectors)
    centred = vectors - vectors.mean(axis=0)
    _, eigenvectors = np.linalg.eigh(np.cov(centred.T))
    top = eigenvectors[:, ::-1][:, :2]  # the covariance's two largest eigenvectors, any sign
    assert np.allclose(np.abs(projected), np.abs(centred @ top), atol=1e-6)
    assert projected[:, 0].var() > 20 * projected[:, 1].var()
    assert np.array_equal(report.pca_2d(vectors), projected)  # same vectors, same picture
    assert report.pca_2d(np.ones((1, 4))).tolist() == [[0.0, 0.0]]
    with pytest.raises(ValueError, match="2-D array"):
        report.pca_2d(np.ones(4))


def test_the_map_samples_at_most_3000_items_the_same_way_each_time():
    chosen = report.sample_positions(10_000)
    assert len(chosen) == len(set(chosen.tolist())) == 3000 and chosen.max() < 10_000
    assert np.array_equal(chosen, report.sample_positions(10_000)) and np.all(np.diff(chosen) > 0)
    assert report.sample_positions(12).tolist() == list(range(12))


def test_agreement_numbers():
    assert report.agreement(np.array([[3, 0], [0, 2]])) == {
        "nmi": 1.0, "ari": 1.0, "purity": 1.0, "inverse_purity": 1.0, "harmonic_purity": 1.0,
    }  # fmt: skip
    independent = report.agreement(np.array([[1, 1], [1, 1]]))
    assert independent["nmi"] == 0.0 and independent["ari"] == -0.5 and independent["harmonic_purity"] == 0.5
    assert report.agreement(np.zeros((2, 2))) == {}
    from semantic_catalog.engine.segmentation.quality import contingency

    assert contingency(["a", "a", "b"], ["S_1", "S_2", "S_2"]).tolist() == [[1, 1], [0, 1]]
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(1)
    truth, found = rng.integers(0, 5, 400), (rng.integers(0, 7, 400) + rng.integers(0, 2, 400) * 3) % 7
    table = np.zeros((5, 7), dtype=int)
    np.add.at(table, (truth, found), 1)
    ours = report.agreement(table)
    assert ours["nmi"] == pytest.approx(metrics.normalized_mutual_info_score(truth, found), abs=1e-4)
    assert ours["ari"] == pytest.approx(metrics.adjusted_rand_score(truth, found), abs=1e-4)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

DRAWN = """(ids) => ids.map((id) => {
  const canvas = document.getElementById(id);
  const chart = Chart.getChart(canvas);
  if (!chart) return {id, chart: false};
  const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) painted++;
  const ratio = chart.currentDevicePixelRatio;
  const colours = chart.getDatasetMeta(chart.data.datasets.length - 1).data.map((element) => {
    const {x, y} = element.getCenterPoint();
    const [r, g, b, a] = canvas.getContext("2d").getImageData(Math.round(x * ratio), Math.round(y * ratio), 1, 1).data;
    return a ? "#" + [r, g, b].map((v) => v.toString(16).padStart(2, "0")).join("") : null;
  });
  return {id, chart: true, points: chart.data.datasets.map((d) => d.data.length), painted, colours};
})"""


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_browser_draws_every_chart_of_a_finished_run(live_server, boss, finished):
    """A real headless Chromium logs in to the admin and opens the report: each canvas holds a Chart.js
    chart with the run's data points, painted pixels, the segments' colours at the bars' centres, and
    the page logs no error."""
    from playwright.sync_api import sync_playwright

    sizes = [s.item_count for s in sorted(finished.segments.all(), key=lambda s: s.key)]
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        page = browser.new_page()
        page.route("**/favicon.ico", lambda route: route.fulfill(status=204))  # the browser's own, not the page's
        errors: list[str] = []
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        failed: list[str] = []
        page.on("response", lambda response: failed.append(response.url) if response.status >= 400 else None)
        page.goto(f"{live_server.url}/admin/login/?next={url(finished)}")
        page.fill("#id_username", "boss")
        page.fill("#id_password", "pw")
        page.click("input[type=submit]")
        page.wait_for_url(f"**{url(finished)}")
        page.wait_for_function("(ids) => ids.every((id) => Chart.getChart(document.getElementById(id)))", arg=CHARTS)
        drawn = {chart["id"]: chart for chart in page.evaluate(DRAWN, CHARTS)}
        browser.close()
    assert errors == [] and failed == []
    for chart in drawn.values():
        assert chart["chart"] and chart["painted"] > 1000, chart
    assert drawn["chart-sizes"]["points"] == [3]
    assert drawn["chart-sizes"]["colours"] == report.PALETTE[:3]  # each bar in its segment's colour
    assert drawn["chart-map"]["points"] == sizes
    assert drawn["chart-confidence"]["points"] == [3, 3]
    assert drawn["chart-seconds"]["points"] == [3] and drawn["chart-tokens"]["points"] == [3, 3]
