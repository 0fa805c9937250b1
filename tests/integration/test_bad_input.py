"""Every kind of bad input, through the real broker, collector, Kafka and worker.

Each bad message or reading must end on the dead-letter topic and in the ``dead_letters`` table
with its reason, be counted in the collector's ``nxem_collector_invalid_total{reason}``, and
never cost a good reading: every message also carries (or is followed by) good readings, which
must all be stored. A figure line is appended to ``.data/reports/damage.jsonl``.
"""

from __future__ import annotations

import hashlib
import json
import re
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from collector.payload import MAX_PAYLOAD_BYTES, topic_for
from nxem import contract
from tests.harness import Pipeline, consume_all, pipeline, wait_for
from ops.services import ServiceSettings
from simulators.scenario import data_centre_document

pytestmark = pytest.mark.integration

ENT, OTHER_ENT = "91640500MA76L8XK3A", "91640500MA76L8XL15"
# gateways of this run only: every collector on the broker gets every message, so another run
# of these tests at the same time must neither feed ours nor be counted as ours
RUN = uuid.uuid4().hex[:8]
GW, OTHER_GW, NOBODY = f"gw-bad-a-{RUN}", f"gw-bad-b-{RUN}", f"gw-nobody-{RUN}"
T0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=2)


def _ts(minute: int) -> str:
    return (T0 + timedelta(minutes=minute)).isoformat()


def _good(minute: int) -> dict[str, Any]:
    # distinct value per good reading: 1000 + minute
    return {"meter": "it-main", "ts": _ts(minute), "value": 1000.0 + minute}


def _msg(readings: list[Any], seq: int | str, **over: Any) -> dict[str, Any]:
    m = {"schema": "nxem.gateway/1", "enterprise": ENT, "gateway": GW, "seq": seq, "sent_at": _ts(120),
         "readings": readings}
    m.update(over)
    return m


def _cases() -> list[tuple[str, str, bytes, list[str], int]]:
    """(what, topic, payload, expected dead-letter reason codes, good readings inside)."""
    own = topic_for(ENT, GW)
    future = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    past = (datetime.now(UTC) - timedelta(days=800)).isoformat()
    cases: list[tuple[str, str, bytes, list[str], int]] = [
        ("malformed JSON", own, b'{"schema": "nxem.gateway/1", "readings": [', ["malformed_json"], 0),
        ("wrong encoding (Latin-1 in a string)", own,
         json.dumps(_msg([_good(0)], 1, gateway="gw-\u00e9")).encode().replace(b"\\u00e9", b"\xe9"),
         ["bad_encoding"], 0),
        ("missing field (no sent_at)", own,
         json.dumps({k: v for k, v in _msg([_good(0)], 2).items() if k != "sent_at"}).encode(),
         ["invalid_envelope"], 0),
        ("wrong envelope type (seq as text)", own, json.dumps(_msg([_good(0)], "3")).encode(),
         ["invalid_envelope"], 0),
        ("oversized payload", own,
         json.dumps(_msg([_good(0)], 4, pad="x" * (MAX_PAYLOAD_BYTES + 1))).encode(), ["payload_too_large"], 0),
        ("unknown gateway", topic_for(ENT, NOBODY),
         json.dumps(_msg([_good(0)], 5, gateway=NOBODY)).encode(), ["unknown_gateway"], 0),
        ("enterprise does not match the topic", own,
         json.dumps(_msg([_good(0)], 6, enterprise=OTHER_ENT)).encode(), ["topic_mismatch"], 0),
        ("gateway published under another enterprise", topic_for(OTHER_ENT, GW),
         json.dumps(_msg([_good(0)], 7, enterprise=OTHER_ENT)).encode(), ["enterprise_mismatch"], 0),
        # per-reading problems: the good readings beside them are stored
        ("wrong types, missing fields, unknown meter, absurd/negative values, bad times", own, json.dumps(_msg([
            _good(1),
            {"meter": "it-main", "ts": _ts(2), "value": "4242"},  # wrong type
            {"meter": "it-main", "ts": _ts(3)},  # missing value
            {"meter": "it-main", "ts": "2026-11-24T10:00:00", "value": 1.0},  # naive time
            {"meter": "no-such-meter", "ts": _ts(4), "value": 1.0},
            {"meter": "it-main", "ts": _ts(5), "value": 5e15},  # absurd
            {"meter": "it-main", "ts": _ts(6), "value": -3.0},  # negative register
            {"meter": "facility-main", "ts": future, "value": 1.0},  # far future
            {"meter": "facility-main", "ts": past, "value": 1.0},  # far past
            {"meter": "it-main", "ts": _ts(7), "value": 1.0, "unit": "MWh"},  # unit differs
            _good(8),
        ], 8)).encode(), ["invalid_reading", "invalid_reading", "invalid_reading", "unknown_meter",
                          "absurd_value", "negative_value", "future_timestamp", "stale_timestamp",
                          "unit_mismatch"], 2),
        ("NaN and Infinity (literals and overflow)", own,
         json.dumps(_msg([_good(9), {"meter": "it-main", "ts": _ts(10), "value": float("nan")},
                          {"meter": "it-main", "ts": _ts(11), "value": float("inf")},
                          {"meter": "it-main", "ts": _ts(12), "value": 0.5}, _good(13)], 9))
         .encode().replace(b'"value": 0.5', b'"value": 1e999'),
         ["non_finite_value", "non_finite_value", "non_finite_value"], 2),
    ]
    return cases


