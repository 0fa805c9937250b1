"""Nothing lost, nothing doubled: damage done to the running pipeline during a simulated stream.

Each test runs its own pipeline (fresh database, topics, consumer group) and streams six
simulated data centres (three at PUE 1.3, three at PUE 1.1; 1-minute registers, a 1-hour PUE
window, Ningxia limit 1.2) through the real Mosquitto -> collector -> Kafka -> worker ->
PostgreSQL, and while the stream runs it does one kind of damage: kill -9 of the collector, of a
worker, of one of two workers in a group, or a restart of Kafka, Mosquitto or PostgreSQL.
Afterwards it checks against the simulator's ground truth (computed by the simulator, not by the
pipeline's code):
* the database holds exactly the published readings: the count, and per meter the count and an
  order-independent checksum of (meter, ts, value);
* the right alerts, once each: one PUE alert opened per hot site, none for a cool one, no
  identity opened twice, and the transitions on the alerts topic (deduplicated on their
  identity, as a consumer does) are exactly the transitions in the database.
The figures of every run are appended to ``.data/reports/damage.jsonl`` for the README.
"""

from __future__ import annotations

import json
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from nxem import contract
from tests.harness import Pipeline, consume_all, metric, pipeline, wait_for
from ops.services import ServiceSettings, ensure_up
from ops.services import kafka as kafka_service
from ops.services import mosquitto as mosquitto_service
from ops.services import postgres as postgres_service
from simulators import uscc
from simulators.run import run_scenario
from simulators.scenario import data_centre_document, parse_scenario
from simulators.settings import SimulatorSettings
from simulators.truth import GroundTruth, checksum

pytestmark = pytest.mark.integration

SITES = 6  # even ones hot (PUE 1.3), odd ones cool (PUE 1.1)
HOURS = 4  # 240 one-minute ticks per meter
SPEED = 1200.0  # 4 simulated hours in 12 s of wall clock
IT_KW = 500.0
# A silence sweep every 2 s (default 60): every meter's silence alert opens while the stream
# runs, so the wall-clock transitions and their outbox are in every damage test and are settled
# before ``_verify`` compares the topic with the database. At 60 s the first sweep fell in a
# slow run's comparison: stored and relayed between the database read and the topic read.
WORKER_ENV = {"NXEM_WORKER_SILENCE_CHECK_S": "2"}


@dataclass
class Stream:
    """A scenario published from a background thread; ``truth`` once it is all acknowledged."""

    p: Pipeline
    hot: set[str]
    cool: set[str]
    thread: threading.Thread
    truth: list[GroundTruth] = field(default_factory=list)
    error: list[BaseException] = field(default_factory=list)

    def published(self, timeout_s: float = 180) -> GroundTruth:
        self.thread.join(timeout_s)
        assert not self.thread.is_alive(), "the simulator did not finish publishing"
        if self.error:
            raise self.error[0]
        return self.truth[0]


