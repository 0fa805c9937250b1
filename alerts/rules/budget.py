"""Annual energy budget (用能预算): local year-to-date plus projection above the budget.

Runs once per local day on the day just completed: the year to date is the local calendar
year from 1 January 00:00 Asia/Shanghai to that midnight, the whole of it (the rule state
holds ≥ 366 days of day totals), and the recent rate is the ``trend_window`` before it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from alerts import lifecycle
from alerts.lifecycle import Alert
from alerts.rules.annual import energy_meters, trend
from analytics.periods import local_start, next_local_year
from analytics.site_energy import MeterSpec, SiteEnergyState, window_energy
from nxem.contract import AlertEvent, Severity

RULE = "energy_budget_exceeded"


@dataclass(frozen=True)
class BudgetRule:
    budget_tce: float  # the unit's annual budget, tce (local calendar year)
    trend_window: timedelta = timedelta(days=30)
    min_trend_coverage: float = 0.8
    severity: Severity = "major"  # year-to-date already above the budget
    projection_severity: Severity = "warning"  # year-to-date + projection above it


@dataclass(frozen=True)
class BudgetInput:
    site_id: int
    enterprise_id: str
    year_start: datetime
    end: datetime
    year_end: datetime
    ytd_tce: float
    trend_tce: float
    trend_days: float
    trend_coverage: float


def gather(rule: BudgetRule, site_id: int, enterprise_id: str, energy: SiteEnergyState,
           specs: Mapping[int, MeterSpec], end: datetime) -> BudgetInput | None:
    """The rule's inputs at the local midnight ``end`` (closing the day just completed), or
    ``None`` without energy meters or data. Raises ``ConversionError`` for a bad spec."""
    sub = energy_meters(specs)
    first = energy.earliest()
    if not sub or first is None:
        return None
    last = end - timedelta(microseconds=1)
    year_start = local_start(last, "year")
    w = window_energy(energy, sub, year_start, end)
    tce, days, cov = trend(energy, sub, rule.trend_window, max(first, year_start), end)
    return BudgetInput(site_id, enterprise_id, year_start, end, next_local_year(last), w.net_kgce / 1000.0,
                       tce, days, cov)


def evaluate(rule: BudgetRule, state: Alert | None, inp: BudgetInput, now: datetime) -> tuple[Alert | None, list[AlertEvent]]:
    remaining_days = max(0.0, (inp.year_end - inp.end).total_seconds() / 86400)
    ok_trend = inp.trend_days > 0 and inp.trend_coverage >= rule.min_trend_coverage
    rate = inp.trend_tce / inp.trend_days if ok_trend else 0.0
    projected = inp.ytd_tce + rate * remaining_days
    details: dict[str, Any] = {
        "ytd_tce": round(inp.ytd_tce, 3), "year_start": inp.year_start.isoformat(), "window_end": inp.end.isoformat(),
        "trend_tce_per_day": round(rate, 4), "remaining_days": round(remaining_days, 3),
        "projected_year_tce": round(projected, 3), "budget_tce": rule.budget_tce,
        "formula": "projected = year-to-date tce + recent tce/day × remaining days of the local year",
        "conversion": "GB/T 2589-2020 (electricity at calorific value 0.1229 kgce/kWh)",
    }
    if inp.ytd_tce > rule.budget_tce:
        sev = rule.severity
    elif ok_trend and projected > rule.budget_tce:
        sev = rule.projection_severity
    elif not ok_trend and state is not None:
        return state, []
    else:
        return lifecycle.clear(state, now, {"cleared_projected_tce": round(projected, 3)})
    return lifecycle.trigger(state, source_kind="site", source_id=inp.site_id, enterprise_id=inp.enterprise_id,
                             rule=RULE, severity=sev, at=now, value=round(projected, 3), threshold=rule.budget_tce,
                             details=details)