def _collector_invalid(port: int) -> Counter[str]:
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out: Counter[str] = Counter()
    for m in re.finditer(r'^nxem_collector_invalid_total\{reason="([a-z_]+)"\} ([0-9.e+]+)$', body, re.M):
        out[m.group(1)] = int(float(m.group(2)))
    return out



@pytest.fixture(scope="module")
def running(services: ServiceSettings) -> Iterator[Pipeline]:
    with pipeline(services) as p:
        p.register(*(data_centre_document(ent, code, gw, 1.1, 100.0, T0, 1)
                     for ent, code, gw in ((ENT, "bad-dc-a", GW), (OTHER_ENT, "bad-dc-b", OTHER_GW))))
        p.start_collector()
        p.start_worker()
        yield p


def test_every_kind_of_bad_input_is_dead_lettered_counted_and_good_readings_kept(running: Pipeline) -> None:
    p = running
    cases = _cases()
    expected = Counter(code for case in cases for code in case[3])
    good_inside = sum(case[4] for case in cases)
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bad-input-{p.suffix}", protocol=paho.MQTTv5)
    client.connect(p.settings.mqtt_host, p.settings.mqtt_port)
    client.loop_start()
    try:
        for i, (_what, topic, data, _codes, _good_n) in enumerate(cases):
            client.publish(topic, data, qos=1).wait_for_publish(10)
            # and a good message after every bad one: 14 more good readings (minutes 20..33)
            after = json.dumps(_msg([_good(20 + i)], 100 + i)).encode()
            client.publish(topic_for(ENT, GW), after, qos=1).wait_for_publish(10)
    finally:
        client.loop_stop()
        client.disconnect()
    good_total = good_inside + len(cases)  # 2 + 2 + 10 one-reading messages = 14
    assert good_total == 14

    rows = wait_for(lambda: (r := p.sql("SELECT value FROM readings ORDER BY value")) and len(r) >= good_total and r,
                    60, f"{good_total} good readings stored")
    # values 1000 + minute for minutes 1, 8, 9, 13 (inside bad messages) and 20..29 (after each)
    assert [v for (v,) in rows] == [1000.0 + m for m in [1, 8, 9, 13, *range(20, 20 + len(cases))]]

    ours = {case[1] for case in cases}

    def dead_codes() -> Counter[str]:
        dead = [contract.decode_dead_letter(v) for v in consume_all(p.topics["deadletter"], p.settings.kafka_bootstrap)]
        return Counter(d.reason_code for d in dead if d.source.split("#")[0] in ours)

    on_topic = wait_for(lambda: (c := dead_codes()) and sum(c.values()) >= sum(expected.values()) and c, 60,
                        "every dead letter on the topic")
    assert on_topic == expected
    in_table = wait_for(lambda: (c := Counter(r for (r, src) in p.sql("SELECT reason_code, source FROM dead_letters")
                                              if src.split("#")[0] in ours))
                        and sum(c.values()) >= sum(expected.values()) and c, 60, "every dead letter in the table")
    assert in_table == expected
    collector = next(x for x in p.procs if x.module == "collector")
    counted = _collector_invalid(collector.metrics_port)  # also counts what other runs sent it
    assert all(counted[code] >= n for code, n in expected.items()), (counted, expected)
    # the original bytes are kept for inspection and replay; of a payload over the cap only its
    # first 4 KiB, with its size and sha256 in the reason (the whole would not fit a record)
    ((size, reason),) = p.sql("SELECT octet_length(original), reason FROM dead_letters "
                              "WHERE reason_code = 'payload_too_large'")
    oversized = next(c[2] for c in cases if c[3] == ["payload_too_large"])
    assert size == 4096 and f"sha256 {hashlib.sha256(oversized).hexdigest()}" in reason
    assert f"{len(oversized)} bytes > cap {MAX_PAYLOAD_BYTES}" in reason

    _report(len(cases), sum(expected.values()), good_total, len(rows))


