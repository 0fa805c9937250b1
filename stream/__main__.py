"""Wiring of a stream worker: settings -> adapters -> loop. ``python -m stream`` or ``nxem worker``."""

from __future__ import annotations

import gc
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import psycopg

from nxem.errors import BackendUnavailable
from nxem.health import Health, serve, watch
from nxem.kafka import (ClusterWatch, Consumer, GroupConsumer, Partition, alert_publisher, key_owner, make_consumer,
                        make_producer)
from nxem.watchdog import GroupView, Watchdog, WatchdogConfig
from analytics.coefficients import ElectricityValue
from storage import roles
from storage.registry import MeterRow, RowCache, load_meters, load_sites, meter_row
from storage.watch import RegistryWatcher
from stream import metrics as m
from stream.daily import DayResult, scheduled_job
from stream.postgres import PgStore, maintain_rollups
from stream.registry import SpecCache, build_registry
from stream.service import Worker, WorkerTopics
from stream.settings import WorkerSettings
from stream.sites import Registry, SiteEngine

log = logging.getLogger(__name__)


class _RegistryLoader:
    """Loads the rules' registry, reusing the objects of unchanged meters across reloads."""

    def __init__(self, electricity: ElectricityValue) -> None:
        self._rows: RowCache[int, MeterRow] = RowCache(meter_row, lambda r: r[0])
        self._specs = SpecCache(electricity)  # NXEM_ELECTRICITY_BASIS: how the rules value electricity

    def __call__(self, conn: psycopg.Connection[Any]) -> Registry:
        return build_registry(load_sites(conn), load_meters(conn, self._rows), self._specs)


def _rollup_loop(dsn: str, interval_s: float,
                 daily: Callable[[datetime], list[DayResult] | None] | None = None) -> None:
    """Background job: the daily rollup's closed days, then the once-a-day checks of the
    ended local days (``stream.daily``); each one worker of the group at a time."""
    while True:
        now = datetime.now(UTC)
        try:
            res = maintain_rollups(dsn, now)
            if res is not None and (res.closed_days or res.recomputed):
                log.info("rollups closed_days=%s recomputed=%s closed_through=%s",
                         res.closed_days, res.recomputed, res.closed_through)
                if res.closed_days:
                    continue  # catching up: go on without waiting (the checks read closed days)
        except BackendUnavailable as err:
            log.warning("rollup maintenance skipped: %s", err)
        if daily is not None:
            try:
                for day in daily(now) or []:
                    log.info("daily checks local_day=%s summary=%s", day.local_day, day.summary)
            except BackendUnavailable as err:
                log.warning("daily checks postponed: %s", err)
            except Exception:  # noqa: BLE001 - this thread's top level: log once, retry next round
                log.exception("daily checks failed")
        time.sleep(interval_s)


def _outbox_loop(dsn: str, publish: Callable[[list[Any]], None], interval_s: float, health: Health) -> None:
    """Background job: publish the transitions others wrote (acknowledgements) to the alerts topic.
    Its round trip to the database every ``interval_s`` is also the worker's database check
    while the poll loop is idle."""
    from stream.outbox import relay

    conn: psycopg.Connection[Any] | None = None
    while True:
        try:
            if conn is None or conn.closed:
                conn = psycopg.connect(dsn, autocommit=True, connect_timeout=10, application_name="nxem-outbox")
            while relay(conn, publish) > 0:
                pass  # a backlog: go on without waiting
            health.report("database", True, "reachable")
        except (BackendUnavailable, psycopg.OperationalError) as err:
            log.warning("outbox relay postponed: %s", err)
            if isinstance(err, psycopg.OperationalError):
                health.report("database", False, f"PostgreSQL: {err}")
            if conn is not None:
                conn.close()
            conn = None
        time.sleep(interval_s)


class _ObservedStore:
    """The worker's store, reporting each call's outcome as the ``database`` check."""

    def __init__(self, store: PgStore, health: Health) -> None:
        self._store, self._health = store, health

    def _seen(self, err: BackendUnavailable | None) -> None:
        self._health.report("database", err is None, "reachable" if err is None else str(err))

    def write(self, rows: list[tuple[int, datetime, float]], alerts: list[Any], dead: list[Any],
              relay: Sequence[Any] = ()) -> Any:
        try:
            result = self._store.write(rows, alerts, dead, relay)
        except BackendUnavailable as err:
            self._seen(err)
            raise
        self._seen(None)
        return result

    def quarantine(self, items: list[Any]) -> int:
        try:
            stored = self._store.quarantine(items)
        except BackendUnavailable as err:
            self._seen(err)
            raise
        self._seen(None)
        return stored

    def history(self, site_id: int, meter_ids: Iterable[int], since: datetime) -> list[tuple[int, datetime, float]]:
        try:
            rows = self._store.history(site_id, meter_ids, since)
        except BackendUnavailable as err:
            self._seen(err)
            raise
        self._seen(None)
        return rows

    def day_rollups(self, site_id: int, meter_ids: Iterable[int], since: datetime, until: datetime) -> list[Any]:
        try:
            rows = self._store.day_rollups(site_id, meter_ids, since, until)
        except BackendUnavailable as err:
            self._seen(err)
            raise
        self._seen(None)
        return rows

    def active_alerts(self, site_id: int) -> list[Any]:
        try:
            found = self._store.active_alerts(site_id)
        except BackendUnavailable as err:
            self._seen(err)
            raise
        self._seen(None)
        return found


