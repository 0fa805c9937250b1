from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from alerts.rules.anomaly import AnomalyInput, AnomalyRule, evaluate
from analytics.anomaly import Point, score, train

T0 = datetime(2026, 1, 4, 16, tzinfo=UTC)  # Monday 00:00 local


def profile(days: int) -> list[Point]:
    """Day 800 kW, night 300 kW, smooth in between (a plain office-like load)."""
    out = []
    for k in range(days * 96):
        ts = T0 + timedelta(minutes=15 * k)
        hour = ((ts.hour + 8) % 24) + ts.minute / 60
        out.append((ts, 550 - 250 * math.cos(hour / 24 * 2 * math.pi)))
    return out


def test_seeded_training_is_reproducible() -> None:
    hist = profile(14)
    probe = [(T0 + timedelta(days=20, hours=h), 500.0) for h in range(24)]
    assert score(train(1, hist, seed=7), probe) == score(train(1, hist, seed=7), probe)


def test_a_night_load_at_day_level_is_anomalous_and_normal_load_is_not() -> None:
    model = train(1, profile(14), seed=1)
    night = T0 + timedelta(days=15, hours=3)  # 03:00 local: normal ≈ 330 kW
    normal = dict(profile(16))[night]
    day_level, double, ok = score(model, [(night, 800.0), (night, 1600.0), (night, normal)])
    assert day_level > 0 and double > 0 > ok


def test_too_little_history_is_refused() -> None:
    with pytest.raises(ValueError, match="96"):
        train(1, profile(1)[:50])


def test_rule_opens_on_consecutive_anomalies_and_clears() -> None:
    rule = AnomalyRule(min_points=2)
    pts = ((T0, 1600.0, 0.2), (T0 + timedelta(minutes=15), 1600.0, 0.25))
    a, ev = evaluate(rule, None, AnomalyInput(3, "e", pts, 1, 1344), T0)
    assert [(e.kind, e.severity, e.value) for e in ev] == [("opened", "warning", 0.25)]
    _, ev = evaluate(rule, a, AnomalyInput(3, "e", pts + ((T0 + timedelta(minutes=30), 500.0, -0.1),), 1, 1344), T0)
    assert [e.kind for e in ev] == ["cleared"]
    assert evaluate(rule, None, AnomalyInput(3, "e", pts[:1], 1, 1344), T0)[1] == []
