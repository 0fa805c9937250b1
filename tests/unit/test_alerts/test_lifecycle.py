from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alerts import lifecycle
from alerts.lifecycle import UpdatePolicy

T = datetime(2026, 1, 1, tzinfo=UTC)
H = timedelta(hours=1)
ID = {"source_kind": "site", "source_id": 5, "enterprise_id": "91640500MA76L8XK3Q", "rule": "pue_above_limit"}


def fire(cur: lifecycle.Alert | None, at: datetime, value: float, severity: str = "major"):  # type: ignore[no-untyped-def]
    return lifecycle.trigger(cur, at=at, value=value, threshold=1.2, severity=severity, details={"v": value}, **ID)  # type: ignore[arg-type]


def test_open_update_only_when_material_ack_clear() -> None:
    a, ev = fire(None, T, 1.30)
    assert [e.kind for e in ev] == ["opened"] and ev[0].alert_key == "site:5:pue_above_limit"
    a, ev = fire(a, T + H, 1.305)  # 0.4 % move: not material at the default 2 % step
    assert ev == []
    a, ev = fire(a, T + 2 * H, 1.40)  # 7.7 % move: updated
    assert [e.kind for e in ev] == ["updated"] and a.updated_at == T + 2 * H and a.started_at == T
    a, ev = fire(a, T + 3 * H, 1.40, "critical")  # severity change is material
    assert [(e.kind, e.severity) for e in ev] == [("updated", "critical")]
    a2, ev = lifecycle.acknowledge(a, T + 4 * H, "inspector-1")
    assert a2 is not None and a2.acknowledged and not a2.cleared
    assert [e.kind for e in ev] == ["acknowledged"]
    assert lifecycle.acknowledge(a2, T + 5 * H)[1] == []  # once
    gone, ev = lifecycle.clear(a2, T + 6 * H)
    assert gone is None and [e.kind for e in ev] == ["cleared"]
    assert ev[0].details["started_at"] == T.isoformat()
    assert lifecycle.clear(None, T)[1] == []


def test_a_trigger_after_clearing_opens_a_new_alert() -> None:
    a, _ = fire(None, T, 1.3)
    _, _ = lifecycle.clear(a, T + H)
    b, ev = fire(None, T + 2 * H, 1.3)
    assert [e.kind for e in ev] == ["opened"] and b.started_at == T + 2 * H


def test_update_step_is_configurable() -> None:
    a, _ = fire(None, T, 1.30)
    _, ev = lifecycle.trigger(a, at=T + H, value=1.305, threshold=1.2, severity="major",
                              policy=UpdatePolicy(min_relative_step=0.001), **ID)  # type: ignore[arg-type]
    assert [e.kind for e in ev] == ["updated"]


def test_restore_keeps_active_and_acknowledged_drops_cleared() -> None:
    a, ev1 = fire(None, T, 1.3)
    a2, ev2 = lifecycle.acknowledge(a, T + H)
    b, ev3 = lifecycle.trigger(None, at=T, value=1.0, severity="minor", source_kind="meter", source_id=9,
                               enterprise_id="x", rule="meter_silent")
    _, ev4 = lifecycle.clear(b, T + H)
    active = lifecycle.restore(list(reversed(ev1 + ev2 + ev3 + ev4)))
    assert list(active) == ["site:5:pue_above_limit"]
    r = active["site:5:pue_above_limit"]
    assert r.started_at == T and r.acknowledged_at == T + H and r.value == 1.3
