"""The demo shop: its fixture, its pages through the test client, and a real browser session."""

from __future__ import annotations

import shutil
from io import StringIO

import pytest
from django.core.management import call_command

from semantic_catalog.search import search

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def small_shop(make_product):
    return {
        "drill": make_product("Makita cordless drill driver 18V", description="Battery powered drill", brand="Makita"),
        "driver": make_product("DeWalt impact driver", description="Battery impact driver", brand="DeWalt"),
        "pan": make_product("Lodge cast iron skillet", category="pans", description="Pre-seasoned pan"),
        "hose": make_product("Gardena garden hose 30 m", category="hoses", store="b", price="35.00"),
    }


def test_demo_fixture_is_a_real_catalog(settings):
    from shop.models import Category, Product, Store

    call_command("loaddata", "demo_catalog", verbosity=0)
    assert Store.objects.count() == 2
    assert Product.objects.count() >= 300
    for store in Store.objects.all():
        depths = {c.level for c in Category.objects.filter(store=store).select_related("parent__parent__parent")}
        assert max(depths) == 4, store
        assert Product.objects.filter(store=store).count() >= 150
    names_a = set(Category.objects.filter(store__slug="brightfield", parent=None).values_list("name", flat=True))
    names_b = set(Category.objects.filter(store__slug="tooler", parent=None).values_list("name", flat=True))
    assert names_a != names_b  # each store names its tree its own way
    out = StringIO()
    call_command("semantic_index", "--no-progress", stdout=out)
    # loaddata's saves were indexed through the outbox already; the command says so, not "0 encoded"
    indexed = Product.objects.filter(active=True).count()
    assert f"nothing to do: all {indexed} rows were already indexed" in out.getvalue()
    assert f"{indexed} documents in the index" in out.getvalue()

    results = search("products", "battery powered screwdriver", mode="semantic", limit=5)
    assert any("drill" in r.object.name.lower() or "driver" in r.object.name.lower() for r in results)
    assert all(r.object.active for r in results)


def test_search_page_modes_and_filters(client, small_shop, shop):
    page = client.get("/", {"q": "battery drill", "mode": "semantic"}).content.decode()
    assert "Makita cordless drill driver 18V" in page and 'value="semantic" checked' in page
    page = client.get("/", {"q": "hose", "mode": "keyword", "store": shop["b"].pk}).content.decode()
    assert "Gardena garden hose" in page and "Makita" not in page.split('id="results"')[1]
    page = client.get("/", {"q": "drill", "min_price": "abc"}).content.decode()
    assert 'class="error"' in page and "type float" in page
    assert client.get("/").status_code == 200


def test_an_over_long_query_shows_the_error_without_echoing_the_query(client, small_shop):
    query = "drill " * 100  # 600 characters
    page = client.get("/", {"q": query}).content.decode()
    error = page.split('class="error">')[1].split("</p>")[0]
    assert error == "The query is 600 characters long (599 with runs of whitespace collapsed); at most 500 are allowed."
    assert "No results" not in page and "results for" not in page
    assert query.strip() not in page  # the search box keeps what can be searched: the first 500 characters
    assert f'value="{query[:500]}" maxlength="500"' in page

    page = client.get("/", {"q": "cordless drill " * 10}).content.decode()  # allowed: the line above the
    meta = page.split('class="meta">')[1].split("</p>")[0]  # results shows a short prefix of it
    assert "results for “cordless drill cordless" in meta and "…” (hybrid)" in meta and len(meta) < 120


def test_product_page_shows_similar_items(client, small_shop):
    page = client.get(f"/product/{small_shop['drill'].pk}/").content.decode()
    similar = page.split('id="similar"')[1]
    assert "DeWalt impact driver" in similar and "Makita cordless drill driver 18V" not in similar
    small_shop["pan"].active = False
    small_shop["pan"].save()
    assert client.get(f"/product/{small_shop['pan'].pk}/").status_code == 404


