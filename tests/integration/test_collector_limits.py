"""The record size limits on the real broker: the collector refuses to start when they do not
hold, and a topic shrunk under it after start costs a truncated dead letter, not the producer.

Before: a dead letter over the topic's max.message.bytes made kafka-python's idempotent
producer fail every later send (0 acknowledgements for 150 s, the big message never
dead-lettered)."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as paho
import pytest
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient
from paho.mqtt.enums import CallbackAPIVersion

from collector.payload import MAX_PAYLOAD_BYTES, topic_for
from nxem import contract
from tests.harness import Pipeline, consume_all, metric, pipeline, wait_for
from ops.services import ServiceSettings
from simulators.scenario import data_centre_document

pytestmark = pytest.mark.integration

ENT = "91640500MA76L8XK3A"
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)


def _set_max_message_bytes(p: Pipeline, topic: str, value: int) -> None:
    admin = KafkaAdminClient(bootstrap_servers=p.settings.kafka_bootstrap, client_id="nxem-tests")
    try:
        done = admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, {"max.message.bytes": str(value)})])
        assert done == {"topic": {topic: "OK"}}
    finally:
        admin.close()


@pytest.fixture()
def run(services: ServiceSettings) -> Iterator[Pipeline]:
    with pipeline(services, partitions=1) as p:
        p.register(data_centre_document(ENT, "limits-dc", f"gw-lim-{p.suffix}", 1.1, 100.0, T0 - timedelta(hours=1), 1))
        yield p


def test_the_collector_refuses_to_start_naming_the_setting_that_breaks_the_limits(run: Pipeline) -> None:
    with pytest.raises(AssertionError) as exc:  # the harness: "collector exited 1: <log>"
        run.start_collector("collector-cap", NXEM_COLLECTOR_MAX_PAYLOAD_BYTES="800000")
    assert "NXEM_COLLECTOR_MAX_PAYLOAD_BYTES=800000" in str(exc.value) and "at most 773376" in str(exc.value)

    # the broker's default record size (1 048 588 bytes) is below the producer's largest batch
    _set_max_message_bytes(run, run.topics["deadletter"], 1_048_588)
    with pytest.raises(AssertionError) as exc:
        run.start_collector("collector-topic")
    assert (f"NXEM_TOPIC_DEADLETTER={run.topics['deadletter']}: its max.message.bytes is 1048588, below the 1114112"
            in str(exc.value))


def test_a_dead_letter_the_broker_refuses_is_truncated_and_later_sends_go_through(run: Pipeline) -> None:
    p = run
    collector = p.start_collector()
    # a topic changed under a running collector: the dead letter of a payload at the cap
    # (262 144 bytes whole, 349 528 in base64) is now over the topic's 300 000 bytes
    _set_max_message_bytes(p, p.topics["deadletter"], 300_000)
    gw = f"gw-lim-{p.suffix}"
    topic = topic_for(ENT, gw)
    # at the cap and incompressible (lz4 would shrink spaces under any limit): not UTF-8, so
    # dead-lettered whole as bad_encoding
    big = random.Random(12).randbytes(MAX_PAYLOAD_BYTES)

    def good(seq: int, value: float) -> bytes:
        return json.dumps({"schema": "nxem.gateway/1", "enterprise": ENT, "gateway": gw, "seq": seq,
                           "sent_at": T0.isoformat(), "readings": [
                               {"meter": "it-main", "ts": (T0 + timedelta(minutes=seq)).isoformat(), "value": value}]}).encode()

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"limits-{p.suffix}", protocol=paho.MQTTv5)
    client.connect(p.settings.mqtt_host, p.settings.mqtt_port)
    client.loop_start()
    try:
        for payload in (big, good(1, 1001.0)):
            client.publish(topic, payload, qos=1).wait_for_publish(30)

        def readings() -> list[float]:
            return [r.value for v in consume_all(p.topics["readings"], p.settings.kafka_bootstrap, idle_ms=1000)
                    for r in contract.decode_batch(v).readings]

        wait_for(lambda: 1001.0 in readings(), 60, "the good reading after the refused record")
        client.publish(topic, good(2, 1002.0), qos=1).wait_for_publish(30)  # and the one after that
        wait_for(lambda: 1002.0 in readings(), 60, "a later good reading")
    finally:
        client.loop_stop()
        client.disconnect()

    dead = [d for d in (contract.decode_dead_letter(v) for v in consume_all(p.topics["deadletter"], p.settings.kafka_bootstrap))
            if d.source == topic]
    assert [(d.reason_code, d.original) for d in dead] == [("bad_encoding", big[:4096])]
    assert f"original 262144 bytes, sha256 {hashlib.sha256(big).hexdigest()}; first 4096 bytes kept" in dead[0].reason
    assert set(readings()) == {1001.0, 1002.0}  # at least once: a record in flight when the producer failed may be sent again
    assert collector.popen.poll() is None
    assert (metric(collector.metrics_port, "nxem_collector_oversize_records_total") or 0) >= 1
    assert (metric(collector.metrics_port, "nxem_collector_producer_renewals_total") or 0) >= 1
