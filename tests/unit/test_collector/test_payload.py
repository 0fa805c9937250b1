"""Gateway payload decoding: the documented format, its JSON Schema, and its error contract."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector import payload
from nxem.errors import ContractError

SCHEMA = json.loads((Path(payload.__file__).parent / "gateway-payload.schema.json").read_text())
EXAMPLE = SCHEMA["examples"][0]
CST = timezone(timedelta(hours=8))


def _msg(**over: object) -> dict[str, object]:
    m: dict[str, object] = json.loads(json.dumps(EXAMPLE))
    m.update(over)
    return m


def test_published_schema_is_valid_and_accepts_its_example() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    jsonschema.validate(EXAMPLE, SCHEMA)


def test_example_decodes_with_offsets_preserved() -> None:
    msg, rejected = payload.decode(json.dumps(EXAMPLE).encode())
    assert rejected == []
    assert msg.gateway == "gw-zw-dc01-a" and msg.seq == 42
    # 16:00 at +08:00 is 08:00 UTC
    assert msg.readings[0].ts == datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    assert msg.readings[0].ts.utcoffset() == timedelta(hours=8)
    assert [r.value for r in msg.readings] == [123456.7, 148148.0]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"{not json", "malformed_json"),
        (b"\xff\xfe{}", "malformed_json"),  # not JSON before any string is read
        (json.dumps(_msg(gateway="gw-\u00e9")).encode().replace(b"\\u00e9", b"\xff"), "bad_encoding"),
        (json.dumps(_msg(schema="nxem.gateway/2")).encode(), "unsupported_schema"),
        (json.dumps(_msg(seq=-1)).encode(), "bad_seq"),
        (json.dumps(_msg(seq="7")).encode(), "invalid_envelope"),
        (json.dumps({k: v for k, v in EXAMPLE.items() if k != "gateway"}).encode(), "invalid_envelope"),
        (json.dumps(_msg(sent_at="2026-11-24T16:00:03")).encode(), "invalid_envelope"),  # no offset
        (b" " * (payload.MAX_PAYLOAD_BYTES + 1), "payload_too_large"),
    ],
)
def test_unusable_messages_raise_contract_error_with_reason(data: bytes, code: str) -> None:
    with pytest.raises(ContractError) as exc:
        payload.decode(data)
    assert exc.value.reason_code == code


def test_bad_readings_are_rejected_one_by_one_and_good_ones_kept() -> None:
    m = _msg(readings=[
        {"meter": "a", "ts": "2026-11-24T16:00:00+08:00", "value": 1.5},
        {"meter": "b", "ts": "2026-11-24T16:00:00", "value": 2.0},          # naive time
        {"meter": "c", "ts": "2026-11-24T16:00:00+08:00", "value": "3"},    # wrong type
        {"meter": "d", "ts": "2026-11-24T16:00:00+08:00"},                  # missing value
        {"meter": "e", "ts": "2026-11-24T16:00:00+08:00", "value": 4.0, "x": 1},  # unknown field
        {"meter": "f", "ts": "2026-11-24T16:00:00+08:00", "value": 6.0},
    ])
    raw = json.dumps(m).encode().replace(b'"value": 6.0', b'"value": 1e400')  # overflows to inf
    msg, rejected = payload.decode(raw)
    assert [r.meter for r in msg.readings] == ["a"]
    assert [r.index for r in rejected] == [1, 2, 3, 4, 5]
    assert [r.reason_code for r in rejected] == ["invalid_reading"] * 4 + ["non_finite_value"]
    assert b'"meter":"c"' in rejected[1].raw.replace(b" ", b"")


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_nan_and_infinity_literals_reject_only_their_reading(literal: bytes) -> None:
    # Python's json.dumps writes these non-standard literals; the good reading beside them stays.
    m = _msg(readings=[{"meter": "bad", "ts": "2026-11-24T16:00:00+08:00", "value": 0.0},
                       {"meter": "ok", "ts": "2026-11-24T16:00:00+08:00", "value": 2.5}])
    raw = json.dumps(m).encode().replace(b'"value": 0.0', b'"value": ' + literal)
    msg, rejected = payload.decode(raw)
    assert [(r.meter, r.value) for r in msg.readings] == [("ok", 2.5)]
    assert [(r.index, r.reason_code) for r in rejected] == [(0, "non_finite_value")]


def test_nan_literal_does_not_rescue_a_payload_that_is_not_json() -> None:
    with pytest.raises(ContractError) as exc:
        payload.decode(b'{"readings": [NaN, ')
    assert exc.value.reason_code == "malformed_json"


def test_non_utf8_inside_one_reading_rejects_only_that_reading() -> None:
    m = _msg(readings=[{"meter": "ok", "ts": "2026-11-24T16:00:00+08:00", "value": 1.0},
                       {"meter": "BAD", "ts": "2026-11-24T16:00:00+08:00", "value": "x"}])
    raw = json.dumps(m).encode().replace(b"BAD", b"\xff\xfe")
    msg, rejected = payload.decode(raw)
    assert [r.meter for r in msg.readings] == ["ok"]
    assert [r.reason_code for r in rejected] == ["invalid_reading"]


def test_topic_round_trip_and_bad_topic() -> None:
    t = payload.topic_for("91640500MA76L8XK3A", "gw-1")
    assert t == "nxem/v1/91640500MA76L8XK3A/gw-1/readings"
    assert payload.parse_topic(t) == ("91640500MA76L8XK3A", "gw-1")
    with pytest.raises(ContractError) as exc:
        payload.parse_topic("nxem/v1/x/readings")
    assert exc.value.reason_code == "bad_topic"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048) | st.builds(
    lambda junk, at: (lambda b: b[:at] + junk + b[at:])(json.dumps(EXAMPLE).encode()),
    st.binary(min_size=1, max_size=8), st.integers(0, 400),
))
def test_fuzz_arbitrary_bytes_only_ever_raise_the_contract_error(data: bytes) -> None:
    try:
        msg, rejected = payload.decode(data)
    except ContractError as err:
        assert err.reason_code
    else:
        assert isinstance(msg, payload.GatewayMessage)
        assert all(r.reason_code for r in rejected)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(list(EXAMPLE) + ["extra"]), json_values, max_size=8))
def test_fuzz_json_shaped_input_only_ever_raises_the_contract_error(obj: dict[str, object]) -> None:
    try:
        payload.decode(json.dumps(obj).encode())
    except ContractError as err:
        assert err.reason_code
