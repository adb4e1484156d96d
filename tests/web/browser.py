"""The browser tests' machinery: a real `keystep serve` on a demo store, driven by Debian's Chromium.

- `build_store` writes a store with project `demo` (the simulated shop, `keystep.demo.simulate_shop`,
  stored through `DuckDBBackend.insert_events`, plus exposures to one experiment) and a definitions file
  (the shop template, the experiment, and any extra goals);
- `serve` starts `keystep serve` on it (the collector tests' `Server`: a subprocess on loopback);
- `launch` starts Chromium from `/usr/bin/chromium` (the Debian package; Playwright never downloads a
  browser here) with a fresh temporary profile; a missing Chromium fails the tests, saying what to
  install, rather than skipping them;
- `watch` records what a page must never do: console errors, uncaught exceptions, dialogs (`alert`),
  Content-Security-Policy violations and requests to `/x` (where an injected `<img src=x>` would go);
- `log_in`, `first_run`, `charts_drawn` and `screenshot` are the steps the tests share.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pyarrow as pa
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Dialog,
    Page,
    Playwright,
    Request,
    sync_playwright,
)

from collector.server import Server, Site
from keystep.backends.duckdb import DuckDBBackend, event_arrow_schema
from keystep.cli.init import Template, template_text
from keystep.collector import keys
from keystep.conversions.definitions import parse_definitions
from keystep.demo import simulate_shop
from keystep.experiments.exposures import EXPOSURE_EVENTS, variant_for

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"  # gitignored: screenshots of every run
README_SCREENSHOT = ROOT / "docs" / "images" / "dashboard-overview.png"
README_SCREENSHOT_ENV = "KEYSTEP_README_SCREENSHOT"  # set to 1 to refresh the README's screenshot

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ("--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync")
VIEWPORT = {"width": 1280, "height": 900}
TIMEOUT_MS = 30_000

PROJECT = "demo"
ADMIN = "admin"
PASSWORD = "browser-test-password"
EXPERIMENT = "checkout_button"
EXPERIMENT_YAML = f"""
experiments:
  {EXPERIMENT}:
    label: Green checkout button
    variants: [control, green]
    primary: purchase
    secondary: [add_to_cart]
    guardrails: [newsletter_signup]
    window: 7d
"""

# Every page of the dashboard, with the fewest charts it draws on the demo store (every chart it has must
# be drawn). A page the server does not have is skipped by name.
PAGES: dict[str, int] = {
    "/": 3,  # conversion rates, the daily trend, the checkout funnel
    "/conversions": 1,  # rates (and the definitions editor)
    "/funnels": 2,  # the checkout funnel, time to convert
    "/micro-macro": 1,  # the lift of each micro conversion
    "/experiments": 0,  # the list
    f"/experiments/{EXPERIMENT}": 2,  # intervals, the cumulative effect
    "/settings": 0,
}


def page_name(path: str) -> str:
    return path.strip("/").replace("/", "-") or "overview"


def require_chromium() -> Path:
    """Debian's Chromium, or a failure that says how to install it (the tests never skip silently)."""
    if not CHROMIUM.exists():
        pytest.fail(f"the browser tests drive Debian's Chromium at {CHROMIUM}, which is missing: install it with "
                    "`sudo apt-get install --no-install-recommends chromium` (never `playwright install`; "
                    ".ci/run installs it in CI)", pytrace=False)
    return CHROMIUM


# -- the store ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoStore:
    db: Path
    config: Path
    write_key: str
    read_key: str
    first_day: date  # of the demo events (UTC)
    last_day: date

    def site(self) -> Site:
        return Site(self.db, self.write_key, self.read_key, "", "", self.config)


def definitions_text(extra_goals: str = "") -> str:
    """The shop template, `extra_goals` (YAML lines indented as goals) and the experiment."""
    shop = template_text(Template.SHOP)
    assert "\nfunnels:" in shop, "the shop template changed: put the extra goals elsewhere"
    text = shop.replace("\nfunnels:", extra_goals.rstrip() + "\n\nfunnels:", 1) + EXPERIMENT_YAML
    parse_definitions(text, "the browser tests' definitions")  # fails here, not in the server, when wrong
    return text


def goal_yaml(name: str, label: str, event: str) -> str:
    """A macro goal matching `event` exactly; JSON strings are YAML strings, so any text fits."""
    return (f"  {name}:\n    kind: macro\n    type: lead\n    label: {json.dumps(label)}\n"
            f"    match: {{event: {json.dumps(event)}}}\n")


