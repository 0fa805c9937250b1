"""A data centre's annual comprehensive energy consumption against 10 000 tce: the designation
figure (calendar year) and its early warning (rolling 12 months and projection).

Key energy-using units (重点用能单位) are designated by their annual comprehensive energy
consumption, ≥ 10 000 tce (shared/reference/README.md, "Facts the pipeline depends on";
节约能源法 第五十二条, article text not retrieved: recalled-unverified; the Ningxia plan puts
data centres above it into the online monitoring system, as given in the brief). So:

* **designation** (``severity``, major): the calendar year's figure (Asia/Shanghai 1 January
  to 31 December) is at or above the threshold -- the current year to date, or the last
  complete calendar year (the rule state holds both: ``NXEM_WORKER_STATE_HORIZON_DAYS`` ≥ 731);
* **early warning** (``projection_severity``, warning), labelled as such: the rolling 12
  months (365 local days) are at or above the threshold while no calendar year is, or the
  rolling sum projected at the recent daily rate crosses it within ``horizon`` (the date is
  given);
* otherwise nothing (an open alert clears; without a trustworthy recent rate it holds).

The rule runs once per local day, on the day just completed (windows end at a local
midnight, so they are exact from the day totals), and every run updates an open alert: its
value and figures are those of the latest completed day.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from alerts import lifecycle
from alerts.lifecycle import Alert, UpdatePolicy
from analytics.periods import local_date, local_start
from analytics.quotas import ENERGY_ROLES
from analytics.site_energy import MeterSpec, SiteEnergyState, window_energy
from nxem.contract import AlertEvent, Severity

RULE = "dc_annual_tce"
#: 重点用能单位 threshold, tce per calendar year (shared/reference/README.md; 节约能源法 第五十二条,
#: recalled-unverified).
KEY_UNIT_TCE_PER_YEAR = 10_000.0
STANDARD = ("key energy-using unit (重点用能单位): annual comprehensive energy consumption ≥ 10 000 tce"
            " (节约能源法 第五十二条, recalled-unverified; shared/reference/README.md)")
CONVERSION = "GB/T 2589-2020: electricity at calorific value 0.1229 kgce/kWh; 1 tce = 1000 kgce"
#: every evaluation (once per local day) is an update of an open alert: the figures shown are
#: those of the day just completed
EVERY_DAY = UpdatePolicy(min_relative_step=-1.0, min_absolute_step=-1.0)  # any step is material


@dataclass(frozen=True)
class AnnualTceRule:
    threshold_tce: float = KEY_UNIT_TCE_PER_YEAR
    period: timedelta = timedelta(days=365)  # rolling 12 months of the early warning
    trend_window: timedelta = timedelta(days=30)  # recent rate for the projection
    horizon: timedelta = timedelta(days=365)  # warn when the projection crosses within this
    min_trend_coverage: float = 0.8
    severity: Severity = "major"  # a calendar year at or above the threshold: designation
    projection_severity: Severity = "warning"  # early warning (rolling 12 months, projection)


@dataclass(frozen=True)
class AnnualInput:
    site_id: int
    enterprise_id: str
    end: datetime  # local midnight closing the day just completed
    data_from: datetime  # start of the earliest local day held
    year_start: datetime  # local 1 January of the day just completed
    year_tce: float  # that calendar year to date
    prev_year_tce: float | None  # the calendar year before, None when nothing of it is held
    rolling_tce: float  # the ``period`` up to ``end`` (over the data held)
    trend_tce: float  # over the trend window (clipped to the data held)
    trend_coverage: float
    trend_days: float

    @property
    def rolling_start(self) -> datetime:
        return self.end - timedelta(days=365)


def energy_meters(specs: Mapping[int, MeterSpec]) -> dict[int, MeterSpec]:
    """The meters a site's comprehensive energy consumption sums (GB/T 2589 boundary)."""
    return {m: s for m, s in specs.items() if s.role in ENERGY_ROLES}


def _tce(energy: SiteEnergyState, sub: Mapping[int, MeterSpec], start: datetime, end: datetime) -> float:
    return window_energy(energy, sub, start, end).net_kgce / 1000.0 if start < end else 0.0


def trend(energy: SiteEnergyState, sub: Mapping[int, MeterSpec], window: timedelta, data_from: datetime,
          end: datetime) -> tuple[float, float, float]:
    """(tce, days, coverage) over the recent ``window`` up to ``end``, clipped to the data held."""
    start = max(end - window, data_from)
    if start >= end:
        return 0.0, 0.0, 0.0
    w = window_energy(energy, sub, start, end)
    return w.net_kgce / 1000.0, (end - start).total_seconds() / 86400, w.coverage(sub)


def gather(rule: AnnualTceRule, site_id: int, enterprise_id: str, energy: SiteEnergyState,
           specs: Mapping[int, MeterSpec], end: datetime) -> AnnualInput | None:
    """The rule's inputs at the local midnight ``end`` from the site's energy state, or ``None``
    when the site has no energy meter or no data. Raises ``ConversionError`` for a spec that
    cannot be converted (the engine validates specs first)."""
    sub = energy_meters(specs)
    first = energy.earliest()
    if not sub or first is None or first >= end:
        return None
    year_start = local_start(end - timedelta(microseconds=1), "year")
    prev_start = local_start(year_start - timedelta(microseconds=1), "year")
    prev = _tce(energy, sub, max(prev_start, first), year_start) if first < year_start else None
    t, days, cov = trend(energy, sub, rule.trend_window, first, end)
    return AnnualInput(site_id, enterprise_id, end, first, year_start,
                       _tce(energy, sub, max(year_start, first), end), prev,
                       _tce(energy, sub, max(end - rule.period, first), end), t, cov, days)


