"""The 10 000 tce rule on whole simulated years, with the worker's shipped horizons.

Worked figures (GB/T 2589-2020 当量值 0.1229 kgce/kWh):
* 8 MW IT at PUE 1.25: facility 8 000 kW × 24 h × 1.25 = 240 000 kWh a day × 0.1229 =
  29 496 kgce = 29.496 tce a day; a calendar year of 365 days 8 MW × 8 760 h × 1.25 =
  87 600 MWh = 10 766.04 tce ≥ 10 000;
* 7 MW IT at PUE 1.25: 210 000 kWh a day = 25.809 tce a day; 365 days = 9 420.285 tce.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alerts import engine
from alerts.rules.annual import AnnualInput, AnnualTceRule, evaluate
from analytics.site_energy import MeterSpec, SiteEnergyState, apply_readings, initial_state
from nxem.contract import AlertEvent
from stream.settings import WorkerSettings

ENT = "91640500MA76L8XK3Q"
Y2025 = datetime(2024, 12, 31, 16, 0, tzinfo=UTC)  # 2025-01-01 00:00 Asia/Shanghai
DAY = timedelta(days=1)
DC = {1: MeterSpec(1, 5, "electricity", "kWh", "it_load", "register", rollover=1e12),
      2: MeterSpec(2, 5, "electricity", "kWh", "total_facility", "register", rollover=1e12)}
RULES = engine.SiteRules(5, ENT, "data_centre", annual_tce=AnnualTceRule(), quality=None)


def shipped_state() -> SiteEnergyState:
    s = WorkerSettings()
    return initial_state(timedelta(days=s.worker_state_horizon_days), timedelta(days=s.worker_fine_horizon_days))


def run_days(it_kw: float, pue: float, days: int, start: datetime = Y2025) -> list[AlertEvent]:
    """Daily register readings at local midnights, from ``start`` (the baseline) for ``days``
    days, one poll a day through the engine."""
    energy, state = shipped_state(), engine.initial_state()
    out: list[AlertEvent] = []
    for k in range(days + 1):
        ts = start + k * DAY
        it = it_kw * 24 * k
        energy, _ = apply_readings(energy, DC, [(1, ts, it), (2, ts, it * pue)])
        state, ev = engine.evaluate_site(RULES, state, energy, DC, ts)
        out += [e for e in ev if e.rule == "dc_annual_tce"]
    return out


def test_shipped_horizon_holds_two_calendar_years_of_day_totals() -> None:
    s = WorkerSettings()
    # the previous calendar year is needed until the current one ends: at most 365 + 366 = 731 days
    assert s.worker_state_horizon_days >= 731
    assert s.worker_fine_horizon_days < s.worker_state_horizon_days


def test_8_mw_at_pue_1_25_is_designated_on_its_calendar_year_and_stays_so() -> None:
    ev = run_days(8000, 1.25, 365 + 40)  # the whole of 2025 and 40 days of 2026
    # early warning from the first day: 29.496 tce a day × 365 = 10 766 ≥ 10 000 projected
    assert (ev[0].kind, ev[0].severity, ev[0].details["as_of_local_date"]) == ("opened", "warning", "2025-01-01")
    assert ev[0].details["basis"].startswith("early warning: projected crossing")
    assert all(e.kind in ("opened", "updated") for e in ev)  # opened once, never cleared
    # one update a day: the value shown is the latest day's; day 300 (27 October): rolling
    # 12 months = 300 × 29.496 = 8 848.8 tce
    by_day = {e.details["as_of_local_date"]: e for e in ev}
    assert len(by_day) == len(ev) == 365 + 40
    assert by_day["2025-10-27"].value == pytest.approx(8848.8) and by_day["2025-10-27"].severity == "warning"
    # the calendar year to date reaches 10 000 tce on day 340 (6 December): 340 × 29.496 =
    # 10 028.64 (day 339: 9 999.144)
    first_major = next(e for e in ev if e.severity == "major")
    assert first_major.details["as_of_local_date"] == "2025-12-06"
    assert first_major.value == pytest.approx(10_028.64) and first_major.threshold == 10_000
    assert first_major.details["basis"] == "designation: calendar year"
    assert by_day["2025-12-05"].severity == "warning" and by_day["2025-12-05"].details["year_to_date_tce"] == pytest.approx(9999.144)
    # 31 December: the whole year 2025, 365 × 29.496 = 10 766.04 tce
    dec31 = by_day["2025-12-31"]
    assert (dec31.severity, dec31.value) == ("major", 10_766.04)  # rounded to 0.001 tce
    assert dec31.details["designation_year"] == 2025 and dec31.details["designation_year_complete"] is True
    # in 2026 the designation rests on the complete year 2025, the year to date grows beside it
    feb9 = by_day["2026-02-09"]
    assert (feb9.severity, feb9.value, feb9.details["designation_year"]) == ("major", 10_766.04, 2025)
    assert feb9.details["year_to_date_tce"] == pytest.approx(40 * 29.496)  # 1 179.84
    assert feb9.details["previous_year_tce"] == pytest.approx(10_766.04)


def test_7_mw_at_pue_1_25_never_reaches_the_threshold() -> None:
    # 25.809 tce a day: 9 420.285 tce a year; the projection never crosses 10 000 either
    assert run_days(7000, 1.25, 365 + 40) == []


def test_rolling_12_months_over_with_no_calendar_year_over_is_an_early_warning() -> None:
    # 8 MW at PUE 1.25 from 1 July 2025 (184 days of 2025: 5 427.264 tce) to 30 June 2026
    # (181 days of 2026: 5 338.776 tce): neither calendar year reaches 10 000 tce, the rolling
    # 12 months do (365 × 29.496 = 10 766.04)
    start = datetime(2025, 6, 30, 16, 0, tzinfo=UTC)  # 2025-07-01 00:00 Asia/Shanghai
    ev = run_days(8000, 1.25, 365, start=start)
    last = ev[-1]
    assert last.details["as_of_local_date"] == "2026-06-30"
    assert (last.severity, last.value) == ("warning", 10_766.04)
    assert last.details["basis"].startswith("early warning: the rolling 12 months")
    assert last.details["previous_year_tce"] == pytest.approx(184 * 29.496)
    assert last.details["year_to_date_tce"] == pytest.approx(181 * 29.496)
    assert not [e for e in ev if e.severity == "major"]


def _input(**kw: object) -> AnnualInput:
    base: dict[str, object] = dict(site_id=5, enterprise_id=ENT, end=Y2025 + 100 * DAY, data_from=Y2025,
                                   year_start=Y2025, year_tce=4000.0, prev_year_tce=None, rolling_tce=4000.0,
                                   trend_tce=1200.0, trend_coverage=1.0, trend_days=30.0)
    base.update(kw)
    return AnnualInput(**base)  # type: ignore[arg-type]


def test_projection_date_and_hold_without_a_trend() -> None:
    rule = AnnualTceRule()
    # 100 days held, 4 000 tce, 40 tce/day recently: (10 000 − 4 000) / 40 = 150 days ->
    # crossing on day 250 (2025-09-08 00:00 local)
    state, ev = evaluate(rule, None, _input(), Y2025 + 100 * DAY)
    assert ev[0].severity == "warning"
    assert ev[0].details["projected_date"] == (Y2025 + 250 * DAY).isoformat()
    # the trend window only 50 % covered: no trustworthy rate -> the open alert holds
    held, ev2 = evaluate(rule, state, _input(trend_coverage=0.5, end=Y2025 + 101 * DAY), Y2025 + 101 * DAY)
    assert held is state and ev2 == []
    # a low rate: 20 tce/day × 365 = 7 300 < 10 000 and nothing rolls out yet -> cleared
    cleared, ev3 = evaluate(rule, state, _input(trend_tce=600.0, end=Y2025 + 102 * DAY), Y2025 + 102 * DAY)
    assert cleared is None and [e.kind for e in ev3] == ["cleared"]
