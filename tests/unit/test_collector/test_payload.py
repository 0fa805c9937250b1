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
        (b"\xff\xfe{}", "bad_encoding"),  # a UTF-16 byte-order mark: the encoding is checked before JSON
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


def test_non_utf8_inside_one_reading_rejects_only_that_reading_with_its_original_bytes() -> None:
    m = _msg(readings=[{"meter": "ok", "ts": "2026-11-24T16:00:00+08:00", "value": 1.0},
                       {"meter": "BAD", "ts": "2026-11-24T16:00:00+08:00", "value": 2.0}])
    raw = json.dumps(m).encode().replace(b"BAD", b"\xff\xfe")
    msg, rejected = payload.decode(raw)
    assert [r.meter for r in msg.readings] == ["ok"]
    assert [(r.index, r.reason_code) for r in rejected] == [(1, "bad_encoding")]
    assert rejected[0].raw == b'{"meter": "\xff\xfe", "ts": "2026-11-24T16:00:00+08:00", "value": 2.0}'


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


# -- the rules beyond JSON types: one hand-made row per reason -----------------------------

def _reading(meter: str = "it-main", ts: str = "2026-11-24T16:00:00+08:00", value: object = 1.0) -> dict[str, object]:
    return {"meter": meter, "ts": ts, "value": value}


def _code(data: bytes) -> str:
    with pytest.raises(ContractError) as exc:
        payload.decode(data)
    return exc.value.reason_code


@pytest.mark.parametrize(
    ("data", "code"),
    [
        # ids: 1..64 printable characters; NUL and other controls never pass
        (json.dumps(_msg(enterprise="91640500MA76L8XK3A\u0000")).encode(), "bad_enterprise_id"),
        (json.dumps(_msg(enterprise="")).encode(), "bad_enterprise_id"),
        (json.dumps(_msg(gateway="gw\u0000a")).encode(), "bad_gateway_id"),
        (json.dumps(_msg(gateway="gw\u0085a")).encode(), "bad_gateway_id"),  # C1 control, legal raw in JSON
        (json.dumps(_msg(gateway="gw\u2028a")).encode(), "bad_gateway_id"),  # line separator
        (json.dumps(_msg(gateway="g" * 65)).encode(), "bad_gateway_id"),
        # seq: 0..2^63-1 (2^63 = 9223372036854775808)
        (json.dumps(_msg(seq=2**63)).encode(), "bad_seq"),
        (json.dumps(_msg(seq=10**30)).encode(), "bad_seq"),
        # sent_at: written in the years 2000..2099 (these two overflowed converting to UTC)
        (json.dumps(_msg(sent_at="0001-01-01T00:00:00+01:00")).encode(), "sent_at_out_of_range"),
        (json.dumps(_msg(sent_at="9999-12-31T23:59:59-01:00")).encode(), "sent_at_out_of_range"),
        (json.dumps(_msg(sent_at="1999-12-31T23:59:59+00:00")).encode(), "sent_at_out_of_range"),
        (json.dumps(_msg(sent_at="2100-01-01T00:00:00+00:00")).encode(), "sent_at_out_of_range"),
        # a key repeated in the message: the JSON library would silently keep the last one
        (json.dumps(EXAMPLE).encode().replace(b'"seq": 42', b'"seq": 41, "seq": 42'), "duplicate_key"),
        (json.dumps(EXAMPLE).encode().replace(b'"seq": 42', b'"s\\u0065q": 41, "seq": 42'), "duplicate_key"),
        (json.dumps(EXAMPLE).encode().replace(b'"readings": [', b'"readings": [], "readings": ['), "duplicate_key"),
        (json.dumps(EXAMPLE).encode().replace(b'"seq": 42', b'"seq": 42, "seq": 42'), "duplicate_key"),  # same value
        # nesting: 1 000 arrays deep in a reading raised RecursionError
        (json.dumps(_msg(readings=[_reading(value=[])])).encode().replace(b"[]", b"[" * 1000 + b"]" * 1000),
         "nesting_too_deep"),
        (b"[" * 100_000, "nesting_too_deep"),
        # encoding: bad bytes in the envelope, or more bad sequences than are worth locating
        (json.dumps(_msg(enterprise="X\u00e9")).encode().replace(b"\\u00e9", b"\xc3"), "bad_encoding"),
        (json.dumps(_msg(readings=[_reading(meter="m-\u00e9") for _ in range(70)])).encode()
         .replace(b"\\u00e9", b"\xe9"), "bad_encoding"),
    ],
)
def test_each_message_level_rule_has_its_reason(data: bytes, code: str) -> None:
    assert _code(data) == code