def projected_crossing(tce: float, rate_tce_per_day: float, held_days: float, threshold: float,
                       period_days: float = 365.0) -> float | None:
    """Days until the rolling sum reaches ``threshold`` at a constant recent rate, or ``None``.

    While less than a full period is held nothing rolls out, so the sum grows at the rate; once
    a full period is held the old data rolling out is taken as the period's average.
    """
    if tce >= threshold:
        return 0.0
    growth = rate_tce_per_day if held_days < period_days else rate_tce_per_day - tce / period_days
    if growth <= 0:
        return None
    days = (threshold - tce) / growth
    if held_days < period_days and days > period_days - held_days:
        # after the held data starts rolling out the sum tends to rate × period
        return days if rate_tce_per_day * period_days >= threshold else None
    return days


def _year(ts: datetime) -> int:
    return int(local_date(ts)[:4])


def evaluate(rule: AnnualTceRule, state: Alert | None, inp: AnnualInput,
             now: datetime) -> tuple[Alert | None, list[AlertEvent]]:
    thr = rule.threshold_tce
    period_days = rule.period.total_seconds() / 86400
    held_days = (inp.end - inp.data_from).total_seconds() / 86400
    rate = (inp.trend_tce / inp.trend_days
            if inp.trend_days > 0 and inp.trend_coverage >= rule.min_trend_coverage else None)
    year, last_day = _year(inp.year_start), local_date(inp.end - timedelta(microseconds=1))
    remaining = (local_start(inp.year_start + timedelta(days=366), "year") - inp.end).total_seconds() / 86400
    details: dict[str, Any] = {
        "as_of_local_date": last_day, "threshold_tce": thr, "standard": STANDARD, "conversion": CONVERSION,
        "formula": "Σ comprehensive energy consumption (consumed − exported, kgce) / 1000",
        "calendar_year": year, "year_to_date_tce": round(inp.year_tce, 3),
        "year_complete": remaining <= 0, "year_data_from": local_date(max(inp.year_start, inp.data_from)),
        "previous_year": year - 1,
        "previous_year_tce": None if inp.prev_year_tce is None else round(inp.prev_year_tce, 3),
        "rolling_12_months_tce": round(inp.rolling_tce, 3),
        "rolling_window": f"{local_date(inp.rolling_start)}..{last_day}",
        "rolling_data_from": local_date(max(inp.rolling_start, inp.data_from)),
        "window_start": inp.rolling_start.isoformat(), "window_end": inp.end.isoformat(),
        "data_from": inp.data_from.isoformat(), "days_held": round(held_days, 3),
    }
    if rate is not None:
        details |= {"trend_tce_per_day": round(rate, 4), "trend_days": round(inp.trend_days, 3),
                    "projected_rolling_12_months_tce": round(rate * 365, 3),
                    "projected_year_tce": round(inp.year_tce + rate * max(0.0, remaining), 3)}
    designated = [(y, tce) for y, tce in ((year, inp.year_tce), (year - 1, inp.prev_year_tce))
                  if tce is not None and tce >= thr]
    if designated:
        y, tce = designated[0]
        return lifecycle.trigger(
            state, source_kind="site", source_id=inp.site_id, enterprise_id=inp.enterprise_id, rule=RULE,
            severity=rule.severity, at=now, value=round(tce, 3), threshold=thr, policy=EVERY_DAY,
            details=details | {"basis": "designation: calendar year", "designation_year": y,
                               "designation_tce": round(tce, 3),
                               "designation_year_complete": y < year or remaining <= 0})
    early: dict[str, Any] | None = None
    if inp.rolling_tce >= thr:
        early = {"basis": "early warning: the rolling 12 months are at or above the threshold; no calendar year is"}
    elif rate is not None:
        days = projected_crossing(inp.rolling_tce, rate, held_days, thr, period_days)
        if days is not None and days <= rule.horizon.total_seconds() / 86400:
            early = {"basis": "early warning: projected crossing of the rolling 12 months",
                     "projected_date": (inp.end + timedelta(days=days)).isoformat(),
                     "projection": "linear at the recent daily rate; old data rolls out at the period average"}
    if early is not None:
        return lifecycle.trigger(
            state, source_kind="site", source_id=inp.site_id, enterprise_id=inp.enterprise_id, rule=RULE,
            severity=rule.projection_severity, at=now, value=round(inp.rolling_tce, 3), threshold=thr,
            policy=EVERY_DAY, details=details | early)
    if rate is None and state is not None:
        return state, []  # no trustworthy trend: hold
    return lifecycle.clear(state, now, {"cleared_rolling_12_months_tce": round(inp.rolling_tce, 3),
                                        "cleared_year_to_date_tce": round(inp.year_tce, 3)})
