"""The portal's probes and metrics: ``/healthz``, ``/readyz`` and ``/metrics`` on its own port.

* ``/healthz``: the event loop answers (that is the proof it is not stuck).
* ``/readyz``: the database answered ``SELECT 1`` within the last few seconds, as seen by a
  pinger thread (one connection of its own, as the portal role): the probe never waits on the
  request pool, which a slow page may hold.
* ``/metrics``: the Prometheus exposition; requests are counted by route template, method
  and status (``nxem_portal_requests_total``) and timed (``nxem_portal_request_seconds``).

No authentication: the answers hold no enterprise data (only check names and backend
errors), like the other processes' metrics ports.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

from nxem.health import Health, PgPing, respond, watch

PING_INTERVAL_S = 5.0
STALE_S = 30.0  # a database answer older than this does not count (the pinger is stuck)

REQUESTS = Counter("nxem_portal_requests_total", "HTTP requests answered, by route template, method and status",
                   ["route", "method", "status"])
REQUEST_SECONDS = Histogram(
    "nxem_portal_request_seconds", "time to answer an HTTP request (the alert stream excluded)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

router = APIRouter(include_in_schema=False)


_NOT_STARTED = (False, {"status": "failing", "checks": {"startup": {"ok": False, "detail": "not started", "age_s": 0}}})


def _health(request: Request) -> Health | None:
    found: Health | None = getattr(request.app.state, "health", None)  # set by the app's lifespan
    return found


def _answer(verdict: tuple[bool, dict[str, Any]]) -> Response:
    status, body = respond(verdict)
    return Response(body, status_code=status, media_type="application/json", headers={"Cache-Control": "no-store"})


@router.get("/healthz")
async def healthz(request: Request) -> Response:
    h = _health(request)
    return _answer(h.live() if h is not None else _NOT_STARTED)


@router.get("/readyz")
async def readyz(request: Request) -> Response:
    h = _health(request)
    return _answer(h.ready() if h is not None else _NOT_STARTED)


@router.get("/metrics")
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def start(dsn: str) -> tuple[Health, threading.Event]:
    """The portal's health and its database pinger (stop it with the returned event)."""
    health = Health(["database"], stall_s=None, max_age_s=STALE_S)
    stop = threading.Event()
    watch(health, "database", PgPing(dsn, "nxem-portal-health"), PING_INTERVAL_S, stop)
    return health, stop


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class RequestMetrics:
    """ASGI middleware counting and timing requests (pure ASGI: streaming responses pass
    through untouched)."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def sending(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            REQUESTS.labels(route, scope.get("method", ""), str(status[0])).inc()
            if not route.endswith("/stream"):
                REQUEST_SECONDS.observe(time.perf_counter() - started)
