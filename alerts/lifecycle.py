"""Alert lifecycle: identity, at most one active alert per identity, transitions.

Identity is ``nxem.contract.alert_key(source_kind, source_id, rule)``. Status is two
independent flags, cleared and acknowledged (the ThingsBoard alarm model). A rule that keeps
triggering updates the active alert; an ``updated`` transition is emitted only when something
material changed (severity, or the value moved by more than ``UpdatePolicy.min_relative_step``)
so the alerts topic is not flooded by re-evaluations. A cleared alert leaves the active set;
the next trigger opens a new one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from nxem.contract import AlertEvent, Severity, SourceKind, TransitionKind, alert_key


@dataclass(frozen=True)
class UpdatePolicy:
    """When a repeated trigger is worth an ``updated`` transition."""

    min_relative_step: float = 0.02  # |Δvalue| / |last emitted value|
    min_absolute_step: float = 1e-9  # for values near zero


@dataclass(frozen=True)
class Alert:
    """One alert as the lifecycle keeps it (``value`` is the last *emitted* value)."""

    source_kind: SourceKind
    source_id: int
    enterprise_id: str
    rule: str
    severity: Severity
    started_at: datetime
    updated_at: datetime
    value: float | None = None
    threshold: float | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    acknowledged_at: datetime | None = None
    cleared_at: datetime | None = None

    @property
    def key(self) -> str:
        return alert_key(self.source_kind, self.source_id, self.rule)

    @property
    def cleared(self) -> bool:
        return self.cleared_at is not None

    @property
    def acknowledged(self) -> bool:
        return self.acknowledged_at is not None


def _event(a: Alert, kind: TransitionKind, at: datetime) -> AlertEvent:
    details = dict(a.details)
    details.setdefault("started_at", a.started_at.isoformat())
    return AlertEvent(
        alert_key=a.key, source_kind=a.source_kind, source_id=a.source_id, enterprise_id=a.enterprise_id,
        rule=a.rule, kind=kind, severity=a.severity, at=at, value=a.value, threshold=a.threshold,
        details=details,
    )


def _material(a: Alert, severity: Severity, value: float | None, policy: UpdatePolicy) -> bool:
    if severity != a.severity:
        return True
    if value is None or a.value is None:
        return (value is None) != (a.value is None)
    step = abs(value - a.value)
    return step > max(policy.min_absolute_step, policy.min_relative_step * abs(a.value))


def trigger(
    current: Alert | None, *, source_kind: SourceKind, source_id: int, enterprise_id: str, rule: str,
    severity: Severity, at: datetime, value: float | None = None, threshold: float | None = None,
    details: Mapping[str, Any] | None = None, policy: UpdatePolicy = UpdatePolicy(),
) -> tuple[Alert, list[AlertEvent]]:
    """The rule fires: open a new alert, or update the active one if something material changed."""
    det = dict(details or {})
    if current is None or current.cleared:
        a = Alert(source_kind, source_id, enterprise_id, rule, severity, at, at, value, threshold, det)
        return a, [_event(a, "opened", at)]
    if not _material(current, severity, value, policy):
        return current, []
    a = replace(current, severity=severity, updated_at=at, value=value, threshold=threshold, details=det)
    return a, [_event(a, "updated", at)]


def clear(current: Alert | None, at: datetime, details: Mapping[str, Any] | None = None) -> tuple[None, list[AlertEvent]]:
    """The condition is gone: the active alert (if any) is cleared and leaves the active set."""
    if current is None or current.cleared:
        return None, []
    det = dict(current.details)
    if details:
        det.update(details)
    a = replace(current, cleared_at=at, updated_at=at, details=det)
    return None, [_event(a, "cleared", at)]


def acknowledge(current: Alert | None, at: datetime, by: str | None = None) -> tuple[Alert | None, list[AlertEvent]]:
    """An operator acknowledged the alert; it stays active until its condition clears."""
    if current is None or current.acknowledged:
        return current, []
    det = dict(current.details)
    if by:
        det["acknowledged_by"] = by
    a = replace(current, acknowledged_at=at, details=det)
    return a, [_event(a, "acknowledged", at)]


def restore(events: list[AlertEvent]) -> dict[str, Alert]:
    """Active alerts rebuilt from stored transitions (latest per key; cleared ones dropped)."""
    latest: dict[str, AlertEvent] = {}
    acked: dict[str, datetime] = {}
    for e in sorted(events, key=lambda e: e.at):
        if e.kind == "acknowledged":
            acked[e.alert_key] = e.at
        latest[e.alert_key] = e
    out: dict[str, Alert] = {}
    for key, e in latest.items():
        if e.kind == "cleared":
            continue
        started = e.details.get("started_at")
        start = datetime.fromisoformat(started) if isinstance(started, str) else e.at
        out[key] = Alert(e.source_kind, e.source_id, e.enterprise_id, e.rule, e.severity, start, e.at,
                         e.value, e.threshold, dict(e.details), acked.get(key))
    return out


class Run:
    """The active alerts and the transitions of one evaluation pass: each rule's
    ``(new state, transitions)`` result is set under its key (the state leaves the active set
    when ``None``)."""

    def __init__(self, active: Mapping[str, Alert]) -> None:
        self.active = dict(active)
        self.events: list[AlertEvent] = []

    def set(self, key: str, result: tuple[Alert | None, list[AlertEvent]]) -> None:
        alert, events = result
        if alert is None:
            self.active.pop(key, None)
        else:
            self.active[key] = alert
        self.events.extend(events)

    def get(self, key: str) -> Alert | None:
        return self.active.get(key)
