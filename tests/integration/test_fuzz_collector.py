"""Hostile payloads against the real collector (real Mosquitto and Kafka): property-based.

Each example publishes a few hostile messages, each followed by a good one, some carrying good
readings beside the bad one: NUL in every string (escaped, and raw), extreme dates, deep
nesting, repeated keys, invalid UTF-8, seq out of range, and sizes just under, at and just over
the payload cap up to a ~1 MB payload (under Mosquitto's 1 MiB packet limit). Asserted on the
topics and the process: the collector never exits, every bad message or reading is
dead-lettered with its expected reason and nothing else is, no dead letter carries a NUL or
outgrows the record limits, and every good reading reaches the readings topic exactly once.
(Storing these dead letters is the worker's side, tested with it.)
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as paho
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from kafka import KafkaConsumer, TopicPartition
from paho.mqtt.enums import CallbackAPIVersion

from collector.payload import MAX_PAYLOAD_BYTES, topic_for
from nxem import contract
from tests.harness import Pipeline, Proc, metric, pipeline, wait_for
from nxem.kafka import MQTT_MAX_PACKET_BYTES, dead_letter_max_bytes
from ops.services import ServiceSettings
from simulators.scenario import data_centre_document

pytestmark = pytest.mark.integration

ENT = "91640500MA76L8XK3A"
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)

# (kind, parameter) -> what it is; see _build
NUL_FIELDS = ["schema", "enterprise", "gateway", "sent_at", "meter", "ts", "unit", "key", "raw"]
SIZES = [-1, 0, 1, 2]  # relative to the cap: just under, at, just over; 2: ~1 MB (Mosquitto's limit)
Case = tuple[str, Any]
CASES = st.one_of(
    st.tuples(st.just("nul"), st.sampled_from(NUL_FIELDS)),
    st.tuples(st.just("sent_at"), st.sampled_from(["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])),
    st.tuples(st.just("reading_ts"), st.sampled_from(["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])),
    st.tuples(st.just("deep"), st.sampled_from([30, 65, 1000, 100_000])),
    st.tuples(st.just("duplicate"), st.sampled_from(["envelope", "reading"])),
    st.tuples(st.just("utf8"), st.sampled_from(["envelope", "reading"])),
    st.tuples(st.just("seq"), st.sampled_from([2**63, -1])),
    st.tuples(st.just("size"), st.sampled_from(SIZES)),
    st.tuples(st.just("malformed_at_cap"), st.none()),
)
EVERY_KIND: list[Case] = (
    [("nul", f) for f in NUL_FIELDS] + [("sent_at", "0001-01-01T00:00:00+01:00"), ("reading_ts", "9999-12-31T23:59:59-01:00"),
                                        ("deep", 1000), ("deep", 30), ("duplicate", "envelope"), ("duplicate", "reading"),
                                        ("utf8", "envelope"), ("utf8", "reading"), ("seq", 2**63), ("malformed_at_cap", None)]
    + [("size", s) for s in SIZES]
)


@dataclass
class Msg:
    payload: bytes
    reasons: list[str]  # the dead letters it must make
    good: list[float]  # the values of its good readings (each unique)


@dataclass
class Run:
    pipeline: Pipeline
    collector: Proc
    consumer: KafkaConsumer
    client: paho.Client
    gateway: str  # this run's own: other runs on the same broker publish to every collector
    values: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    seqs: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    seen_values: Counter[float] = field(default_factory=Counter)

    def reading(self, meter: str = "it-main") -> tuple[dict[str, Any], float]:
        n = next(self.values)
        value = 1000.0 + n  # distinct per good reading
        return {"meter": meter, "ts": (T0 + timedelta(seconds=n)).isoformat(), "value": value}, value

    def envelope(self, readings: list[dict[str, Any]], **over: Any) -> dict[str, Any]:
        m = {"schema": "nxem.gateway/1", "enterprise": ENT, "gateway": self.gateway, "seq": next(self.seqs),
             "sent_at": T0.isoformat(), "readings": readings}
        m.update(over)
        return m


def _padded(body: bytes, size: int) -> bytes:
    """``body`` (a JSON object) grown to exactly ``size`` bytes with whitespace before its end."""
    assert body.endswith(b"}") and len(body) <= size
    return body[:-1] + b" " * (size - len(body)) + b"}"


def _build(run: Run, case: Case) -> Msg:
    kind, arg = case
    bad_reading, _ = run.reading()
    good, value = run.reading()
    if kind == "nul":
        if arg in ("schema", "enterprise", "gateway", "sent_at"):
            env = run.envelope([good])
            env[arg] = str(env[arg]) + "\u0000"
            reason = {"schema": "unsupported_schema", "enterprise": "bad_enterprise_id",
                      "gateway": "bad_gateway_id", "sent_at": "invalid_envelope"}[arg]
            return Msg(json.dumps(env).encode(), [reason], [])
        if arg == "raw":  # a NUL byte, not its escape: not JSON
            gw = run.gateway.encode()
            raw = json.dumps(run.envelope([good])).encode().replace(b'"' + gw, b'"\x00' + gw)
            return Msg(raw, ["malformed_json"], [])
        if arg == "key":
            bad_reading["x\u0000"] = 1
            reason = "invalid_reading"
        elif arg == "unit":
            bad_reading["unit"] = "kWh\u0000"
            reason = "unit_mismatch"
        else:
            bad_reading[arg] = str(bad_reading[arg]) + "\u0000"
            reason = {"meter": "bad_meter_id", "ts": "invalid_reading"}[arg]
        return Msg(json.dumps(run.envelope([bad_reading, good])).encode(), [reason], [value])
    if kind == "sent_at":
        return Msg(json.dumps(run.envelope([good], sent_at=arg)).encode(), ["sent_at_out_of_range"], [])
    if kind == "reading_ts":
        bad_reading["ts"] = arg
        return Msg(json.dumps(run.envelope([bad_reading, good])).encode(), ["timestamp_out_of_range"], [value])
    if kind == "deep":
        bad_reading["value"] = []
        raw = json.dumps(run.envelope([bad_reading, good])).encode().replace(b"[]", b"[" * arg + b"]" * arg, 1)
        if arg <= 64:
            return Msg(raw, ["invalid_reading"], [value])
        return Msg(raw, ["nesting_too_deep"], [])
    if kind == "duplicate":
        raw = json.dumps(run.envelope([bad_reading, good])).encode()
        if arg == "envelope":
            return Msg(raw.replace(b'"schema": ', b'"seq": 0, "schema": ', 1), ["duplicate_key"], [])
        marker = f'"value": {bad_reading["value"]}'.encode()
        return Msg(raw.replace(marker, b'"value": 1.5, ' + marker, 1), ["duplicate_key"], [value])
    if kind == "utf8":
        if arg == "envelope":
            raw = json.dumps(run.envelope([good], gateway=run.gateway + "\u00e9")).encode().replace(b"\\u00e9", b"\xe9")
            return Msg(raw, ["bad_encoding"], [])
        bad_reading["meter"] = "it-\u00e9"
        raw = json.dumps(run.envelope([bad_reading, good])).encode().replace(b"\\u00e9", b"\xff")
        return Msg(raw, ["bad_encoding"], [value])
    if kind == "seq":
        return Msg(json.dumps(run.envelope([good], seq=arg)).encode(), ["bad_seq"], [])
    if kind == "size":
        body = json.dumps(run.envelope([good])).encode()
        if arg == 2:
            # the whole MQTT packet (header, topic, packet id, properties) must stay under 1 MiB
            return Msg(_padded(body, MQTT_MAX_PACKET_BYTES - 200), ["payload_too_large"], [])
        size = MAX_PAYLOAD_BYTES + arg
        return Msg(_padded(body, size), ["payload_too_large"] if arg > 0 else [], [value] if arg <= 0 else [])
    assert kind == "malformed_at_cap"
    raw = b'{"schema": "nxem.gateway/1", "readings": ['
    return Msg(raw + b" " * (MAX_PAYLOAD_BYTES - len(raw)), ["malformed_json"], [])


@pytest.fixture(scope="module")
def run(services: ServiceSettings) -> Iterator[Run]:
    with pipeline(services, partitions=2) as p:
        gateway = f"gw-fuzz-{p.suffix}"
        p.register(data_centre_document(ENT, "fuzz-dc", gateway, 1.1, 100.0, T0 - timedelta(hours=1), 1))
        collector = p.start_collector()
        consumer = KafkaConsumer(bootstrap_servers=services.kafka_bootstrap, enable_auto_commit=False,
                                 group_id=None, max_partition_fetch_bytes=4 * 1024 * 1024)
        parts = [TopicPartition(p.topics[t], i) for t in ("readings", "deadletter") for i in range(2)]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"fuzz-{p.suffix}", protocol=paho.MQTTv5)
        client.connect(services.mqtt_host, services.mqtt_port)
        client.loop_start()
        try:
            yield Run(p, collector, consumer, client, gateway)
        finally:
            client.loop_stop()
            client.disconnect()
            consumer.close()


def _collect(run: Run, want_values: set[float], want_dead: int) -> tuple[list[float], list[tuple[contract.DeadLetter, int]]]:
    values: list[float] = []
    dead: list[tuple[contract.DeadLetter, int]] = []
    readings_topic = run.pipeline.topics["readings"]
    ours = topic_for(ENT, run.gateway)

    def more() -> bool:
        for records in run.consumer.poll(timeout_ms=200).values():
            for rec in records:
                if rec.topic == readings_topic:
                    values.extend(r.value for r in contract.decode_batch(rec.value).readings)
                elif (d := contract.decode_dead_letter(rec.value)).source.split("#")[0] == ours:
                    dead.append((d, len(rec.value)))  # not what other runs sent every collector
        if run.collector.popen.poll() is not None:
            raise AssertionError(f"collector exited {run.collector.popen.returncode}:\n"
                                 f"{run.collector.log.read_text()[-3000:]}")
        return want_values <= set(values) and len(dead) >= want_dead

    wait_for(more, 60, f"{len(want_values)} good readings and {want_dead} dead letters")
    for _ in range(3):  # a short look for anything extra (a duplicate would show here or later)
        more()
    return values, dead


@settings(max_examples=12, deadline=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow])
@given(cases=st.lists(CASES, min_size=1, max_size=4))
@example(cases=EVERY_KIND)
def test_hostile_payloads_never_stop_the_collector_nor_cost_a_good_reading(run: Run, cases: list[Case]) -> None:
    msgs: list[Msg] = []
    for case in cases:
        msgs.append(_build(run, case))
        good, value = run.reading()  # and a good message after every bad one
        msgs.append(Msg(json.dumps(run.envelope([good])).encode(), [], [value]))
    for m in msgs:
        run.client.publish(topic_for(ENT, run.gateway), m.payload, qos=1).wait_for_publish(30)

    want_values = {v for m in msgs for v in m.good}
    want_reasons = Counter(r for m in msgs for r in m.reasons)
    values, dead = _collect(run, want_values, sum(want_reasons.values()))

    assert Counter(d.reason_code for d, _ in dead) == want_reasons, cases
    run.seen_values.update(values)
    assert set(values) == want_values  # nothing but the good readings...
    assert all(n == 1 for n in run.seen_values.values()), "a good reading reached the topic twice"  # ...once
    for d, size in dead:
        for text in (d.reason, d.source, d.enterprise_id or "", d.gateway_id or ""):
            assert "\x00" not in text and text.isprintable(), (d.reason_code, text[:200])
        assert size <= dead_letter_max_bytes(MAX_PAYLOAD_BYTES)
    big = [m.payload for m in msgs if "payload_too_large" in m.reasons]
    truncated = sorted((d.original, d.reason) for d, _ in dead if d.reason_code == "payload_too_large")
    assert sorted(o for o, _ in truncated) == sorted(b[:4096] for b in big)
    for b in big:
        assert any(f"original {len(b)} bytes, sha256 {hashlib.sha256(b).hexdigest()}" in r for _, r in truncated)
    whole = [m.payload for m in msgs if m.reasons == ["malformed_json"] and len(m.payload) == MAX_PAYLOAD_BYTES]
    assert all(any(d.original == w for d, _ in dead) for w in whole)  # at the cap: kept whole
    assert metric(run.collector.metrics_port, "nxem_collector_ready") == 1.0
