"""Wiring of a stream worker: settings -> adapters -> loop. ``python -m stream`` or ``nxem worker``."""

from __future__ import annotations

import gc
import logging
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from prometheus_client import start_http_server

from nxem.errors import BackendUnavailable
from nxem.kafka import alert_publisher, key_owner, make_consumer, make_producer
from storage import roles
from storage.registry import MeterRow, RowCache, load_meters, load_sites
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

    def __init__(self) -> None:
        self._rows: RowCache[int, MeterRow] = RowCache(lambda r: MeterRow(*r), lambda r: r[0])
        self._specs = SpecCache()

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


def _outbox_loop(dsn: str, publish: Callable[[list[Any]], None], interval_s: float) -> None:
    """Background job: publish the transitions others wrote (acknowledgements) to the alerts topic."""
    from stream.outbox import relay

    conn: psycopg.Connection[Any] | None = None
    while True:
        try:
            if conn is None or conn.closed:
                conn = psycopg.connect(dsn, autocommit=True, connect_timeout=10, application_name="nxem-outbox")
            while relay(conn, publish) > 0:
                pass  # a backlog: go on without waiting
        except (BackendUnavailable, psycopg.OperationalError) as err:
            log.warning("outbox relay postponed: %s", err)
            if conn is not None:
                conn.close()
            conn = None
        time.sleep(interval_s)


def main(settings: WorkerSettings | None = None) -> None:
    s = settings or WorkerSettings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if s.worker_metrics_port:
        start_http_server(s.worker_metrics_port, addr=s.metrics_host)
    dsn = roles.dsn_for("nxem_ingest", s)
    store = PgStore(dsn)
    registry = RegistryWatcher(dsn, _RegistryLoader(), s.worker_registry_refresh_s, "registry")
    consumer = make_consumer(s.kafka_bootstrap, s.worker_group, s.worker_id)
    owned = key_owner(consumer, s.topic_readings)
    engine = SiteEngine(registry, store.history, store.active_alerts, timedelta(days=s.worker_state_horizon_days),
                        owns=lambda site_id: owned(str(site_id).encode()),  # the collector's key
                        fine_horizon=timedelta(days=s.worker_fine_horizon_days))

    def on_revoke(_revoked: Any) -> None:
        engine.reset()  # partitions moved: rebuild site state from the database when seen again

    from kafka import ConsumerRebalanceListener

    class Listener(ConsumerRebalanceListener):  # type: ignore[misc]
        def on_partitions_revoked(self, revoked: Any) -> None:
            on_revoke(revoked)

        def on_partitions_assigned(self, assigned: Any) -> None:
            log.info("partitions assigned %s", sorted(tp.partition for tp in assigned))
            m.READY.set(1)

    consumer.subscribe([s.topic_readings, s.topic_deadletter], listener=Listener())
    producer = make_producer(s.kafka_bootstrap, s.worker_id)
    publish_alerts = alert_publisher(producer, s.topic_alerts)  # the background jobs share the producer
    daily = scheduled_job(s, publish_alerts) if s.worker_daily_checks else None
    threading.Thread(target=_rollup_loop, args=(dsn, s.worker_rollup_interval_s, daily), name="rollups",
                     daemon=True).start()
    threading.Thread(target=_outbox_loop, args=(dsn, publish_alerts, s.worker_outbox_interval_s),
                     name="outbox", daemon=True).start()
    worker = Worker(
        consumer, producer, WorkerTopics(s.topic_readings, s.topic_alerts, s.topic_deadletter),
        engine, store, max_records=s.worker_max_poll_records, tick_s=s.worker_silence_check_s,
    )
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: worker.stop())
    gc.freeze()
    log.info("worker running group=%s kafka=%s", s.worker_group, s.kafka_bootstrap)
    try:
        worker.run()
    finally:
        consumer.close()
        producer.close(timeout=10)


if __name__ == "__main__":
    main()
