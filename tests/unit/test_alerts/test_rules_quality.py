from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alerts.rules.annual import projected_crossing
from alerts.rules.quality import QualityRule, daily_monthly_mismatch, is_future, silent

T = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("daily", "monthly", "expected"),
    [
        ([100.0] * 30, 3000.0, None),  # equal
        ([100.0] * 30, 3100.0, None),  # 3.2 % < 5 %
        ([100.0] * 30, 3200.0, 0.0625),  # |3000 − 3200| / 3200 = 6.25 % > 5 %
        ([0.0], 0.0, None),
    ],
)
def test_daily_vs_monthly(daily: list[float], monthly: float, expected: float | None) -> None:
    got = daily_monthly_mismatch(daily, monthly)
    assert got == (None if expected is None else pytest.approx(expected))


def test_future_timestamp() -> None:
    assert is_future(T + timedelta(minutes=6), T)
    assert not is_future(T + timedelta(minutes=4), T)


def test_silent_meter_after_n_intervals_and_resumes() -> None:
    rule = QualityRule(silent_intervals=4)
    a, ev = silent(rule, None, meter_id=3, enterprise_id="e", last=T, interval_s=900, now=T + timedelta(minutes=45))
    assert ev == []  # 3 intervals
    a, ev = silent(rule, a, meter_id=3, enterprise_id="e", last=T, interval_s=900, now=T + timedelta(hours=1))
    assert [(e.kind, e.value) for e in ev] == [("opened", 4.0)]
    a, ev = silent(rule, a, meter_id=3, enterprise_id="e", last=T, interval_s=900, now=T + timedelta(minutes=75))
    assert ev == []  # 5 intervals: not a material change
    _, ev = silent(rule, a, meter_id=3, enterprise_id="e", last=T + timedelta(hours=2), interval_s=900,
                   now=T + timedelta(hours=2))
    assert [e.kind for e in ev] == ["cleared"]


def test_a_backlog_older_than_the_opening_does_not_clear_a_silent_meter() -> None:
    # The sweep opens at wall time W = T + 5 h: last reading T, 5 h / 15 min = 20 intervals ≥ 4.
    rule = QualityRule(silent_intervals=4)
    w = T + timedelta(hours=5)
    a, ev = silent(rule, None, meter_id=3, enterprise_id="e", last=T, interval_s=900, now=w)
    assert [(e.kind, e.at, e.value) for e in ev] == [("opened", w, 20.0)]
    # The gateway's backlog arrives: a reading at T + 1 h judged in its own (event) time T + 1 h.
    # Judged at W instead: (5 h − 1 h) / 15 min = 16 ≥ 4, still silent; 16 < 2 × 20: no update.
    a, ev = silent(rule, a, meter_id=3, enterprise_id="e", last=T + timedelta(hours=1), interval_s=900,
                   now=T + timedelta(hours=1))
    assert ev == [] and a is not None and a.started_at == w
    # The backlog catches up to W − 30 min: (30 min) / 15 min = 2 < 4 at W -> cleared at W, not before
    _, ev = silent(rule, a, meter_id=3, enterprise_id="e", last=w - timedelta(minutes=30), interval_s=900,
                   now=w - timedelta(minutes=30))
    assert [(e.kind, e.at) for e in ev] == [("cleared", w)]


def test_with_no_alert_open_the_time_asked_counts() -> None:
    # nothing open: the event time counts as given (4 intervals after T at T + 1 h -> opened at T + 1 h)
    rule = QualityRule(silent_intervals=4)
    _, ev = silent(rule, None, meter_id=3, enterprise_id="e", last=T, interval_s=900, now=T + timedelta(hours=1))
    assert [(e.kind, e.at) for e in ev] == [("opened", T + timedelta(hours=1))]


@pytest.mark.parametrize(
    ("tce", "rate", "held", "expected"),
    [
        (10_000.0, 1.0, 100.0, 0.0),  # already there
        # 40 days held at 35.3952 tce/day = 1 415.808 tce: (10 000 − 1 415.808) / 35.3952 = 242.524 days
        (1415.808, 35.3952, 40.0, 242.524184),
        (1000.0, 10.0, 100.0, None),  # 10 tce/day = 3 650 tce/yr: never
        # full year held at 9 000 tce, recent 30 tce/day: grows 30 − 9000/365 = 5.342 /day -> 187.2 days
        (9000.0, 30.0, 365.0, (10_000 - 9000) / (30 - 9000 / 365)),
    ],
)
def test_projected_crossing(tce: float, rate: float, held: float, expected: float | None) -> None:
    got = projected_crossing(tce, rate, held, 10_000.0)
    assert got == (None if expected is None else pytest.approx(expected, rel=1e-6))
