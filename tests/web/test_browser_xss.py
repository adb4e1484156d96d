"""Markup in the data never runs in the dashboard: a real `keystep serve` and Chromium, one of each.

Events sent through the collector (`/api/collect` with the project's write key) carry
`<img src=x onerror=alert(1)>` and `"><script>alert(2)</script>` as their event name, referrer, UTM tags
and a property; the definitions have a goal matching each of those event names, labelled with it, and the
editor adds one labelled `<svg onload=alert(3)>`. Every page that shows them — tables, charts, the
editor's form, segments by the property, a share link — must show the text literally and run nothing: no
dialog, no Content-Security-Policy violation (which an injected inline handler would cause), no request
an injected `<img src=x>` would make, no element or script that is not the page's own.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from urllib.parse import quote

import pytest
from browser import (
    XSS_IMG,
    XSS_SCRIPT,
    XSS_SVG,
    DemoStore,
    FirstRun,
    Watch,
    browser,
    build_store,
    cell_texts,
    charts_drawn,
    collect,
    first,
    foreign_elements,
    goal_yaml,
    new_context,
    screenshot,
    serve,
    wait_converted,
    watch,
)
from playwright.sync_api import Browser, BrowserContext

from collector.server import Server
from keystep.web.pages import find_page

PAYLOADS = {"xss_img": XSS_IMG, "xss_script": XSS_SCRIPT}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> DemoStore:
    goals = "".join(goal_yaml(name, payload, payload) for name, payload in PAYLOADS.items())
    return build_store(tmp_path_factory.mktemp("browser-xss"), visitors=1000, extra_goals=goals)


def hostile_events(store: DemoStore) -> list[dict[str, object]]:
    """Per payload, a dozen visitors whose landing page view carries it in the referrer, the UTM tags and a
    property, who then view a product, add it to the cart and do the event named by the payload."""
    start = datetime.combine(store.last_day - timedelta(days=1), datetime.min.time()).replace(hour=12)
    events: list[dict[str, object]] = []
    for p, payload in enumerate(PAYLOADS.values()):
        for v in range(12):
            visitor, ts = f"hostile-{p}-{v}", start + timedelta(minutes=30 * v + p)
            tags = f"utm_source={quote(payload)}&utm_medium=cpc&utm_campaign={quote(payload)}"
            common = {"visitor_id": visitor, "session_id": f"{visitor}-s", "properties": {"note": payload}}
            steps = [("page_view", f"https://shop.example/?{tags}"), ("view_item", "https://shop.example/products/x"),
                     ("add_to_cart", "https://shop.example/products/x"), (payload, "https://shop.example/cart")]
            for i, (name, url) in enumerate(steps):
                events.append({**common, "event": name, "event_id": f"{visitor}-{i}", "url": url,
                               "ts": (ts + timedelta(seconds=20 * i)).isoformat(),
                               **({"referrer": payload} if i == 0 else {})})
    return events


@pytest.fixture(scope="module")
def server(store: DemoStore) -> Iterator[Server]:
    with serve(store) as running:
        collect(running, store.write_key, hostile_events(store))
        for goal in PAYLOADS:
            assert wait_converted(running, store.read_key, goal, store.last_day - timedelta(days=1)) == 12
        yield running


@pytest.fixture(scope="module")
def admin(first: FirstRun) -> BrowserContext:
    assert not first.problems, first.problems
    return first.context


def assert_inert(seen: Watch) -> None:
    """Nothing from the data ran or was built into the page."""
    seen.assert_clean()
    assert foreign_elements(seen.page) == [], "markup from the data became elements"


# (name, view, its status, texts shown literally in its table cells, texts shown literally in its text)
VIEWS = [
    ("overview", "/", 200, [XSS_IMG, XSS_SCRIPT], []),  # goal labels in the table and the charts
    ("editor", "/conversions?edit=xss_script", 200, [XSS_IMG, XSS_SCRIPT], []),  # the editor's table and form
    ("property-segments", "/conversions?breakdown=prop:note", 200, [XSS_IMG, XSS_SCRIPT], []),
    ("referrer-segments", "/conversions?breakdown=referrer", 200, [], []),
    ("utm-segments", "/funnels?breakdown=utm_campaign", 200, [XSS_IMG, XSS_SCRIPT], []),
    ("steps-in-url", f"/funnels?steps={quote(XSS_IMG)},{quote(XSS_SCRIPT)}", 200, [], [XSS_IMG, XSS_SCRIPT]),
    ("params-in-url", f"/micro-macro?macro=xss_img&note={quote(XSS_SCRIPT)}", 200, [], []),
    ("error-repeats-url", f"/conversions?breakdown={quote(XSS_IMG)}", 400, [], [XSS_IMG]),
]


@pytest.mark.parametrize(("view", "status", "cells", "text"), [v[1:] for v in VIEWS], ids=[v[0] for v in VIEWS])
def test_markup_in_events_definitions_and_urls_is_shown_not_run(admin: BrowserContext, view: str, status: int,
                                                                 cells: list[str], text: list[str]) -> None:
    if find_page(view.split("?")[0]) is None:
        pytest.skip(f"the dashboard has no {view.split('?')[0]} page yet")
    seen = watch(admin)
    page = seen.page
    try:
        response = page.goto(view)
        assert response is not None and response.status == status, response and response.text()
        if status != 200:  # the browser reports the error status of the page itself as a failed load
            seen.console_errors[:] = [m for m in seen.console_errors if f"status of {status}" not in m]
        charts_drawn(page)
        shown_cells, shown_text = cell_texts(page), page.locator("main").inner_text()
        for literal in cells:
            assert literal in shown_cells, f"{literal!r} is not shown literally in a table of {view}"
        for literal in text:
            assert literal in shown_text, f"{literal!r} is not shown literally on {view}"
        if view == "/":  # plotly draws labels as SVG text: the characters, no element
            svg_text = page.locator("#chart-rates svg.main-svg").first.evaluate("(svg) => svg.textContent")
            assert XSS_IMG in svg_text and XSS_SCRIPT in svg_text, svg_text
        assert_inert(seen)
        if view == "/conversions?breakdown=prop:note":
            screenshot(page, "xss-conversions")
    finally:
        page.close()


def test_the_editors_form_holds_markup_as_values(admin: BrowserContext) -> None:
    if find_page("/conversions") is None:
        pytest.skip("the dashboard has no /conversions page yet")
    seen = watch(admin)
    page = seen.page
    try:
        page.goto("/conversions?edit=xss_script")
        assert page.input_value("form#goal-form input[name=label]") == XSS_SCRIPT
        assert page.input_value("form#goal-form input[name=event]") == XSS_SCRIPT
        # a goal labelled with markup, made in the editor, is shown as text too
        page.goto("/conversions")
        form = "form#goal-form"
        page.fill(f"{form} input[name=name]", "xss_svg")
        page.fill(f"{form} input[name=label]", XSS_SVG)
        page.select_option(f"{form} select[name=kind]", "micro")
        page.select_option(f"{form} select[name=group]", "secondary_action")
        page.fill(f"{form} input[name=event]", XSS_IMG)
        with page.expect_navigation():
            page.click(f"{form} button[type=submit]")
        assert "saved=xss_svg" in page.url
        charts_drawn(page)
        assert XSS_SVG in cell_texts(page)
        assert_inert(seen)
    finally:
        page.close()


def test_a_share_link_to_hostile_segments_runs_nothing(admin: BrowserContext, browser: Browser,
                                                       server: Server) -> None:
    if find_page("/conversions") is None:
        pytest.skip("the dashboard has no /conversions page yet")
    page = admin.new_page()
    page.goto("/settings")
    csrf = page.locator("input[name=csrf]").first.input_value()
    page.close()
    response = admin.request.post("/share", form={"csrf": csrf, "path": "/conversions?breakdown=prop:note"},
                                  max_redirects=0)
    assert response.status == 303
    link = server.url + "/s/" + response.headers["location"].split("token=")[1]
    stranger = new_context(browser, server.url)
    try:
        seen = watch(stranger)
        assert seen.page.goto(link) is not None
        charts_drawn(seen.page)
        assert XSS_IMG in cell_texts(seen.page) and XSS_SCRIPT in cell_texts(seen.page)
        assert_inert(seen)
    finally:
        stranger.close()
