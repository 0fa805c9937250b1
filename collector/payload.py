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
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Annotated, Any, Final

import msgspec

from nxem.errors import ContractError

SCHEMA_ID: Final = "nxem.gateway/1"
TOPIC_PREFIX: Final = "nxem/v1"
TOPIC_FILTER: Final = "nxem/v1/+/+/readings"
MAX_PAYLOAD_BYTES: Final = 256 * 1024  # documented cap; larger payloads are dead-lettered
MAX_READINGS: Final = 5000  # per message
MAX_ID_LEN: Final = 64

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


def topic_for(enterprise_id: str, gateway_id: str) -> str:
    return f"{TOPIC_PREFIX}/{enterprise_id}/{gateway_id}/readings"


def parse_topic(topic: str) -> tuple[str, str]:
    """Return (enterprise_id, gateway_id) of a readings topic."""
    parts = topic.split("/")
    if len(parts) != 5 or f"{parts[0]}/{parts[1]}" != TOPIC_PREFIX or parts[4] != "readings":
        raise ContractError("bad_topic", f"topic {topic!r} is not {TOPIC_PREFIX}/<enterprise>/<gateway>/readings")
    return parts[2], parts[3]


def encode(message: GatewayMessage) -> bytes:
    return _ENC.encode(message)


def encode_reading(reading: GatewayReading) -> bytes:
    return _ENC.encode(reading)


def _check_envelope(msg: GatewayMessage | _Envelope) -> None:
    if msg.schema != SCHEMA_ID:
        raise ContractError("unsupported_schema", f"schema {msg.schema!r}, expected {SCHEMA_ID!r}")
    if not msg.gateway or len(msg.gateway) > MAX_ID_LEN:
        raise ContractError("bad_gateway_id", f"gateway id must be 1..{MAX_ID_LEN} characters")
    if msg.seq < 0:
        raise ContractError("bad_seq", f"seq {msg.seq} is negative")
    if len(msg.readings) > MAX_READINGS:
        raise ContractError("too_many_readings", f"{len(msg.readings)} readings > {MAX_READINGS}")


def _reading_problem(r: GatewayReading) -> tuple[str, str] | None:
    if not math.isfinite(r.value):
        return "non_finite_value", f"meter {r.meter!r}: value {r.value!r} is not finite"
    if not r.meter or len(r.meter) > MAX_ID_LEN:
        return "bad_meter_id", f"meter id must be 1..{MAX_ID_LEN} characters"
    return None


def decode(data: bytes) -> tuple[GatewayMessage, list[RejectedReading]]:
    """Decode a payload; bad readings are returned separately so good ones are never lost.

    Raises ``ContractError`` when the message as a whole is unusable (size, encoding,
    JSON, envelope). The fast path decodes everything in one typed pass; only a message
    with a bad reading takes the slower per-reading path.
    """
    if len(data) > MAX_PAYLOAD_BYTES:
        raise ContractError("payload_too_large", f"{len(data)} bytes > cap {MAX_PAYLOAD_BYTES}")
    try:
        msg = _MSG_DEC.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError):
        # msgspec raises UnicodeDecodeError (not DecodeError) for non-UTF-8 bytes in a string
        return _decode_slow(data)
    _check_envelope(msg)
    rejected: list[RejectedReading] = []
    bad = [i for i, r in enumerate(msg.readings) if _reading_problem(r) is not None]
    if bad:
        good: list[GatewayReading] = []
        for i, r in enumerate(msg.readings):
            problem = _reading_problem(r)
            if problem is None:
                good.append(r)
            else:
                rejected.append(RejectedReading(i, problem[0], problem[1], _ENC.encode(r)))
        msg = msgspec.structs.replace(msg, readings=good)
    return msg, rejected


def _decode_slow(data: bytes) -> tuple[GatewayMessage, list[RejectedReading]]:
    # The envelope is decoded from bytes with its readings left raw, so bad bytes inside one
    # reading only cost that reading.
    try:
        env = _ENV_DEC.decode(data)
    except UnicodeDecodeError as err:
        raise ContractError("bad_encoding", f"payload is not UTF-8: {err.reason} at byte {err.start}") from err
    except msgspec.ValidationError as err:
        raise ContractError("invalid_envelope", str(err)) from err
    except msgspec.DecodeError as err:
        lenient = _envelope_with_nonfinite_literals(data)
        if lenient is None:
            raise ContractError("malformed_json", str(err)) from err
        env = lenient
    _check_envelope(env)
    good: list[GatewayReading] = []
    rejected: list[RejectedReading] = []
    for i, raw in enumerate(env.readings):
        raw_bytes = bytes(raw)
        try:
            r = _READING_DEC.decode(raw_bytes)
        except (msgspec.DecodeError, UnicodeDecodeError) as err:
            if _has_nonfinite_value(raw_bytes):
                rejected.append(RejectedReading(i, "non_finite_value", "value is NaN or Infinity", raw_bytes))
            else:
                rejected.append(RejectedReading(i, "invalid_reading", str(err), raw_bytes))
            continue
        problem = _reading_problem(r)
        if problem is None:
            good.append(r)
        else:
            rejected.append(RejectedReading(i, problem[0], problem[1], raw_bytes))
    msg = GatewayMessage(
        schema=env.schema,
        enterprise=env.enterprise,
        gateway=env.gateway,
        seq=env.seq,
        sent_at=env.sent_at,
        readings=good,
    )
    return msg, rejected


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
