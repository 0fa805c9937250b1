"""A whole scored day summarised for the consumption-anomaly alert (``day_evidence``)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from alerts.lifecycle import Alert
from alerts.rules.anomaly import AnomalyInput, AnomalyRule, evaluate
from analytics.anomaly import Point, Scored, anomalous_runs, day_evidence, score_points, train

D = datetime(2026, 11, 22, 16, tzinfo=UTC)  # 2026-11-23 00:00 local (a Monday)


def h(k: int) -> datetime:
    return D + timedelta(hours=k)


def day(scores: list[float]) -> list[Scored]:
    return [(h(k), 100.0 + k, s) for k, s in enumerate(scores)]


@pytest.mark.parametrize(
    ("scores", "min_points", "expected_hours"),
    [
        ([-0.1, 0.2, 0.3, -0.05, 0.1], 2, [1, 2]),  # one run of 2 (hours 1-2); hour 4 alone
        ([0.1, 0.3, -0.1, 0.2, 0.4, 0.1], 2, [3, 4, 5]),  # peaks 0.3 vs 0.4: the later run
        ([0.3, 0.1, -0.1, 0.1, 0.3], 2, [0, 1]),  # equal peaks 0.3: the earlier run
        ([-0.1, 0.2, -0.1, 0.15], 2, [1]),  # only isolated points: the highest alone
        ([-0.1, -0.2, 0.0], 2, [0, 1, 2]),  # clean (0 is not above the threshold): whole day
        ([-0.1, 0.2, -0.1], 1, [1]),  # min_points 1: a single point is a run
        ([], 2, []),
    ],
)
def test_day_evidence(scores: list[float], min_points: int, expected_hours: list[int]) -> None:
    got = day_evidence(day(scores), min_points)
    assert [int((t - D) / timedelta(hours=1)) for t, _, _ in got] == expected_hours


def test_runs_and_bad_min_points() -> None:
    assert [len(r) for r in anomalous_runs(day([0.1, 0.2, -1, 0.3]))] == [2, 1]
    with pytest.raises(ValueError, match="min_points"):
        day_evidence(day([0.1]), 0)


def test_evidence_drives_the_tail_rule_as_a_day_level_rule() -> None:
    rule = AnomalyRule(min_points=2)

    def run(state: Alert | None, scores: list[float]) -> tuple[Alert | None, list[str]]:
        inp = AnomalyInput(9, "E", day_evidence(day(scores), rule.min_points), 0, 672)
        new, events = evaluate(rule, state, inp, h(24))
        return new, [e.kind for e in events]

    state, kinds = run(None, [-0.1, 0.2, 0.35, -0.05, 0.1])  # run of 2 ending on 0.35: opens at 0.35
    assert kinds == ["opened"] and state is not None and state.value == 0.35
    assert run(state, [-0.1, 0.3, -0.1])[1] == []  # isolated point: stays open, no transition
    assert run(state, [-0.1, -0.2])[1] == ["cleared"]  # a clean day clears
    assert run(None, [-0.1, -0.2]) == (None, [])


def test_score_points_flags_a_night_load_at_day_level() -> None:
    # 28 days of hourly history: 550 − 250·cos(2π·hour/24) kWh per hour (300 at 00:00 local,
    # 800 at 12:00); the checked day repeats it except 02:00-04:00 local at 800 (day level)
    def rate(t: datetime) -> float:
        return 550 - 250 * math.cos(((t.hour + 8) % 24) / 24 * 2 * math.pi)

    history: list[Point] = [(D - timedelta(hours=k), rate(D - timedelta(hours=k))) for k in range(1, 28 * 24 + 1)]
    model = train(9, history, seed=3)
    normal = [(h(k), rate(h(k))) for k in range(24)]
    spiked = [(t, 800.0 if 2 <= k <= 4 else r) for k, (t, r) in enumerate(normal)]
    assert all(s <= 0 for _, _, s in score_points(model, normal))
    scored = score_points(model, list(reversed(spiked)))  # any order in, time order out
    assert [t for t, _, _ in scored] == [h(k) for k in range(24)]
    assert [int((t - D) / timedelta(hours=1)) for t, _, _ in day_evidence(scored, 2)] == [2, 3, 4]
