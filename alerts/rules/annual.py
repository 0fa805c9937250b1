"""Data centre at or above 10 000 tce per year (rolling 12 months), and its projection.

At or above the threshold over the last 12 months -> ``severity`` (major): the unit must be in
the online monitoring system. Below it, a projection from the recent trend that crosses within
``horizon`` -> ``projection_severity`` (warning) with the projected date. The 12-month sum is
over the data held (a lower bound while less than a year is held; the details say from when).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from alerts import lifecycle
from alerts.lifecycle import Alert
from nxem.contract import AlertEvent, Severity

RULE = "dc_annual_tce"
#: 重点用能单位 threshold, tce/yr (节约能源法 art. 52, recalled-unverified); the Ningxia plan puts
#: data centres above it into the online monitoring system (as given in the brief).
KEY_UNIT_TCE_PER_YEAR = 10_000.0
CONVERSION = "GB/T 2589-2020: electricity at calorific value 0.1229 kgce/kWh; 1 tce = 1000 kgce"


@dataclass(frozen=True)
class AnnualTceRule:
    threshold_tce: float = KEY_UNIT_TCE_PER_YEAR
    period: timedelta = timedelta(days=365)  # rolling 12 months
    trend_window: timedelta = timedelta(days=30)  # recent rate for the projection
    horizon: timedelta = timedelta(days=365)  # warn when the projection crosses within this
    min_trend_coverage: float = 0.8
    severity: Severity = "major"
    projection_severity: Severity = "warning"


@dataclass(frozen=True)
class AnnualInput:
    site_id: int
    enterprise_id: str
    start: datetime  # 12-month window (data may start later: ``data_from``)
    end: datetime
    data_from: datetime
    tce: float  # comprehensive energy consumption over the window held
    trend_tce: float  # over the trend window
    trend_coverage: float
    trend_days: float


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


def evaluate(rule: AnnualTceRule, state: Alert | None, inp: AnnualInput, now: datetime) -> tuple[Alert | None, list[AlertEvent]]:
    held_days = (inp.end - inp.data_from).total_seconds() / 86400
    rate = inp.trend_tce / inp.trend_days if inp.trend_days > 0 and inp.trend_coverage >= rule.min_trend_coverage else None
    details: dict[str, Any] = {
        "tce_12_months": round(inp.tce, 3), "window_start": inp.start.isoformat(), "window_end": inp.end.isoformat(),
        "data_from": inp.data_from.isoformat(), "days_held": round(held_days, 3), "threshold_tce": rule.threshold_tce,
        "formula": "Σ comprehensive energy consumption (consumed − exported, kgce) over 12 months / 1000",
        "conversion": CONVERSION, "standard": "节约能源法 art. 52 key energy-using unit ≥ 10 000 tce (recalled-unverified)",
    }
    if inp.tce >= rule.threshold_tce:
        return lifecycle.trigger(state, source_kind="site", source_id=inp.site_id, enterprise_id=inp.enterprise_id,
                                 rule=RULE, severity=rule.severity, at=now, value=round(inp.tce, 3),
                                 threshold=rule.threshold_tce, details=details)
    if rate is not None:
        days = projected_crossing(inp.tce, rate, held_days, rule.threshold_tce, rule.period.total_seconds() / 86400)
        if days is not None and days <= rule.horizon.total_seconds() / 86400:
            when = inp.end + timedelta(days=days)
            details |= {"trend_tce_per_day": round(rate, 4), "trend_days": inp.trend_days,
                        "projected_date": when.isoformat(), "projected_annual_tce": round(rate * 365, 3),
                        "projection": "linear at the recent daily rate; old data rolls out at the period average"}
            return lifecycle.trigger(state, source_kind="site", source_id=inp.site_id, enterprise_id=inp.enterprise_id,
                                     rule=RULE, severity=rule.projection_severity, at=now, value=round(inp.tce, 3),
                                     threshold=rule.threshold_tce, details=details)
    if rate is None and state is not None:
        return state, []  # no trustworthy trend: hold
    return lifecycle.clear(state, now, {"cleared_tce_12_months": round(inp.tce, 3)})
