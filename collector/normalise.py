"""Translate one gateway MQTT message into the Kafka contract, or say why not.

Pure: the registry routing and the clock are passed in. Output is an ``Outcome``: the
accepted readings grouped per site (one ``ReadingBatch`` per site, normally exactly one) and
one ``DeadLetter`` per refused message or reading, each with a reason code. A bad reading
never takes the good readings of the same message with it.

Dead letters are bounded whatever the input: the reason and source are at most
``TEXT_MAX_CHARS`` printable characters (anything else is escaped, so no NUL reaches a
database), ids are the payload's only once validated, and a payload over the cap keeps only
its first ``KEPT_PREFIX_BYTES`` bytes, its size and its sha256 (``truncated``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol

import msgspec

from collector import payload
from nxem.contract import DeadLetter, Reading, ReadingBatch
from nxem.errors import ContractError

ABSURD_ABS_VALUE = 1e12  # no meter in a Ningxia key energy-using unit reads beyond this in its unit
TEXT_MAX_CHARS: Final = 1000  # reason and source of a dead letter
KEPT_PREFIX_BYTES: Final = 4096  # what a truncated dead letter keeps of the original bytes


class GatewayRouteLike(Protocol):
    @property
    def enterprise_id(self) -> str: ...
    @property
    def site_id(self) -> int: ...


class MeterRouteLike(Protocol):
    @property
    def meter_id(self) -> int: ...
    @property
    def site_id(self) -> int: ...
    @property
    def enterprise_id(self) -> str: ...
    @property
    def unit(self) -> str: ...


@dataclass(frozen=True)
class Limits:
    """Acceptance window for timestamps relative to the collector's clock."""

    max_future: timedelta = timedelta(minutes=5)
    max_age: timedelta = timedelta(days=400)
    max_payload_bytes: int = payload.MAX_PAYLOAD_BYTES  # bigger payloads: a truncated dead letter


@dataclass
class Outcome:
    batches: list[ReadingBatch] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return sum(len(b.readings) for b in self.batches)


def clean_text(text: str, limit: int = TEXT_MAX_CHARS) -> str:
    """``text`` with every non-printable character escaped (``\\x00``) and cut to at most
    ``limit`` characters (the last one then ``…``): safe for any log, label or database
    column (PostgreSQL text refuses NUL)."""
    if len(text) <= limit and text.isprintable():
        return text
    shown = text[:limit]
    if not shown.isprintable():
        shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in shown)
    if len(shown) > limit or len(text) > limit:
        shown = shown[: limit - 1] + "…"
    return shown


def truncated(dead: DeadLetter, keep: int = KEPT_PREFIX_BYTES) -> DeadLetter:
    """``dead`` keeping only the first ``keep`` bytes of its original, with the original's
    size and sha256 said in the reason (so the whole can still be matched to its source)."""
    original = dead.original
    note = (f" [original {len(original)} bytes, sha256 {hashlib.sha256(original).hexdigest()}; "
            f"first {min(keep, len(original))} bytes kept]")
    reason = clean_text(dead.reason, TEXT_MAX_CHARS - len(note)) + note
    return msgspec.structs.replace(dead, reason=reason, original=original[:keep], source=clean_text(dead.source))


def _dead(
    reason_code: str, reason: str, topic: str, original: bytes, now: datetime,
    enterprise_id: str | None = None, gateway_id: str | None = None,
) -> DeadLetter:
    return DeadLetter(
        stage="collector", reason_code=reason_code, reason=clean_text(reason), received_at=now,
        source=clean_text(topic), original=original, enterprise_id=enterprise_id, gateway_id=gateway_id,
    )