def test_limits_of_each_range_are_accepted() -> None:
    msg, rejected = payload.decode(json.dumps(_msg(
        seq=2**63 - 1, sent_at="2000-01-01T00:00:00-01:00",  # year 2000 as written (01:00Z)
        readings=[_reading(ts="2099-12-31T23:59:59+14:00"), _reading(meter="m" * 64)],
    )).encode())
    assert rejected == [] and msg.seq == 9223372036854775807 and len(msg.readings) == 2
    assert msg.sent_at == datetime(2000, 1, 1, 1, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("bad", "code"),
    [
        (_reading(meter="it\u0000main"), "bad_meter_id"),
        (_reading(meter="it\u007fmain"), "bad_meter_id"),  # DEL, legal raw in JSON
        (_reading(meter=""), "bad_meter_id"),
        (_reading(ts="0001-01-01T00:00:00+01:00"), "timestamp_out_of_range"),
        (_reading(ts="9999-12-31T23:59:59-01:00"), "timestamp_out_of_range"),
        (_reading(ts="1970-01-01T00:00:00Z"), "timestamp_out_of_range"),
        (_reading(value=[[[[[[[[[[[[]]]]]]]]]]]]), "invalid_reading"),  # 12 deep: within the bound, just wrong
    ],
)
def test_each_reading_level_rule_costs_only_that_reading(bad: dict[str, object], code: str) -> None:
    good = _reading(meter="ok", value=2.5)
    msg, rejected = payload.decode(json.dumps(_msg(readings=[good, bad, good])).encode())
    assert [(r.meter, r.value) for r in msg.readings] == [("ok", 2.5), ("ok", 2.5)]
    assert [(r.index, r.reason_code) for r in rejected] == [(1, code)]
    assert "\x00" not in rejected[0].reason


@pytest.mark.parametrize(
    ("fragment", "replacement"),
    [
        (b'"value": 1.0', b'"value": 7.0, "value": 1.0'),  # the first value would be lost
        (b'"meter": "dup"', b'"meter": "other", "meter": "dup"'),
        (b'"value": 1.0', b'"value": 1.0, "unit": null, "unit": "kWh"'),  # unit: null then a string
        (b'"value": 1.0', b'"value": 1.0, "unit": null, "unit": null'),
        (b'"value": 1.0', b'"valu\\u0065": 7.0, "value": 1.0'),
    ],
)
def test_a_key_repeated_in_one_reading_refuses_that_reading_with_its_original_bytes(
        fragment: bytes, replacement: bytes) -> None:
    m = _msg(readings=[_reading(meter="ok", value=2.5), _reading(meter="dup"), _reading(meter="ok", value=3.5)])
    raw = json.dumps(m).encode().replace(b'"meter": "dup", "ts": "2026-11-24T16:00:00+08:00", "value": 1.0',
                                         b'"meter": "dup", "ts": "2026-11-24T16:00:00+08:00", "value": 1.0'
                                         .replace(fragment, replacement))
    msg, rejected = payload.decode(raw)
    assert [r.value for r in msg.readings] == [2.5, 3.5]
    assert [(r.index, r.reason_code) for r in rejected] == [(1, "duplicate_key")]
    assert replacement in rejected[0].raw


def test_unit_null_once_is_not_a_repeated_key() -> None:
    # outside the published schema (unit is a string) but accepted as "no unit", on the exact path
    m = _msg(readings=[{**_reading(), "unit": None}, {**_reading(value=2.0), "unit": "kWh"}])
    msg, rejected = payload.decode(json.dumps(m).encode())
    assert rejected == [] and [r.unit for r in msg.readings] == [None, "kWh"]


