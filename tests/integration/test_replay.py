"""Replay is exactly idempotent: re-consuming the whole readings and dead-letter topics from the
start (a new consumer group, the same database) adds no reading, no alert transition, no alert
and no dead letter. On the real services.

The stream: one data centre on a 1-hour PUE window (Ningxia limit 1.2, clears below 1.18),
IT load 2 000 kW, one gateway message per quarter-hour k = 0..45 (both registers), whose
quarter k (the energy since reading k-1) runs at
    k 1..8: PUE 1.10 | 9..16: 1.34 | 17..20: 1.45 | 21..32: 1.10 | 33..45: 1.38
so the alert opens, is updated, clears and opens again; then three dead letters: a reading
resent with another value (conflicting_duplicate, made by the worker), malformed JSON (made by
the collector) and an empty record in the readings topic (contract_invalid, worker). Every
message is processed alone (published once the previous one is stored), so each quarter-hour
edge is evaluated. The replay worker reads one record per poll, so it passes every old edge
too, as a replay of a long topic does.

Before issue 12 the replay restored the latest active alert and re-evaluated the old data
against it (new "updated", "cleared" and "opened" transitions at old times), and re-created
the worker's dead letters with a new received_at (a new fingerprint, a new row).
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as paho
import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient
from paho.mqtt.enums import CallbackAPIVersion

from collector.payload import topic_for
from tests.harness import Pipeline, metric, pipeline, wait_for
from nxem.kafka import make_producer
from ops.services import ServiceSettings
from simulators.scenario import data_centre_document

pytestmark = pytest.mark.integration

ENT, SITE = "91640500MA76L8XK3A", "replay-dc"
# a gateway of this run only: every collector on the shared broker receives every run's messages
GW = f"gw-replay-{uuid.uuid4().hex[:8]}"
IT_KW = 2000.0
QUARTERS = 45  # readings at k = 0..45: 46 messages, 92 readings
ZONES = [(8, 1.10), (16, 1.34), (20, 1.45), (32, 1.10), (45, 1.38)]  # (last quarter k, PUE)
# wall-clock jobs are not consumption of the topic: the silence sweep and the daily checks stay
# off in both workers, so every transition comes from the stream
QUIET = {"NXEM_WORKER_SILENCE_CHECK_S": "36000", "NXEM_WORKER_DAILY_CHECKS": "false"}


def _pue(k: int) -> float:
    return next(pue for last, pue in ZONES if k <= last)


def _start() -> datetime:
    # the last reading (k = 45) a quarter-hour before the current one: no meter goes silent
    now = datetime.now(UTC)
    edge = now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)
    return edge - timedelta(minutes=15 * (QUARTERS + 1))


def _messages(start: datetime) -> list[bytes]:
    out = []
    it = fac = 0.0
    for k in range(QUARTERS + 1):
        if k:
            it += IT_KW * 0.25  # 500 kWh per quarter-hour
            fac += IT_KW * 0.25 * _pue(k)
        ts = (start + timedelta(minutes=15 * k)).isoformat()
        out.append(json.dumps({"schema": "nxem.gateway/1", "enterprise": ENT, "gateway": GW, "seq": k, "sent_at": ts,
                               "readings": [{"meter": "it-main", "ts": ts, "value": it},
                                            {"meter": "facility-main", "ts": ts, "value": fac}]}).encode())
    return out


def _group_done(p: Pipeline, group: str) -> bool:
    """The group's committed offsets are at the end of every partition of both topics."""
    topics = [p.topics["readings"], p.topics["deadletter"]]
    admin = KafkaAdminClient(bootstrap_servers=p.settings.kafka_bootstrap, client_id=f"replay-admin-{p.suffix}")
    try:
        offsets = admin.list_group_offsets(group).get(group) or {}
    finally:
        admin.close()
    committed = {(tp.topic, tp.partition): int(o.offset) for tp, o in offsets.items() if o is not None}
    consumer = KafkaConsumer(bootstrap_servers=p.settings.kafka_bootstrap, group_id=None)
    try:
        parts = [TopicPartition(t, n) for t in topics for n in sorted(consumer.partitions_for_topic(t) or ())]
        ends = consumer.end_offsets(parts)
    finally:
        consumer.close()
    return bool(parts) and all(committed.get((tp.topic, tp.partition), 0) >= end for tp, end in ends.items())


def _counts(p: Pipeline) -> dict[str, Any]:
    return {
        "readings": p.sql("SELECT count(*) FROM readings")[0][0],
        "transitions": p.sql("SELECT count(*) FROM alert_transitions")[0][0],
        "transitions by rule and kind": Counter({(r, k): n for r, k, n in p.sql(
            "SELECT rule, kind, count(*) FROM alert_transitions GROUP BY rule, kind")}),
        "alerts": p.sql("SELECT alert_key, started_at, cleared_at FROM alerts ORDER BY started_at"),
        # this test's own: its collector also refuses other tests' gateways on the shared broker
        "dead letters": p.sql("SELECT reason_code, stage FROM dead_letters WHERE source LIKE %s OR source LIKE %s "
                              "ORDER BY reason_code", (topic_for(ENT, GW) + "%", p.topics["readings"] + "%")),
        "quarantined": p.sql("SELECT count(*) FROM quarantine")[0][0],
    }


