"""A small scenario published to the real Mosquitto arrives whole: count and checksum = truth."""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta, timezone

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from collector.payload import decode, topic_for
from nxem.errors import ContractError
from ops.services import ServiceSettings
from simulators.load import LoadConfig, run_load
from simulators.run import run_scenario
from simulators.scenario import data_centre_document, parse_scenario
from simulators.settings import SimulatorSettings
from simulators.truth import checksum

pytestmark = pytest.mark.integration
ENT = "91640500MA76L8XK3A"


class Subscriber:
    def __init__(self, services: ServiceSettings, topic: str) -> None:
        self.payloads: list[bytes] = []
        self._lock = threading.Lock()
        subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"sim-it-{uuid.uuid4().hex[:8]}",
                                  protocol=mqtt.MQTTv5)
        self.client.on_subscribe = lambda *_a: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(services.mqtt_host, services.mqtt_port)
        self.client.loop_start()
        self.client.subscribe(topic, qos=1)
        assert subscribed.wait(10), "no SUBACK"

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.payloads.append(bytes(msg.payload))

    def wait_for(self, n: int, timeout_s: float = 30) -> list[bytes]:
        deadline = threading.Event()
        for _ in range(int(timeout_s * 10)):
            with self._lock:
                if len(self.payloads) >= n:
                    break
            deadline.wait(0.1)
        with self._lock:
            return list(self.payloads)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def test_published_scenario_arrives_whole(services: ServiceSettings) -> None:
    gw = f"gw-it-{uuid.uuid4().hex[:8]}"
    start = (datetime.now(timezone.utc) - timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)
    doc = data_centre_document(ENT, "it-dc-01", gw, 1.3, 2000, start, 2)
    doc["faults"] = [
        {"kind": "duplicate", "gateway": gw, "start": "+15m", "count": 1},
        {"kind": "malformed", "gateway": gw, "start": "+30m", "variant": "bad_reading"},
        {"kind": "reconnect_storm", "gateway": gw, "start": "+45m", "count": 2},
    ]
    sub = Subscriber(services, topic_for(ENT, gw))
    try:
        settings = SimulatorSettings(mqtt_host=services.mqtt_host, mqtt_port=services.mqtt_port)
        truth = run_scenario(parse_scenario(doc, now=start), settings, mode="backfill")
        got = sub.wait_for(truth.messages)
    finally:
        sub.close()
    # 2 h / 15 min = 8 messages + 1 duplicate; one carries a bad reading (1 of 2 refused).
    # A reconnect storm may redeliver unacknowledged messages (QoS 1 is at least once), so the
    # subscriber can see more copies, but never fewer or other messages.
    assert truth.messages == 9 and truth.reconnects == 2
    assert len(got) >= 9 and len(set(got)) == 8
    seen: dict[str, set[tuple[str, datetime, float]]] = {"it-main": set(), "facility-main": set()}
    rejected = 0
    for payload in got:
        try:
            msg, bad = decode(payload)
        except ContractError:
            continue
        rejected += len(bad)
        for r in msg.readings:
            seen[r.meter].add((r.meter, r.ts, r.value))
    assert rejected >= 1  # the bad reading (again, if redelivered)
    for meter, rows in seen.items():
        mt = truth.meter(gw, meter)
        assert len(rows) == mt.count and checksum(rows) == mt.checksum


def test_load_mode_reports_what_the_broker_acknowledged(services: ServiceSettings) -> None:
    settings = SimulatorSettings(mqtt_host=services.mqtt_host, mqtt_port=services.mqtt_port)
    cfg = LoadConfig(gateways=5, meters=20, rate=2000, duration_s=1.0, connections=2,
                     enterprise_id=ENT)
    result = run_load(cfg, settings)
    # 2000 readings/s ÷ 20 per message = 100 messages/s for 1 s
    assert result.messages_sent == result.messages_acked == 100 and result.publish_errors == 0
    assert result.readings_sent == 2000
