"""The demo: every part of the pipeline on local services, fed by a simulated Ningxia fleet.

Starts (idempotently) Mosquitto, Kafka and PostgreSQL; migrates the database; loads the
scenario's registry; starts the collector, one worker and the portal as child processes;
publishes the scenario through the gateway simulators (its history at full speed, then live);
prints where to look; and stops its child processes on Ctrl-C or after ``duration_s``. The
services stay up (``nxem services down``).
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from rich.console import Console

from ops.services import ServiceSettings, admin_dsn, ensure_up
from nxem.settings import REPO_ROOT
from simulators.scenario import Scenario

console = Console()


def _spawn(name: str, module: str, log_dir: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    log = log_dir / f"demo-{name}.log"
    console.print(f"  starting {name:<10} log: {log}")
    with log.open("ab") as out:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", module], cwd=REPO_ROOT, env=env,
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )


def run_demo(scenario_path: Path, duration_s: float = 0) -> None:
    from simulators.run import run_scenario
    from simulators.scenario import load_scenario
    from simulators.settings import SimulatorSettings
    from storage.migrate import migrate
    from storage.registry import load_registry_file, upsert_registry

    settings = ServiceSettings()
    console.rule("[bold]Ningxia key energy-using units — local demo")
    console.print("services: Mosquitto, Kafka (KRaft), PostgreSQL …")
    ensure_up(settings)
    dsn = admin_dsn(settings)
    applied = migrate(dsn, backend=settings.db_backend, secrets_dir=settings.resolved_data_dir() / "secrets")
    console.print(f"database migrated ({len(applied)} new migrations)")
    with psycopg.connect(dsn) as conn:
        upsert_registry(conn, load_registry_file(scenario_path))
    console.print(f"registry loaded from {scenario_path}")
    logins = _demo_logins(dsn)

    log_dir = settings.resolved_data_dir() / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.setdefault("NXEM_PORTAL_COOKIE_SECURE", "false")  # plain http on loopback: a Secure cookie would not stick
    procs = {
        "collector": _spawn("collector", "collector", log_dir, env),
        "worker": _spawn("worker", "stream", log_dir, env),
        "portal": _spawn("portal", "portal", log_dir, env),
    }
    try:
        time.sleep(3)
        for name, p in procs.items():
            if p.poll() is not None:
                raise SystemExit(f"{name} exited with {p.returncode}; see {log_dir / f'demo-{name}.log'}")
        sc = live_scenario(load_scenario(scenario_path), duration_s)
        console.print(f"simulating {scenario_path}: its history from {sc.simulation.start:%Y-%m-%d %H:%M} UTC at "
                      f"full speed, then live every {sc.simulation.interval} until stopped")
        def caught_up(k: int, _n: int) -> None:
            if k == history_ticks:
                console.print("history published: live from now on")

        def simulate() -> None:
            try:
                truth = run_scenario(sc, SimulatorSettings(), mode="realtime", progress=caught_up)
                console.print(f"published {truth.readings} readings in {truth.messages} MQTT messages")
            except Exception as err:  # noqa: BLE001 - shown, the demo's other parts keep running
                console.print(f"[red]simulator stopped: {err}")

        history_ticks = int((datetime.now(UTC) - sc.simulation.start) // sc.simulation.interval)
        simulator = threading.Thread(target=simulate, name="simulator", daemon=True)
        simulator.start()
        console.rule("where to look")
        console.print("portal:            http://127.0.0.1:8080/  (logins below)")
        for user, password, role in logins:
            console.print(f"  {role:<11} {user} / {password}")
        console.print("collector metrics: http://127.0.0.1:9101/metrics")
        console.print("worker metrics:    http://127.0.0.1:9102/metrics")
        console.print(f"database:          psql '{_masked(dsn)}'  (password in {settings.resolved_data_dir()}/secrets/)")
        console.print(f"Kafka topics:      {', '.join(settings.topics)} on {settings.kafka_bootstrap}")
        console.print("stop:              Ctrl-C (services stay up: ./nx services down)")
        deadline = time.monotonic() + duration_s if duration_s > 0 else None
        while deadline is None or time.monotonic() < deadline:
            time.sleep(1)
            for name, p in procs.items():
                if p.poll() is not None:
                    raise SystemExit(f"{name} exited with {p.returncode}; see {log_dir / f'demo-{name}.log'}")
        # the scenario ends with the demo (live_scenario): let it finish publishing what it has
        simulator.join(600)
        _settle()  # and the pipeline store the last of it before the processes stop
    except KeyboardInterrupt:
        pass
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs.values():
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        # The simulator stopped with the demo: nothing is on its way to the collector, and its
        # persistent session would otherwise queue every later reading on this broker (tests,
        # benchmarks) for its 7-day expiry.
        from collector.mqtt import purge_session
        from collector.settings import CollectorSettings

        purge_session(settings.mqtt_host, settings.mqtt_port, CollectorSettings().collector_id)
        console.print("demo processes stopped")


def _settle(quiet_s: float = 3.0, timeout_s: float = 150.0) -> None:
    """Wait until the worker holds its partitions, its group's committed offsets reached the end
    of every partition (lag 0: the worker commits after the database transaction, so everything
    published is stored) and it has written nothing new for ``quiet_s``. "Nothing new" alone also
    held for a worker still without partitions (an empty first assignment: kafka-python's
    "No partition metadata for topic"), and the demo then stopped before storing anything; the
    worker's watchdog recreates such a consumer after ``NXEM_WORKER_NO_ASSIGNMENT_S`` (60 s)."""
    import urllib.request

    from stream.settings import WorkerSettings

    port = WorkerSettings().worker_metrics_port
    last: float | None = None
    since, deadline = time.monotonic(), time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
        except (OSError, http.client.HTTPException):  # not up yet, or cut short by its exit
            body = ""
        values = [line.split() for line in body.splitlines() if line and not line.startswith("#")]
        written = next((float(v[1]) for v in values if v[0] == "nxem_worker_readings_written_total"), None)
        ready = any(v[0] == "nxem_worker_ready" and float(v[1]) == 1 for v in values)
        lags = [float(v[-1]) for v in values if v[0].startswith("nxem_worker_partition_lag_records{")]
        if written != last:
            last, since = written, time.monotonic()
        elif ready and lags and sum(lags) == 0 and time.monotonic() - since >= quiet_s:
            return
        time.sleep(0.5)
    console.print(f"[yellow]the worker did not catch up within {timeout_s:.0f} s; stopping anyway")


def live_scenario(sc: Scenario, duration_s: float) -> Scenario:
    """The scenario's history up to now, then on in real time: realtime mode publishes past
    intervals at once and each later one when the wall clock reaches it; one continuous run,
    so the registers go on counting instead of restarting."""
    sim = sc.simulation
    live_for = timedelta(seconds=duration_s) if duration_s > 0 else timedelta(days=365)
    end = max(sim.end, datetime.now(UTC) + live_for)
    return replace(sc, simulation=replace(sim, end=end, mode="realtime"))


def _masked(dsn: str) -> str:
    from ops.services.postgres import masked_dsn

    return masked_dsn(ServiceSettings()) if "password" in dsn else dsn


def _demo_logins(dsn: str) -> list[tuple[str, str, str]]:
    try:
        from portal.users import ensure_demo_users
    except ImportError:
        return []
    with psycopg.connect(dsn) as conn:
        users: list[tuple[str, str, str]] = ensure_demo_users(conn)
    return users
