"""Hypothesis invariants: every generated payload is valid; the checksum ignores order."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jsonschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.payload import MAX_PAYLOAD_BYTES, decode
from simulators.fleet import fleet_document
from simulators.generate import Publish, generate
from simulators.load import LoadConfig, _template, stamp
from simulators.scenario import data_centre_document, parse_scenario
from simulators.truth import MOD, checksum, reading_hash

SCHEMA = json.loads((Path(__file__).parents[3] / "collector" / "gateway-payload.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
START = datetime(2026, 3, 1, tzinfo=timezone(timedelta(hours=8)))


def _check(payload: bytes) -> None:
    assert len(payload) <= MAX_PAYLOAD_BYTES
    VALIDATOR.validate(json.loads(payload))
    _msg, rejected = decode(payload)
    assert rejected == []


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pue=st.floats(1.0, 2.0), it_kw=st.floats(0.0, 80_000.0), hours=st.integers(1, 12),
    interval=st.sampled_from([5, 15, 30, 60]), multiplier=st.sampled_from([1, 10, 100]),
    rollover=st.sampled_from([1_000.0, 99_999.99, 1e9]),
)
def test_data_centre_payloads_validate_and_decode(pue: float, it_kw: float, hours: int, interval: int,
                                                  multiplier: int, rollover: float) -> None:
    doc = data_centre_document("91640500MA76L8XK3A", "zw-dc-01", "gw-a", pue, it_kw, START, hours, interval)
    for m in doc["enterprises"][0]["sites"][0]["gateways"][0]["meters"]:
        m.update(multiplier=multiplier, rollover=rollover)
    for _, events in generate(parse_scenario(doc, now=START)):
        for ev in events:
            assert isinstance(ev, Publish)
            _check(ev.payload)
            assert all(0 <= r.value < rollover for r in ev.accepted)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dcs=st.integers(0, 3), plants=st.integers(0, 7), seed=st.integers(0, 10_000))
def test_fleet_payloads_validate_and_decode(dcs: int, plants: int, seed: int) -> None:
    sc = parse_scenario(fleet_document(dcs, plants, seed, duration="3h"), now=START)
    for _, events in generate(sc):
        for ev in events:
            assert isinstance(ev, Publish)
            _check(ev.payload)


@settings(max_examples=20, deadline=None)
@given(gateways=st.integers(1, 3), meters=st.integers(1, 300), seq=st.integers(0, 2**40))
def test_load_payloads_validate_and_decode(gateways: int, meters: int, seq: int) -> None:
    cfg = LoadConfig(gateways=gateways, meters=meters)
    _check(stamp(_template(cfg, gateways - 1), seq, datetime.now(timezone.utc)))


readings = st.lists(
    st.tuples(st.sampled_from(["it-main", "facility-main", "m0001"]),
              st.datetimes(timezones=st.just(timezone.utc), min_value=datetime(2020, 1, 1),
                           max_value=datetime(2030, 1, 1)),
              st.floats(allow_nan=False, allow_infinity=False)),
    max_size=50,
)


@given(readings, st.randoms())
def test_checksum_is_order_independent(rs: list[tuple[str, datetime, float]], rnd: Any) -> None:
    shuffled = list(rs)
    rnd.shuffle(shuffled)
    assert checksum(rs) == checksum(shuffled)
    assert 0 <= checksum(rs) < MOD


@given(readings)
def test_checksum_is_additive(rs: list[tuple[str, datetime, float]]) -> None:
    half = len(rs) // 2
    assert checksum(rs) == (checksum(rs[:half]) + checksum(rs[half:])) % MOD
    if rs:
        m, t, v = rs[0]
        assert reading_hash(m, t + timedelta(microseconds=1), v) != reading_hash(m, t, v)
