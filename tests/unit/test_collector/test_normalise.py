"""Normalisation of a gateway message into the Kafka contract, against a registry and a clock."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from collector.normalise import Limits, normalise
from collector.payload import topic_for

ENT = "91640500MA76L8XK3A"
OTHER = "91640100MA76L8XK3M"
NOW = datetime(2026, 11, 24, 8, 0, 30, tzinfo=UTC)


@dataclass(frozen=True)
class GW:
    enterprise_id: str
    site_id: int


@dataclass(frozen=True)
class MR:
    meter_id: int
    site_id: int
    enterprise_id: str
    unit: str


GATEWAYS = {"gw-a": GW(ENT, 7), "gw-b": GW(OTHER, 9)}
METERS = {("gw-a", "it"): MR(101, 7, ENT, "kWh"), ("gw-a", "fac"): MR(102, 7, ENT, "kWh")}


def _raw(readings: list[dict[str, object]], gateway: str = "gw-a", enterprise: str = ENT) -> bytes:
    return json.dumps({
        "schema": "nxem.gateway/1", "enterprise": enterprise, "gateway": gateway, "seq": 5,
        "sent_at": "2026-11-24T16:00:01+08:00", "readings": readings,
    }).encode()


def _r(meter: str, value: object, ts: str = "2026-11-24T16:00:00+08:00", **kw: object) -> dict[str, object]:
    return {"meter": meter, "ts": ts, "value": value, **kw}


def test_good_message_becomes_one_batch_in_utc_keyed_by_site() -> None:
    out = normalise(topic_for(ENT, "gw-a"), _raw([_r("it", 1000.0), _r("fac", 1300.0, unit="kWh")]), GATEWAYS, METERS, NOW)
    assert out.dead_letters == []
    (batch,) = out.batches
    assert (batch.site_id, batch.enterprise_id, batch.seq) == (7, ENT, 5)
    # 16:00:00+08:00 == 08:00:00Z; sent_at 16:00:01+08:00 == 08:00:01Z
    assert [(r.meter_id, r.ts, r.value) for r in batch.readings] == [
        (101, datetime(2026, 11, 24, 8, 0, tzinfo=UTC), 1000.0),
        (102, datetime(2026, 11, 24, 8, 0, tzinfo=UTC), 1300.0),
    ]
    assert batch.sent_at == datetime(2026, 11, 24, 8, 0, 1, tzinfo=UTC)
    assert batch.received_at == NOW


def test_each_bad_reading_is_dead_lettered_and_good_ones_kept() -> None:
    readings = [
        _r("it", 1.0),
        _r("ghost", 1.0),                                   # unknown meter
        _r("fac", 1.0, unit="MWh"),                         # unit differs from registry
        _r("it", 1.0, ts="2026-11-24T16:10:00+08:00"),      # 9.5 min ahead of NOW > 5 min
        _r("it", 1.0, ts="2025-01-01T00:00:00+08:00"),      # 692 days old > 400
        _r("fac", -3.0),                                    # negative energy
        _r("fac", 5e12),                                    # absurd
        _r("fac", 2.0, ts="2026-11-24T16:04:00+08:00"),     # 3.5 min ahead: accepted
    ]
    out = normalise(topic_for(ENT, "gw-a"), _raw(readings), GATEWAYS, METERS, NOW)
    assert [d.reason_code for d in out.dead_letters] == [
        "unknown_meter", "unit_mismatch", "future_timestamp", "stale_timestamp", "negative_value", "absurd_value",
    ]
    assert all(d.stage == "collector" and d.gateway_id == "gw-a" for d in out.dead_letters)
    assert out.accepted == 2
    assert [r.value for r in out.batches[0].readings] == [1.0, 2.0]


def test_payload_enterprise_must_match_topic_and_registry() -> None:
    # A gateway of OTHER publishing under ENT's topic with ENT in the payload: refused whole.
    out = normalise(topic_for(ENT, "gw-b"), _raw([_r("it", 1.0)], gateway="gw-b"), GATEWAYS, METERS, NOW)
    assert out.batches == [] and [d.reason_code for d in out.dead_letters] == ["enterprise_mismatch"]
    out = normalise(topic_for(OTHER, "gw-a"), _raw([_r("it", 1.0)]), GATEWAYS, METERS, NOW)
    assert out.batches == [] and [d.reason_code for d in out.dead_letters] == ["topic_mismatch"]
    out = normalise(topic_for(ENT, "gw-x"), _raw([_r("it", 1.0)], gateway="gw-x"), GATEWAYS, METERS, NOW)
    assert [d.reason_code for d in out.dead_letters] == ["unknown_gateway"]


def test_unusable_payload_keeps_original_bytes() -> None:
    raw = b'{"schema": "nxem.gateway/1", "readings": ['
    out = normalise(topic_for(ENT, "gw-a"), raw, GATEWAYS, METERS, NOW)
    (dead,) = out.dead_letters
    assert dead.reason_code == "malformed_json" and dead.original == raw and out.batches == []


def test_limits_are_configurable() -> None:
    out = normalise(
        topic_for(ENT, "gw-a"), _raw([_r("it", 1.0, ts="2026-11-24T16:04:00+08:00")]), GATEWAYS, METERS, NOW,
        Limits(max_future=timedelta(minutes=1)),
    )
    assert [d.reason_code for d in out.dead_letters] == ["future_timestamp"]
