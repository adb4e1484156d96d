"""The web dashboard: server-rendered pages on the same process and store as the collector.

Pages read the analyses directly (no HTTP round trip) and render them with Jinja2 templates; charts are
plotly figures whose JSON travels in non-executable `<script type="application/json">` blocks that
`static/app.js` draws with the plotly.js shipped in the installed plotly package — no CDN, no inline
script, so the Content-Security-Policy allows scripts from this origin only.

Access: a login (argon2id password, HttpOnly SameSite=Lax session cookie, Secure behind TLS, CSRF token on
every form, rate-limited), created on first run by `keystep user create` or by the first-run page, which
answers only requests from this machine. A share link (`/s/TOKEN`) opens one view read-only.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import plotly
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keystep.backends.base import SQL, Backend
from keystep.conversions.definitions import Definitions
from keystep.web import auth
from keystep.web.views import Filters

CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
DEFAULT_DAYS = 28

def safe_json(text: str) -> Markup:
    """JSON for a `<script type="application/json">` block: `<`, `>` and `&` escaped, so no string in it
    (an event name, a URL) can close the element."""
    return Markup(text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e"))


_templates = Environment(loader=PackageLoader("keystep.web", "templates"), autoescape=select_autoescape(["html"]))
_templates.filters["safe_json"] = safe_json
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


@dataclass
class Viewer:
    """Who is looking: a logged-in user (may change things) or a share link (may only look)."""

    username: str | None
    session: auth.Session | None
    shared: bool = False
    link: str | None = None  # a share link's own path (`/s/TOKEN`): its CSV exports go through it

    @property
    def can_edit(self) -> bool:
        return self.session is not None and not self.shared


_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"same-origin")]
_NO_CSP = ("/api/", "/docs", "/redoc", "/openapi.json")


class SecurityHeaders:
    """Security headers on every response, the CSP on the dashboard's: a plain ASGI middleware, as it sits
    in front of every ingest request too (Starlette's `BaseHTTPMiddleware` costs about 0.6 ms a request)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = _HEADERS if str(scope["path"]).startswith(_NO_CSP) else [
            (b"content-security-policy", CSP.encode()), *_HEADERS]

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)


def is_local(request: Request) -> bool:
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host in ("localhost", "testclient")


def secure(request: Request) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto", "") == "https"


Page = Callable[[Request, "Dashboard", Viewer, Filters], Awaitable[Response]]


class Dashboard:
    """What pages share: the store, the definitions (reloaded after an edit), the login limiter."""

    def __init__(self, backend: Callable[[], Backend], definitions: Callable[[], Definitions],
                 set_definitions: Callable[[Definitions], None], config: Callable[[], Path | None]) -> None:
        self.backend = backend
        self.definitions = definitions
        self.set_definitions = set_definitions
        self.config = config
        self.limiter = auth.LoginLimiter()

    def render(self, name: str, request: Request, viewer: Viewer, filters: Filters | None = None,
               status: int = 200, **context: Any) -> HTMLResponse:
        # a form post re-renders its page under the page's path; a shared view's links keep its token
        context.setdefault("path", viewer.link or request.url.path)
        html = _templates.get_template(name).render(
            request=request, viewer=viewer, filters=filters or Filters(), projects=self.projects(), **context)
        return HTMLResponse(html, status_code=status)

    def projects(self) -> list[str]:
        """The projects that have events or were created. Events are read only for projects the `projects`
        table does not name: DuckDB skips every row group whose statistics say it holds only named ones,
        so in the usual case (every project created) no events are read at all."""
        backend = self.backend()
        named = [str(r[0]) for r in backend.execute(SQL("SELECT project FROM projects")).rows]
        params = {f"p{i}": name for i, name in enumerate(named)}
        others = f" WHERE project NOT IN ({', '.join('$' + k for k in params)})" if named else ""
        rows = backend.execute(SQL(f"SELECT DISTINCT project FROM events{others}", params)).rows
        return sorted({*named, *(str(r[0]) for r in rows)})

    def filters(self, request: Request) -> Filters:
        """The page's state from its URL; the range defaults to the last 28 days with events."""
        q = request.query_params
        projects = self.projects()
        project = q.get("project") or (projects[0] if projects else None)
        start, end = _day(q.get("from")), _day(q.get("to"))
        if start is None or end is None:
            last = self.last_day(project)
            end = end or last
            start = start or (end - timedelta(days=DEFAULT_DAYS - 1) if end else None)
        if start and end and start > end:
            start, end = end, start
        extra = {k: v for k, v in q.items() if k not in ("project", "from", "to", "compare", "breakdown")}
        return Filters(project, start, end, q.get("compare") != "off", q.get("breakdown") or None, extra)

    def last_day(self, project: str | None) -> date | None:
        """The last day with events (of the project, or of any), in the definitions' timezone: DuckDB answers
        the maximum from its row-group statistics where a row group holds that project only."""
        where = " WHERE project = $p" if project is not None else ""
        rows = self.backend().execute(SQL(
            f"SELECT CAST(timezone($tz, CAST(max(ts) AS TIMESTAMPTZ)) AS DATE) FROM events{where}",
            {"tz": self.definitions().timezone, **({"p": project} if project is not None else {})}))
        value = rows.rows[0][0] if rows.rows else None
        return value if isinstance(value, date) else None


