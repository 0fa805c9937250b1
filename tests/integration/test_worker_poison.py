"""No record stops the worker: poison records on the real services (Mosquitto, collector,
Kafka, worker, PostgreSQL).

Before issue 12 each of these stopped ingest for good: the worker raised, exited without
committing, and every restarted worker died on the same record.
* text PostgreSQL refuses (NUL) in a dead letter -> stored with U+FFFD, the original bytes whole;
* a reading whose meter id the ``integer`` column cannot hold -> quarantined with its topic,
  partition, offset and reason (psycopg's binary dumper used to wrap 2^32 + id onto meter id);
* records that do not decode as the contract (a tombstone, a naive datetime) -> dead letters;
* a record the rules cannot evaluate (a reading at 9999-12-31T23:59Z overflows the local-day
  arithmetic) -> an ``internal_error`` dead letter;
* a record whose dead letter would be too large for Kafka -> quarantined instead of failing
  every send of the worker's producer;
and in every case the worker stays up, the partition moves on (its offset is committed) and the
good readings beside the bad record are stored once.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as paho
import pytest
from kafka.admin import KafkaAdminClient
from paho.mqtt.enums import CallbackAPIVersion

from collector.payload import topic_for
from nxem import contract
from nxem.contract import DeadLetter, Reading, ReadingBatch
from tests.harness import Pipeline, metric, pipeline, wait_for
from nxem.kafka import RECORD_MAX_BYTES, make_producer
from ops.services import ServiceSettings
from simulators.scenario import data_centre_document

pytestmark = pytest.mark.integration

ENT = "91640500MA76L8XK3A"
# a gateway of this run only: every collector on the shared broker receives every run's messages
GW = f"gw-poison-{uuid.uuid4().hex[:8]}"
T0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=2)
INT4_MAX = 2**31 - 1  # readings.meter_id is PostgreSQL integer


def _ts(minute: int) -> datetime:
    return T0 + timedelta(minutes=minute)


def _gateway_msg(seq: int, minute: int, value: float, **over: Any) -> bytes:
    msg: dict[str, Any] = {"schema": "nxem.gateway/1", "enterprise": ENT, "gateway": GW, "seq": seq,
                           "sent_at": _ts(minute).isoformat(),
                           "readings": [{"meter": "it-main", "ts": _ts(minute).isoformat(), "value": value}]}
    msg.update(over)
    return json.dumps(msg).encode()


@pytest.fixture(scope="module")
def running(services: ServiceSettings) -> Iterator[Pipeline]:
    with pipeline(services) as p:
        p.register(data_centre_document(ENT, "poison-dc", GW, 1.1, 100.0, T0, 1))
        p.start_collector()
        p.start_worker()
        yield p


def _ids(p: Pipeline) -> tuple[int, int]:
    """(site id, it-main meter id)."""
    site = p.sql("SELECT id FROM sites WHERE code = 'poison-dc'")[0][0]
    meter = p.sql("SELECT id FROM meters WHERE gateway_id = %s AND code = 'it-main'", (GW,))[0][0]
    return int(site), int(meter)


def _publish_mqtt(p: Pipeline, payloads: list[bytes]) -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"poison-{p.suffix}", protocol=paho.MQTTv5)
    client.connect(p.settings.mqtt_host, p.settings.mqtt_port)
    client.loop_start()
    try:
        for data in payloads:
            client.publish(topic_for(ENT, GW), data, qos=1).wait_for_publish(10)
    finally:
        client.loop_stop()
        client.disconnect()


def _inject(p: Pipeline, topic: str, records: list[tuple[bytes | None, bytes | None]]) -> list[tuple[int, int]]:
    """Produce (key, value) records straight into ``topic``; their (partition, offset)."""
    producer = make_producer(p.settings.kafka_bootstrap, f"poison-injector-{p.suffix}")
    try:
        futures = [producer.send(topic, key=key, value=value) for key, value in records]
        producer.flush(30)
        meta = [f.get(30) for f in futures]
    finally:
        producer.close(10)
    return [(m.partition, m.offset) for m in meta]


def _batch(site: int, readings: list[Reading], seq: int) -> ReadingBatch:
    sent = _ts(100)
    return ReadingBatch(enterprise_id=ENT, site_id=site, gateway_id=GW, seq=seq, sent_at=sent, received_at=sent,
                        readings=readings)


def _committed(p: Pipeline, topic: str, partition: int) -> int:
    admin = KafkaAdminClient(bootstrap_servers=p.settings.kafka_bootstrap, client_id=f"poison-admin-{p.suffix}")
    try:
        group = p.env["NXEM_WORKER_GROUP"]
        offsets = admin.list_group_offsets(group).get(group) or {}
    finally:
        admin.close()
    return next((int(o.offset) for tp, o in offsets.items() if tp.topic == topic and tp.partition == partition), -1)


def _worker_alive(p: Pipeline) -> bool:
    worker = next(x for x in p.procs if x.module == "stream")
    return worker.popen.poll() is None


def test_nul_in_a_payload_is_dead_lettered_and_the_worker_stays_up(running: Pipeline) -> None:
    p = running
    # the 224-byte message of the issue: NUL in the gateway, then one with NUL in the enterprise
    bad_gateway = _gateway_msg(1, 1, 9.0, gateway="gw-poison\u0000x")
    bad_enterprise = _gateway_msg(2, 2, 9.0, enterprise=ENT + "\u0000")
    assert b"\\u0000" in bad_gateway and b"\\u0000" in bad_enterprise  # the JSON escape, decoded to NUL
    # good messages before, between and after: values 1000 + minute at minutes 0, 3, 4
    _publish_mqtt(p, [_gateway_msg(10, 0, 1000.0), bad_gateway, _gateway_msg(11, 3, 1003.0), bad_enterprise,
                      _gateway_msg(12, 4, 1004.0)])
    # a dead letter as the collector made one of these before issue 12 (topic_mismatch, the
    # decoded NUL in its text), straight into the dead-letter topic the worker stores from
    # (of a third payload, so it is not the collector's dead letter of bad_gateway again)
    third = _gateway_msg(3, 5, 9.0, gateway="gw-poison\u0000y")
    nul = DeadLetter(stage="collector", reason_code="topic_mismatch",
                     reason=f"payload enterprise/gateway {ENT}/gw-poison\x00y differ from topic {ENT}/{GW}",
                     received_at=_ts(5), source=topic_for(ENT, GW), original=third,
                     enterprise_id=ENT, gateway_id="gw-poison\x00y")
    _inject(p, p.topics["deadletter"], [(None, contract.encode(nul))])

    _, meter = _ids(p)
    rows = wait_for(lambda: (r := p.sql("SELECT ts, value FROM readings WHERE meter_id = %s ORDER BY ts", (meter,)))
                    and len(r) >= 3 and r, 60, "the 3 good readings")
    assert rows == [(_ts(0), 1000.0), (_ts(3), 1003.0), (_ts(4), 1004.0)]  # each once

    def dead(original: bytes) -> list[tuple[Any, ...]]:
        return p.sql("SELECT stage, reason_code, reason, enterprise_id, gateway_id FROM dead_letters "
                     "WHERE original = %s", (original,))

    injected = wait_for(lambda: dead(third), 60, "the injected dead letter stored")
    assert injected == [("collector", "topic_mismatch", nul.reason.replace("\x00", "\ufffd"), ENT, "gw-poison\ufffdy")]
    # one dead letter per bad payload, keeping the bytes as published. The collector refuses
    # them as topic_mismatch carrying the NUL ids (before its issue-12 id checks) -- stored with
    # U+FFFD -- or as a bad id without them (after)
    for payload, bad_id, ent_kept, gw_kept in ((bad_gateway, "bad_gateway_id", ENT, "gw-poison\ufffdx"),
                                              (bad_enterprise, "bad_enterprise_id", ENT + "\ufffd", GW)):
        got = wait_for(lambda: dead(payload), 60, "the collector's dead letter")  # noqa: B023 - called at once
        assert len(got) == 1
        _stage, code, _reason, ent, gw = got[0]
        assert (code, ent, gw) == ("topic_mismatch", ent_kept, gw_kept) or code == bad_id
    assert _worker_alive(p)


def test_a_meter_id_the_database_cannot_hold_is_quarantined_and_the_partition_moves_on(running: Pipeline) -> None:
    p = running
    site, meter = _ids(p)
    key = str(site).encode()  # the collector's key: every record of the site on one partition
    poison = contract.encode(_batch(site, [Reading(2**32 + meter, _ts(20), 7.0)], 20))
    # 2^32 + id wraps onto the real meter id in psycopg's binary int4 dumper: it must not land there
    assert (2**32 + meter) % 2**32 == meter and 2**32 + meter > INT4_MAX
    after = contract.encode(_batch(site, [Reading(meter, _ts(21), 1021.0)], 21))
    (part, off), (part2, off2) = _inject(p, p.topics["readings"], [(key, poison), (key, after)])
    assert (part2, off2) == (part, off + 1)

    wait_for(lambda: p.sql("SELECT 1 FROM readings WHERE meter_id = %s AND ts = %s", (meter, _ts(21))), 60,
             "the good record after the poison stored")
    rows = wait_for(lambda: p.sql("SELECT topic, kafka_partition, kafka_offset, reason_code, reason, original "
                                  "FROM quarantine WHERE reason_code = 'storage_refused'"), 30, "the quarantined record")
    assert len(rows) == 1
    topic, q_part, q_off, code, reason, original = rows[0]
    assert (topic, q_part, q_off, code, bytes(original)) == (p.topics["readings"], part, off, "storage_refused", poison)
    assert "out of range" in reason
    assert p.sql("SELECT value FROM readings WHERE meter_id = %s AND ts = %s", (meter, _ts(20))) == []  # not wrapped
    # the offsets past both records are committed: a restarted worker does not meet the poison again
    wait_for(lambda: _committed(p, p.topics["readings"], part) >= off + 2, 30, "the offset committed past the poison")
    worker = next(x for x in p.procs if x.module == "stream")
    assert metric(worker.metrics_port, 'nxem_worker_quarantined_total{reason="storage_refused"}') == 1.0
    assert _worker_alive(p)


def test_records_that_break_the_contract_or_the_rules_are_dead_lettered(running: Pipeline) -> None:
    p = running
    site, meter = _ids(p)
    key = str(site).encode()
    good = contract.encode(_batch(site, [Reading(meter, _ts(30), 1030.0)], 30))
    naive = good.replace(_ts(30).isoformat().replace("+00:00", "Z").encode(), b"2026-03-01T00:00:00")
    assert naive != good  # the reading's ts written without an offset
    # ts 9999-12-31T23:59Z: storable, but the site's rules overflow converting it to local time
    overflow = contract.encode(_batch(site, [Reading(meter, datetime(9999, 12, 31, 23, 59, tzinfo=UTC), 1040.0)], 31))
    last = contract.encode(_batch(site, [Reading(meter, _ts(32), 1032.0)], 32))
    placed = _inject(p, p.topics["readings"], [(key, None), (key, naive), (key, good), (key, overflow), (key, last)])
    tomb, naive_at, _, overflow_at, _ = [f"{p.topics['readings']}/{part}@{off}" for part, off in placed]

    wait_for(lambda: p.sql("SELECT 1 FROM readings WHERE meter_id = %s AND ts = %s", (meter, _ts(32))), 60,
             "the last good record stored")
    stored = p.sql("SELECT ts, value FROM readings WHERE meter_id = %s AND ts >= %s ORDER BY ts", (meter, _ts(30)))
    assert stored == [(_ts(30), 1030.0), (_ts(32), 1032.0)]  # the 9999 reading is not stored

    def dead() -> dict[str, tuple[str, str]]:
        return {s: (c, r) for s, c, r in p.sql("SELECT source, reason_code, reason FROM dead_letters WHERE stage = 'worker'")}

    got = wait_for(lambda: (d := dead()) and len(d) >= 3 and d, 60, "3 worker dead letters")
    assert set(got) == {tomb, naive_at, overflow_at}
    assert got[tomb][0] == "contract_invalid" and "tombstone" in got[tomb][1]
    assert got[naive_at][0] == "contract_invalid" and "timezone" in got[naive_at][1]
    assert got[overflow_at][0] == "internal_error" and "OverflowError" in got[overflow_at][1]
    originals = {s: bytes(o) for s, o in p.sql("SELECT source, original FROM dead_letters WHERE stage = 'worker'")}
    assert (originals[tomb], originals[naive_at], originals[overflow_at]) == (b"", naive, overflow)
    assert _worker_alive(p)


def test_a_dead_letter_too_large_for_kafka_is_quarantined_instead(running: Pipeline) -> None:
    p = running
    site, meter = _ids(p)
    key = str(site).encode()
    # 900 000 bytes that are not the contract: their dead letter carries them base64-encoded,
    # 900 000 × 4/3 = 1 200 000 bytes, over the 1 047 552 a record may have (RECORD_MAX_BYTES)
    big = b"x" * 900_000
    assert len(big) * 4 // 3 > RECORD_MAX_BYTES
    after = contract.encode(_batch(site, [Reading(meter, _ts(40), 1040.0)], 40))
    (part, off), _ = _inject(p, p.topics["readings"], [(key, big), (key, after)])

    wait_for(lambda: p.sql("SELECT 1 FROM readings WHERE meter_id = %s AND ts = %s", (meter, _ts(40))), 60,
             "the good record after the big one stored")
    rows = wait_for(lambda: p.sql("SELECT topic, kafka_partition, kafka_offset, reason, octet_length(original) "
                                  "FROM quarantine WHERE reason_code = 'dead_letter_too_large'"), 30,
                    "the big record quarantined")
    assert [r[:3] + (r[4],) for r in rows] == [(p.topics["readings"], part, off, 900_000)]
    assert rows[0][3].startswith("contract_invalid: ")
    wait_for(lambda: _committed(p, p.topics["readings"], part) >= off + 2, 30, "the offset committed past it")
    assert _worker_alive(p)
