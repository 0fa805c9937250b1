"""The one versioned contract for everything that crosses Kafka.

Three record types, each on its own topic, each JSON encoded with msgspec:

* ``ReadingBatch`` on ``nxem.readings.v1`` -- the validated readings of one gateway message,
  keyed by ``site_id`` so every meter of a site lands on one partition (per-site order for
  the stateful rules). One Kafka record per gateway batch, not per reading: kafka-python's
  per-record cost is the slowest hop of the pipeline (see shared/notes/stack-facts.md).
* ``AlertEvent`` on ``nxem.alerts.v1`` -- one alert transition (opened/updated/cleared/
  acknowledged), keyed by ``alert_key``.
* ``DeadLetter`` on ``nxem.deadletter.v1`` -- input that could not be accepted, with the
  original bytes and the reason.

All datetimes are timezone-aware UTC. Bump ``SCHEMA_VERSION`` on any incompatible change and
keep the decoder accepting the previous version for one release.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from nxem.errors import ContractError

SCHEMA_VERSION = 1

Severity = Literal["critical", "major", "minor", "warning"]
TransitionKind = Literal["opened", "updated", "cleared", "acknowledged"]
SourceKind = Literal["site", "meter", "enterprise"]
Stage = Literal["collector", "worker"]
# Refused when naive on decode ("All datetimes are timezone-aware"): a naive one from the topic
# would fail far from here, comparing with aware times in the rules or in storage.
AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]


class Reading(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """One meter value. ``value`` is in the meter's registered unit (register or interval)."""

    meter_id: int  # registry id of the meter (storage.meters.id)
    ts: AwareDatetime  # measurement time, aware, UTC
    value: float


class ReadingBatch(msgspec.Struct, frozen=True, kw_only=True):
    """The accepted readings of one gateway message, normalised by the collector."""

    schema_version: int = SCHEMA_VERSION
    enterprise_id: str  # 18-character unified social credit code
    site_id: int
    gateway_id: str
    seq: int  # the gateway's own message sequence number
    sent_at: AwareDatetime  # gateway's send time (aware, UTC)
    received_at: AwareDatetime  # collector's receipt time (aware, UTC)
    readings: list[Reading]


class AlertEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One transition of an alert. Identity is (source_kind, source_id, rule)."""

    schema_version: int = SCHEMA_VERSION
    alert_key: str  # f"{source_kind}:{source_id}:{rule}"
    source_kind: SourceKind
    source_id: int
    enterprise_id: str
    rule: str
    kind: TransitionKind
    severity: Severity
    at: AwareDatetime  # event time of the transition (aware, UTC)
    value: float | None = None
    threshold: float | None = None
    details: dict[str, Any] = msgspec.field(default_factory=dict)


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    """Input refused at some stage, kept whole so an operator can inspect and replay it."""

    schema_version: int = SCHEMA_VERSION
    stage: Stage
    reason_code: str  # machine-readable, e.g. "malformed_json", "unknown_meter"
    reason: str  # human-readable detail
    received_at: AwareDatetime
    source: str  # MQTT topic or Kafka topic/partition/offset it came from
    original: bytes  # the original bytes (base64 in JSON)
    enterprise_id: str | None = None
    gateway_id: str | None = None


def alert_key(source_kind: SourceKind, source_id: int, rule: str) -> str:
    """The identity of an alert: at most one active alert per key."""
    return f"{source_kind}:{source_id}:{rule}"


_ENC = msgspec.json.Encoder()
_BATCH_DEC = msgspec.json.Decoder(ReadingBatch)
_ALERT_DEC = msgspec.json.Decoder(AlertEvent)
_DEAD_DEC = msgspec.json.Decoder(DeadLetter)


def encode(record: ReadingBatch | AlertEvent | DeadLetter) -> bytes:
    return _ENC.encode(record)


def _decode(dec: msgspec.json.Decoder[Any], data: bytes, what: str) -> Any:
    try:
        obj = dec.decode(data)
    except msgspec.DecodeError as err:  # ValidationError is a subclass
        raise ContractError("contract_invalid", f"{what}: {err}") from err
    if obj.schema_version != SCHEMA_VERSION:
        raise ContractError(
            "contract_version", f"{what}: schema_version {obj.schema_version} != {SCHEMA_VERSION}"
        )
    return obj


def decode_batch(data: bytes) -> ReadingBatch:
    batch: ReadingBatch = _decode(_BATCH_DEC, data, "ReadingBatch")
    return batch


def decode_alert(data: bytes) -> AlertEvent:
    event: AlertEvent = _decode(_ALERT_DEC, data, "AlertEvent")
    return event


def decode_dead_letter(data: bytes) -> DeadLetter:
    dead: DeadLetter = _decode(_DEAD_DEC, data, "DeadLetter")
    return dead
