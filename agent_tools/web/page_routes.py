"""The playground page at `/` (plain modules from `page/`, no build step, nothing from outside
loopback) and the small routes it reads beside the API: the server's status, the last eval report,
and socket tickets (a browser cannot set a header on a WebSocket)."""

from __future__ import annotations

import os
from os import PathLike
from pathlib import Path

import anyio
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from agent_tools.core.errors import NotFound
from agent_tools.core.requests import request_limits
from agent_tools.core.runtime import Runtime
from agent_tools.core.socket_tickets import SUBPROTOCOL, TICKET_PREFIX, issue_ticket
from agent_tools.web.route_boundary import ApiRoute, principal

PAGE = Path(__file__).with_name("page")
MAX_REPORT_BYTES = 8 * 1024 * 1024
# The page runs only its own scripts and talks only to its own origin; the eval report (shown in a
# frame) has inline styles.
POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; frame-src 'self' blob:; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "content-security-policy": POLICY,
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "cache-control": "no-cache",
}


class PageRoutes:
    """`/` and `/page/*` (public: static files that hold no data), and the routes the page calls:
    `GET /v1/status`, `GET /v1/eval/report`, `POST /v1/socket-tickets` (guarded as every route)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def routes(self) -> list[BaseRoute]:
        """The page and its files."""
        return [
            Route("/", self.index, methods=["GET", "HEAD"]),
            Mount("/page", app=_Static(directory=PAGE), name="page"),
        ]

    def api(self) -> list[ApiRoute]:
        """The routes the page reads, each inside the route boundary."""
        return [
            ApiRoute("/v1/status", "GET", self.status, "status", audit_success=False),  # polled
            ApiRoute("/v1/eval/report", "GET", self.eval_report, "eval_report"),
            ApiRoute("/v1/socket-tickets", "POST", self.socket_ticket, "socket_ticket"),
        ]

    async def index(self, request: Request) -> Response:
        """The page."""
        return FileResponse(PAGE / "index.html", headers=PAGE_HEADERS)

    async def status(self, request: Request) -> Response:
        """Readiness and a few live figures: calls in flight, work queued and running per engine; and
        the bounds of a `speak` request (core's), which the page's controls take."""
        principal(request)
        runtime = self.runtime
        scheduler = runtime.scheduler
        admissions = (
            scheduler.synthesis,
            scheduler.recognition,
            scheduler.short_recognition,
            scheduler.voice_activity,
        )
        engines = runtime.engines.loaded
        return JSONResponse(
            {
                "ready": runtime.ready,
                "voice": engines.default_voice if engines is not None else None,
                "recognizer": engines.recognizer.model_id if engines is not None else None,
                "in_flight": runtime.work_in_flight,
                "queued": {a.name: a.waiting for a in admissions}
                | {"sentences": scheduler.sentences.waiting},
                "running": {a.name: a.in_use for a in admissions} | {"sentences": scheduler.sentences.in_use},
                "live_streams": scheduler.live_streams,
                "limits": request_limits(runtime.settings.service.max_text_chars),
            }
        )

    async def eval_report(self, request: Request) -> Response:
        """The last eval report (`make eval`), as the HTML it was written as.

        Raises:
            NotFound: no report has been written yet.
        """
        principal(request)
        path = self.runtime.settings.server.eval_report

        def read() -> bytes | None:
            try:
                with path.open("rb") as report:
                    return report.read(MAX_REPORT_BYTES + 1)
            except OSError:
                return None

        body = await anyio.to_thread.run_sync(read)
        if body is None:
            raise NotFound("there is no eval report yet; run `make eval` to write one")
        if len(body) > MAX_REPORT_BYTES:
            raise NotFound(f"the eval report is over {MAX_REPORT_BYTES} bytes; open {path.name} directly")
        return HTMLResponse(body, headers={"content-security-policy": "script-src 'none'"})

    async def socket_ticket(self, request: Request) -> Response:
        """A ticket to open one WebSocket as the caller within `SERVER__SOCKET_TICKET_SECONDS`:
        offered as the subprotocol `ticket.<value>` beside `speech-tools`. Each counts against the
        caller's rate; a caller has at most a few outstanding (asking for more drops its oldest)."""
        who = principal(request)
        ticket = await issue_ticket(self.runtime.tickets, self.runtime.policy, who)
        return JSONResponse(
            {
                "ticket": ticket,
                "expires_in_seconds": self.runtime.tickets.ttl_seconds,
                "subprotocols": [SUBPROTOCOL, f"{TICKET_PREFIX}{ticket}"],
            },
            headers={"cache-control": "no-store"},
        )


class _Static(StaticFiles):
    """The page's files, with the page's headers."""

    def file_response(
        self,
        full_path: PathLike[str] | str,
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers.update(PAGE_HEADERS)
        return response