def build_store(folder: Path, visitors: int = 3000, extra_goals: str = "") -> DemoStore:
    folder.mkdir(parents=True, exist_ok=True)
    db, config = folder / "keystep.duckdb", folder / "keystep.yaml"
    text = definitions_text(extra_goals)
    config.write_text(text, encoding="utf-8")
    simulation = simulate_shop(visitors=visitors)
    with DuckDBBackend(db) as store:
        _, write = keys.create_project(store, "Demo shop", PROJECT)
        read = keys.create_key(store, PROJECT, keys.KeyKind.READ)
        store.insert_events(simulation.events)
        store.insert_events(exposures(simulation.events, text))
    assert write.secret and read.secret
    first = simulation.start.date()
    last = simulation.end.date() - timedelta(days=1)
    return DemoStore(db, config, write.secret, read.secret, first, last)


def exposures(events: pa.Table, definitions: str) -> pa.Table:
    """Each visitor exposed to the experiment at its first event, in the variant keystep assigns."""
    experiment = parse_definitions(definitions, "").experiment(EXPERIMENT)
    first = events.group_by("visitor_id").aggregate([("ts", "min")]).sort_by("visitor_id")
    schema = event_arrow_schema()
    rows: list[dict[str, Any]] = []
    for visitor, ts in zip(first.column("visitor_id").to_pylist(), first.column("ts_min").to_pylist(), strict=True):
        variant = variant_for(experiment, visitor)
        if variant is None:
            continue
        row: dict[str, Any] = {f.name: None for f in schema}
        row.update(project=PROJECT, event_id=f"exposure:{EXPERIMENT}:{visitor}", ts=ts, received_at=ts,
                   event=EXPOSURE_EVENTS[0], visitor_id=visitor,
                   properties=json.dumps({"experiment": EXPERIMENT, "variant": variant}))
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=schema)


@contextmanager
def serve(store: DemoStore) -> Iterator[Server]:
    server = Server(store.site())
    try:
        yield server
    finally:
        if server.process.poll() is None:
            server.stop()


# -- the browser -------------------------------------------------------------------------------------


def launch(playwright: Playwright) -> Browser:
    """Chromium from the Debian package; Playwright gives each launch a fresh temporary profile."""
    return playwright.chromium.launch(executable_path=str(require_chromium()), headless=True, args=list(CHROMIUM_ARGS))


def new_context(browser: Browser, base_url: str) -> BrowserContext:
    """A context of its own: no cookies, no storage."""
    context = browser.new_context(base_url=base_url, viewport=VIEWPORT)  # type: ignore[arg-type]
    context.set_default_timeout(TIMEOUT_MS)
    return context


