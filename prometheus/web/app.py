"""The operations console as an ASGI app: ``create_app(settings)``, served by
``prometheus web`` or mounted inside another ASGI app (``Mount("/ops", create_app(s))``).

Pages are server-rendered Jinja2 (autoescaped: text from the database is always text);
each page's live region is refreshed by htmx when the change feed says something moved,
and every 30 s regardless (the fallback when the event stream cannot get through).
Actions (``web.actions``) only *ask* ``pipeline``, which decides; the console offers an action
where that module's own predicate says it would be accepted.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlencode

import psycopg
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from prometheus.calendar import TradingCalendar
from prometheus.checks import CheckPolicy
from prometheus.config import Settings, redact_urls
from prometheus.db.connect import make_engine
from prometheus.errors import InputError, RunBusy, RunNotFound, first_line
from prometheus.logs import get_logger
from prometheus.pipeline.state import Run, get_run
from prometheus.web.actions import ACTIONS, Action, read_form
from prometheus.web.feed import ChangeFeed
from prometheus.web.inflight import InFlight
from prometheus.web.params import int_param, run_filters
from prometheus.web.reads import SESSIONS_DEFAULT, SESSIONS_MAX, Reader, RunFilters
from prometheus.web.security import (
    CSRF_FIELD,
    ReadOnly,
    SecurityHeaders,
    authenticated_user,
    csrf_token,
    csrf_valid,
    login_required,
    set_csrf_cookie,
)
from prometheus.web.templating import environment

log = get_logger(__name__)

KEEPALIVE_SECONDS = 15.0
CLOSE_WAIT_SECONDS = 30.0  # for requests still running when the console closes
DATABASE_UNAVAILABLE = "the database is not available (the console's log says why)"


def create_app(settings: Settings, *, read_only: bool = False) -> Starlette:
    """The console for the database of ``settings``.

    Actions exist only with ``PROMETHEUS_WEB_USER``/``PROMETHEUS_WEB_PASSWORD`` set and
    without ``read_only``; otherwise every non-GET request is refused. Nothing connects
    until the first request: building the app is cheap and never fails on the network.

    Mounted in another app, whose lifespan Starlette does not pass on, the host closes
    it: ``await console_app.state.console.aclose()`` in the host's own lifespan.
    """
    if settings.database_url is None:
        raise InputError("the web console needs a database URL")
    engine = make_engine(settings.database_url, application_name="prometheus-web", pool_size=4)
    reader = Reader(engine, TradingCalendar(settings.region_exchanges), CheckPolicy())
    # LISTEN where the reactor does: PROMETHEUS_LISTEN_URL when the database URL goes
    # through a transaction pooler, which cannot deliver notifications.
    in_flight = InFlight()
    feed = ChangeFeed(
        settings.listen_dsn or settings.database_url, in_flight.counted(reader.version)
    )
    actions_enabled = settings.web_actions_enabled and not read_only
    console = Console(settings, reader, feed, in_flight, actions_enabled=actions_enabled)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await console.aclose()

    middleware = [Middleware(SecurityHeaders)]
    if not actions_enabled:
        why = (
            "this console runs with --read-only"
            if read_only
            else "this console is read-only (set PROMETHEUS_WEB_USER and "
            "PROMETHEUS_WEB_PASSWORD to enable actions)"
        )
        middleware.insert(0, Middleware(ReadOnly, why=why))
    app = Starlette(
        routes=console.routes(),
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={
            HTTPException: console.http_error,
            SQLAlchemyError: console.database_error,
            psycopg.Error: console.database_error,
        },
    )
    app.state.console = console
    return app


class Console:
    """The pages and actions, over one Reader and one ChangeFeed."""

    def __init__(
        self,
        settings: Settings,
        reader: Reader,
        feed: ChangeFeed,
        in_flight: InFlight,
        *,
        actions_enabled: bool,
    ) -> None:
        self.settings = settings
        self.reader = reader
        self.feed = feed
        self.actions_enabled = actions_enabled
        self.templates = Jinja2Templates(env=environment())
        self._in_flight = in_flight

    async def aclose(self) -> None:
        """End the live streams and the LISTEN connection; close the pool once no request
        uses it (a connection checked in after the pool was disposed would stay open)."""
        await self.feed.aclose()
        await run_in_threadpool(self._in_flight.wait_idle, CLOSE_WAIT_SECONDS)
        self.reader.engine.dispose()

    def routes(self) -> list[Route | Mount]:
        tracked = self._in_flight.tracked
        return [
            Route("/", tracked(self.overview), name="overview"),
            Route("/runs", tracked(self.runs), name="runs"),
            Route("/runs/{run_id:int}", tracked(self.run), name="run"),
            Route("/runs/{run_id:int}/{action:str}", tracked(self.confirm), name="confirm"),
            Route(
                "/runs/{run_id:int}/{action:str}", tracked(self.act), methods=["POST"], name="act"
            ),
            Route("/events", self.events, name="events"),
            Mount("/static", StaticFiles(packages=[("prometheus.web", "static")]), name="static"),
        ]

    # -- pages ------------------------------------------------------------------------------

    def overview(self, request: Request) -> Response:
        sessions = int_param(request, "sessions", SESSIONS_DEFAULT, 1, SESSIONS_MAX)
        view = self.reader.overview(sessions)
        return self._page(request, "overview.html", {"view": view, "live": True})

    def run(self, request: Request) -> Response:
        detail = self.reader.run_detail(request.path_params["run_id"])
        if detail is None:
            raise HTTPException(404, f"no run {request.path_params['run_id']}")
        done = ACTIONS.get(request.query_params.get("done", ""))
        offered = [a for a in ACTIONS.values() if self.actions_enabled and a.allowed(detail.run)]
        context = {"detail": detail, "actions": offered, "done": done, "live": True}
        return self._page(request, "run.html", context)

    def runs(self, request: Request) -> Response:
        page = int_param(request, "page", 1, 1, 1_000_000)
        try:
            filters = run_filters(request, self.reader.calendar)
        except InputError as exc:
            context = {"error": str(exc), "filters": RunFilters(), "listing": None, "live": False}
            return self._page(request, "runs.html", context, status_code=400)
        listing = self.reader.runs_page(filters, page)
        context = {"filters": filters, "listing": listing, "error": None, "live": True}
        return self._page(request, "runs.html", context)

    def confirm(self, request: Request) -> Response:
        user = self._login(request)
        if user is None:
            return login_required()
        action, run = self._action_and_run(request)
        token, new = csrf_token(request)
        response = self._confirm_page(request, action, run, user, token)
        if new:
            set_csrf_cookie(response, request, token)
        return response

    async def act(self, request: Request) -> Response:
        # Read-only consoles never get here (ReadOnly refuses the POST first).
        user = self._login(request)
        if user is None:
            return login_required()
        action, run = await run_in_threadpool(self._action_and_run, request)
        form = await read_form(request)
        if not csrf_valid(request, form.get(CSRF_FIELD)):
            raise HTTPException(403, "bad or missing CSRF token: open the action's page again")
        reason = form.get("reason", "")
        actor = f"web:{user}"
        try:
            moved = await run_in_threadpool(
                action.perform,
                self.reader.engine,
                run.as_of_date,
                run.region,
                actor=actor,
                reason=reason,
            )
        except RunNotFound as exc:
            raise HTTPException(404, str(exc)) from None
        except (InputError, RunBusy) as exc:
            status = 409 if isinstance(exc, RunBusy) else 400
            token, _ = csrf_token(request)
            return self._confirm_page(
                request, action, run, user, token, error=str(exc), reason=reason, status=status
            )
        log.info(
            "web.action_done", action=action.name, run_id=run.run_id, actor=actor, phase=moved.phase
        )
        target = request.url_for("run", run_id=run.run_id).path
        return RedirectResponse(f"{target}?{urlencode({'done': action.name})}", status_code=303)

    async def events(self, request: Request) -> Response:
        """Server-sent events: ``ready`` once subscribed, then ``change`` whenever a page
        may show something new; a comment every 15 s keeps proxies from closing it."""

        async def stream() -> AsyncIterator[str]:
            queue = self.feed.subscribe()  # here, not before: only a started stream ends
            try:
                yield "retry: 3000\nevent: ready\ndata: \n\n"
                while True:
                    try:
                        async with asyncio.timeout(KEEPALIVE_SECONDS):
                            version = await queue.get()
                    except TimeoutError:
                        yield ": keepalive\n\n"
                        continue
                    if version is None:  # the feed closed: the server is stopping
                        return
                    yield f"event: change\ndata: {version}\n\n"
            finally:
                self.feed.unsubscribe(queue)

        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)

    # -- errors -----------------------------------------------------------------------------

    async def http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        context = {"status": exc.status_code, "message": exc.detail, "live": False}
        return self._page(request, "error.html", context, exc.status_code)

    async def database_error(self, request: Request, exc: Exception) -> Response:
        """A generic page: libpq's text names the server, its port and the user, which
        are not for anonymous visitors; the console's log has it for its operator."""
        log.warning("web.database_error", path=request.url.path, error=redact_urls(first_line(exc)))
        context = {"status": 503, "message": DATABASE_UNAVAILABLE, "live": False}
        return self._page(request, "error.html", context, 503)

    # -- helpers ----------------------------------------------------------------------------

    def _page(
        self, request: Request, name: str, context: dict[str, Any], status_code: int = 200
    ) -> Response:
        """A whole page, or only its live region when htmx asks for the refresh."""
        partial = request.headers.get("hx-request") == "true" and context.get("live", False)
        response = self.templates.TemplateResponse(
            request,
            name,
            {**context, "partial": partial, "console": self},
            status_code=status_code,
        )
        response.headers["Cache-Control"] = "no-store"
        response.headers["Vary"] = "HX-Request"
        return response

    def _confirm_page(
        self,
        request: Request,
        action: Action,
        run: Run,
        user: str,
        token: str,
        *,
        error: str | None = None,
        reason: str = "",
        status: int = 200,
    ) -> Response:
        context = {
            "action": action,
            "run": run,
            "actor": f"web:{user}",
            "csrf_field": CSRF_FIELD,
            "csrf_token": token,
            "error": error,
            "reason": reason,
            "live": False,
        }
        return self._page(request, "confirm.html", context, status)

    def _login(self, request: Request) -> str | None:
        """The user who may act, None without a valid login. Asked before anything is
        looked up: a run's existence is not for anonymous visitors to probe (a 404 for a
        missing run against a 401 for an existing one would tell them)."""
        if not self.actions_enabled:  # GET of an action page on a read-only console
            raise HTTPException(403, "this console is read-only")
        return authenticated_user(request, self.settings)

    def _action_and_run(self, request: Request) -> tuple[Action, Run]:
        action = ACTIONS.get(request.path_params["action"])
        if action is None:
            raise HTTPException(404, f"no action {request.path_params['action']!r}")
        run = get_run(self.reader.engine, request.path_params["run_id"])
        if run is None:
            raise HTTPException(404, f"no run {request.path_params['run_id']}")
        return action, run
