"""PUE: the annual figure is the compliance alert, a short window the operational warning.

Daily register readings at local midnights through the engine with the worker's shipped
horizons; IT load constant at 1 000 kW, so a window's PUE is the mean of its days' PUEs
(facility kWh = 24 000 × PUE a day over IT 24 000 kWh a day).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from alerts import engine
from alerts.rules.pue import PueAnnualRule, PueRule
from analytics.pue import site_limit, size_class
from analytics.site_energy import MeterSpec, initial_state
from analytics.site_energy import apply_readings as apply
from nxem.contract import AlertEvent
from stream.settings import WorkerSettings

ENT = "91640500MA76L8XK3Q"
Y2025 = datetime(2024, 12, 31, 16, 0, tzinfo=UTC)  # 2025-01-01 00:00 Asia/Shanghai
DAY = timedelta(days=1)
DC = {1: MeterSpec(1, 5, "electricity", "kWh", "it_load", "register", rollover=1e12),
      2: MeterSpec(2, 5, "electricity", "kWh", "total_facility", "register", rollover=1e12)}
IT_KWH_DAY = 1000.0 * 24


def run(pue_of_day: Callable[[int], float], days: int, limit: float, window: timedelta = timedelta(days=7),
        source: str = "test") -> list[AlertEvent]:
    """Day k (0-based from 1 Jan 2025) at PUE ``pue_of_day(k)``; one poll a day."""
    s = WorkerSettings()
    energy = initial_state(timedelta(days=s.worker_state_horizon_days), timedelta(days=s.worker_fine_horizon_days))
    rules = engine.SiteRules(5, ENT, "data_centre", pue=PueRule(limit=limit, window=window, limit_source=source),
                             pue_annual=PueAnnualRule(limit=limit, limit_source=source), quality=None)
    state = engine.initial_state()
    it = fac = 0.0
    out: list[AlertEvent] = []
    for k in range(days + 1):
        ts = Y2025 + k * DAY
        if k > 0:
            it += IT_KWH_DAY
            fac += IT_KWH_DAY * pue_of_day(k - 1)
        energy, _ = apply(energy, DC, [(1, ts, it), (2, ts, fac)])
        state, ev = engine.evaluate_site(rules, state, energy, DC, ts)
        out += ev
    return out


def seasonal(k: int) -> float:
    """1.23 from 1 June to 2 September (94 days: day-of-year 151..244), 1.16 otherwise: a year
    is (271 × 1.16 + 94 × 1.23) / 365 = 429.98 / 365 = 1.178027."""
    return 1.23 if 151 <= k % 365 <= 244 else 1.16


def test_a_centre_averaging_1_178_is_never_major_and_warned_each_summer() -> None:
    assert (271 * 1.16 + 94 * 1.23) / 365 == pytest.approx(1.178027, abs=1e-6)
    ev = run(seasonal, 2 * 365, limit=1.2)  # 2025 and 2026
    assert not [e for e in ev if e.severity == "major"]
    assert not [e for e in ev if e.rule == "pue_annual_above_limit"]  # the year is compliant
    warn = [e for e in ev if e.rule == "pue_above_limit"]
    # the 7-day PUE passes 1.2 once 4 summer days are in it: (3 × 1.16 + 4 × 1.23) / 7 =
    # 1.2 exactly is not above; 5 days: (2 × 1.16 + 5 × 1.23) / 7 = 1.21 > 1.2 -> opened
    # with the window ending 6 June 00:00; it clears when the window is below 1.18 again
    opened = [e for e in warn if e.kind == "opened"]
    cleared = [e for e in warn if e.kind == "cleared"]
    assert [e.at.astimezone(UTC) for e in opened] == [Y2025 + 156 * DAY, Y2025 + (365 + 156) * DAY]
    assert len(cleared) == 2 and all(e.severity == "warning" for e in warn)
    assert opened[0].details["basis"] == "operational warning: PUE over the last 7 days"


def test_a_20_day_excursion_at_1_21_is_an_operational_warning() -> None:
    def excursion(k: int) -> float:
        return 1.21 if 100 <= k < 120 else 1.16  # 20 days at 1.21 from 11 April

    ev = run(excursion, 200, limit=1.2)
    warn = [e for e in ev if e.rule == "pue_above_limit"]
    # the 7-day PUE with 5 days of the excursion: (2 × 1.16 + 5 × 1.21) / 7 = 1.19571; with 6:
    # (1 × 1.16 + 6 × 1.21) / 7 = 1.20286 > 1.2 -> opened on the poll closing day 105 (16 April);
    # cleared once at most 2 excursion days are left in it: (2 × 1.21 + 5 × 1.16) / 7 = 1.17429
    # < 1.2 − 0.02 (3 days: 1.18143 is not) -> the poll closing day 124
    assert [(e.kind, e.at) for e in warn] == [("opened", Y2025 + 106 * DAY), ("cleared", Y2025 + 125 * DAY)]
    assert warn[0].severity == "warning" and warn[0].value == pytest.approx(8.42 / 7, abs=1e-6)
    # a 30-day window would hide it: at most (20 × 1.21 + 10 × 1.16) / 30 = 1.19333 < 1.2
    assert [e for e in run(excursion, 200, limit=1.2, window=timedelta(days=30))
            if e.rule == "pue_above_limit"] == []


@pytest.mark.parametrize(("new_build", "racks", "limit", "major"), [
    (True, 4_000, 1.2, True),  # new large centre: Ningxia 1.2; a year at 1.25 is non-compliant
    (False, 4_000, 1.5, False),  # existing centre: GB 40879-2021 limit value 1.50; 1.25 is 2级
    (True, 1_000, 1.5, False),  # new but small: 1.50
])
def test_the_annual_pue_against_the_site_limit(new_build: bool, racks: int, limit: float, major: bool) -> None:
    value, source = site_limit(None, new_build, size_class(racks, None))
    assert value == limit
    ev = [e for e in run(lambda _k: 1.25, 400, limit=value, source=source) if e.rule == "pue_annual_above_limit"]
    if not major:
        assert ev == []
        return
    # judged once 90 % of the 365-day window is covered: 329 days (328.5 rounded up), i.e. on
    # the poll of 26 November 00:00 closing 25 November; then updated every day
    assert (ev[0].kind, ev[0].severity, ev[0].value, ev[0].threshold) == ("opened", "major", 1.25, 1.2)
    assert ev[0].details["as_of_local_date"] == "2025-11-25"
    assert ev[0].details["gb40879_grade"] == "2级" and ev[0].details["limit_source"].startswith("Ningxia plan")
    assert ev[0].details["coverage"] == pytest.approx(329 / 365, abs=1e-4)
    assert all(e.kind == "updated" for e in ev[1:]) and len(ev) == 400 - 329 + 1