def normalise(
    topic: str,
    data: bytes,
    gateways: Mapping[str, GatewayRouteLike],
    meters: Mapping[tuple[str, str], MeterRouteLike],
    now: datetime,
    limits: Limits = Limits(),
) -> Outcome:
    """Validate a message against its topic and the registry; never raises ContractError."""
    out = Outcome()
    try:
        topic_enterprise, topic_gateway = payload.parse_topic(topic)
        msg, rejected = payload.decode(data, limits.max_payload_bytes)
    except ContractError as err:
        dead = _dead(err.reason_code, err.message, topic, data, now)
        out.dead_letters.append(truncated(dead) if len(data) > limits.max_payload_bytes else dead)
        return out
    if msg.enterprise != topic_enterprise or msg.gateway != topic_gateway:
        out.dead_letters.append(_dead(
            "topic_mismatch",
            f"payload enterprise/gateway {msg.enterprise}/{msg.gateway} differ from topic "
            f"{topic_enterprise}/{topic_gateway}",
            topic, data, now, msg.enterprise, msg.gateway,
        ))
        return out
    gw = gateways.get(msg.gateway)
    if gw is None:
        out.dead_letters.append(_dead(
            "unknown_gateway", f"gateway {msg.gateway!r} is not registered", topic, data, now,
            msg.enterprise, msg.gateway,
        ))
        return out
    if gw.enterprise_id != msg.enterprise:
        out.dead_letters.append(_dead(
            "enterprise_mismatch",
            f"gateway {msg.gateway!r} belongs to another enterprise than {msg.enterprise}",
            topic, data, now, msg.enterprise, msg.gateway,
        ))
        return out
    src = f"{topic}#seq={msg.seq}"
    for rej in rejected:
        out.dead_letters.append(_dead(
            rej.reason_code, f"reading {rej.index}: {rej.reason}", src, rej.raw, now,
            msg.enterprise, msg.gateway,
        ))
    newest, oldest = (now + limits.max_future).astimezone(UTC), (now - limits.max_age).astimezone(UTC)
    per_site: dict[int, list[Reading]] = {}
    route_of, gateway, utc = meters.get, msg.gateway, UTC
    site_id: int | None = None
    kept: list[Reading] = []
    for i, r in enumerate(msg.readings):
        route = route_of((gateway, r.meter))
        ts = r.ts.astimezone(utc)  # UTC-to-UTC comparisons below need no offset lookups
        value = r.value
        # the usual reading in one test; a failing one is told apart below, in the same order
        if (route is not None and (r.unit is None or r.unit == route.unit) and oldest <= ts <= newest
                and 0 <= value <= ABSURD_ABS_VALUE):
            if route.site_id != site_id:  # a gateway's meters normally all belong to one site
                site_id = route.site_id
                kept = per_site.setdefault(site_id, [])
            kept.append(Reading(route.meter_id, ts, value))
            continue
        if route is None:
            problem = ("unknown_meter", f"meter {r.meter!r} is not registered on gateway {msg.gateway!r}")
        elif r.unit is not None and r.unit != route.unit:
            problem = ("unit_mismatch", f"meter {r.meter!r} sent unit {r.unit!r}, registered {route.unit!r}")
        elif ts > newest:
            problem = ("future_timestamp", f"meter {r.meter!r} ts {r.ts.isoformat()} is after now+{limits.max_future}")
        elif ts < oldest:
            problem = ("stale_timestamp", f"meter {r.meter!r} ts {r.ts.isoformat()} is before now-{limits.max_age}")
        elif value < 0:
            problem = ("negative_value", f"meter {r.meter!r} value {value!r} is negative")
        else:
            problem = ("absurd_value", f"meter {r.meter!r} value {value!r} exceeds {ABSURD_ABS_VALUE:g}")
        out.dead_letters.append(_dead(
            problem[0], f"reading {i}: {problem[1]}", src, payload.encode_reading(r), now,
            msg.enterprise, msg.gateway,
        ))
    sent_at = msg.sent_at.astimezone(UTC)
    for site_id, readings in per_site.items():
        out.batches.append(ReadingBatch(
            enterprise_id=msg.enterprise, site_id=site_id, gateway_id=msg.gateway, seq=msg.seq,
            sent_at=sent_at, received_at=now, readings=readings,
        ))
    return out
