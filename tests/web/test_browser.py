"""The dashboard in a real browser: `keystep serve` on a demo store (3,000 simulated visitors), driven by
Debian's Chromium through Playwright. One server and one browser for the module.

First-run setup from localhost, login and logout, every page (no console errors, every chart drawn, a
screenshot in test-artifacts/), the filter form (range and breakdown in the URL and on the page), the
definitions editor, share links (read-only, no session, nothing a POST can change) and CSRF.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from browser import (
    ADMIN,
    PAGES,
    PASSWORD,
    PROJECT,
    DemoStore,
    FirstRun,
    browser,
    build_store,
    cell_texts,
    charts_drawn,
    first,
    log_in,
    new_context,
    page_name,
    readme_screenshot,
    screenshot,
    serve,
    watch,
)
from playwright.sync_api import Browser, BrowserContext, Page, Response

from collector.server import Server
from keystep.web.app import CSP
from keystep.web.pages import find_page


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> DemoStore:
    return build_store(tmp_path_factory.mktemp("browser"))


@pytest.fixture(scope="module")
def server(store: DemoStore) -> Iterator[Server]:
    with serve(store) as running:
        yield running


@pytest.fixture(scope="module")
def admin(first: FirstRun) -> BrowserContext:
    """The administrator's logged-in browser context (made by the first-run page)."""
    return first.context


def require_page(path: str) -> None:
    if find_page(urlsplit(path).path) is None:
        pytest.skip(f"the dashboard has no {path} page yet")


def visit(page: Page, path: str) -> Response:
    response = page.goto(path)
    assert response is not None
    return response


def submit(page: Page, form: str) -> None:
    with page.expect_navigation():
        page.click(f"{form} button[type=submit]")


def test_first_run_setup_creates_the_admin_from_localhost(first: FirstRun, browser: Browser, server: Server) -> None:
    assert urlsplit(first.landed_on).path == "/setup", "a store without users sends its first visitor to /setup"
    assert first.setup_status == 200
    assert first.setup_csp == CSP and "script-src 'self';" in first.setup_csp
    assert urlsplit(first.after_setup).path == "/" and first.logged_in_as == ADMIN
    assert not first.problems, first.problems
    # once there is a user the first-run page is closed, for a browser without a session too
    context = new_context(browser, server.url)
    try:
        page = context.new_page()
        visit(page, "/setup")
        assert urlsplit(page.url).path == "/login"
        refused = context.request.post(server.url + "/setup", form={"username": "intruder", "password": "x" * 12})
        assert refused.status == 403
    finally:
        context.close()


