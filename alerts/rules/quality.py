"""Data-quality rules from the national online-monitoring requirements (secondary sources).

Per meter: silent for N of its intervals; register went backwards (a reset, not a rollover);
value out of physical range; daily completeness below 90 % of the expected readings. Pure
checks the collector/reporting use directly: timestamp too far in the future; daily totals vs
the monthly total differing by more than 5 %. All thresholds are configurable (the sources are
secondary reproductions of the national requirements).

Each meter is judged on its own reading interval (registry ``interval``, default 15 minutes;
30 min and 1 h are allowed): completeness = readings of a local day ÷ (86 400 s ÷ interval),
≥ 90 % -- "uploaded data must be at least 90 % complete ... an hourly indicator expects 24 a
day" (national online-monitoring requirements, shared/reference/README.md,
secondary-reproduction); silence = no reading for ``silent_intervals`` of its intervals.

``month_agreement`` is the daily/monthly rule as a lifecycle rule, run once per closed local
day by the daily job (``stream/daily.py``): per cumulative-register meter, the sum of its daily
consumption figures (daily rollup) month-to-date against the month's register difference
(first to last reading of the month), both in the meter's unit × multiplier.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from alerts import lifecycle
from alerts.lifecycle import Alert
from analytics.energy_definition import span_quantity
from analytics.periods import CST, local_date, local_start
from analytics.site_energy import MeterSpec, QualityEvent, SiteEnergyState, window_energy
from nxem.contract import AlertEvent, Severity

METER_SILENT = "meter_silent"
COUNTER_BACKWARDS = "counter_backwards"
VALUE_OUT_OF_RANGE = "value_out_of_range"
COMPLETENESS_LOW = "completeness_low"
DAILY_MONTHLY_MISMATCH = "daily_monthly_mismatch"
FUTURE_TIMESTAMP = "future_timestamp"
SOURCE = "national online-monitoring upload requirements (secondary-reproduction; configurable)"
COMPLETENESS_SOURCE = ("national online-monitoring upload requirements: completeness = uploaded ÷ expected points"
                       " ≥ 90 %, an hourly indicator expects 24 a day (shared/reference/README.md;"
                       " secondary-reproduction)")
#: QualityEvent kind -> alert rule name
FLAG_RULES = {"counter_backwards": COUNTER_BACKWARDS, "out_of_range": VALUE_OUT_OF_RANGE}


@dataclass(frozen=True)
class QualityRule:
    silent_intervals: int = 4  # a meter silent this many of its intervals
    completeness_min: float = 0.9  # ≥ 90 % of expected points per local day
    daily_monthly_tolerance: float = 0.05  # daily totals vs monthly total within 5 %
    flag_clear_after: timedelta = timedelta(hours=24)  # backwards/out-of-range alert clears
    future_tolerance: timedelta = timedelta(minutes=5)
    severity: Severity = "minor"
    #: month-to-date windows shorter than this many local days are not judged (the one reading
    #: interval across the month start weighs 1/23 ≈ 4.3 % of day 1 for an hourly meter); a
    #: complete month is always judged
    daily_monthly_min_days: int = 7


def silent(rule: QualityRule, state: Alert | None, *, meter_id: int, enterprise_id: str, last: datetime | None,
           interval_s: float, now: datetime) -> tuple[Alert | None, list[AlertEvent]]:
    """Meter silent: no reading for ``silent_intervals`` of its intervals up to ``now``.

    Two clocks ask: the worker's wall-clock sweep (a gateway gone quiet) and each bucket's event
    time (a meter quiet while the rest of its site reports, e.g. in a backfill). An open alert is
    judged at its last transition or later, never before: a backlog that arrives after a sweep
    opened the alert, and is still too old when the alert opened, does not clear it. (Judged at
    the backlog's own times, it cleared hours before its own opening, the database kept it open,
    and the next sweep opened it again: a gateway catching up raised one alert per sweep.)
    """
    if last is None:
        return state, []
    at = now if state is None else max(now, state.updated_at)
    missed = (at - last).total_seconds() / interval_s
    if missed >= rule.silent_intervals:
        return lifecycle.trigger(
            state, source_kind="meter", source_id=meter_id, enterprise_id=enterprise_id, rule=METER_SILENT,
            severity=rule.severity, at=at, value=float(int(missed)), threshold=float(rule.silent_intervals),
            details={"last_reading": last.isoformat(), "interval_s": interval_s, "intervals_missed": int(missed),
                     "source": SOURCE},
            policy=lifecycle.UpdatePolicy(min_relative_step=1.0))  # update when the gap doubles
    return lifecycle.clear(state, at, {"resumed_at": last.isoformat()})


def flagged(rule: QualityRule, state: Alert | None, *, rule_name: str, enterprise_id: str,
            event: QualityEvent | None, now: datetime) -> tuple[Alert | None, list[AlertEvent]]:
    """A reading flagged by the register/range checks: open, then clear after a quiet period."""
    if event is not None and now - event.ts < rule.flag_clear_after:
        return lifecycle.trigger(
            state, source_kind="meter", source_id=event.meter_id, enterprise_id=enterprise_id, rule=rule_name,
            severity=rule.severity, at=max(now, event.ts), value=event.value, threshold=event.previous,
            details={"reading_ts": event.ts.isoformat(), "value": event.value, "previous": event.previous,
                     "detail": event.detail, "not_summed": True, "source": SOURCE})
    return lifecycle.clear(state, now)


def day_readings(energy: SiteEnergyState, meter_id: int, spec: MeterSpec, day_end: datetime) -> int | None:
    """Readings of the meter on the local day ending at ``day_end`` (each counted on the
    interval it closes), or ``None`` when that is not a whole day of the meter (its first)."""
    day_start = day_end - timedelta(days=1)
    first = energy.first_data(meter_id)
    if first is None or first >= day_start:
        return None
    return window_energy(energy, {meter_id: spec}, day_start, day_end).readings.get(meter_id, 0)


def completeness(rule: QualityRule, state: Alert | None, *, meter_id: int, enterprise_id: str, day_start: datetime,
                 readings: int, interval_s: float, now: datetime) -> tuple[Alert | None, list[AlertEvent]]:
    """Local-day completeness = readings ÷ expected readings (86 400 s ÷ the meter's interval)
    ≥ 90 %."""
    expected = 86_400 / interval_s
    share = readings / expected
    if share < rule.completeness_min:
        return lifecycle.trigger(
            state, source_kind="meter", source_id=meter_id, enterprise_id=enterprise_id, rule=COMPLETENESS_LOW,
            severity=rule.severity, at=now, value=round(share, 4), threshold=rule.completeness_min,
            details={"local_date": local_date(day_start), "readings": readings, "expected": expected,
                     "interval_s": interval_s, "formula": f"{readings} / (86 400 s / {interval_s:g} s) = {share:.4f}",
                     "source": COMPLETENESS_SOURCE},
            policy=lifecycle.UpdatePolicy(min_relative_step=0.0))  # each bad day is worth an update
    return lifecycle.clear(state, now, {"local_date": local_date(day_start), "share": round(share, 4)})


def relative_difference(daily_totals: Iterable[float], monthly_total: float) -> float | None:
    """|Σ daily − monthly| ÷ |monthly|; 0 when both are 0; ``None`` when only the monthly total
    is 0 (no relative figure exists: the caller decides)."""
    total = sum(daily_totals)
    if monthly_total == 0:
        return 0.0 if total == 0 else None
    return abs(total - monthly_total) / abs(monthly_total)


def daily_monthly_mismatch(daily_totals: Iterable[float], monthly_total: float, tolerance: float = 0.05) -> float | None:
    """Relative difference |Σ daily − monthly| ÷ monthly when above ``tolerance``, else ``None``."""
    diff = relative_difference(daily_totals, monthly_total)
    if diff is None:
        return float("inf")
    return diff if diff > tolerance else None


def register_difference(first: float, last: float, multiplier: float = 1.0, rollover: float | None = None) -> float:
    """Quantity a register advanced from ``first`` to ``last`` (raw values), × ``multiplier``:
    the span rule of ``analytics.energy_definition.span_quantity`` (a negative span is one wrap
    when the meter has a ``rollover``; without one it stays negative: a reset, not a usable
    total)."""
    return span_quantity(first, last, rollover) * multiplier


@dataclass(frozen=True)
class MonthToDate:
    """One register meter's figures for the daily/monthly agreement over a local month-to-date
    window [``month_start``, ``end``) (UTC instants of local midnights)."""

    meter_id: int
    enterprise_id: str
    month_start: datetime
    end: datetime  # end of the last local day checked (exclusive)
    daily: tuple[float, ...]  # consumption of each local day with data (unit × multiplier), from the rollup
    first: tuple[datetime, float]  # first reading in the window (ts, raw register value)
    last: tuple[datetime, float]  # last reading in the window
    multiplier: float = 1.0
    rollover: float | None = None
    unit: str = ""


def _month_label(month_start: datetime) -> str:
    return month_start.astimezone(CST).strftime("%Y-%m")


def month_agreement(rule: QualityRule, state: Alert | None, inp: MonthToDate,
                    now: datetime) -> tuple[Alert | None, list[AlertEvent]]:
    """Daily totals vs the monthly register difference within ``daily_monthly_tolerance``.

    Opens/updates ``daily_monthly_mismatch`` on the meter when |Σ daily − monthly| ÷ monthly
    exceeds the tolerance, or when the monthly register difference is not positive while the
    daily figures are not 0 (a reset inside the month: value ``None``); clears otherwise.
    Windows shorter than ``daily_monthly_min_days`` (unless the month is complete) are not
    judged: the state is returned unchanged.
    """
    days = (inp.end - inp.month_start) / timedelta(days=1)
    complete = local_start(inp.end, "month") == inp.end  # the window ends on a 1st at 00:00 local
    if days < rule.daily_monthly_min_days and not complete:
        return state, []
    total = math.fsum(inp.daily)
    monthly = register_difference(inp.first[1], inp.last[1], inp.multiplier, inp.rollover)
    diff = relative_difference(inp.daily, monthly) if monthly >= 0 else None
    ok = diff is not None and diff <= rule.daily_monthly_tolerance
    last_day = local_date(inp.end - timedelta(microseconds=1))
    month = _month_label(inp.month_start)
    formula = (f"|{total:.6g} − {monthly:.6g}| / {monthly:.6g} = {diff:.4f}" if diff is not None and monthly
               else f"Σ daily {total:.6g} vs monthly register difference {monthly:.6g}: no relative figure")
    facts = {"local_month": month, "period": f"{local_date(inp.month_start)}..{last_day}",
             "complete_month": complete, "daily_sum": total, "days_with_data": len(inp.daily),
             "monthly_register_difference": monthly, "formula": formula}
    if ok:
        return lifecycle.clear(state, now, {"cleared_by": facts})
    # a new month is a new finding even at a similar value: force an update then
    moved_on = state is not None and state.details.get("local_month") != month
    return lifecycle.trigger(
        state, source_kind="meter", source_id=inp.meter_id, enterprise_id=inp.enterprise_id,
        rule=DAILY_MONTHLY_MISMATCH, severity=rule.severity, at=now,
        value=None if diff is None else round(diff, 6), threshold=rule.daily_monthly_tolerance,
        details={**facts,
                 "first_reading": {"ts": inp.first[0].isoformat(), "value": inp.first[1]},
                 "last_reading": {"ts": inp.last[0].isoformat(), "value": inp.last[1]},
                 "multiplier": inp.multiplier, "rollover": inp.rollover, "unit": inp.unit,
                 "method": "Σ daily consumption (daily rollup, register steps) vs (last − first reading of the"
                           " month) × multiplier, + rollover when negative",
                 "source": SOURCE},
        policy=lifecycle.UpdatePolicy(min_relative_step=0.0 if moved_on else 0.2))


def is_future(ts: datetime, now: datetime, tolerance: timedelta = timedelta(minutes=5)) -> bool:
    """A measurement time later than processing time ``now`` + ``tolerance``."""
    return ts > now + tolerance
