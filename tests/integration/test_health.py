"""/healthz and /readyz of every process, on the real services and real processes.

* a collector and a worker in a working pipeline: live (200) and, once subscribed / holding
  partitions, ready (200) with every declared check ok; /metrics still served on that port;
* a worker whose database is unreachable (a port nothing listens on): live, not ready (503)
  with the database check failing and saying why, and it stays up, retrying (no crash loop);
* a collector whose readings topic is deleted under it: live, not ready, the Kafka check names it;
* the portal: live and ready, /metrics counts its requests; with an unreachable database
  live and not ready.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import (REPO, Pipeline, Proc, create_topics, delete_topics, free_port, metric, pipeline,
                          wait_for)
from ops.services import ServiceSettings

pytestmark = pytest.mark.integration

WORKER_CHECKS = {"loop", "kafka", "database", "poll", "partitions", "lag"}
COLLECTOR_CHECKS = {"loop", "mqtt", "kafka", "database"}


def _get(port: int, path: str) -> tuple[int, Any]:
    """(status, parsed JSON body); (0, None) while nothing answers on the port."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as err:
        status, raw = err.code, err.read()
    except OSError:
        return 0, None
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode()


def _spawn(p: Pipeline, module: str, name: str, env: dict[str, str], port: int) -> Proc:
    """Start ``python -m module`` without waiting for it to be ready (it may never be)."""
    full = {**p.env, **env}
    log = p.log_dir / f"{name}-{p.suffix}.log"
    with log.open("ab") as out:
        popen = subprocess.Popen([sys.executable, "-m", module], cwd=REPO, env=full, stdout=out,
                                 stderr=subprocess.STDOUT)
    proc = Proc(name, popen, port, log, module, f"{name}-{p.suffix}")
    p.procs.append(proc)  # stopped by the pipeline at the end
    return proc


def _alive(proc: Proc) -> None:
    assert proc.popen.poll() is None, f"{proc.name} exited {proc.popen.returncode}:\n{proc.log.read_text()[-3000:]}"


@pytest.fixture(scope="module")
def p(services: ServiceSettings) -> Iterator[Pipeline]:
    with pipeline(services) as p:
        yield p


def test_collector_and_worker_are_live_and_ready(p: Pipeline) -> None:
    collector = p.start_collector()
    worker = p.start_worker()  # returns once it holds partitions
    for proc, checks in ((collector, COLLECTOR_CHECKS), (worker, WORKER_CHECKS)):
        status, body = _get(proc.metrics_port, "/healthz")
        assert status == 200 and body["status"] == "ok", body
        ready = wait_for(lambda port=proc.metrics_port: (r := _get(port, "/readyz"))[0] == 200 and r, 60,
                         f"{proc.name} ready")
        body = ready[1]
        assert set(body["checks"]) == checks, body
        assert all(c["ok"] for c in body["checks"].values()), body
    assert "held" in body["checks"]["partitions"]["detail"]
    assert metric(worker.metrics_port, "nxem_worker_ready") == 1.0  # /metrics on the same port


def test_worker_with_unreachable_database_is_live_but_not_ready(p: Pipeline) -> None:
    port = free_port()
    worker = _spawn(p, "stream", "worker-nodb", {"NXEM_PG_PORT": str(free_port()),
                                                 "NXEM_WORKER_METRICS_PORT": str(port),
                                                 "NXEM_WORKER_ID": f"worker-nodb-{p.suffix}"}, port)

    def failing_database() -> tuple[int, Any] | None:
        _alive(worker)
        status, body = _get(port, "/readyz")
        if status == 503 and body["checks"]["database"]["detail"] != "not seen yet":
            return status, body
        return None

    status, body = wait_for(failing_database, 60, "the worker reporting its database")
    database = body["checks"]["database"]
    assert not database["ok"] and "connect" in database["detail"].lower(), database
    assert body["checks"]["kafka"]["ok"], body  # only what is wrong fails
    assert _get(port, "/healthz")[0] == 200  # waiting for the database is not a stuck loop
    # retried, not a crash loop: still up two backoff rounds later, still saying why
    wait_for(lambda: "retrying" in worker.log.read_text() and worker.log.read_text().count("unavailable") >= 3,
             30, "the worker retrying")
    _alive(worker)
    assert _get(port, "/readyz")[0] == 503


def test_collector_whose_topic_goes_away_is_live_but_not_ready(p: Pipeline) -> None:
    """(A collector refuses to start without its topics: the start-up record-limit check.)"""
    own = {k: f"nxem.{k}.gone{p.suffix}" for k in ("readings", "deadletter")}
    bootstrap = p.settings.kafka_bootstrap
    create_topics(bootstrap, list(own.values()), 1)
    try:
        collector = p.start_collector(name="collector-gone", NXEM_TOPIC_READINGS=own["readings"],
                                      NXEM_TOPIC_DEADLETTER=own["deadletter"])
        port = collector.metrics_port
        wait_for(lambda: _get(port, "/readyz")[0] == 200, 60, "the collector ready")
        delete_topics(bootstrap, [own["readings"]])

        def kafka_failing() -> dict[str, Any] | None:
            _alive(collector)
            status, body = _get(port, "/readyz")
            return body if status == 503 and not body["checks"]["kafka"]["ok"] else None

        body = wait_for(kafka_failing, 60, "the collector reporting its topic gone")
        assert own["readings"] in body["checks"]["kafka"]["detail"], body
        assert body["checks"]["mqtt"]["ok"] and body["checks"]["database"]["ok"], body
        assert _get(port, "/healthz")[0] == 200
        _alive(collector)
    finally:
        delete_topics(bootstrap, list(own.values()))


def _portal(p: Pipeline, name: str, tmp_path: Path, **env: str) -> tuple[Proc, int]:
    port = free_port()
    proc = _spawn(p, "portal", name, {"NXEM_PORTAL_HOST": "127.0.0.1", "NXEM_PORTAL_PORT": str(port),
                                      "NXEM_PORTAL_SECRET_FILE": str(tmp_path / "portal.secret"), **env}, port)
    def answering() -> bool:
        _alive(proc)
        return _get(port, "/healthz")[0] == 200

    wait_for(answering, 60, f"{name} answering")
    return proc, port


def test_portal_is_live_ready_and_measured(p: Pipeline, tmp_path: Path) -> None:
    _proc, port = _portal(p, "portal", tmp_path)
    status, body = wait_for(lambda: (r := _get(port, "/readyz"))[0] == 200 and r, 30, "the portal ready")
    assert body["checks"]["database"]["ok"], body
    assert _get(port, "/login")[0] == 200
    status, text = _get(port, "/metrics")
    assert status == 200
    # the /login above and the probes before it, by route template
    assert 'nxem_portal_requests_total{method="GET",route="/login",status="200"} 1.0' in text, text[-2000:]
    assert 'route="/readyz"' in text


def test_portal_with_unreachable_database_is_live_but_not_ready(p: Pipeline, tmp_path: Path) -> None:
    proc, port = _portal(p, "portal-nodb", tmp_path, NXEM_PG_PORT=str(free_port()))

    def failing() -> dict[str, Any] | None:
        status, body = _get(port, "/readyz")
        return body if status == 503 and body["checks"]["database"]["detail"] != "not seen yet" else None

    body = wait_for(failing, 30, "the portal reporting its database")
    assert "connect" in body["checks"]["database"]["detail"].lower(), body
    assert _get(port, "/healthz")[0] == 200
    _alive(proc)