def test_login_and_logout(browser: Browser, server: Server, first: FirstRun) -> None:
    context = new_context(browser, server.url)
    try:
        seen = watch(context)
        page = seen.page
        visit(page, "/settings")
        assert urlsplit(page.url).path == "/login" and parse_qs(urlsplit(page.url).query) == {"next": ["/settings"]}
        log_in(page, ADMIN, "not the password")
        assert page.locator("p.error").inner_text() == "Wrong user name or password."
        # the refused login answers 401, which the browser reports as a failed load: that one is expected
        seen.console_errors[:] = [m for m in seen.console_errors if not ("401" in m and m.endswith("/login)"))]
        log_in(page, ADMIN, PASSWORD)
        assert urlsplit(page.url).path == "/settings", "the login returns to the page asked for"
        assert page.locator("header .who span").inner_text() == ADMIN
        cookie = next(c for c in context.cookies() if c["name"] == "keystep_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
        submit(page, "header .who form")
        assert urlsplit(page.url).path == "/login"
        assert not any(c["name"] == "keystep_session" for c in context.cookies())
        visit(page, "/")
        assert urlsplit(page.url).path == "/login", "after logging out the dashboard asks for a login again"
        seen.assert_clean()
    finally:
        context.close()


@pytest.mark.parametrize("path", list(PAGES))
def test_page_renders_without_errors(admin: BrowserContext, path: str) -> None:
    require_page(path)
    seen = watch(admin)
    page = seen.page
    try:
        response = visit(page, path)
        assert response.status == 200, response.text()
        assert page.locator("h1").count() >= 1
        drawn = charts_drawn(page)
        assert drawn >= PAGES[path], f"{path}: {drawn} charts drawn, expected at least {PAGES[path]}"
        assert drawn == page.locator("div.chart").count()
        section = "/" + path.split("/")[1]
        assert page.locator(f'nav a[href^="{section}?"][aria-current="page"]').count() == 1
        seen.assert_clean()
        shot = screenshot(page, page_name(path))
        if path == "/":
            readme_screenshot(shot)
    finally:
        page.close()


def test_every_page_has_an_icon(admin: BrowserContext) -> None:
    """Without one the browser's own /favicon.ico request fails, a console error on every fresh visit."""
    seen = watch(admin)
    try:
        visit(seen.page, "/settings")
        declared = seen.page.locator("link[rel~=icon]").evaluate_all("(links) => links.map((l) => l.href)")
        for href in declared:
            icon = admin.request.get(href)
            assert icon.status == 200 and icon.headers["content-type"].startswith("image/"), (href, icon.status)
        fetched = admin.request.get("/favicon.ico").status
        assert declared or fetched == 200, (
            "the dashboard has no icon: the browser asks for /favicon.ico, gets 404 and logs a console error "
            f"({seen.missing_icon or 'Failed to load resource: 404'}); add <link rel=\"icon\" ...> to base.html "
            "(a data: URL or a file under /static) or serve /favicon.ico")
    finally:
        seen.page.close()


def test_filter_form_puts_range_and_breakdown_in_the_url(admin: BrowserContext, store: DemoStore) -> None:
    seen = watch(admin)
    page = seen.page
    try:
        visit(page, "/")
        charts_drawn(page)
        default_from = (store.last_day - timedelta(days=27)).isoformat()
        assert page.input_value("input[name=from]") == default_from, "the range defaults to the last 28 days"
        assert page.input_value("input[name=to]") == store.last_day.isoformat()
        before = cell_texts(page)
        start, end = store.first_day + timedelta(days=7), store.first_day + timedelta(days=27)
        page.fill("input[name=from]", start.isoformat())
        page.fill("input[name=to]", end.isoformat())
        page.select_option("select[name=breakdown]", "channel")
        submit(page, "form.filters")
        query = parse_qs(urlsplit(page.url).query)
        assert query["from"] == [start.isoformat()] and query["to"] == [end.isoformat()]
        assert query["breakdown"] == ["channel"] and query["project"] == [PROJECT]
        # the page shows what the URL says
        assert page.input_value("input[name=from]") == start.isoformat()
        assert page.input_value("input[name=to]") == end.isoformat()
        assert page.input_value("select[name=breakdown]") == "channel"
        previous = (start - timedelta(days=21), start - timedelta(days=1))
        assert page.locator("p.meta").inner_text() == f"{start} to {end} · compared with {previous[0]} to {previous[1]}"
        assert cell_texts(page) != before, "another range, other numbers"
        assert charts_drawn(page) >= PAGES["/"]
        # the other pages open on the same range
        for href in page.locator("nav a").evaluate_all("(links) => links.map((a) => a.getAttribute('href'))"):
            link = parse_qs(urlsplit(href).query)
            assert link["from"] == [start.isoformat()] and link["to"] == [end.isoformat()], href
        seen.assert_clean()
        screenshot(page, "overview-filtered")
    finally:
        page.close()


def test_a_breakdown_from_the_form_splits_the_conversions(admin: BrowserContext, store: DemoStore) -> None:
    require_page("/conversions")
    seen = watch(admin)
    page = seen.page
    try:
        visit(page, "/conversions")
        assert page.locator("h2", has_text="Rates by").count() == 0
        page.select_option("form.filters select[name=breakdown]", "device_type")
        page.check("form.filters input[name=compare]")
        submit(page, "form.filters")
        query = parse_qs(urlsplit(page.url).query)
        assert query["breakdown"] == ["device_type"] and query["compare"] == ["off"]
        assert page.input_value("form.filters select[name=breakdown]") == "device_type"
        assert page.is_checked("form.filters input[name=compare]")
        assert page.locator("h2", has_text="Rates by device_type").count() == 1
        assert {"desktop", "mobile"} <= set(cell_texts(page)), "a row per device"
        assert "change against" not in page.locator("main p.meta").first.inner_text(), "no comparison asked for"
        charts_drawn(page)
        seen.assert_clean()
        screenshot(page, "conversions-by-device")
    finally:
        page.close()


def rows_by_label(page: Page) -> dict[str, list[str]]:
    """The conversions table's goal rows by their first cell."""
    rows: list[list[str]] = page.locator("section.table").first.locator("tbody tr:not(.group)").evaluate_all(
        "(rows) => rows.map((r) => [...r.cells].map((c) => c.textContent.trim()))")
    return {r[0]: r for r in rows}


def test_the_editor_creates_a_goal_the_conversions_table_shows(admin: BrowserContext, store: DemoStore) -> None:
    require_page("/conversions")
    seen = watch(admin)
    page = seen.page
    try:
        visit(page, "/conversions")
        label = "Product viewed on mobile"
        assert label not in rows_by_label(page)
        form = "form#goal-form"
        page.fill(f"{form} input[name=name]", "mobile_product_view")
        page.fill(f"{form} input[name=label]", label)
        page.select_option(f"{form} select[name=kind]", "micro")
        page.select_option(f"{form} select[name=group]", "process_milestone")
        page.fill(f"{form} input[name=event]", "view_item")
        page.fill(f"{form} textarea[name=where]", "device_type = mobile")
        submit(page, form)
        assert urlsplit(page.url).path == "/conversions"
        assert parse_qs(urlsplit(page.url).query)["saved"] == ["mobile_product_view"]
        assert page.locator("div.notice").inner_text() == "Saved “mobile_product_view” in the definitions file."
        rows = rows_by_label(page)
        assert label in rows, f"the new goal is a row of the conversions table: {list(rows)}"
        mobile, every = int(rows[label][3].replace(",", "")), int(rows["Product viewed"][3].replace(",", ""))
        assert 0 < mobile < every, "mobile product views are some, not all, of the product views"
        charts_drawn(page)
        text = store.config.read_text(encoding="utf-8")
        assert "mobile_product_view:" in text and text.startswith("# keystep definitions for an online shop.")
        seen.assert_clean()
        screenshot(page, "conversions-after-edit")
    finally:
        page.close()


def test_the_editor_refuses_a_goal_that_exists_and_writes_nothing(admin: BrowserContext, store: DemoStore) -> None:
    require_page("/conversions")
    seen = watch(admin)
    page = seen.page
    try:
        visit(page, "/conversions")
        before = store.config.read_text(encoding="utf-8")
        page.fill("form#goal-form input[name=name]", "purchase")
        page.fill("form#goal-form input[name=event]", "page_view")
        with page.expect_navigation():
            page.click("form#goal-form button[type=submit]")
        assert page.locator("form#goal-form .error-box").count() == 1
        assert "purchase" in page.locator("form#goal-form .error-box").inner_text()
        assert page.input_value("form#goal-form input[name=event]") == "page_view", "the form keeps what was typed"
        assert store.config.read_text(encoding="utf-8") == before
        seen.console_errors[:] = [m for m in seen.console_errors if "400" not in m]  # the refused post itself
        seen.assert_clean()
    finally:
        page.close()


def share_by_button(admin: BrowserContext, target: str) -> str:
    """The share link the admin makes for the view at `target`, with the page's own share button."""
    page = admin.new_page()
    try:
        visit(page, target)
        submit(page, "footer form[action='/share']")
        assert urlsplit(page.url).path == "/shared"
        return page.locator("#share-link").inner_text().strip()
    finally:
        page.close()


def test_share_link_opens_the_view_read_only(admin: BrowserContext, browser: Browser, server: Server,
                                             store: DemoStore) -> None:
    start, end = store.first_day + timedelta(days=14), store.last_day
    link = share_by_button(admin, f"/?project={PROJECT}&from={start}&to={end}&breakdown=channel")
    assert link.startswith(server.url + "/s/")
    stranger = new_context(browser, server.url)  # no cookies: whoever got the link
    try:
        seen = watch(stranger)
        page = seen.page
        response = visit(page, link)
        assert response.status == 200 and page.url == link, "the token stays in the address"
        assert page.locator("header .badge").inner_text() == "shared view · read-only"
        assert page.locator("h1").inner_text() == "Overview"
        assert page.locator("p.meta").inner_text().startswith(f"{start} to {end}")
        assert charts_drawn(page) >= PAGES["/"]
        methods = page.locator("form").evaluate_all("(forms) => forms.map((f) => f.method)")
        assert all(m == "get" for m in methods), f"a shared view has no form that changes anything: {methods}"
        assert page.locator("input[name=csrf]").count() == 0
        assert page.locator("text=Log out").count() == 0 and page.locator("text=Share this view").count() == 0
        # it is the one view the link names: no navigation, filter or link that would lead to a login;
        # its CSV exports go through the link itself
        local = page.locator("a[href]").evaluate_all(
            "(links) => links.map((a) => a.getAttribute('href')).filter((h) => h.startsWith('/'))")
        own = urlsplit(link).path
        assert local and all(urlsplit(h).path == own for h in local), f"links a shared viewer cannot open: {local}"
        assert page.locator("form.filters").count() == 0
        csv = stranger.request.get(server.url + local[0])
        assert csv.ok and csv.headers["content-type"].startswith("text/csv"), csv.status
        assert csv.text().splitlines()[0].startswith("Goal,Eligible sessions,Converted"), csv.text()[:200]
        seen.assert_clean()
        screenshot(page, "shared-overview")
        # no session: every action is refused, with or without a made-up CSRF token
        actions = [("/share", {"path": "/"}), ("/settings/projects", {"name": "intruders"}),
                   ("/settings/keys", {"project": PROJECT, "kind": "read"}),
                   ("/settings/keys/revoke", {"key_id": "key_000000000000"}),
                   ("/conversions/goals", {"name": "intruder", "kind": "micro", "group": "process_milestone",
                                           "event": "page_view"}),
                   ("/conversions/goals/delete", {"name": "purchase"}),
                   ("/conversions/funnels", {"name": "intruder", "steps": "page_view, purchase"}),
                   ("/conversions/funnels/delete", {"name": "checkout"}), ("/logout", {})]
        for action, form in actions:
            for csrf in ({}, {"csrf": "made-up"}):
                refused = stranger.request.post(server.url + action, form={**form, **csrf})
                assert refused.status == 403, (action, csrf, refused.status)
        assert stranger.request.post(link, form={"path": "/"}).status == 405
        assert stranger.cookies() == []
        assert "intruder" not in store.config.read_text(encoding="utf-8")
    finally:
        stranger.close()


def share(admin: BrowserContext, csrf: str, target: str) -> str:
    """A share link made the way the share button's form posts it."""
    response = admin.request.post("/share", form={"csrf": csrf, "path": target}, max_redirects=0)
    assert response.status == 303, response.text()
    token = parse_qs(urlsplit(response.headers["location"]).query)["token"][0]
    return f"{urlsplit(response.url).scheme}://{urlsplit(response.url).netloc}/s/{token}"


@pytest.fixture(scope="module")
def csrf(admin: BrowserContext) -> str:
    """The admin session's anti-forgery token, as every form of its pages carries it."""
    page = admin.new_page()
    try:
        visit(page, "/settings")
        return page.locator("input[name=csrf]").first.input_value()
    finally:
        page.close()


def test_a_shared_conversions_view_has_no_editor(admin: BrowserContext, csrf: str, browser: Browser,
                                                 server: Server) -> None:
    require_page("/conversions")
    link = share(admin, csrf, "/conversions?breakdown=device_type")
    stranger = new_context(browser, server.url)
    try:
        seen = watch(stranger)
        page = seen.page
        assert visit(page, link).status == 200
        assert page.locator("h1").inner_text() == "Conversions"
        assert page.locator("#editor, form[method=post]").count() == 0
        assert page.locator("h2", has_text="Rates by device_type").count() == 1
        charts_drawn(page)
        seen.assert_clean()
    finally:
        stranger.close()


def test_share_link_never_opens_settings(admin: BrowserContext, csrf: str, browser: Browser,
                                         server: Server) -> None:
    link = share(admin, csrf, "/settings")
    stranger = new_context(browser, server.url)
    try:
        page = stranger.new_page()
        response = visit(page, link)
        assert response.status == 403 and page.locator("form").count() == 0
    finally:
        stranger.close()


def test_actions_need_the_sessions_csrf_token(admin: BrowserContext, server: Server) -> None:
    """A logged-in browser's cookie alone changes nothing (what a forged cross-site form would send)."""
    for csrf in ({}, {"csrf": "made-up"}):
        refused = admin.request.post(server.url + "/settings/projects", form={"name": "forged", **csrf})
        assert refused.status == 403
    page = admin.new_page()
    try:
        visit(page, "/settings")
        assert "forged" not in page.locator("main").inner_text()
        # with the page's own token the same form works
        page.fill("form[action='/settings/projects'] input[name=name]", "Second shop")
        submit(page, "form[action='/settings/projects']")
        assert "second-shop" in page.locator("main").inner_text()
    finally:
        page.close()


def test_the_demo_range_is_what_these_tests_assume(store: DemoStore) -> None:
    assert store.first_day == date(2026, 9, 7) and store.last_day > store.first_day + timedelta(days=28)
