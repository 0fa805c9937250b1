"""The gateway payload: the documented, versioned format meter gateways publish over MQTT.

Topic: ``nxem/v1/{enterprise_id}/{gateway_id}/readings`` (QoS 1).

Body (UTF-8 JSON, at most ``MAX_PAYLOAD_BYTES``; JSON Schema in ``gateway-payload.schema.json``)::

    {"schema": "nxem.gateway/1",
     "enterprise": "91640500MA76L8XK3A",
     "gateway": "gw-zw-dc01-a",
     "seq": 42,                                  # per-gateway message counter, increasing
     "sent_at": "2026-11-24T16:00:03+08:00",     # RFC 3339 with offset
     "readings": [
        {"meter": "it-main", "ts": "2026-11-24T16:00:00+08:00", "value": 123456.7, "unit": "kWh"}
     ]}

This module is pure: it decodes bytes into typed messages and says precisely what is wrong
(``ContractError`` with a reason code). Registry checks (unknown meter, enterprise mismatch)
and the translation into the Kafka contract live in ``collector/normalise.py``.

The contract's rules beyond JSON types, each with its reason code: ids (enterprise, gateway,
meter) are 1..64 printable characters (``bad_enterprise_id``/``bad_gateway_id``/
``bad_meter_id``: no control characters, so no NUL); ``seq`` is 0..2^63-1 (``bad_seq``);
``sent_at`` and every ``ts`` are written in the years 2000..2099 (``sent_at_out_of_range``,
``timestamp_out_of_range``); no object repeats a key (``duplicate_key``); nesting is at most
``MAX_DEPTH`` levels (``nesting_too_deep``); the bytes are UTF-8 (``bad_encoding``, decided
here rather than by which exception the JSON library raises). A problem inside one reading
costs only that reading.
"""

from __future__ import annotations

import bisect
import codecs
import json
import math
import re
from datetime import datetime
from typing import Annotated, Any, Final

import msgspec

from nxem.errors import ContractError

SCHEMA_ID: Final = "nxem.gateway/1"
TOPIC_PREFIX: Final = "nxem/v1"
TOPIC_FILTER: Final = "nxem/v1/+/+/readings"
MAX_PAYLOAD_BYTES: Final = 256 * 1024  # documented default cap (NXEM_COLLECTOR_MAX_PAYLOAD_BYTES)
MAX_READINGS: Final = 5000  # per message
MAX_ID_LEN: Final = 64
MAX_SEQ: Final = 2**63 - 1  # a signed 64-bit integer, as every consumer of the contract holds it
MIN_YEAR: Final = 2000  # timestamps are written in the years MIN_YEAR..MAX_YEAR (any offset)
MAX_YEAR: Final = 2099
MAX_DEPTH: Final = 64  # JSON nesting; a valid message is 3 deep (message, readings, reading)
_MAX_ENCODING_ERRORS: Final = 64  # beyond this many invalid UTF-8 sequences, the whole message is refused

AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]


