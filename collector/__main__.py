"""Wiring of the collector: settings -> adapters -> loop. ``python -m collector`` or ``nxem collector``."""

from __future__ import annotations

import gc
import logging
import queue
import signal
from typing import Any
from datetime import timedelta

import psycopg

from collector import metrics as m
from collector import payload
from collector.mqtt import Inbound, MqttOptions, MqttSubscriber
from collector.normalise import Limits
from collector.service import Collector, Routing, Topics
from collector.settings import CollectorSettings
from nxem.errors import BackendUnavailable
from nxem.health import Health, PgPing, serve, watch
from nxem.kafka import ClusterWatch, check_record_limits, make_producer, topic_max_message_bytes
from storage import roles
from storage.registry import MeterRoute, RowCache, load_routing, route_of
from storage.watch import RegistryWatcher

log = logging.getLogger(__name__)

# /healthz fails when the loop has not read its inbox this long: it reads it every 0.2 s when
# idle, and one message blocks it at most the producer's max_block_ms (10 s) per record.
LOOP_STALL_S = 120.0
HEALTH_INTERVAL_S = 5.0


class _Inbox(queue.Queue[Inbound]):
    """The collector's inbox: the loop reading it is the process's heartbeat (/healthz)."""

    def __init__(self, health: Health) -> None:
        super().__init__()
        self._health = health

    def get(self, block: bool = True, timeout: float | None = None) -> Inbound:
        self._health.beat()
        return super().get(block, timeout)


def _health(s: CollectorSettings, sub: MqttSubscriber, health: Health) -> None:
    """Readiness of the collector: subscribed to MQTT, its topics on a reachable Kafka, the
    database (routing refresh) reachable; each watched from a thread of its own."""
    cluster = ClusterWatch(s.kafka_bootstrap, f"{s.collector_id}-watch", [s.topic_readings, s.topic_deadletter])

    def kafka() -> str:
        counts = cluster.partitions()
        missing = [t for t, n in counts.items() if n == 0]
        if missing:
            raise BackendUnavailable(f"no partition metadata for topic(s) {', '.join(missing)}")
        return f"partitions {counts}"

    def mqtt() -> str:
        if not sub.connected.is_set():
            raise BackendUnavailable(f"MQTT {s.mqtt_host}:{s.mqtt_port} not connected and subscribed")
        return "subscribed"

    watch(health, "mqtt", mqtt, 1.0)
    watch(health, "kafka", kafka, HEALTH_INTERVAL_S)
    watch(health, "database", PgPing(roles.dsn_for("nxem_ingest", s), "nxem-collector-health"), HEALTH_INTERVAL_S)


class _RoutingLoader:
    """Loads the routing, reusing the route objects of unchanged meters across reloads."""

    def __init__(self) -> None:
        self._cache: RowCache[tuple[str, str], MeterRoute] = RowCache(route_of, lambda r: (r[0], r[1]))

    def __call__(self, conn: psycopg.Connection[Any]) -> Routing:
        r = load_routing(conn, self._cache)
        return r.gateways, r.meters


def _check_limits(s: CollectorSettings) -> None:
    """Fail at start, naming the setting, unless the largest dead letter of a payload at the cap
    fits the producer and both topics take the producer's largest batch (nxem/kafka.py)."""
    check_record_limits(s.collector_max_payload_bytes, {})  # before asking Kafka anything
    topics = {s.topic_readings: "NXEM_TOPIC_READINGS", s.topic_deadletter: "NXEM_TOPIC_DEADLETTER"}
    check_record_limits(s.collector_max_payload_bytes, topic_max_message_bytes(s.kafka_bootstrap, list(topics)),
                        topic_settings=topics)


def main(settings: CollectorSettings | None = None) -> None:
    s = settings or CollectorSettings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    health = Health(("mqtt", "kafka", "database"), stall_s=LOOP_STALL_S)
    if s.collector_metrics_port:
        serve(health, s.collector_metrics_port, s.metrics_host)  # /metrics, /healthz, /readyz
    routing = RegistryWatcher(roles.dsn_for("nxem_ingest", s), _RoutingLoader(), s.collector_routing_refresh_s, "routing")
    m.REGISTRY_VERSION.set_function(lambda: routing.version)
    inbox: queue.Queue[Inbound] = _Inbox(health)
    m.INBOX.set_function(inbox.qsize)
    topic_filter = payload.TOPIC_FILTER
    if s.collector_shared_group:
        topic_filter = f"$share/{s.collector_shared_group}/{topic_filter}"
    sub = MqttSubscriber(
        MqttOptions(
            host=s.mqtt_host, port=s.mqtt_port, client_id=s.collector_id, topic_filter=topic_filter,
            username=s.collector_mqtt_username, password_file=s.collector_mqtt_password_file,
            receive_maximum=s.collector_receive_maximum, session_expiry_s=s.collector_session_expiry_s,
        ),
        inbox,
    )
    _check_limits(s)
    collector = Collector(
        sub, inbox, lambda: make_producer(s.kafka_bootstrap, s.collector_id),
        Topics(s.topic_readings, s.topic_deadletter), routing,
        Limits(
            max_future=timedelta(seconds=s.collector_max_future_s),
            max_age=timedelta(days=s.collector_max_age_days),
            max_payload_bytes=s.collector_max_payload_bytes,
        ),
    )
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: collector.stop())
    sub.start()
    m.READY.set(1)
    _health(s, sub, health)
    gc.freeze()  # start-up objects never need collecting: measured +5-7 % here
    log.info("collector running mqtt=%s:%s kafka=%s", s.mqtt_host, s.mqtt_port, s.kafka_bootstrap)
    try:
        collector.run()
    finally:
        sub.stop()
        collector.close(timeout_s=10)


if __name__ == "__main__":
    main()