@pytest.fixture(scope="module")
def replayed(services: ServiceSettings) -> Iterator[tuple[Pipeline, datetime, dict[str, Any], dict[str, Any]]]:
    start = _start()
    with pipeline(services) as p:
        doc = data_centre_document(ENT, SITE, GW, pue=1.3, it_kw=IT_KW, start=start, hours=12)
        doc["enterprises"][0]["sites"][0]["pue_window_hours"] = 1
        p.register(doc)
        p.start_collector()
        first = p.start_worker(**QUIET)
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"replay-{p.suffix}", protocol=paho.MQTTv5)
        client.connect(p.settings.mqtt_host, p.settings.mqtt_port)
        client.loop_start()
        try:
            for k, data in enumerate(_messages(start)):
                client.publish(topic_for(ENT, GW), data, qos=1).wait_for_publish(10)
                wait_for(lambda: p.sql("SELECT count(*) FROM readings")[0][0] >= 2 * (k + 1), 60,  # noqa: B023
                         f"message {k} stored")
            ts = (start + timedelta(minutes=15 * 20)).isoformat()
            # it-main at k = 20 was 20 × 500 = 10 000 kWh: resent as 10 000.5 (between the readings
            # around it, so the register arithmetic ignores it; storage refuses the new value)
            resent = {"schema": "nxem.gateway/1", "enterprise": ENT, "gateway": GW, "seq": 1000, "sent_at": ts,
                      "readings": [{"meter": "it-main", "ts": ts, "value": 10_000.5}]}
            client.publish(topic_for(ENT, GW), json.dumps(resent).encode(), qos=1).wait_for_publish(10)
            client.publish(topic_for(ENT, GW), b'{"schema": "nxem.gateway/1", "readings": [', qos=1).wait_for_publish(10)
        finally:
            client.loop_stop()
            client.disconnect()
        site_id = p.sql("SELECT id FROM sites WHERE code = %s", (SITE,))[0][0]
        producer = make_producer(p.settings.kafka_bootstrap, f"replay-injector-{p.suffix}")
        try:
            producer.send(p.topics["readings"], key=str(site_id).encode(), value=None).get(30)  # a tombstone
        finally:
            producer.close(10)
        wait_for(lambda: len(_counts(p)["dead letters"]) >= 3, 60, "3 dead letters stored")
        wait_for(lambda: _group_done(p, p.env["NXEM_WORKER_GROUP"]), 60, "the first worker at the end of its topics")
        before = _counts(p)
        first.kill()

        group = f"replay-{p.suffix}"
        replayer = p.start_worker("replayer", NXEM_WORKER_GROUP=group, NXEM_WORKER_MAX_POLL_RECORDS="1", **QUIET)
        wait_for(lambda: _group_done(p, group), 180, "the replay at the end of both topics")
        after = _counts(p)
        # the replayer met every reading again and stored none: 46 messages × 2 readings + 1 resent
        duplicates = metric(replayer.metrics_port, "nxem_worker_duplicate_readings_total")
        assert replayer.popen.poll() is None
        yield p, start, before, {**after, "replayed duplicates": duplicates}


def test_the_stream_made_alerts_and_dead_letters_to_replay(
    replayed: tuple[Pipeline, datetime, dict[str, Any], dict[str, Any]],
) -> None:
    _p, start, before, _after = replayed
    assert before["readings"] == 92  # 46 messages × 2 meters
    kinds = {k: n for (rule, k), n in before["transitions by rule and kind"].items() if rule == "pue_above_limit"}
    # hand-worked from ZONES: a sample is the 1-hour window of 4 quarters; the rule opens when the
    # 5 samples of the last hour are all > 1.2 and clears when all are < 1.18, so the oldest
    # sample (the window ending an hour before the edge) decides:
    # * opens at k = 14: that window (quarters 7..10) holds 2 at 1.34: (2×1.10 + 2×1.34)/4 = 1.22
    #   > 1.2 (one: (3×1.10 + 1.34)/4 = 1.16);
    # * clears at k = 28: the window of quarters 21..24 is all 1.10 (with one 1.45 left:
    #   (3×1.10 + 1.45)/4 = 1.1875 ≥ 1.18);
    # * opens again at k = 38: quarters 31..34 hold 2 at 1.38: (2×1.10 + 2×1.38)/4 = 1.24;
    # * updated in between: 1.34 -> 1.45 is +8 %, above the 2 % step.
    assert (kinds["opened"], kinds["cleared"]) == (2, 1) and kinds.get("updated", 0) >= 1
    pue_alerts = [(s, c) for key, s, c in before["alerts"] if key.endswith(":pue_above_limit")]
    q = timedelta(minutes=15)
    assert pue_alerts == [(start + 14 * q, start + 28 * q), (start + 38 * q, None)]
    assert set(kinds) == {"opened", "updated", "cleared"}
    assert before["dead letters"] == [("conflicting_duplicate", "worker"), ("contract_invalid", "worker"),
                                      ("malformed_json", "collector")]
    assert before["quarantined"] == 0


def test_replaying_the_topics_from_the_start_adds_nothing(
    replayed: tuple[Pipeline, datetime, dict[str, Any], dict[str, Any]],
) -> None:
    _p, _start_at, before, after = replayed
    assert after["replayed duplicates"] == 93  # 46 × 2 readings + the resent one, none stored again
    for what in ("readings", "transitions", "transitions by rule and kind", "alerts", "dead letters", "quarantined"):
        assert after[what] == before[what], what