def _day(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def add_dashboard(app: FastAPI, dashboard: Dashboard) -> None:
    from keystep.web import pages

    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(packages=[("keystep.web", "static")]), name="static")

    @app.get("/static-vendor/plotly.min.js", include_in_schema=False)
    async def plotly_js() -> FileResponse:
        return FileResponse(PLOTLY_JS, media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})

    def viewer_of(request: Request) -> Viewer | None:
        session = auth.find_session(dashboard.backend(), request.cookies.get(auth.SESSION_COOKIE))
        return Viewer(session.username, session) if session else None

    def page(handler: Page) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            viewer = await run_in_threadpool(viewer_of, request)
            if viewer is None:
                if not await run_in_threadpool(auth.has_users, dashboard.backend()):
                    return RedirectResponse("/setup", status_code=303)
                return RedirectResponse("/login?next=" + request.url.path, status_code=303)
            return await handler(request, dashboard, viewer, dashboard.filters(request))
        return endpoint

    for path, handler in pages.PAGES.items():
        app.add_api_route(path, page(handler), methods=["GET"], include_in_schema=False, response_class=HTMLResponse)
    for path, action in pages.ACTIONS.items():
        app.add_api_route(path, _action(dashboard, viewer_of, action), methods=["POST"], include_in_schema=False)

    @app.get("/s/{token}", include_in_schema=False)
    async def shared(request: Request, token: str) -> Response:
        """A share link: the one view it names, read-only; the token stays in the path."""
        target = await run_in_threadpool(auth.find_share, dashboard.backend(), token)
        if target is None:
            return PlainTextResponse("This share link does not exist or was revoked.", status_code=404)
        path, _, query = target.partition("?")
        found = pages.find_page(path)
        if found is None:
            return PlainTextResponse("This share link names no page.", status_code=404)
        handler, params = found
        export = request.query_params.get("export")  # a CSV of one of the view's tables; nothing else is taken
        if export is not None:
            query = "&".join(filter(None, [query, urlencode({"export": export})]))
        view = Request({**request.scope, "query_string": query.encode(), "path": path, "path_params": params})
        viewer = Viewer(None, None, shared=True, link=request.url.path)
        return await handler(view, dashboard, viewer, dashboard.filters(view))

    @app.get("/setup", include_in_schema=False)
    async def setup_form(request: Request) -> Response:
        if await run_in_threadpool(auth.has_users, dashboard.backend()):
            return RedirectResponse("/login", status_code=303)
        if not is_local(request):
            return PlainTextResponse("Create the first user on this machine: keystep user create NAME "
                                     "(the first-run page answers only from localhost).", status_code=403)
        return dashboard.render("setup.html", request, Viewer(None, None))

    @app.post("/setup", include_in_schema=False)
    async def setup(request: Request) -> Response:
        if await run_in_threadpool(auth.has_users, dashboard.backend()) or not is_local(request):
            return PlainTextResponse("Not allowed.", status_code=403)
        form = await request.form()
        username, password = str(form.get("username", "")), str(form.get("password", ""))
        try:
            await run_in_threadpool(auth.create_user, dashboard.backend(), username, password)
        except auth.AuthError as exc:
            return dashboard.render("setup.html", request, Viewer(None, None), status=400, error=str(exc))
        return await _log_in(dashboard, request, username, "/")

    @app.get("/login", include_in_schema=False)
    async def login_form(request: Request) -> Response:
        return dashboard.render("login.html", request, Viewer(None, None), next=_safe_next(request))

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        address = request.client.host if request.client else "?"
        if dashboard.limiter.blocked(address):
            return dashboard.render("login.html", request, Viewer(None, None), status=429,
                                    error="Too many failed logins; wait a few minutes.", next="/")
        form = await request.form()
        username, password = str(form.get("username", "")), str(form.get("password", ""))
        if not await run_in_threadpool(auth.check_password, dashboard.backend(), username, password):
            dashboard.limiter.failed(address)
            return dashboard.render("login.html", request, Viewer(None, None), status=401,
                                    error="Wrong user name or password.", next=str(form.get("next", "/")))
        dashboard.limiter.succeeded(address)
        return await _log_in(dashboard, request, username, _safe_path(str(form.get("next", "/"))))

    @app.post("/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        viewer = await run_in_threadpool(viewer_of, request)
        form = await request.form()
        if viewer is None or not auth.csrf_ok(viewer.session, str(form.get("csrf", ""))):
            return PlainTextResponse("Forbidden (missing or wrong CSRF token).", status_code=403)
        await run_in_threadpool(auth.end_session, dashboard.backend(), request.cookies.get(auth.SESSION_COOKIE))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(auth.SESSION_COOKIE)
        return response


def _action(dashboard: Dashboard, viewer_of: Callable[[Request], Viewer | None],
            handler: Callable[[Request, Dashboard, Viewer, dict[str, str]], Awaitable[Response]]
            ) -> Callable[[Request], Awaitable[Response]]:
    """A form post: only a logged-in session with the right CSRF token may change anything."""
    async def endpoint(request: Request) -> Response:
        viewer = await run_in_threadpool(viewer_of, request)
        form = {k: str(v) for k, v in (await request.form()).items()}
        if viewer is None or not viewer.can_edit or not auth.csrf_ok(viewer.session, form.get("csrf")):
            return PlainTextResponse("Forbidden: log in, and send the form's CSRF token.", status_code=403)
        return await handler(request, dashboard, viewer, form)
    return endpoint


async def _log_in(dashboard: Dashboard, request: Request, username: str, target: str) -> Response:
    token, _ = await run_in_threadpool(auth.start_session, dashboard.backend(), username.strip())
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(auth.SESSION_COOKIE, token, max_age=auth.SESSION_DAYS * 86400, httponly=True,
                        samesite="lax", secure=secure(request), path="/")
    return response


def _safe_path(target: str) -> str:
    """Only a path on this site (no `//host`, no scheme): never an open redirect."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"


def _safe_next(request: Request) -> str:
    return _safe_path(request.query_params.get("next", "/"))
