"""Normalisation of a gateway message into the Kafka contract, against a registry and a clock."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from collector.normalise import TEXT_MAX_CHARS, Limits, clean_text, normalise, truncated
from collector.payload import topic_for
from nxem import contract
from nxem.kafka import dead_letter_max_bytes

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


@pytest.mark.parametrize(
    ("sent_at", "code"),
    [("0001-01-01T00:00:00+01:00", "sent_at_out_of_range"), ("9999-12-31T23:59:59-01:00", "sent_at_out_of_range")],
)
def test_extreme_sent_at_is_a_dead_letter_not_an_overflow(sent_at: str, code: str) -> None:
    raw = _raw([_r("it", 1.0)]).replace(b"2026-11-24T16:00:01+08:00", sent_at.encode())
    out = normalise(topic_for(ENT, "gw-a"), raw, GATEWAYS, METERS, NOW)
    assert out.batches == [] and [d.reason_code for d in out.dead_letters] == [code]


def test_extreme_reading_times_cost_only_their_reading() -> None:
    readings = [_r("it", 1.0, ts="0001-01-01T00:00:00+01:00"), _r("fac", 2.0), _r("it", 3.0, ts="9999-12-31T23:59:59-01:00")]
    out = normalise(topic_for(ENT, "gw-a"), _raw(readings), GATEWAYS, METERS, NOW)
    assert [d.reason_code for d in out.dead_letters] == ["timestamp_out_of_range"] * 2
    assert [r.value for r in out.batches[0].readings] == [2.0]


def test_nul_in_an_id_is_refused_and_no_dead_letter_text_holds_a_nul() -> None:
    # was: a topic_mismatch dead letter whose reason carried the NUL into PostgreSQL
    for raw, code in ((_raw([_r("it", 1.0)], gateway="gw-a\u0000"), "bad_gateway_id"),
                      (_raw([_r("it", 1.0)], enterprise=ENT + "\u0000"), "bad_enterprise_id")):
        assert b"\\u0000" in raw  # the JSON escape of NUL, as a gateway may write it
        (dead,) = normalise(topic_for(ENT, "gw-a"), raw, GATEWAYS, METERS, NOW).dead_letters
        assert dead.reason_code == code and dead.reason.isprintable()
        assert (dead.enterprise_id, dead.gateway_id) == (None, None) and dead.original == raw
    # a topic may hold any character but NUL (MQTT): the reason shows it escaped
    out = normalise("nxem/v1/E\x01/gw-a/readings", _raw([_r("it", 1.0)]), GATEWAYS, METERS, NOW)
    (dead,) = out.dead_letters
    assert dead.reason_code == "topic_mismatch" and "E\\x01" in dead.reason and "\x01" not in dead.reason


def test_unknown_field_with_a_nul_in_its_name_leaves_no_nul_in_the_reason() -> None:
    raw = _raw([_r("it", 1.0)]).replace(b'"seq": 5', b'"seq": 5, "x\\u0000y": 1')
    (dead,) = normalise(topic_for(ENT, "gw-a"), raw, GATEWAYS, METERS, NOW).dead_letters
    assert dead.reason_code == "invalid_envelope" and dead.reason.isprintable() and "x\\x00y" in dead.reason


def test_clean_text_escapes_what_is_not_printable_and_bounds_the_length() -> None:
    assert clean_text("a\x00b\nc\u2028d") == "a\\x00b\\nc\\u2028d"
    assert clean_text("plain") == "plain"
    long = clean_text("x" * 5000)
    assert long == "x" * (TEXT_MAX_CHARS - 1) + "…" and len(long) == 1000


def test_payload_over_the_cap_keeps_a_prefix_its_size_and_sha256() -> None:
    big = _raw([_r("it", 1.0)])[:-1] + b" " * 1_000_000 + b"}"  # ~1 MB: under Mosquitto's 1 MiB limit
    out = normalise(topic_for(ENT, "gw-a"), big, GATEWAYS, METERS, NOW)
    (dead,) = out.dead_letters
    assert dead.reason_code == "payload_too_large" and out.batches == []
    assert dead.original == big[:4096]
    assert f"original {len(big)} bytes, sha256 {hashlib.sha256(big).hexdigest()}; first 4096 bytes kept" in dead.reason
    assert f"{len(big)} bytes > cap 262144" in dead.reason
    # the record is small: 4096 bytes base64 = 5464, plus the reason and the rest
    assert len(contract.encode(dead)) < 7000


def test_payload_at_the_cap_keeps_all_its_bytes_and_its_dead_letter_fits() -> None:
    body = b'{"schema": "nxem.gateway/1", "readings": ['  # malformed: refused whole
    at_cap = body + b" " * (262_144 - len(body))
    (dead,) = normalise(topic_for(ENT, "gw-a"), at_cap, GATEWAYS, METERS, NOW).dead_letters
    assert dead.reason_code == "malformed_json" and dead.original == at_cap
    assert len(contract.encode(dead)) <= dead_letter_max_bytes(262_144)


def test_the_largest_dead_letter_fits_the_bound_the_limits_are_checked_with() -> None:
    """Worst case of everything a dead letter carries besides its original: a reason and a
    source of 1000 four-byte characters and ids of 64, at the cap (4 × 87 382 = 349 528
    bytes of base64 for 262 144 bytes)."""
    dead = contract.DeadLetter(
        stage="collector", reason_code="internal_error", reason=clean_text("\U0001d11e" * 2000),
        received_at=NOW, source=clean_text("\U0001d11e" * 2000), original=b"\xff" * 262_144,
        enterprise_id="\U0001d11e" * 64, gateway_id="\U0001d11e" * 64,
    )
    assert len(contract.encode(dead)) <= dead_letter_max_bytes(262_144) == 349_528 + 16_384
    shrunk = truncated(dead)
    assert shrunk.original == b"\xff" * 4096 and len(shrunk.reason) <= TEXT_MAX_CHARS
    digest = hashlib.sha256(b"\xff" * 262_144).hexdigest()
    assert shrunk.reason.endswith(f"sha256 {digest}; first 4096 bytes kept]")