def test_scores_and_retriever_badges_sit_behind_a_why_this_result_toggle(client, small_shop):
    """Scores and retriever ranks are for developers: each card shows them only inside a closed
    <details> toggle, on the search page and among a product's similar items."""
    pages = [
        client.get("/", {"q": "battery drill", "mode": "hybrid"}).content.decode().split('id="results"')[1],
        client.get(f"/product/{small_shop['drill'].pk}/").content.decode().split('id="similar"')[1],
    ]
    for page in pages:
        cards = page.split('<div class="card">')[1:]
        assert cards
        for card in cards:
            shown, why = card.split('<details class="why">')
            assert "score" not in shown and "badge" not in shown and "#1" not in shown
            assert why.startswith("<summary>Why this result</summary>") and "</details>" in why
            assert "score" in why and 'class="badge"' in why
    assert '<details class="why" open' not in "".join(pages)


def cards(page: str) -> list[str]:
    """The product names of the result cards of a search page, in order."""
    results = page.split('id="results"')[1].split('id="pager"')[0]
    return [card.split('">', 1)[1].split("</a>")[0] for card in results.split('<div class="card">\n  <a href="')[1:]]


def test_search_page_pages_sorts_and_refines_by_facet_links(client, small_shop, make_product, monkeypatch):
    """Next / previous links, a sort selector, and facet counts (stores, top-level categories by name,
    price bands) whose links apply that filter."""
    import html

    from shop import views

    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    make_product("Bosch hammer drill", description="Corded drill", brand="Bosch", price="120.00")
    make_product("Drill press stand", category="tools", description="Bench drill stand", price="60.00")
    search = {"q": "drill driver", "mode": "keyword"}
    first = client.get("/", search).content.decode()
    pager = first.split('id="pager"')[1].split("</nav>")[0]
    assert 'rel="next"' in pager and 'rel="prev"' not in pager and "page 1" in pager
    names = cards(first)
    page = 1
    while 'rel="next"' in pager:
        link = html.unescape(pager.split('rel="prev"')[-1].split('href="')[-1].split('"')[0])
        assert f"page={page + 1}" in link and "q=drill+driver" in link and "mode=keyword" in link
        page += 1
        following = client.get("/" + link).content.decode()
        pager = following.split('id="pager"')[1].split("</nav>")[0]
        assert 'rel="prev"' in pager and f"page {page}" in pager
        names += cards(following)
    assert len(names) == len(set(names)) == 4  # the drills and drivers, each once; not the pan or the hose

    assert '<select name="sort">' in first and 'value="relevance" selected' in first
    assert "Price: low to high" in first and "Price: high to low" in first
    by_price = client.get("/", {**search, "sort": "-price"}).content.decode()
    assert 'value="-price" selected' in by_price
    assert cards(by_price) == ["Bosch hammer drill", "Drill press stand"]
    assert cards(client.get("/", {**search, "sort": "price", "page": 2}).content.decode())[-1] == "Bosch hammer drill"

    facets = first.split('id="facets"')[1].split("</nav>")[0]
    assert "Brightfield Home (4)" in facets and "Tooler" not in facets
    assert "Tools (4)</a>" in facets and "Drills" not in facets  # top-level categories only, by name
    assert "under $25 (2)" in facets and "$50–100 (1)" in facets and "$100–250 (1)" in facets
    tools = html.unescape(facets.split("Tools (4)")[0].rsplit('href="', 1)[1].split('"')[0])
    assert f"category={small_shop['drill'].category.parent_id}" in tools and "page=" not in tools
    refined = client.get("/" + tools).content.decode()
    assert sorted(cards(refined)) == sorted(names[:2])  # first page of the same four, filtered to Tools
    band = html.unescape(facets.split("$50–100 (1)")[0].rsplit('href="', 1)[1].split('"')[0])
    assert "min_price=50" in band and "max_price=99.99" in band
    assert cards(client.get("/" + band).content.decode()) == ["Drill press stand"]

    page = client.get("/", {**search, "page": "abc"}).content.decode()
    assert 'class="error">page must be a whole number from 1 to 500, got &#x27;abc&#x27;.' in page
    assert "page must be a whole number from 1 to 500" in client.get("/", {**search, "page": "9" * 30}).content.decode()


