"""Runs the real pipeline processes isolated per run: used by integration tests and benchmarks.

Each ``Pipeline`` gets its own database (migrated), its own Kafka topics, its own MQTT
client ids and consumer group, and starts the collector and a worker as real processes
(``python -m collector`` / ``python -m stream``) against the services the session started.
Everything is stopped and the database dropped at the end.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from ops.services import ServiceSettings, admin_dsn

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """``app`` (ASGI) served by uvicorn on a free loopback port in a thread; yields its base URL.
    Forwarded headers are left to the app, as ``python -m portal`` does."""
    import threading

    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           proxy_headers=False, timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, name="portal-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise AssertionError("the portal did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


def wait_for(predicate: Any, timeout_s: float, what: str, interval_s: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what} (last: {last!r})")


def metric(port: int, name: str) -> float | None:
    """The value of an unlabelled Prometheus metric, or None when the endpoint is not up yet
    (or went away mid-answer: a process that exits while being scraped cuts the body short,
    which http.client raises as IncompleteRead, not as an OSError)."""
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    except (OSError, http.client.HTTPException):
        return None
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    metrics_port: int
    log: Path
    module: str
    client_id: str

    def kill(self, sig: int = signal.SIGTERM, timeout_s: float = 20) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)


@dataclass
class Pipeline:
    settings: ServiceSettings
    dbname: str
    suffix: str
    env: dict[str, str]
    log_dir: Path
    procs: list[Proc] = field(default_factory=list)

    @property
    def admin_dsn(self) -> str:
        return admin_dsn(self.settings, dbname=self.dbname)

    @property
    def topics(self) -> dict[str, str]:
        return {k: self.env[f"NXEM_TOPIC_{k.upper()}"] for k in ("readings", "alerts", "deadletter")}

    def start(self, module: str, name: str, ready_metric: str, extra_env: dict[str, str] | None = None) -> Proc:
        port = free_port()
        env = dict(self.env)
        env.update(extra_env or {})
        key = "COLLECTOR" if module == "collector" else "WORKER"
        env[f"NXEM_{key}_METRICS_PORT"] = str(port)
        env.setdefault(f"NXEM_{key}_ID", f"{name}-{self.suffix}")
        log = self.log_dir / f"{name}-{self.suffix}.log"
        with log.open("ab") as out:  # the child keeps its own descriptor
            popen = subprocess.Popen(
                [sys.executable, "-m", module], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
            )
        proc = Proc(name, popen, port, log, module, env[f"NXEM_{key}_ID"])
        self.procs.append(proc)

        def ready() -> bool:
            if popen.poll() is not None:
                raise AssertionError(f"{name} exited {popen.returncode}:\n{log.read_text()[-3000:]}")
            return metric(port, ready_metric) == 1.0

        wait_for(ready, 90, f"{name} ready")
        return proc

    def start_collector(self, name: str = "collector", **env: str) -> Proc:
        return self.start("collector", name, "nxem_collector_ready", env)

    def start_worker(self, name: str = "worker", **env: str) -> Proc:
        return self.start("stream", name, "nxem_worker_ready", env)

    def register(self, *docs: Mapping[str, Any]) -> None:
        """Upsert registry (or scenario) documents into this run's database, validated as a
        registry file is (``parse_registry``), without a trip through YAML."""
        from storage.registry import upsert_registry
        from storage.registry_format import parse_registry

        with psycopg.connect(self.admin_dsn) as conn:
            for doc in docs:
                upsert_registry(conn, parse_registry(doc))

    def sql(self, query: str, params: Any = None) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.admin_dsn) as conn:
            return conn.execute(query, params).fetchall()


def consume_all(topic: str, bootstrap: str, idle_ms: int = 4000) -> list[bytes]:
    """Every record value of ``topic`` from the beginning (no group, nothing committed); stops
    after ``idle_ms`` without a new record."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=idle_ms, group_id=None)
    try:
        return [rec.value for rec in consumer]
    finally:
        consumer.close()


def create_topics(bootstrap: str, names: list[str], partitions: int) -> None:
    """Create a run's topics as the service runner does: with the record size limit of
    ``nxem.kafka`` (the collector refuses to start on topics without it)."""
    from kafka.admin import KafkaAdminClient, NewTopic

    from nxem.kafka import TOPIC_CONFIGS

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="nxem-tests")
    try:
        admin.create_topics([NewTopic(n, partitions, 1, topic_configs=dict(TOPIC_CONFIGS)) for n in names])
    finally:
        admin.close()


def delete_topics(bootstrap: str, names: list[str]) -> None:
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="nxem-tests")
    try:
        admin.delete_topics(names)
    except Exception:  # noqa: BLE001 - best-effort cleanup of a test's own topics
        pass
    finally:
        admin.close()


@contextmanager
def pipeline(settings: ServiceSettings, partitions: int = 3) -> Iterator[Pipeline]:
    from storage.migrate import migrate

    suffix = uuid.uuid4().hex[:8]
    dbname = f"nxem_t_{suffix}"
    topics = {k: f"nxem.{k}.t{suffix}" for k in ("readings", "alerts", "deadletter")}
    env = {k: v for k, v in os.environ.items() if not k.startswith("NXEM_")}
    env.update({
        "NXEM_DATA_DIR": str(settings.resolved_data_dir()),
        "NXEM_MQTT_HOST": settings.mqtt_host, "NXEM_MQTT_PORT": str(settings.mqtt_port),
        "NXEM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "NXEM_PG_HOST": settings.pg_host, "NXEM_PG_PORT": str(settings.pg_port), "NXEM_PG_DB": dbname,
        "NXEM_DB_BACKEND": settings.db_backend,
        "NXEM_TOPIC_READINGS": topics["readings"], "NXEM_TOPIC_ALERTS": topics["alerts"],
        "NXEM_TOPIC_DEADLETTER": topics["deadletter"],
        "NXEM_WORKER_GROUP": f"workers-{suffix}",
        "NXEM_COLLECTOR_SESSION_EXPIRY_S": "120",
        "NXEM_COLLECTOR_ROUTING_REFRESH_S": "1", "NXEM_WORKER_REGISTRY_REFRESH_S": "1",
        "PYTHONUNBUFFERED": "1",
    })
    log_dir = settings.resolved_data_dir() / "logs" / "tests"
    log_dir.mkdir(parents=True, exist_ok=True)
    p = Pipeline(settings, dbname, suffix, env, log_dir)
    with psycopg.connect(admin_dsn(settings), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{dbname}"')
    try:  # a failed topic creation or migration leaves no database or topic behind either
        create_topics(settings.kafka_bootstrap, list(topics.values()), partitions)
        migrate(p.admin_dsn, backend=settings.db_backend, secrets_dir=settings.resolved_data_dir() / "secrets")
        yield p
    finally:
        for proc in reversed(p.procs):
            proc.kill()
        from collector.mqtt import purge_session

        for proc in p.procs:  # a stopped collector's session would queue every later reading
            if proc.module == "collector":
                purge_session(settings.mqtt_host, settings.mqtt_port, proc.client_id)
        delete_topics(settings.kafka_bootstrap, list(topics.values()))
        with psycopg.connect(admin_dsn(settings), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