T = TypeVar("T")


def _until_up(what: str, check: str, build: Callable[[], T], health: Health, stop: threading.Event) -> T | None:
    """``build()`` retried with a backoff (0.5 s -> 30 s) while it raises ``BackendUnavailable``,
    reported as the failing ``check``: a backend missing at start-up is waited for, never a
    crash loop. None when the worker is stopped meanwhile."""
    backoff = 0.5
    while not stop.is_set():
        health.beat()
        try:
            return build()
        except BackendUnavailable as err:
            health.report(check, False, str(err))
            log.warning("%s unavailable, retrying in %.1fs: %s", what, backoff, err)
            stop.wait(backoff)
            backoff = min(30.0, backoff * 2)
    return None


def _wait_for_topics(cluster: ClusterWatch, health: Health, patience_s: float, stop: threading.Event) -> bool:
    """Wait until every topic of the worker has partitions: a consumer that subscribes before
    gets an empty assignment (``No partition metadata for topic``) and, with kafka-python 3.0.x,
    may keep none for good. Logged every 10 s; after ``patience_s`` (and every ``patience_s``
    again) an error naming the missing topic(s); never gives up. False when stopped."""
    t0 = time.monotonic()
    last_log, next_error = t0 - 10, t0 + patience_s  # the first miss is logged at once
    while not stop.is_set():
        health.beat()
        try:
            counts = cluster.partitions()
            missing = [t for t, n in counts.items() if n == 0]
            problem = f"no partition metadata for topic(s) {', '.join(missing)}" if missing else ""
        except BackendUnavailable as err:
            counts, problem = {}, str(err)
        if not problem:
            health.report("kafka", True, f"topics {counts}")
            log.info("topics ready partitions=%s waited_s=%.1f", counts, time.monotonic() - t0)
            return True
        health.report("kafka", False, problem)
        now = time.monotonic()
        if now >= next_error:
            log.error("still waiting after %.0f s: %s (create them: `./nx services up` locally, the kafka-topics "
                      "job in deploy/); retrying", now - t0, problem)
            next_error = now + patience_s
        elif now - last_log >= 10:
            log.info("waiting for the topics: %s", problem)
            last_log = now
        stop.wait(1.0)
    return False


def _watch_cluster(cluster: ClusterWatch, latest: list[GroupView | None]) -> Callable[[], str]:
    """The ``kafka`` health probe: one look at the broker, kept for the watchdog, exported."""
    def probe() -> str:
        view = cluster.look()
        latest[0] = view
        m.GROUP_MEMBERS.set(view.members)
        for (topic, partition), end in view.end_offsets.items():
            committed = view.committed.get((topic, partition), 0)
            m.PARTITION_LAG.labels(topic, str(partition)).set(max(0, end - committed))
            m.PARTITION_COMMITTED.labels(topic, str(partition)).set(committed)
        missing = [t for t, n in view.partitions.items() if n == 0]
        if missing:
            raise BackendUnavailable(f"no partition metadata for topic(s) {', '.join(missing)}")
        return f"partitions {dict(view.partitions)}, {view.members} group member(s), lag {view.lag()}"
    return probe


def _supervisor(group: GroupConsumer, dog: Watchdog, latest: list[GroupView | None],
                health: Health) -> Callable[[BackendUnavailable | None], Consumer]:
    """After every loop iteration: the heartbeat, the poll/partitions/lag checks, and the
    watchdog's remedy (a new consumer), logged and counted once per event."""
    def supervise(error: BackendUnavailable | None) -> Consumer:
        health.beat()
        held = group.held()
        # the member id matters only to a consumer holding nothing: no coordinator lock per poll otherwise
        verdict = dog.observe(time.monotonic(), held, latest[0], backend_error=error is not None,
                              member_id="" if held else group.member_id())
        health.report("poll", error is None, "polling" if error is None else f"backing off: {error}")
        health.report("partitions", verdict.partitions_ok, verdict.partitions_detail)
        health.report("lag", verdict.lag_ok, verdict.lag_detail)
        m.READY.set(1 if held else 0)
        if verdict.recreate is not None:
            detail = verdict.lag_detail if verdict.recreate == "stalled" else verdict.partitions_detail
            log.warning("watchdog: recreating the consumer reason=%s (%s)", verdict.recreate, detail)
            m.CONSUMER_RECREATED.labels(verdict.recreate).inc()
            try:
                group.recreate()
            except BackendUnavailable as err:
                log.warning("watchdog: the new consumer could not be built, keeping the old one: %s", err)
            dog.reset()
        return group.consumer
    return supervise