def _report(kinds: int, bad: int, good: int, stored: int) -> None:
    folder = ServiceSettings().resolved_data_dir() / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    row = {"at": datetime.now(UTC).isoformat(), "damage": "bad input", "bad_messages_or_readings": bad,
           "cases": kinds, "dead_lettered": bad, "good_readings_published": good, "good_readings_stored": stored}
    with (folder / "damage.jsonl").open("a", encoding="utf-8") as f:
        f.write(json.dumps(row, ensure_ascii=False) + "\n")


def test_a_reading_resent_with_another_value_is_dead_lettered_and_the_first_kept(running: Pipeline) -> None:
    p = running
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"conflict-{p.suffix}", protocol=paho.MQTTv5)
    client.connect(p.settings.mqtt_host, p.settings.mqtt_port)
    client.loop_start()
    first = {"meter": "facility-main", "ts": _ts(90), "value": 2222.0}
    try:
        client.publish(topic_for(ENT, GW), json.dumps(_msg([first], 500)).encode(), qos=1).wait_for_publish(10)
        wait_for(lambda: p.sql("SELECT 1 FROM readings WHERE value = 2222.0"), 30, "the first value stored")
        resent = json.dumps(_msg([{**first, "value": 2223.0}], 501)).encode()
        client.publish(topic_for(ENT, GW), resent, qos=1).wait_for_publish(10)
        same = json.dumps(_msg([first], 502)).encode()  # an exact repeat is a plain duplicate
        client.publish(topic_for(ENT, GW), same, qos=1).wait_for_publish(10)
    finally:
        client.loop_stop()
        client.disconnect()
    rows = wait_for(lambda: p.sql("SELECT reason, gateway_id, original FROM dead_letters "
                                  "WHERE reason_code = 'conflicting_duplicate'"), 30, "the conflict dead-lettered")
    assert len(rows) == 1
    reason, gateway, original = rows[0]
    assert gateway == GW and "2223.0" in reason and "2222.0" in reason
    assert json.loads(bytes(original))["value"] == 2223.0
    ts = datetime.fromisoformat(_ts(90))
    assert p.sql("SELECT r.value FROM readings r JOIN meters m ON m.id = r.meter_id "
                 "WHERE m.code = 'facility-main' AND m.gateway_id = %s AND r.ts = %s", (GW, ts)) == [(2222.0,)]