def test_a_key_repeated_beside_a_bad_reading_is_still_found() -> None:
    # the bad reading sends the message down the per-reading path; the repeat is found there too
    m = _msg(readings=[_reading(value="x"), _reading(meter="dup")])
    raw = json.dumps(m).encode().replace(b'"meter": "dup"', b'"meter": "dup", "meter": "dup"')
    msg, rejected = payload.decode(raw)
    assert msg.readings == [] and [(r.index, r.reason_code) for r in rejected] == [
        (0, "invalid_reading"), (1, "duplicate_key")]
    with pytest.raises(ContractError) as exc:
        payload.decode(raw.replace(b'"seq": 42', b'"seq": 42, "seq": 43'))
    assert exc.value.reason_code == "duplicate_key"


def test_payload_at_the_cap_is_decoded_and_one_byte_over_is_not() -> None:
    body = json.dumps(EXAMPLE).encode()
    at_cap = body[:-1] + b" " * (payload.MAX_PAYLOAD_BYTES - len(body)) + b"}"  # whitespace is JSON
    assert len(at_cap) == 262_144  # 256 KiB
    msg, rejected = payload.decode(at_cap)
    assert rejected == [] and msg.seq == 42
    with pytest.raises(ContractError) as exc:
        payload.decode(at_cap + b" ")
    assert exc.value.reason_code == "payload_too_large" and exc.value.message == "262145 bytes > cap 262144"
    assert payload.decode(at_cap + b" ", max_bytes=262_145)[0].seq == 42  # the cap is a parameter


# -- the fast path's proof that no key repeats, against the exact check ----------------------

_meter_ids = st.text(st.characters(codec="utf-8"), min_size=1, max_size=8)
_readings = st.lists(
    st.fixed_dictionaries(
        {"meter": _meter_ids, "ts": st.just("2026-11-24T16:00:00+08:00"), "value": st.floats(0, 1e9)},
        optional={"unit": st.none() | st.sampled_from(["kWh", "t", "\u5428"])},
    ),
    max_size=6,
)


@settings(max_examples=400, deadline=None)
@given(
    readings=_readings,
    spaced=st.booleans(),
    ascii_only=st.booleans(),
    repeat=st.none() | st.tuples(st.integers(-1, 5), st.sampled_from(["meter", "ts", "value", "unit", "seq", "schema"])),
)
def test_fuzz_a_repeated_key_is_always_found_and_never_imagined(
        readings: list[dict[str, object]], spaced: bool, ascii_only: bool, repeat: tuple[int, str] | None) -> None:
    """Messages written with and without spaces and escapes, some with one key repeated
    (in the envelope: index -1, or in reading i): decode refuses exactly the repeated ones."""
    sep = (", ", ": ") if spaced else (",", ":")
    objects: list[str] = []
    target: int | None = None
    for i, r in enumerate(readings):
        text = json.dumps(r, separators=sep, ensure_ascii=ascii_only)
        if repeat is not None and repeat[0] == i and repeat[1] in ("meter", "ts", "value", "unit"):
            target = i
            first = json.dumps({repeat[1]: r.get(repeat[1], "kWh")}, separators=sep)[1:-1]
            twice = first if repeat[1] in r else first + sep[0] + first  # a unit it had not: twice
            text = "{" + twice + sep[0] + text[1:]
        objects.append(text)
    env = _msg(readings=[])
    env_text = json.dumps(env, separators=sep, ensure_ascii=ascii_only)
    if repeat is not None and repeat[0] == -1 and repeat[1] in ("seq", "schema"):
        first = json.dumps({repeat[1]: env[repeat[1]]}, separators=sep)[1:-1]
        env_text = "{" + first + sep[0] + env_text[1:]
    data = env_text.replace('"readings"' + sep[1] + "[]", '"readings"' + sep[1] + "[" + sep[0].join(objects) + "]")
    data_bytes = data.encode()
    envelope_repeat = repeat is not None and repeat[0] == -1 and repeat[1] in ("seq", "schema")
    if envelope_repeat:
        assert _code(data_bytes) == "duplicate_key"
        return
    msg, rejected = payload.decode(data_bytes)
    refused = {r.index for r in rejected if r.reason_code == "duplicate_key"}
    assert refused == ({target} if target is not None else set())
    assert len(msg.readings) + len(rejected) == len(readings)