CHECKS = ("kafka", "database", "poll", "partitions", "lag")


def main(settings: WorkerSettings | None = None) -> None:
    s = settings or WorkerSettings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    health = Health(CHECKS, stall_s=s.worker_health_stall_s)
    if s.worker_metrics_port:
        serve(health, s.worker_metrics_port, s.metrics_host)  # /metrics, /healthz, /readyz
    stop = threading.Event()
    worker: Worker | None = None

    def on_signal(*_: Any) -> None:
        stop.set()
        if worker is not None:
            worker.stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    topics = [s.topic_readings, s.topic_deadletter]
    cluster = ClusterWatch(s.kafka_bootstrap, f"{s.worker_id}-watch", topics, s.worker_group)
    if not _wait_for_topics(cluster, health, s.worker_topic_wait_s, stop):
        return
    dsn = roles.dsn_for("nxem_ingest", s)
    store = _ObservedStore(PgStore(dsn), health)
    electricity = ElectricityValue(s.electricity_basis, s.electricity_equivalent_kgce_per_kwh)
    registry = _until_up("registry (PostgreSQL)", "database",
                         lambda: RegistryWatcher(dsn, _RegistryLoader(electricity), s.worker_registry_refresh_s,
                                                 "registry"),
                         health, stop)
    if registry is None:
        return
    health.report("database", True, "reachable")

    def assigned(parts: frozenset[Partition]) -> None:
        log.info("partitions assigned %s", sorted(parts))
        m.READY.set(1 if parts else 0)

    def revoked(_parts: frozenset[Partition]) -> None:
        engine.reset()  # partitions moved: rebuild site state from the database when seen again

    def build() -> Consumer:
        return make_consumer(s.kafka_bootstrap, s.worker_group, s.worker_id,
                             metadata_max_age_ms=int(s.worker_metadata_max_age_s * 1000))

    group = _until_up("Kafka consumer", "kafka", lambda: GroupConsumer(build, topics, assigned, revoked),
                      health, stop)
    if group is None:
        return
    owned = key_owner(group, s.topic_readings)
    engine = SiteEngine(registry, store.history, store.active_alerts, timedelta(days=s.worker_state_horizon_days),
                        owns=lambda site_id: owned(str(site_id).encode()),  # the collector's key
                        fine_horizon=timedelta(days=s.worker_fine_horizon_days),
                        day_history=store.day_rollups)  # day totals beyond the fine horizon
    latest: list[GroupView | None] = [None]
    watch(health, "kafka", _watch_cluster(cluster, latest), s.worker_watchdog_interval_s)
    dog = Watchdog(WatchdogConfig(no_assignment_s=s.worker_no_assignment_s, stall_s=s.worker_stall_s,
                                  not_in_group_s=s.worker_not_in_group_s,
                                  view_max_age_s=3 * s.worker_watchdog_interval_s + 10))
    producer = make_producer(s.kafka_bootstrap, s.worker_id)
    publish_alerts = alert_publisher(producer, s.topic_alerts)  # the background jobs share the producer
    daily = scheduled_job(s, publish_alerts) if s.worker_daily_checks else None
    threading.Thread(target=_rollup_loop, args=(dsn, s.worker_rollup_interval_s, daily), name="rollups",
                     daemon=True).start()
    threading.Thread(target=_outbox_loop, args=(dsn, publish_alerts, s.worker_outbox_interval_s, health),
                     name="outbox", daemon=True).start()
    worker = Worker(
        group.consumer, producer, WorkerTopics(s.topic_readings, s.topic_alerts, s.topic_deadletter),
        engine, store, max_records=s.worker_max_poll_records, tick_s=s.worker_silence_check_s,
        supervise=_supervisor(group, dog, latest, health),
    )
    if stop.is_set():
        worker.stop()
    gc.freeze()
    log.info("worker running group=%s kafka=%s", s.worker_group, s.kafka_bootstrap)
    try:
        worker.run()
    finally:
        group.close()
        producer.close(timeout=10)
        cluster.close()


if __name__ == "__main__":
    main()
