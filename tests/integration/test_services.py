"""The local service runner against the real Mosquitto, Kafka and PostgreSQL it starts.

The services stay up afterwards (other integration tests share them); only
``test_mosquitto_restart_with_stale_pid_file`` stops one, and it brings it back.
"""

from __future__ import annotations

import os
import queue
import stat
import warnings
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from nxem.errors import ServiceError
from ops.services import admin_dsn, ensure_up, kafka, mosquitto, procs, runner
from ops.services.settings import ServiceSettings

with warnings.catch_warnings():
    # kafka-python 3.0.12 uses the deprecated importlib.resources.read_text at import time.
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka import KafkaAdminClient

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def settings() -> Iterator[ServiceSettings]:
    cfg = ServiceSettings()
    ensure_up(cfg)
    yield cfg


def test_up_twice_is_idempotent(settings: ServiceSettings) -> None:
    first = runner.up(settings)
    second = runner.up(settings)
    assert [r.name for r in second] == ["postgres", "mosquitto", "kafka"]
    assert not any(r.started for r in second), "a second `up` must not start anything"
    assert {r.name: r.status.pid for r in first} == {r.name: r.status.pid for r in second}, \
        "pids changed between two `up` calls: something was restarted"


def test_status_shows_all_three_running(settings: ServiceSettings) -> None:
    rows = {s.name: s for s in runner.status(settings)}
    assert set(rows) == {"postgres", "mosquitto", "kafka"}
    for name, row in rows.items():
        assert row.running, f"{name} is not running"
        assert row.pid is not None and Path(f"/proc/{row.pid}").exists(), f"{name} pid is not live"
    assert rows["kafka"].endpoint == f"kafka://{settings.kafka_bootstrap}"
    assert rows["mosquitto"].endpoint == f"mqtt://{settings.mqtt_host}:{settings.mqtt_port}"


def test_second_kafka_start_on_same_dir_is_refused(settings: ServiceSettings) -> None:
    """Even with its pid file lost and other ports, a second broker must not start on the dir."""
    other_ports = ServiceSettings(data_dir=settings.data_dir, kafka_bootstrap="127.0.0.1:29092",
                                  kafka_controller_port=29093)
    pid_path = procs.pid_file(settings, kafka.NAME)
    running = kafka.running_pid(settings)
    assert running is not None
    with runner.exclusive(settings):  # keep concurrent `up` calls away while the pid file is gone
        hidden = pid_path.with_suffix(".hidden")
        os.replace(pid_path, hidden)
        try:
            with pytest.raises(ServiceError, match="refusing to start"):
                kafka.start(other_ports)
        finally:
            os.replace(hidden, pid_path)
    assert kafka.running_pid(settings) == running, "the running broker was disturbed"
    assert kafka.metadata_ok(settings), "the running broker stopped answering metadata calls"


def test_pipeline_topics_exist_with_configured_partitions(settings: ServiceSettings) -> None:
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap,
                             client_id="test-services")
    try:
        described = admin.describe_topics(list(settings.topics))
    finally:
        admin.close()
    partitions = {t["name"]: len(t["partitions"]) for t in described if t["error_code"] == 0}
    assert partitions == {name: settings.kafka_partitions for name in settings.topics}


def test_postgres_accepts_admin_connection(settings: ServiceSettings) -> None:
    with psycopg.connect(admin_dsn(settings)) as conn:
        db, user, sync = conn.execute(
            "SELECT current_database(), current_user, current_setting('synchronous_commit')"
        ).fetchone() or (None, None, None)
    assert (db, user) == (settings.pg_db, "nxem_admin")
    assert sync == "on", "the cluster must keep durable commits"
    secret = settings.resolved_data_dir() / "secrets" / "pg-admin.password"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600, "admin password file must be 0600"


def _paho_roundtrip(settings: ServiceSettings) -> tuple[ReasonCode, bytes]:
    connected: queue.Queue[ReasonCode] = queue.Queue()
    received: queue.Queue[bytes] = queue.Queue()
    topic = f"nxem/test/services/{os.getpid()}"

    def on_connect(client: mqtt.Client, _u: object, _f: object, rc: ReasonCode,
                   _p: Properties | None) -> None:
        connected.put(rc)
        client.subscribe(topic, qos=1)

    def on_subscribe(client: mqtt.Client, _u: object, _mid: int, _rcs: list[ReasonCode],
                     _p: Properties | None) -> None:
        client.publish(topic, b"ping", qos=1)

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        received.put(bytes(msg.payload))

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-services-{os.getpid()}",
                         protocol=mqtt.MQTTv5)
    client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
    client.connect(settings.mqtt_host, settings.mqtt_port, keepalive=10)
    client.loop_start()
    try:
        return connected.get(timeout=10), received.get(timeout=10)
    finally:
        client.disconnect()
        client.loop_stop()


def test_mosquitto_accepts_paho_mqtt5_connect(settings: ServiceSettings) -> None:
    reason, payload = _paho_roundtrip(settings)
    assert not reason.is_failure, f"CONNACK refused: {reason}"
    assert payload == b"ping", "a QoS 1 message did not come back through the broker"


def test_mosquitto_config_has_the_safety_limits(settings: ServiceSettings) -> None:
    text = mosquitto.config_path(settings).read_text(encoding="utf-8")
    for line in ("autosave_interval 5", "max_queued_messages 2000000", "max_queued_bytes 0",
                 "max_inflight_messages 1000", "max_packet_size 1048576",
                 f"listener {settings.mqtt_port} 127.0.0.1"):
        assert f"\n{line}\n" in text, f"missing `{line}` in the generated mosquitto.conf"


def test_reload_keeps_mosquitto_running(settings: ServiceSettings) -> None:
    before = mosquitto.running_pid(settings)
    mosquitto.reload_mosquitto(settings)
    assert mosquitto.running_pid(settings) == before, "SIGHUP must reload, not restart"
    assert mosquitto.connack_ok(settings.mqtt_host, settings.mqtt_port)


def test_mosquitto_restart_with_stale_pid_file(settings: ServiceSettings) -> None:
    """Stop the broker, leave a pid file naming a foreign process: `up` cleans it and starts."""
    old = mosquitto.running_pid(settings)
    try:
        assert runner.down(settings, ["mosquitto"]) == {"mosquitto": True}
        assert not procs.port_open(settings.mqtt_host, settings.mqtt_port)
        procs.write_pid(procs.pid_file(settings, mosquitto.NAME), os.getpid())  # not mosquitto
        assert mosquitto.running_pid(settings) is None, "a foreign pid must not count as ours"
    finally:
        (result,) = runner.up(settings, ["mosquitto"])
    assert result.started and result.status.pid not in (None, old, os.getpid())
    reason, _payload = _paho_roundtrip(settings)
    assert not reason.is_failure
