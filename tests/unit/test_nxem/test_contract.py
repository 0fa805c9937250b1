"""The Kafka contract: round trips, versioning, and errors as ContractError."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nxem import contract
from nxem.contract import AlertEvent, DeadLetter, Reading, ReadingBatch
from nxem.errors import ContractError

T = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def _batch(readings: list[Reading]) -> ReadingBatch:
    return ReadingBatch(enterprise_id="91640500MA76L8XK3A", site_id=7, gateway_id="gw-a", seq=3,
                        sent_at=T, received_at=T + timedelta(seconds=1), readings=readings)


def test_batch_round_trip_keeps_instants_and_values() -> None:
    b = _batch([Reading(101, T, 1000.5), Reading(102, T, 1300.25)])
    assert contract.decode_batch(contract.encode(b)) == b


def test_reading_is_compact_on_the_wire() -> None:
    # array_like: [meter_id, ts, value] instead of an object with three keys
    assert b'[101,"2026-11-24T08:00:00Z",1000.5]' in contract.encode(_batch([Reading(101, T, 1000.5)]))


def test_alert_and_dead_letter_round_trip() -> None:
    a = AlertEvent(alert_key=contract.alert_key("site", 7, "pue_above_limit"), source_kind="site", source_id=7,
                   enterprise_id="91640500MA76L8XK3A", rule="pue_above_limit", kind="opened", severity="major",
                   at=T, value=1.3, threshold=1.2, details={"formula": "PUE = E_total / E_IT"})
    assert a.alert_key == "site:7:pue_above_limit"
    assert contract.decode_alert(contract.encode(a)) == a
    d = DeadLetter(stage="collector", reason_code="malformed_json", reason="x", received_at=T,
                   source="nxem/v1/x/y/readings", original=b"\xff{")
    assert contract.decode_dead_letter(contract.encode(d)).original == b"\xff{"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"not json", "contract_invalid"),
        (b'{"schema_version": 1}', "contract_invalid"),
        (contract.encode(_batch([])).replace(b'"schema_version":1', b'"schema_version":2'), "contract_version"),
    ],
)
def test_bad_records_raise_contract_error(data: bytes, code: str) -> None:
    with pytest.raises(ContractError) as exc:
        contract.decode_batch(data)
    assert exc.value.reason_code == code


@given(st.lists(st.tuples(st.integers(1, 2**31 - 1), st.integers(0, 10**6), st.floats(0, 1e12)), max_size=50),
       st.sampled_from([UTC, timezone(timedelta(hours=8))]))
def test_any_batch_round_trips_to_the_same_instants(rows: list[tuple[int, int, float]], tz: timezone) -> None:
    readings = [Reading(m, (T + timedelta(seconds=s)).astimezone(tz), v) for m, s, v in rows]
    back = contract.decode_batch(contract.encode(_batch(readings)))
    assert [(r.meter_id, r.ts, r.value) for r in back.readings] == [(r.meter_id, r.ts, r.value) for r in readings]
