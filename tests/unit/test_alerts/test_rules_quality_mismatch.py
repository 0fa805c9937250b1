"""Daily totals vs the monthly register difference (national online-monitoring rule, ≤ 5 %).

Worked examples on one register meter (id 7, kWh) in November 2026, Asia/Shanghai:
November 1 00:00 local = 2026-10-31T16:00Z; the window of a check on November D ends at
November D+1 00:00 local = 2026-11-D T16:00Z.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alerts.lifecycle import Alert
from alerts.rules.quality import (
    DAILY_MONTHLY_MISMATCH,
    MonthToDate,
    QualityRule,
    month_agreement,
    register_difference,
    relative_difference,
)
from nxem.contract import AlertEvent

NOV = datetime(2026, 10, 31, 16, tzinfo=UTC)  # 2026-11-01 00:00 local
DEC = datetime(2026, 11, 30, 16, tzinfo=UTC)  # 2026-12-01 00:00 local
RULE = QualityRule()  # 5 %, judged from 7 days of the month on


def end_of(day: int) -> datetime:
    """End of local November ``day`` (00:00 local of the next day)."""
    return NOV + timedelta(days=day)


def mtd(daily: list[float], first: float, last: float, *, day: int = 10, first_day: int = 1,
        multiplier: float = 1.0, rollover: float | None = None, start: datetime = NOV) -> MonthToDate:
    """Readings hourly at local hh:00; first at 00:00 of ``first_day``, last at 23:00 of ``day``."""
    end = start + timedelta(days=day)
    return MonthToDate(7, "E", start, end, tuple(daily), (start + timedelta(days=first_day - 1), first),
                       (end - timedelta(hours=1), last), multiplier, rollover, "kWh")


@pytest.mark.parametrize(
    ("first", "last", "multiplier", "rollover", "expected"),
    [
        (50_000.0, 73_900.0, 1.0, None, 23_900.0),  # 73 900 − 50 000
        (95_000.0, 2_000.0, 2.0, 100_000.0, 14_000.0),  # (2 000 − 95 000 + 100 000) × 2: one wrap
        (95_000.0, 2_000.0, 1.0, None, -93_000.0),  # no rollover: a reset, stays negative
        (10.0, 10.0, 40.0, None, 0.0),  # did not move
        (100.5, 112.5, 40.0, 1000.0, 480.0),  # (112.5 − 100.5) × 40 CT ratio; positive: no wrap added
    ],
)
def test_register_difference(first: float, last: float, multiplier: float, rollover: float | None,
                             expected: float) -> None:
    assert register_difference(first, last, multiplier, rollover) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("daily", "monthly", "expected"),
    [
        ([2400.0] * 10, 23_900.0, 100 / 23_900),  # |24 000 − 23 900| / 23 900 = 0.41841 %
        ([2100.0], 2000.0, 0.05),  # |2 100 − 2 000| / 2 000 = 5 % exactly
        ([0.0, 0.0], 0.0, 0.0),  # nothing either way
        ([5.0], 0.0, None),  # monthly 0: no relative figure
    ],
)
def test_relative_difference(daily: list[float], monthly: float, expected: float | None) -> None:
    got = relative_difference(daily, monthly)
    assert got == (None if expected is None else pytest.approx(expected))


def test_agreeing_month_raises_nothing() -> None:
    # 100 kW for 10 days: Σ daily = 10 × 2 400 = 24 000 kWh (each day from the previous day's
    # 23:00 reading); register 00:00 Nov 1 → 23:00 Nov 10 = 239 h × 100 = 23 900 kWh
    # |24 000 − 23 900| / 23 900 = 0.42 % ≤ 5 %
    state, events = month_agreement(RULE, None, mtd([2400.0] * 10, 50_000.0, 73_900.0), end_of(10))
    assert (state, events) == (None, [])


def _opened(inp: MonthToDate, now: datetime) -> tuple[Alert, AlertEvent]:
    state, events = month_agreement(RULE, None, inp, now)
    assert state is not None and len(events) == 1 and events[0].kind == "opened"
    return state, events[0]


def test_gap_across_the_month_start_is_a_mismatch() -> None:
    # silent from Oct 29 00:00 to Nov 4 00:00 local: the first November day with data (Nov 4)
    # carries 7 days × 2 400 = 16 800 kWh (since the Oct 28 23:00 reading), Nov 5..10 carry
    # 6 × 2 400 = 14 400: Σ daily = 31 200. Register: Nov 4 00:00 = 60 000 → Nov 10 23:00 =
    # 60 000 + 167 h × 100 = 76 700: monthly = 16 700. |31 200 − 16 700| / 16 700 = 0.868263
    inp = mtd([16_800.0] + [2400.0] * 6, 60_000.0, 76_700.0, first_day=4)
    state, e = _opened(inp, end_of(10))
    assert (e.alert_key, e.rule, e.severity, e.at) == ("meter:7:daily_monthly_mismatch", DAILY_MONTHLY_MISMATCH,
                                                       "minor", end_of(10))
    assert e.value == pytest.approx(0.868263) and e.threshold == 0.05
    d = e.details
    assert (d["local_month"], d["period"], d["complete_month"]) == ("2026-11", "2026-11-01..2026-11-10", False)
    assert (d["daily_sum"], d["monthly_register_difference"], d["days_with_data"]) == (31_200.0, 16_700.0, 7)
    assert d["formula"] == "|31200 − 16700| / 16700 = 0.8683"
    assert d["first_reading"] == {"ts": "2026-11-03T16:00:00+00:00", "value": 60_000.0}
    assert d["last_reading"] == {"ts": "2026-11-10T15:00:00+00:00", "value": 76_700.0}
    assert "online-monitoring" in d["source"] and state.value == pytest.approx(0.868263)


def test_reset_inside_the_month_opens_without_a_relative_figure() -> None:
    # register 80 000 → 3 000 with no rollover configured: monthly −77 000 (a reset); the daily
    # figures (reset step counted 0) still sum to 10 × 2 400 = 24 000
    _, e = _opened(mtd([2400.0] * 10, 80_000.0, 3_000.0), end_of(10))
    assert e.value is None and e.details["monthly_register_difference"] == -77_000.0
    assert "no relative figure" in e.details["formula"]


def test_rollover_is_not_a_mismatch() -> None:
    # rollover 100 000: 95 000 → 2 000 is (2 000 − 95 000 + 100 000) × 2 = 14 000 kWh (CT ×2);
    # Σ daily 10 × 1 410 = 14 100: |14 100 − 14 000| / 14 000 = 0.71 % ≤ 5 %
    inp = mtd([1410.0] * 10, 95_000.0, 2_000.0, multiplier=2.0, rollover=100_000.0)
    assert month_agreement(RULE, None, inp, end_of(10)) == (None, [])


@pytest.mark.parametrize(
    ("days", "min_days", "judged"),
    [
        (6, 7, False),  # 6 days of November < 7: not judged yet
        (7, 7, True),
        (30, 40, True),  # the complete month (ends Dec 1 00:00 local) is always judged
    ],
)
def test_short_month_to_date_windows_are_not_judged(days: int, min_days: int, judged: bool) -> None:
    rule = QualityRule(daily_monthly_min_days=min_days)
    # Σ daily days × 2 400 against a register that moved half of it: 100 % off
    inp = mtd([2400.0] * days, 0.0, 1200.0 * days, day=days)
    state, events = month_agreement(rule, None, inp, end_of(days))
    assert (len(events) == 1) is judged and (state is not None) is judged
    if days == 30:
        assert inp.end == DEC and events[0].details["complete_month"] is True


def test_lifecycle_update_only_when_material_then_clear_and_new_month() -> None:
    # Nov 10: 31 200 vs 16 700 → 0.868263 (opened, see above)
    state, _ = _opened(mtd([16_800.0] + [2400.0] * 6, 60_000.0, 76_700.0, first_day=4), end_of(10))
    # Nov 11: Σ 33 600 vs 16 700 + 2 400 = 19 100 → 14 500 / 19 100 = 0.759162: moved by
    # 0.109 < 20 % of 0.868 (0.174): no transition, the alert stays
    nov11 = mtd([16_800.0] + [2400.0] * 7, 60_000.0, 79_100.0, day=11, first_day=4)
    same, events = month_agreement(RULE, state, nov11, end_of(11))
    assert events == [] and same is state
    # Nov 12 after a correction: Σ 12 × 2 400 = 28 800 vs 40 000 → 68 700 = 28 700
    # (0.35 %): cleared at the end of Nov 12
    fixed = mtd([2400.0] * 12, 40_000.0, 68_700.0, day=12)
    cleared, events = month_agreement(RULE, state, fixed, end_of(12))
    assert cleared is None and [(e.kind, e.at) for e in events] == [("cleared", end_of(12))]
    assert events[0].details["cleared_by"]["formula"] == "|28800 − 28700| / 28700 = 0.0035"
    # still open in December: Σ 31 200 vs 60 000 → 76 800 = 16 800 → 14 400 / 16 800 = 0.857143,
    # moved by only 0.011 from 0.868263 but a new month's finding: updated
    dec = mtd([16_800.0] + [2400.0] * 6, 60_000.0, 76_800.0, first_day=4, start=DEC)
    moved, events = month_agreement(RULE, state, dec, DEC + timedelta(days=10))
    assert [e.kind for e in events] == ["updated"] and events[0].value == pytest.approx(0.857143)
    assert moved is not None
    assert moved.details["local_month"] == "2026-12" and moved.started_at == end_of(10)