class GatewayReading(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    meter: str
    ts: AwareDatetime
    value: float
    unit: str | None = None


class GatewayMessage(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    schema: str
    enterprise: str
    gateway: str
    seq: int
    sent_at: AwareDatetime
    readings: list[GatewayReading]


class _Envelope(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The message with its readings left undecoded, for the per-reading fallback."""

    schema: str
    enterprise: str
    gateway: str
    seq: int
    sent_at: AwareDatetime
    readings: list[msgspec.Raw]


class RejectedReading(msgspec.Struct, frozen=True):
    index: int
    reason_code: str
    reason: str
    raw: bytes


_MSG_DEC: Final = msgspec.json.Decoder(GatewayMessage)
_ENV_DEC: Final = msgspec.json.Decoder(_Envelope)
_READING_DEC: Final = msgspec.json.Decoder(GatewayReading)
_ENC: Final = msgspec.json.Encoder()
_isfinite: Final = math.isfinite
# Strings a duplicate-free message without ``"unit": null`` holds: 6 keys + 4 string values of
# the envelope, and per reading 3 keys + 2 string values (+ key and value of a unit).
_ENVELOPE_STRINGS: Final = 10
_READING_STRINGS: Final = 5


def topic_for(enterprise_id: str, gateway_id: str) -> str:
    return f"{TOPIC_PREFIX}/{enterprise_id}/{gateway_id}/readings"


def parse_topic(topic: str) -> tuple[str, str]:
    """Return (enterprise_id, gateway_id) of a readings topic."""
    parts = topic.split("/")
    if len(parts) != 5 or f"{parts[0]}/{parts[1]}" != TOPIC_PREFIX or parts[4] != "readings":
        raise ContractError("bad_topic", f"topic {topic[:200]!r} is not {TOPIC_PREFIX}/<enterprise>/<gateway>/readings")
    return parts[2], parts[3]


def encode(message: GatewayMessage) -> bytes:
    return _ENC.encode(message)


def encode_reading(reading: GatewayReading) -> bytes:
    return _ENC.encode(reading)


def _bad_id(value: str) -> bool:
    return not value or len(value) > MAX_ID_LEN or not value.isprintable()


def _check_envelope(msg: GatewayMessage | _Envelope) -> None:
    if msg.schema != SCHEMA_ID:
        raise ContractError("unsupported_schema", f"schema {msg.schema[:100]!r}, expected {SCHEMA_ID!r}")
    if _bad_id(msg.enterprise):
        raise ContractError("bad_enterprise_id", f"enterprise id must be 1..{MAX_ID_LEN} printable characters")
    if _bad_id(msg.gateway):
        raise ContractError("bad_gateway_id", f"gateway id must be 1..{MAX_ID_LEN} printable characters")
    if not 0 <= msg.seq <= MAX_SEQ:
        raise ContractError("bad_seq", f"seq {msg.seq} is outside 0..2^63-1")
    if not MIN_YEAR <= msg.sent_at.year <= MAX_YEAR:
        raise ContractError("sent_at_out_of_range", f"sent_at {msg.sent_at.isoformat()} is outside the years {MIN_YEAR}..{MAX_YEAR}")
    if len(msg.readings) > MAX_READINGS:
        raise ContractError("too_many_readings", f"{len(msg.readings)} readings > {MAX_READINGS}")


def _reading_problem(r: GatewayReading) -> tuple[str, str] | None:
    if not math.isfinite(r.value):
        return "non_finite_value", f"value {r.value!r} is not finite"
    if _bad_id(r.meter):
        return "bad_meter_id", f"meter id must be 1..{MAX_ID_LEN} printable characters"
    if not MIN_YEAR <= r.ts.year <= MAX_YEAR:
        return "timestamp_out_of_range", f"ts {r.ts.isoformat()} is outside the years {MIN_YEAR}..{MAX_YEAR}"
    return None


def decode(data: bytes, max_bytes: int = MAX_PAYLOAD_BYTES) -> tuple[GatewayMessage, list[RejectedReading]]:
    """Decode a payload; bad readings are returned separately so good ones are never lost.

    Raises ``ContractError`` when the message as a whole is unusable (size, encoding,
    JSON, envelope, repeated keys, nesting). The fast path decodes everything in one typed
    pass and proves by counting quotes that no key repeats (a message it cannot prove so is
    checked by the json stdlib); only a message with a bad reading or a repeated key in a
    reading takes the slower per-reading path.
    """
    if len(data) > max_bytes:
        raise ContractError("payload_too_large", f"{len(data)} bytes > cap {max_bytes}")
    try:
        msg = _MSG_DEC.decode(data)  # only ever succeeds on valid UTF-8: every string is decoded
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return _decode_slow(data)
    readings = msg.readings
    units = 0
    bad = False
    if data.isascii() and b"\\" not in data and b"\x7f" not in data:
        # JSON forbids raw C0 controls in strings, so without escapes, DEL or non-ASCII every
        # id is printable: only the other rules need a look (this loop is the hot path).
        for r in readings:
            if r.unit is not None:
                units += 1
            if not (_isfinite(r.value) and 0 < len(r.meter) <= MAX_ID_LEN and MIN_YEAR <= r.ts.year <= MAX_YEAR):
                bad = True
    else:
        for r in readings:
            if r.unit is not None:
                units += 1
            if not bad and _reading_problem(r) is not None:
                bad = True
    if b"\\" in data or data.count(b'"') != 2 * (_ENVELOPE_STRINGS + _READING_STRINGS * len(readings) + 2 * units):
        # An escape could spell a key, and any extra string could be a repeated key (or a
        # ``"unit": null``, outside the published schema): decide exactly. The typed decode
        # succeeded, so the message is 3 levels deep and safe for the json stdlib.
        repeated = _repeated_keys(data)
        if repeated.envelope is not None:
            raise ContractError("duplicate_key", f"key {repeated.envelope[:100]!r} repeated in the message")
        if repeated.readings:
            return _decode_slow(data)  # the slow path keeps those readings' original bytes
    _check_envelope(msg)
    if not bad:
        return msg, []
    good: list[GatewayReading] = []
    rejected: list[RejectedReading] = []
    for i, r in enumerate(readings):
        problem = _reading_problem(r)
        if problem is None:
            good.append(r)
        else:
            rejected.append(RejectedReading(i, problem[0], f"meter {r.meter[:MAX_ID_LEN]!r}: {problem[1]}", _ENC.encode(r)))
    return msgspec.structs.replace(msg, readings=good), rejected


def _decode_slow(data: bytes) -> tuple[GatewayMessage, list[RejectedReading]]:
    # The envelope is decoded with its readings left raw, so a problem inside one reading
    # (bad bytes, a repeated key, a wrong type) only costs that reading.
    errors = _utf8_errors(data)
    if len(errors) > _MAX_ENCODING_ERRORS:
        raise _bad_encoding(errors)
    text = _blank(data, errors) if errors else data  # same length: byte offsets still hold
    if _deeper_than(text, MAX_DEPTH):
        raise ContractError("nesting_too_deep", f"JSON nested deeper than {MAX_DEPTH} levels")
    lenient: _Envelope | None = None
    try:
        env = _ENV_DEC.decode(text)
    except msgspec.ValidationError as err:
        if errors:
            raise _bad_encoding(errors) from err
        raise ContractError("invalid_envelope", str(err)) from err
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as err:
        if errors:
            raise _bad_encoding(errors) from err
        lenient = _envelope_with_nonfinite_literals(text)
        if lenient is None:
            raise ContractError("malformed_json", str(err)) from err
        env = lenient
    raws = [bytes(raw) for raw in env.readings]
    bad_bytes: set[int] = set()
    if errors:
        spans = _spans(text, raws)
        starts = [s for s, _ in spans]
        for pos, _end in errors:
            i = bisect.bisect_right(starts, pos) - 1
            if i < 0 or pos >= spans[i][1]:
                raise _bad_encoding(errors)  # outside every reading: in the envelope
            bad_bytes.add(i)
        raws = [data[s:e] for s, e in spans]  # the original bytes, not the blanked copy
    inside = sum(raw.count(b'"') for raw in raws)
    if lenient is not None or b"\\" in text or text.count(b'"') - inside != 2 * _ENVELOPE_STRINGS:
        repeated = _repeated_keys(text)  # an escape or an extra string outside the readings
        if repeated.envelope is not None:
            raise ContractError("duplicate_key", f"key {repeated.envelope[:100]!r} repeated in the message")
        in_reading: dict[int, str] | None = repeated.readings
    else:
        in_reading = None  # the envelope holds no extra string: decided per reading below
    _check_envelope(env)
    good: list[GatewayReading] = []
    rejected: list[RejectedReading] = []
    for i, raw_bytes in enumerate(raws):
        if i in bad_bytes:
            rejected.append(RejectedReading(i, "bad_encoding", "reading is not UTF-8", raw_bytes))
            continue
        try:
            r = _READING_DEC.decode(raw_bytes)
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as err:
            if _has_nonfinite_value(raw_bytes):
                rejected.append(RejectedReading(i, "non_finite_value", "value is NaN or Infinity", raw_bytes))
            else:
                rejected.append(RejectedReading(i, "invalid_reading", str(err), raw_bytes))
            continue
        if in_reading is not None:
            key = in_reading.get(i)
        elif _proves_no_repeat(raw_bytes, r.unit):
            key = None
        else:
            try:
                key = _repeated_keys(raw_bytes).envelope  # the reading is the top-level object here
            except ContractError as err:
                rejected.append(RejectedReading(i, "invalid_reading", err.message, raw_bytes))
                continue
        if key is not None:
            rejected.append(RejectedReading(i, "duplicate_key", f"key {key[:100]!r} repeated in the reading", raw_bytes))
            continue
        problem = _reading_problem(r)
        if problem is None:
            good.append(r)
        else:
            rejected.append(RejectedReading(i, problem[0], f"meter {r.meter[:MAX_ID_LEN]!r}: {problem[1]}", raw_bytes))
    msg = GatewayMessage(
        schema=env.schema,
        enterprise=env.enterprise,
        gateway=env.gateway,
        seq=env.seq,
        sent_at=env.sent_at,
        readings=good,
    )
    return msg, rejected


def _utf8_errors(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each invalid UTF-8 sequence, at most ``_MAX_ENCODING_ERRORS + 1``."""
    found: list[tuple[int, int]] = []
    view = memoryview(data)
    pos = 0
    while len(found) <= _MAX_ENCODING_ERRORS:
        try:
            codecs.utf_8_decode(view[pos:], "strict", True)
            break
        except UnicodeDecodeError as err:
            found.append((pos + err.start, pos + err.end))
            pos += err.end
    return found


def _blank(data: bytes, errors: list[tuple[int, int]]) -> bytes:
    """``data`` with every invalid byte replaced by ``?`` (one byte each: offsets unchanged)."""
    out = bytearray(data)
    for start, end in errors:
        out[start:end] = b"?" * (end - start)
    return bytes(out)


def _bad_encoding(errors: list[tuple[int, int]]) -> ContractError:
    return ContractError("bad_encoding", f"payload is not UTF-8: invalid byte at offset {errors[0][0]}")


def _spans(text: bytes, raws: list[bytes]) -> list[tuple[int, int]]:
    """Offsets of each raw reading in ``text`` (in order: a reading never starts in the
    whitespace or comma before it, so the first match after the previous one is it)."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for raw in raws:
        start = text.find(raw, pos)
        spans.append((start, start + len(raw)))
        pos = start + len(raw)
    return spans


_ESCAPE: Final = re.compile(rb"\\.", re.DOTALL)
_NOT_STRUCTURE: Final = bytes(c for c in range(256) if c not in b'[]{}"')


def _deeper_than(text: bytes, limit: int) -> bool:
    """True when ``text`` nests arrays/objects deeper than ``limit`` (brackets inside strings
    do not count). Free when there are few brackets; otherwise one pass over the brackets,
    stopping as soon as the limit is passed."""
    if text.count(b"[") + text.count(b"{") <= limit:
        return False
    if b"\\" in text:
        text = _ESCAPE.sub(b"", text)  # no escaped quote is left to end a string early
    brackets = b"".join(text.translate(None, _NOT_STRUCTURE).split(b'"')[::2])  # outside strings
    depth = 0
    for c in brackets:
        if c == 0x5B or c == 0x7B:  # [ {
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def _proves_no_repeat(raw: bytes, unit: str | None) -> bool:
    """True when one reading's bytes cannot repeat a key: without escapes, a reading with
    exactly its 3 keys, 2 string values and (when it has one) the unit key and value holds
    exactly that many strings; a repeated key would add one."""
    return b"\\" not in raw and raw.count(b'"') == 2 * (_READING_STRINGS + (2 if unit is not None else 0))


class _RepeatedKey(dict[str, Any]):
    """An object of the payload in which a key repeats (``key`` is the first one that does)."""

    key = ""


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) == len(pairs):
        return obj
    marked = _RepeatedKey(obj)
    seen: set[str] = set()
    for key, _value in pairs:
        if key in seen:
            marked.key = key
            break
        seen.add(key)
    return marked


class _Repeated:
    __slots__ = ("envelope", "readings")

    def __init__(self, envelope: str | None, readings: dict[int, str]) -> None:
        self.envelope, self.readings = envelope, readings


def _repeated_keys(text: bytes) -> _Repeated:
    """The first repeated key of the message object and of each reading (of the last
    ``readings`` array, the one decoded), found with the json stdlib's pairs hook."""
    try:
        obj = json.loads(text, object_pairs_hook=_pairs)
    except (ValueError, RecursionError) as err:
        raise ContractError("malformed_json", f"refused by the strict parser: {err}") from err
    if not isinstance(obj, dict):
        return _Repeated(None, {})
    readings = obj.get("readings")
    per_reading = {
        i: r.key for i, r in enumerate(readings if isinstance(readings, list) else [])
        if isinstance(r, _RepeatedKey)
    }
    return _Repeated(obj.key if isinstance(obj, _RepeatedKey) else None, per_reading)


def _envelope_with_nonfinite_literals(data: bytes) -> _Envelope | None:
    """The envelope of a message that is JSON except for NaN/Infinity literals (which Python's
    ``json.dumps`` and other gateway stacks emit), so only those readings are refused; None
    when the payload is not JSON even so."""
    if b"NaN" not in data and b"Infinity" not in data:
        return None
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError):
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("readings"), list):
        return None
    raws = [msgspec.Raw(json.dumps(r, ensure_ascii=False).encode()) for r in obj["readings"]]
    try:
        return msgspec.convert({**obj, "readings": raws}, _Envelope)
    except msgspec.ValidationError as err:
        raise ContractError("invalid_envelope", str(err)) from err


def _has_nonfinite_value(raw: bytes) -> bool:
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError):
        return False
    value = obj.get("value") if isinstance(obj, dict) else None
    return isinstance(value, float) and not math.isfinite(value)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the payload, as shipped in ``gateway-payload.schema.json``."""
    schema: dict[str, Any] = msgspec.json.schema(GatewayMessage)
    return schema