def _document(seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    start = now - timedelta(hours=HOURS + 1)
    doc: dict[str, Any] | None = None
    for i in range(SITES):
        ent = uscc.generate(rng, "中卫")
        one = data_centre_document(ent, f"dmg-{seed}-{i}", f"gw-dmg-{seed}-{i}", 1.3 if i % 2 == 0 else 1.1,
                                   IT_KW, start, HOURS, interval_minutes=1)
        one["enterprises"][0]["sites"][0]["pue_window_hours"] = 1
        if doc is None:
            doc = one
        else:
            doc["enterprises"] += one["enterprises"]
    assert doc is not None
    doc["simulation"]["mode"] = "accelerated"
    return doc


def _readings(p: Pipeline) -> int:
    try:
        return int(p.sql("SELECT count(*) FROM readings")[0][0])
    except psycopg.OperationalError:
        return -1  # PostgreSQL is being restarted by the test


@pytest.fixture
def stream(services: ServiceSettings) -> Iterator[Callable[..., Stream]]:
    """Start a pipeline, its processes and the simulated stream; yields a starter."""
    with pipeline(services) as p:

        def start(workers: int = 1, collector_env: dict[str, str] | None = None) -> Stream:
            seed = random.randrange(10**6)
            doc = _document(seed)
            p.register(doc)
            p.start_collector(**(collector_env or {}))
            for i in range(workers):
                p.start_worker(name=f"worker{i}", **WORKER_ENV)
            sites = [e["sites"][0]["code"] for e in doc["enterprises"]]
            scenario = parse_scenario(doc, now=datetime.now(UTC), name=f"damage-{seed}")
            holder = Stream(p, set(sites[0::2]), set(sites[1::2]), threading.Thread())

            def publish() -> None:
                try:
                    holder.truth.append(run_scenario(scenario, SimulatorSettings(sim_connections=3),
                                                     mode="accelerated", speed=SPEED, ack_timeout_s=150))
                except BaseException as err:  # noqa: BLE001 - re-raised in the test thread
                    holder.error.append(err)

            holder.thread = threading.Thread(target=publish, name="simulator", daemon=True)
            holder.thread.start()
            # the damage lands mid-stream: once a few hundred readings are stored
            wait_for(lambda: _readings(p) >= 300, 60, "the stream under way")
            return holder

        yield start
        ensure_up(services)  # whatever a test stopped is running again for the next one


def _verify(s: Stream, damage: str, extra: dict[str, Any] | None = None) -> None:
    """Exactly the published readings, and the right alerts once each (see the module doc)."""
    truth = s.published()
    p = s.p
    expected = truth.readings
    # 6 sites × 2 meters × 240 one-minute ticks
    assert expected == SITES * 2 * HOURS * 60 == 2880
    wait_for(lambda: _readings(p) >= expected, 180, f"{expected} readings stored")
    time.sleep(1.0)  # anything doubled or late would land now
    rows = p.sql("SELECT m.gateway_id, m.code, r.ts, r.value FROM readings r JOIN meters m ON m.id = r.meter_id")
    stored: dict[tuple[str, str], list[tuple[str, datetime, float]]] = {}
    for gw, code, ts, value in rows:
        stored.setdefault((gw, code), []).append((code, ts, value))
    assert len(rows) == expected, f"{len(rows) - expected:+d} readings against the ground truth"
    for mt in truth.meters:
        got = stored.get((mt.gateway, mt.meter), [])
        assert len(got) == mt.count == HOURS * 60, f"{mt.gateway}/{mt.meter}: {len(got)} of {mt.count}"
        assert checksum(got) == mt.checksum, f"{mt.gateway}/{mt.meter} differs from what was published"

    def pue_opened() -> list[tuple[Any, ...]]:
        return p.sql("SELECT s.code, t.alert_key FROM alert_transitions t JOIN sites s ON s.id = t.source_id "
                     "WHERE t.source_kind = 'site' AND t.rule = 'pue_above_limit' AND t.kind = 'opened'")

    # facility / IT = (500 kW × 1.3) / 500 kW = 1.3 > 1.2 for the hot sites; 1.1 for the cool ones
    opened = wait_for(lambda: (o := pue_opened()) and len(o) >= len(s.hot) and o, 60, "a PUE alert per hot site")
    assert sorted(code for code, _ in opened) == sorted(s.hot)
    assert not {code for code, _ in opened} & s.cool
    per_identity = Counter(key for (key,) in p.sql(
        "SELECT alert_key FROM alert_transitions WHERE kind = 'opened'"))
    doubled = {k: n for k, n in per_identity.items() if n > 1}
    assert not doubled, f"alerts opened more than once: {doubled}; the first one's transitions: " + "; ".join(
        map(str, p.sql("SELECT kind, at, value, details->>'last_reading' FROM alert_transitions WHERE alert_key = %s "
                       "ORDER BY id", (next(iter(doubled), ""),))))
    open_pue = p.sql("SELECT count(*) FROM alerts WHERE rule = 'pue_above_limit' AND cleared_at IS NULL")[0][0]
    assert open_pue == len(s.hot)

    # Wall-clock transitions: each meter's last reading is 1 h before the wall clock (the scenario
    # ends 1 h ago) = 60 one-minute intervals >= 4, so every one of the 6 × 2 = 12 meters is
    # silent, and its alert opens once (the sweep after a restart finds it open in the database).
    def silent_opened() -> list[tuple[Any, ...]]:
        return p.sql("SELECT alert_key FROM alert_transitions WHERE rule = 'meter_silent' AND kind = 'opened'")

    silent = wait_for(lambda: (o := silent_opened()) and len(o) >= SITES * 2 and o, 60, "a silence alert per meter")
    assert len(silent) == len({k for (k,) in silent}) == SITES * 2 == 12
    # ... and they reach the topic through the outbox after their commit
    wait_for(lambda: p.sql("SELECT count(*) FROM alert_transitions WHERE NOT published")[0][0] == 0, 60,
             "the outbox relayed every stored transition")
    db = {(k, kind, at) for k, kind, at in p.sql("SELECT alert_key, kind, at FROM alert_transitions")}
    on_topic = [contract.decode_alert(v) for v in consume_all(p.topics["alerts"], p.settings.kafka_bootstrap)]
    assert {(e.alert_key, e.kind, e.at) for e in on_topic} == db
    duplicates = sum(metric(w.metrics_port, "nxem_worker_duplicate_readings_total") or 0
                     for w in p.procs if w.module == "stream" and w.popen.poll() is None)
    _report(damage, truth, len(rows), len(on_topic), len(db),
            {"duplicates_ignored_by_live_workers": int(duplicates), **(extra or {})})



def _report(damage: str, truth: GroundTruth, stored: int, events: int, transitions: int,
            extra: dict[str, Any]) -> None:
    folder = ServiceSettings().resolved_data_dir() / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    row = {"at": datetime.now(UTC).isoformat(), "damage": damage, "messages": truth.messages,
           "readings_published": truth.readings, "readings_stored": stored,
           "lost": truth.readings - stored if stored < truth.readings else 0,
           "doubled": stored - truth.readings if stored > truth.readings else 0,
           "alert_events_on_topic": events, "alert_transitions": transitions, **extra}
    with (folder / "damage.jsonl").open("a", encoding="utf-8") as f:
        f.write(json.dumps(row, ensure_ascii=False) + "\n")


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


# -- the damage --------------------------------------------------------------------------


@contextmanager
def _workers_stuck_mid_write(p: Pipeline, n: int = 1) -> Iterator[None]:
    """Hold an exclusive lock on ``readings`` until ``n`` workers wait on it inside their write
    transaction: they have polled, decided and published their alerts, and committed nothing."""
    with psycopg.connect(p.admin_dsn) as conn:
        conn.execute("LOCK TABLE readings IN ACCESS EXCLUSIVE MODE")
        wait_for(lambda: p.sql("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND "
                               "application_name = 'nxem-worker' AND wait_event_type = 'Lock'",
                               (p.dbname,))[0][0] >= n, 30, f"{n} worker(s) blocked mid-write")
        yield
        conn.rollback()


def test_kill_9_of_the_collector_with_messages_unacknowledged(stream: Callable[..., Stream]) -> None:
    s = stream()
    collector = next(x for x in s.p.procs if x.module == "collector")
    # Frozen, it keeps its socket: the broker sends it messages it will never acknowledge.
    collector.popen.send_signal(signal.SIGSTOP)
    time.sleep(1.0)
    collector.kill(signal.SIGKILL)
    time.sleep(1.0)  # the broker queues for the collector's persistent session meanwhile
    s.p.start_collector()  # same client id: the session and its unacknowledged messages resume
    _verify(s, "kill -9 collector")


def test_kill_9_of_a_worker_mid_batch(stream: Callable[..., Stream]) -> None:
    s = stream()
    worker = next(x for x in s.p.procs if x.module == "stream")
    with _workers_stuck_mid_write(s.p):
        worker.kill(signal.SIGKILL)  # its transaction dies uncommitted, its offsets uncommitted
    s.p.start_worker(name="worker0", **WORKER_ENV)  # same group: resumes from the committed offsets
    _verify(s, "kill -9 worker mid-batch")


def test_two_workers_in_a_group_one_killed_mid_batch(stream: Callable[..., Stream]) -> None:
    s = stream(workers=2)
    w0, w1 = [x for x in s.p.procs if x.module == "stream"]
    with _workers_stuck_mid_write(s.p, n=1):
        w1.kill(signal.SIGKILL)
    # after the session timeout (10 s) the group gives w1's partitions to w0
    _verify(s, "kill -9 one of two workers mid-batch")
    assert w0.popen.poll() is None


def test_restart_of_kafka_with_backpressure(stream: Callable[..., Stream], services: ServiceSettings) -> None:
    receive_max = 50
    s = stream(collector_env={"NXEM_COLLECTOR_RECEIVE_MAXIMUM": str(receive_max)})
    collector = next(x for x in s.p.procs if x.module == "collector")
    worker = next(x for x in s.p.procs if x.module == "stream")
    rss0 = {"collector": _rss_kib(collector.popen.pid), "worker": _rss_kib(worker.popen.pid)}
    kafka_service.stop(services)
    peak = dict(rss0)
    unacked_peak = 0
    t_end = time.monotonic() + 8.0
    while time.monotonic() < t_end:  # the simulator keeps publishing; Mosquitto queues
        peak = {"collector": max(peak["collector"], _rss_kib(collector.popen.pid)),
                "worker": max(peak["worker"], _rss_kib(worker.popen.pid))}
        got = metric(collector.metrics_port, "nxem_collector_messages_in_total") or 0
        acked = metric(collector.metrics_port, "nxem_collector_messages_acked_total") or 0
        unacked_peak = max(unacked_peak, int(got - acked))
        time.sleep(0.5)
    kafka_service.start(services)
    growth = {k: (peak[k] - rss0[k]) // 1024 for k in peak}
    # the collector takes at most Receive Maximum unacknowledged messages from the broker
    assert unacked_peak <= receive_max
    assert growth["collector"] < 64 and growth["worker"] < 64, f"RSS grew by {growth} MiB while Kafka was down"
    _verify(s, "Kafka stopped 8 s and restarted",
            {"unacked_peak": unacked_peak, "receive_maximum": receive_max, "rss_growth_mib": growth})


def test_restart_of_mosquitto(stream: Callable[..., Stream], services: ServiceSettings) -> None:
    s = stream()
    mosquitto_service.stop(services)  # SIGTERM: the broker saves its sessions and queues
    time.sleep(1.0)
    mosquitto_service.start(services)
    _verify(s, "Mosquitto restarted")


def test_restart_of_postgresql(stream: Callable[..., Stream], services: ServiceSettings) -> None:
    s = stream()
    worker = next(x for x in s.p.procs if x.module == "stream")
    rss0 = _rss_kib(worker.popen.pid)
    postgres_service.stop(services)
    time.sleep(5.0)  # the worker polls nothing new meanwhile: it rewinds and backs off
    rss1 = _rss_kib(worker.popen.pid)
    postgres_service.start(services)
    assert (rss1 - rss0) // 1024 < 64
    assert (metric(worker.metrics_port, "nxem_worker_backend_errors_total") or 0) >= 1
    _verify(s, "PostgreSQL stopped 5 s and restarted", {"worker_rss_growth_mib": (rss1 - rss0) // 1024})