# Reports every Content-Security-Policy violation to the test (an init script runs outside the page's CSP).
_CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (e) => {
  window.__keystepCsp(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber}`);
});
"""


@dataclass
class Watch:
    """What happened on one page (over all its navigations)."""

    page: Page
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)
    injected_requests: list[str] = field(default_factory=list)
    missing_icon: list[str] = field(default_factory=list)  # the browser's own /favicon.ico request failed

    def problems(self) -> dict[str, list[str]]:
        found = {"console errors": self.console_errors, "uncaught exceptions": self.page_errors,
                 "dialogs": self.dialogs, "CSP violations": self.csp_violations,
                 "requests an injected element made": self.injected_requests}
        return {k: v for k, v in found.items() if v}

    def assert_clean(self) -> None:
        assert not self.problems(), f"on {self.page.url}: {self.problems()}"


def watch(context: BrowserContext) -> Watch:
    """A new page of `context`, watched."""
    page = context.new_page()
    seen = Watch(page)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            where = message.location.get("url", "")
            if urlsplit(where).path == "/favicon.ico":  # asked by the browser, not the page: checked apart
                seen.missing_icon.append(message.text)
            else:
                seen.console_errors.append(f"{message.text} ({where})" if where else message.text)

    def on_dialog(dialog: Dialog) -> None:
        seen.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def on_request(request: Request) -> None:
        if request.url.rstrip("/").endswith("/x"):
            seen.injected_requests.append(request.url)

    page.on("console", on_console)
    page.on("pageerror", lambda error: seen.page_errors.append(str(error)))
    page.on("dialog", on_dialog)
    page.on("request", on_request)
    page.expose_function("__keystepCsp", lambda report: seen.csp_violations.append(str(report)))
    page.add_init_script(_CSP_LISTENER)
    return seen


def charts_drawn(page: Page) -> int:
    """Waits until plotly drew every chart of the page (its div became `.js-plotly-plot` with an
    `svg.main-svg` inside); returns how many there are."""
    page.wait_for_load_state("load")
    page.wait_for_function("""() => [...document.querySelectorAll("div.chart")].every(
        (d) => d.classList.contains("js-plotly-plot") && d.querySelector("svg.main-svg"))""", timeout=TIMEOUT_MS)
    return page.locator("div.chart.js-plotly-plot:has(svg.main-svg)").count()


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def readme_screenshot(source: Path) -> Path | None:
    """Copies the overview's screenshot to docs/images when `KEYSTEP_README_SCREENSHOT=1` (a test run never
    changes a tracked file unless asked to)."""
    if os.environ.get(README_SCREENSHOT_ENV) != "1":
        return None
    README_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, README_SCREENSHOT)
    return README_SCREENSHOT


# -- steps -------------------------------------------------------------------------------------------


@dataclass
class FirstRun:
    """What the first visit of a fresh install showed, and the administrator's logged-in context."""

    context: BrowserContext
    landed_on: str  # where `/` sent the first visitor
    setup_status: int
    setup_csp: str
    after_setup: str  # where submitting the form led
    logged_in_as: str
    problems: dict[str, list[str]]


def first_run(browser: Browser, base_url: str) -> FirstRun:
    """Creates the administrator through the first-run page (this is localhost) and stays logged in."""
    context = new_context(browser, base_url)
    seen = watch(context)
    page = seen.page
    response = page.goto("/")  # the response of the page the redirects end on
    assert response is not None
    landed_on = page.url
    screenshot(page, "setup")
    page.fill("input[name=username]", ADMIN)
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("form.card button[type=submit]")
    who = page.locator("header .who span").first.inner_text() if page.locator("header .who span").count() else ""
    run = FirstRun(context, landed_on, response.status, response.headers.get("content-security-policy", ""),
                   page.url, who, seen.problems())
    page.close()
    return run


def log_in(page: Page, username: str, password: str) -> None:
    """Fills and sends the login form the page shows."""
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.click("form.card button[type=submit]")


# -- hostile input -----------------------------------------------------------------------------------

XSS_IMG = "<img src=x onerror=alert(1)>"
XSS_SCRIPT = '"><script>alert(2)</script>'
XSS_SVG = "<svg onload=alert(3)>"
OUR_SCRIPTS = ("/static-vendor/plotly.min.js", "/static/app.js")


def collect(server: Server, write_key: str, events: list[dict[str, Any]]) -> None:
    """Events through the collector's native route, as a site's tracker sends them."""
    response = httpx.post(server.url + "/api/collect", json={"batch": events},
                          headers={"Authorization": f"Bearer {write_key}"}, timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body.get("accepted") == len(events), body


def wait_converted(server: Server, read_key: str, goal: str, day: date, timeout: float = 30.0) -> int:
    """Waits until the store (the writer drains the spool) has `goal` conversions on `day`; returns them."""
    deadline = time.monotonic() + timeout
    while True:
        response = httpx.get(server.url + "/api/v1/conversions", params={"goal": goal, "from": str(day),
                             "to": str(day)}, headers={"Authorization": f"Bearer {read_key}"}, timeout=30)
        assert response.status_code == 200, response.text
        found = [g for group in response.json()["groups"] for g in group["goals"] if g["goal"] == goal]
        converted = int(found[0]["total"]["converted_units"]) if found else 0
        if converted or time.monotonic() > deadline:
            return converted
        time.sleep(0.2)


def foreign_elements(page: Page) -> list[str]:
    """Elements that markup in the data would have made: any `<img src=x>`, `<svg onload>`, or a script
    that is neither ours nor a chart's JSON block."""
    found: list[str] = page.evaluate("""(ours) => {
      const out = [];
      for (const s of document.querySelectorAll("script")) {
        const src = s.getAttribute("src");
        if (src ? !ours.includes(src) : s.type !== "application/json") out.push(s.outerHTML.slice(0, 120));
      }
      for (const e of document.querySelectorAll("img, [onerror], [onload], iframe, object, embed"))
        out.push(e.outerHTML.slice(0, 120));
      return out;
    }""", list(OUR_SCRIPTS))
    return found


def cell_texts(page: Page) -> list[str]:
    texts: list[str] = page.locator("td").evaluate_all("(cells) => cells.map((c) => c.textContent.trim())")
    return texts


# -- fixtures the browser test modules import (each module defines its own `server`) --------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def first(browser: Browser, server: Server) -> Iterator[FirstRun]:
    run = first_run(browser, server.url)
    yield run
    run.context.close()
