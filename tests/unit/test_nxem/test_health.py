"""Liveness and readiness verdicts, and the WSGI app that serves them beside /metrics."""

from __future__ import annotations

import json
from typing import Any
from wsgiref.util import setup_testing_defaults

from prometheus_client import CollectorRegistry, Counter

from nxem.health import Health, respond, wsgi_app


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_live_while_the_loop_goes_round_within_the_bound() -> None:
    clock = Clock()
    h = Health(["kafka"], stall_s=30.0, clock=clock)
    clock.t += 30.0
    assert h.live()[0]
    clock.t += 0.5  # 30.5 s since the last beat
    ok, body = h.live()
    assert not ok and "stuck" in body["checks"]["loop"]["detail"]
    h.beat()
    assert h.live()[0]


def test_ready_needs_every_check_seen_ok_and_fresh() -> None:
    clock = Clock()
    h = Health(["kafka", "database"], stall_s=30.0, clock=clock)
    ok, body = h.ready()
    assert not ok and body["checks"]["kafka"]["detail"] == "not seen yet"
    h.report("kafka", True, "reachable")
    h.report("database", False, "PostgreSQL connect: refused")
    ok, body = h.ready()
    assert not ok and body["checks"]["kafka"]["ok"] and body["checks"]["database"]["detail"].endswith("refused")
    h.report("database", True, "reachable")
    assert h.ready()[0]
    clock.t += 31.0  # nobody reported for longer than the bound (and the loop did not beat)
    h.beat()
    ok, body = h.ready()
    assert not ok and body["checks"]["kafka"]["detail"].startswith("not reported for 31 s")


def test_a_process_without_a_loop_is_live_while_it_answers() -> None:
    clock = Clock()
    h = Health(["database"], stall_s=None, max_age_s=30.0, clock=clock)
    h.report("database", True)
    clock.t += 3600.0
    assert h.live()[0]
    assert not h.ready()[0]  # the answer is an hour old


def test_respond_maps_the_verdict_to_a_status() -> None:
    assert respond((True, {"status": "ok"}))[0] == 200
    status, data = respond((False, {"status": "failing", "checks": {"x": {"detail": "数据库"}}}))
    assert status == 503 and json.loads(data)["checks"]["x"]["detail"] == "数据库"


def _call(app: Any, path: str) -> tuple[str, bytes]:
    environ: dict[str, Any] = {"PATH_INFO": path}
    setup_testing_defaults(environ)
    got: list[str] = []
    body = b"".join(app(environ, lambda status, _headers: got.append(status)))
    return got[0], body


def test_the_app_serves_health_and_metrics_on_one_port() -> None:
    registry = CollectorRegistry()
    Counter("nxem_probe_things_total", "things", registry=registry).inc(3)
    h = Health(["kafka"], stall_s=30.0)
    app = wsgi_app(h, registry)
    assert _call(app, "/healthz")[0] == "200 OK"
    status, body = _call(app, "/readyz")
    assert status == "503 Service Unavailable" and json.loads(body)["status"] == "failing"
    h.report("kafka", True)
    assert _call(app, "/readyz")[0] == "200 OK"
    status, body = _call(app, "/metrics")
    assert status.startswith("200") and b"nxem_probe_things_total 3.0" in body
