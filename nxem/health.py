"""Liveness and readiness of a process, served beside its Prometheus metrics on one port.

* ``GET /healthz`` (liveness): the process answers and its main loop went round within
  ``stall_s`` seconds. A failing liveness probe means "restart me": only a stuck loop fails it,
  never a backend outage (restarting does not bring PostgreSQL back).
* ``GET /readyz`` (readiness): live, and every check the process declared is currently ok, as
  last reported by the component that sees it (the worker's loop for its partitions and lag,
  the Kafka watch thread for the broker, the store and the outbox for the database...). A check
  never reported, or not reported for ``max_age_s``, is failing.
* anything else: the Prometheus exposition (``/metrics``) of ``registry``.

Both health answers are ``200`` or ``503`` with a JSON body
``{"status": "ok"|"failing", "checks": {name: {"ok", "detail", "age_s"}}}``, so an operator
reads why from the probe itself. Standard library and prometheus_client only.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import psycopg
from prometheus_client import REGISTRY, make_wsgi_app
from prometheus_client.registry import CollectorRegistry

log = logging.getLogger(__name__)

Body = dict[str, Any]


@dataclass(frozen=True)
class Check:
    ok: bool
    detail: str
    at: float  # monotonic seconds when it was reported


class Health:
    """What a process last saw of itself; written by its loops and threads, read by the probes.

    ``checks``: the names that must be reported ok for readiness. ``stall_s``: the bound on the
    time since the last ``beat()`` (None: the process has no loop to watch, e.g. the portal,
    whose event loop answering the probe is the proof). ``max_age_s``: a check reported longer
    ago fails (default ``stall_s``; None: no bound)."""

    def __init__(self, checks: Iterable[str], stall_s: float | None, max_age_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._names = tuple(checks)
        self._stall_s = stall_s
        self._max_age_s = max_age_s if max_age_s is not None else stall_s
        self._clock = clock
        self._started = clock()
        self._beat = self._started
        self._checks: dict[str, Check] = {}
        self._lock = threading.Lock()

    def beat(self) -> None:
        """The main loop went round (call it once per iteration, waits included)."""
        self._beat = self._clock()

    def report(self, name: str, ok: bool, detail: str = "") -> None:
        with self._lock:
            self._checks[name] = Check(ok, detail, self._clock())

    def check(self, name: str) -> Check | None:
        with self._lock:
            return self._checks.get(name)

    def live(self) -> tuple[bool, Body]:
        now = self._clock()
        since = now - self._beat
        ok = self._stall_s is None or since <= self._stall_s
        detail = (f"loop went round {since:.1f} s ago" if self._stall_s is not None
                  else "answering")
        if not ok:
            detail = f"loop stuck: last went round {since:.1f} s ago (bound {self._stall_s:g} s)"
        return ok, {"status": "ok" if ok else "failing",
                    "checks": {"loop": {"ok": ok, "detail": detail, "age_s": round(since, 3)}}}

    def ready(self) -> tuple[bool, Body]:
        now = self._clock()
        alive, body = self.live()
        checks: dict[str, Any] = dict(body["checks"])
        ok = alive
        with self._lock:
            seen = dict(self._checks)
        for name in self._names:
            c = seen.get(name)
            if c is None:
                entry = {"ok": False, "detail": "not seen yet", "age_s": round(now - self._started, 3)}
            else:
                age = now - c.at
                stale = self._max_age_s is not None and age > self._max_age_s
                entry = {"ok": c.ok and not stale,
                         "detail": f"not reported for {age:.0f} s; last: {c.detail}" if stale else c.detail,
                         "age_s": round(age, 3)}
            checks[name] = entry
            ok = ok and bool(entry["ok"])
        return ok, {"status": "ok" if ok else "failing", "checks": checks}


def respond(verdict: tuple[bool, Body]) -> tuple[int, bytes]:
    """(HTTP status, JSON body) of a health verdict."""
    ok, body = verdict
    return (200 if ok else 503), json.dumps(body, ensure_ascii=False, sort_keys=True).encode()


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a probe never holds the process open at exit


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        """Probes every few seconds would drown the log."""


def wsgi_app(health: Health, registry: CollectorRegistry = REGISTRY) -> Callable[..., Iterable[bytes]]:
    metrics = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path in ("/healthz", "/readyz"):
            status, data = respond(health.live() if path == "/healthz" else health.ready())
            start_response("200 OK" if status == 200 else "503 Service Unavailable",
                           [("Content-Type", "application/json"), ("Content-Length", str(len(data))),
                            ("Cache-Control", "no-store")])
            return [data]
        result: Iterable[bytes] = metrics(environ, start_response)
        return result

    return app


def serve(health: Health, port: int, addr: str = "127.0.0.1",
          registry: CollectorRegistry = REGISTRY) -> WSGIServer:
    """Serve /healthz, /readyz and /metrics on ``addr:port`` from a daemon thread."""

    class Server(_Server):
        address_family = socket.AF_INET6 if ":" in addr else socket.AF_INET

    httpd = make_server(addr, port, wsgi_app(health, registry), Server, handler_class=_QuietHandler)
    threading.Thread(target=httpd.serve_forever, name="health-http", daemon=True).start()
    return httpd


def watch(health: Health, name: str, probe: Callable[[], str | None], interval_s: float,
          stop: threading.Event | None = None) -> threading.Thread:
    """A daemon thread that runs ``probe`` every ``interval_s`` and reports it as check ``name``:
    ok with the returned text, or failing with the exception's text (any exception: a probe
    that breaks must show up as a failing check, not kill its thread). Once ``stop`` is set the
    thread ends, closing the probe if it has a ``close()``."""
    halt = stop or threading.Event()

    def loop() -> None:
        while True:
            try:
                health.report(name, True, probe() or "reachable")
            except Exception as err:  # noqa: BLE001 - reported, the thread goes on
                health.report(name, False, f"{type(err).__name__}: {err}")
            if halt.wait(interval_s):
                close: Callable[[], object] | None = getattr(probe, "close", None)
                if close is not None:
                    close()
                return

    thread = threading.Thread(target=loop, name=f"health-{name}", daemon=True)
    thread.start()
    return thread


class PgPing:
    """Probe for ``watch``: PostgreSQL answers ``SELECT 1`` on a kept connection (reconnects
    after a failure; ``connect_timeout`` bounds a probe against an unreachable host)."""

    def __init__(self, dsn: str, application_name: str, timeout_s: int = 5) -> None:
        self._dsn, self._app, self._timeout_s = dsn, application_name, timeout_s
        self._conn: psycopg.Connection[Any] | None = None

    def __call__(self) -> str:
        try:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(self._dsn, autocommit=True, connect_timeout=self._timeout_s,
                                             application_name=self._app)
            self._conn.execute("SELECT 1")
        except psycopg.Error:
            if self._conn is not None:
                self._conn.close()
            self._conn = None
            raise
        return "reachable"

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

