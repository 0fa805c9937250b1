"""End to end on the real services: gateway -> Mosquitto -> collector -> Kafka -> worker ->
PostgreSQL -> alert (table and topic).

Two simulated data centres on a 1-hour PUE window with the Ningxia limit 1.2:
* "hot" runs at PUE 1.3: exactly one open PUE alert, in the alerts table and on the topic;
* "cool" runs at PUE 1.1: none.
The readings in the database equal the readings published (count and checksum per meter,
computed by the simulator's ground truth, independent of the pipeline's code).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from collector.payload import topic_for
from nxem import contract
from ops.services import ServiceSettings
from simulators.run import run_scenario
from simulators.scenario import data_centre_document, parse_scenario
from simulators.settings import SimulatorSettings
from simulators.truth import GroundTruth, checksum
from tests.harness import Pipeline, consume_all, pipeline, wait_for

pytestmark = pytest.mark.integration

HOT_ENT, COOL_ENT = "91640500MA76L8XK3A", "91640500MA76L8XL15"
# gateways of this run only: every collector on the shared broker receives every run's messages
RUN = uuid.uuid4().hex[:8]
HOT_GW, COOL_GW = f"gw-e2e-hot-{RUN}", f"gw-e2e-cool-{RUN}"
HOURS = 6  # 24 quarter-hours per meter: the 1-hour window is full many times over
IT_KW = 2000.0


def _start() -> datetime:
    now = datetime.now(UTC)
    start = now - timedelta(hours=HOURS + 1)
    return start.replace(minute=start.minute - start.minute % 15, second=0, microsecond=0)


def _doc(ent: str, code: str, gw: str, pue: float, start: datetime) -> dict[str, Any]:
    doc = data_centre_document(ent, code, gw, pue=pue, it_kw=IT_KW, start=start, hours=HOURS)
    doc["enterprises"][0]["sites"][0]["pue_window_hours"] = 1
    return doc



@pytest.fixture(scope="module")
def running(services: ServiceSettings) -> Iterator[tuple[Pipeline, dict[str, GroundTruth]]]:
    start = _start()
    docs = {
        "hot": _doc(HOT_ENT, "e2e-dc-hot", HOT_GW, 1.3, start),
        "cool": _doc(COOL_ENT, "e2e-dc-cool", COOL_GW, 1.1, start),
    }
    with pipeline(services) as p:
        p.register(*docs.values())
        p.start_collector()
        p.start_worker(NXEM_WORKER_SILENCE_CHECK_S="2")
        truths = {
            name: run_scenario(parse_scenario(doc, now=start, name=name), SimulatorSettings(), mode="backfill")
            for name, doc in docs.items()
        }
        expected = sum(t.readings for t in truths.values())
        wait_for(lambda: p.sql("SELECT count(*) FROM readings")[0][0] >= expected, 120, f"{expected} readings stored")
        yield p, truths


def test_readings_in_the_database_equal_those_published(running: tuple[Pipeline, dict[str, GroundTruth]]) -> None:
    p, truths = running
    rows = p.sql(
        "SELECT g.id, m.code, r.ts, r.value FROM readings r JOIN meters m ON m.id = r.meter_id "
        "JOIN gateways g ON g.id = m.gateway_id"
    )
    stored: dict[tuple[str, str], list[tuple[str, datetime, float]]] = {}
    for gw, code, ts, value in rows:
        stored.setdefault((gw, code), []).append((code, ts, value))
    published = [m for t in truths.values() for m in t.meters]
    # 6 h of 15-minute readings = 24 per meter, 2 meters per site, 2 sites
    assert sorted(len(v) for v in stored.values()) == [24, 24, 24, 24]
    for mt in published:
        got = stored[(mt.gateway, mt.meter)]
        assert len(got) == mt.count == 24
        assert checksum(got) == mt.checksum, f"{mt.gateway}/{mt.meter} differs from what was published"


def test_pue_above_limit_opens_exactly_one_alert_in_table_and_topic(
    running: tuple[Pipeline, dict[str, GroundTruth]],
) -> None:
    p, _ = running
    hot_site = p.sql("SELECT id FROM sites WHERE code = 'e2e-dc-hot'")[0][0]
    cool_site = p.sql("SELECT id FROM sites WHERE code = 'e2e-dc-cool'")[0][0]

    def active(site: int) -> list[tuple[Any, ...]]:
        return p.sql(
            "SELECT alert_key, rule, severity, value, threshold FROM alerts "
            "WHERE source_kind = 'site' AND source_id = %s AND cleared_at IS NULL AND rule LIKE 'pue%%'",
            (site,),
        )

    (key, _rule, _sev, value, threshold) = wait_for(lambda: active(hot_site), 60, "a PUE alert for the hot site")[0]
    # facility/IT = (2000 kW × 1.3) / 2000 kW = 1.3 over any window; the Ningxia limit is 1.2
    assert value == pytest.approx(1.3, abs=1e-6)
    assert threshold == pytest.approx(1.2)
    assert active(cool_site) == []  # 1.1 < 1.2

    events = [contract.decode_alert(v) for v in consume_all(p.topics["alerts"], p.settings.kafka_bootstrap)]
    pue = [e for e in events if e.rule.startswith("pue")]
    opened = [e for e in pue if e.kind == "opened"]
    assert [(e.alert_key, e.source_id) for e in opened] == [(key, hot_site)]
    assert not [e for e in pue if e.source_id == cool_site]
    # the evidence an inspector checks: inputs, window, threshold, formula, standard
    details = json.dumps(opened[0].details, ensure_ascii=False)
    assert "1.2" in details and "PUE" in details


def test_bad_input_is_dead_lettered_and_good_readings_beside_it_are_stored(
    running: tuple[Pipeline, dict[str, GroundTruth]],
) -> None:
    p, _ = running
    ts = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    good = {"meter": "it-main", "ts": ts.isoformat(), "value": 4242.0}
    bad = [
        {"meter": "it-main", "ts": ts.isoformat(), "value": "4242"},  # wrong type
        {"meter": "no-such-meter", "ts": ts.isoformat(), "value": 1.0},  # unknown meter
        {"meter": "facility-main", "ts": (ts + timedelta(days=2)).isoformat(), "value": 1.0},  # future
    ]
    msg = {"schema": "nxem.gateway/1", "enterprise": HOT_ENT, "gateway": HOT_GW, "seq": 10_000,
           "sent_at": ts.isoformat(), "readings": [bad[0], good, bad[1], bad[2]]}
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"e2e-bad-{p.suffix}", protocol=mqtt.MQTTv5)
    client.connect(p.settings.mqtt_host, p.settings.mqtt_port)
    client.loop_start()
    try:
        infos = [
            client.publish(topic_for(HOT_ENT, HOT_GW), json.dumps(msg), qos=1),
            client.publish(topic_for(HOT_ENT, HOT_GW), b"{definitely not json", qos=1),
        ]
        for info in infos:
            info.wait_for_publish(10)
    finally:
        client.loop_stop()
        client.disconnect()

    meter_id = p.sql("SELECT m.id FROM meters m WHERE m.gateway_id = %s AND m.code = 'it-main'", (HOT_GW,))[0][0]
    wait_for(lambda: p.sql("SELECT value FROM readings WHERE meter_id = %s AND ts = %s", (meter_id, ts)), 30,
             "the good reading stored")

    ours = topic_for(HOT_ENT, HOT_GW)  # a dead letter's source: the MQTT topic (#seq=… per reading)

    def dead_codes() -> list[str]:
        dead = [contract.decode_dead_letter(v) for v in consume_all(p.topics["deadletter"], p.settings.kafka_bootstrap)]
        return sorted(d.reason_code for d in dead if d.source.split("#")[0] == ours)

    codes = wait_for(lambda: (c := dead_codes()) and len(c) >= 4 and c, 30, "4 dead letters")
    assert codes == ["future_timestamp", "invalid_reading", "malformed_json", "unknown_meter"]
    stored = wait_for(lambda: (r := p.sql("SELECT reason_code FROM dead_letters WHERE split_part(source, '#', 1) = %s "
                                          "ORDER BY reason_code", (ours,))) and len(r) >= 4 and r, 30,
                      "dead letters in the table")
    assert sorted(r[0] for r in stored) == codes


def test_meters_whose_gateways_went_quiet_are_flagged_silent_by_the_wall_clock(
    running: tuple[Pipeline, dict[str, GroundTruth]],
) -> None:
    p, _ = running
    # The scenario's last quarter-hour reading is at start + 5 h 45 min with start ≤ now − 7 h:
    # ≥ 1 h 15 min behind the wall clock = ≥ 5 missed 15-minute intervals ≥ the 4 allowed, so
    # every one of the 4 meters is silent (the worker checks every 2 s here) -- except the hot
    # site's it-main once the bad-input test (before this one) stored its reading of 1 min ago:
    # 1 min < 4 × 15 min, that meter reports again and its alert is cleared.
    resumed = {(HOT_GW, "it-main")} if p.sql("SELECT 1 FROM readings WHERE value = 4242.0") else set()
    meters = {(gw, code) for gw in (HOT_GW, COOL_GW) for code in ("facility-main", "it-main")}

    def silent() -> list[tuple[Any, ...]]:
        return p.sql("SELECT m.gateway_id, m.code, a.value, a.threshold FROM alerts a JOIN meters m ON m.id = a.source_id "
                     "WHERE a.source_kind = 'meter' AND a.rule = 'meter_silent' AND a.cleared_at IS NULL")

    want = len(meters - resumed)
    rows = wait_for(lambda: (r := silent()) and len(r) == want and r, 30, f"{want} silent meters")
    assert {(gw, code) for gw, code, _, _ in rows} == meters - resumed
    assert all(value >= threshold == 4.0 for _, _, value, threshold in rows)
    # each alert opened once; the one that resumed (if a sweep saw it silent before its reading
    # came) was cleared, not before it opened
    transitions = p.sql("SELECT m.gateway_id, m.code, t.kind, t.at FROM alert_transitions t JOIN meters m "
                        "ON m.id = t.source_id WHERE t.rule = 'meter_silent' ORDER BY t.id")
    opened = {(gw, code): at for gw, code, kind, at in transitions if kind == "opened"}
    assert len(opened) == sum(kind == "opened" for _, _, kind, _ in transitions)
    assert set(opened) - resumed == meters - resumed
    cleared = {(gw, code): at for gw, code, kind, at in transitions if kind == "cleared"}
    assert set(cleared) == set(opened) & resumed
    assert all(at >= opened[m] for m, at in cleared.items())


def test_a_healthy_stream_quarantines_nothing_and_the_rules_never_failed(
    running: tuple[Pipeline, dict[str, GroundTruth]],
) -> None:
    p, truths = running
    # every published reading stored (2 sites × 2 meters × 24 quarter-hours = 96, plus the good
    # reading of the bad-input test when it ran first), none set aside
    assert p.sql("SELECT count(*) FROM readings")[0][0] >= sum(t.readings for t in truths.values()) == 96
    assert p.sql("SELECT count(*) FROM quarantine") == [(0,)]
    assert p.sql("SELECT count(*) FROM dead_letters WHERE reason_code IN ('internal_error', 'storage_refused')") == [(0,)]
    worker = next(x for x in p.procs if x.module == "stream")
    assert worker.popen.poll() is None