def test_an_unknown_product_is_the_shops_own_404_page(client, small_shop, settings):
    settings.DEBUG = False
    for path in ("/product/999999/", f"/product/{small_shop['drill'].pk + 1000}/", "/no/such/page/"):
        response = client.get(path)
        page = response.content.decode()
        assert response.status_code == 404
        header = page.split("<header>")[1].split("</header>")[0]  # the shop's layout: its header and nav
        assert "Semantic Catalog · demo shop</a>" in header and 'href="/segments/"' in header
        assert 'id="not-found"' in page
        assert f"<code>{path}</code>" in page and 'href="/">Search the shop</a>' in page


def test_segments_page_shows_the_latest_run_or_how_to_make_one(client, small_shop):
    page = client.get("/segments/").content.decode()
    assert 'id="no-run"' in page and "semantic_segment --index products --all --mode embedding_first" in page
    call_command(
        "semantic_segment", "--index", "products", "--all", "--mode", "embedding_first", "--naming", "keywords",
        "--segments", "2", "--no-progress", stdout=StringIO(), stderr=StringIO(),
    )  # fmt: skip
    page = client.get("/segments/").content.decode()
    assert 'id="unnamed"' in page and "Not named by an LLM" in page and "4 products, 2 segments" in page
    assert page.count('class="segment"') == 2
    for product in small_shop.values():  # every product is shown under its segment (at most 6 a segment)
        assert f'href="/product/{product.pk}/"' in page
    assert 'href="/segments/"' in client.get("/").content.decode()  # the header links to it


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_browser_search_toggle_and_similar_items(live_server, small_shop):
    """A real headless Chromium: search, switch mode, open a product, see its similar items."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        page = browser.new_page()
        page.goto(live_server.url + "/")
        page.fill("input[name=q]", "battery powered drill")
        page.check("input[name=mode][value=semantic]")
        page.click("button[type=submit]")
        page.wait_for_selector("#results .card")
        assert "mode=semantic" in page.url
        first = page.locator("#results .card a").first
        assert "drill" in first.inner_text().lower()
        page.check("input[name=mode][value=keyword]")
        page.fill("input[name=q]", "skillet")
        page.click("button[type=submit]")
        page.wait_for_selector("#results .card")
        assert page.locator("#results .card").count() == 1
        page.click("#results .card a")
        page.wait_for_selector("#similar .card")
        assert page.locator("h1").inner_text() == "Lodge cast iron skillet"
        assert page.locator("#similar .card").count() == 3
        browser.close()


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_browser_search_works_on_a_390_px_phone(live_server, small_shop, shop):
    """On a phone-sized screen (390 px, mobile viewport) nothing spills sideways: the search box, the
    selects and the Search button lie inside the form and the screen, and searching works."""
    from playwright.sync_api import sync_playwright

    from shop.models import Category

    # a long category path, the widest option of the category list
    deep = shop["drills"]
    for name in ("Cordless drills and drivers with batteries", "Brushless 18 V professional models"):
        deep = Category.objects.create(store=shop["a"], parent=deep, name=name)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
        page.goto(live_server.url + "/")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
        form = page.locator("form.search").bounding_box()
        assert form["x"] >= 0 and form["x"] + form["width"] <= 390
        for selector in ("input[name=q]", "select[name=store]", "select[name=category]", "button[type=submit]"):
            box = page.locator(selector).bounding_box()
            assert box["x"] >= form["x"] and box["x"] + box["width"] <= form["x"] + form["width"], selector
        button = page.locator("button[type=submit]")
        assert button.is_visible() and button.is_enabled()
        box = button.bounding_box()
        assert box["y"] >= 0 and box["y"] + box["height"] <= 844  # on screen without scrolling
        page.fill("input[name=q]", "battery powered drill")
        button.tap()
        page.wait_for_selector("#results .card")
        assert "q=battery+powered+drill" in page.url
        assert "drill" in page.locator("#results .card a").first.inner_text().lower()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        why = page.locator("#results .card details.why").first
        assert not why.locator(".meta").is_visible()  # the score waits behind its toggle
        why.locator("summary").tap()
        assert why.locator(".meta").is_visible()
        browser.close()
