"""Data-quality rules from the national online-monitoring requirements (secondary sources).

Per meter: silent for N of its intervals; register went backwards (a reset, not a rollover);
value out of physical range; daily completeness below 90 % of the expected readings. Pure
checks the collector/reporting use directly: timestamp too far in the future; daily totals vs
the monthly total differing by more than 5 %. All thresholds are configurable (the sources are
secondary reproductions of the national requirements).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from alerts import lifecycle
from alerts.lifecycle import Alert
from analytics.periods import local_date
from analytics.site_energy import QualityEvent
from nxem.contract import AlertEvent, Severity

METER_SILENT = "meter_silent"
COUNTER_BACKWARDS = "counter_backwards"
VALUE_OUT_OF_RANGE = "value_out_of_range"
COMPLETENESS_LOW = "completeness_low"
DAILY_MONTHLY_MISMATCH = "daily_monthly_mismatch"
FUTURE_TIMESTAMP = "future_timestamp"
SOURCE = "national online-monitoring upload requirements (secondary-reproduction; configurable)"
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


def silent(rule: QualityRule, state: Alert | None, *, meter_id: int, enterprise_id: str, last: datetime | None,
           interval_s: float, now: datetime) -> tuple[Alert | None, list[AlertEvent]]:
    """Meter silent: no reading for ``silent_intervals`` of its intervals up to ``now``."""
    if last is None:
        return state, []
    missed = (now - last).total_seconds() / interval_s
    if missed >= rule.silent_intervals:
        return lifecycle.trigger(
            state, source_kind="meter", source_id=meter_id, enterprise_id=enterprise_id, rule=METER_SILENT,
            severity=rule.severity, at=now, value=float(int(missed)), threshold=float(rule.silent_intervals),
            details={"last_reading": last.isoformat(), "interval_s": interval_s, "intervals_missed": int(missed),
                     "source": SOURCE},
            policy=lifecycle.UpdatePolicy(min_relative_step=1.0))  # update when the gap doubles
    return lifecycle.clear(state, now, {"resumed_at": last.isoformat()})


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


def completeness(rule: QualityRule, state: Alert | None, *, meter_id: int, enterprise_id: str, day_start: datetime,
                 readings: int, interval_s: float, now: datetime) -> tuple[Alert | None, list[AlertEvent]]:
    """Local-day completeness = readings ÷ expected readings (86 400 s ÷ interval) ≥ 90 %."""
    expected = 86_400 / interval_s
    share = readings / expected
    if share < rule.completeness_min:
        return lifecycle.trigger(
            state, source_kind="meter", source_id=meter_id, enterprise_id=enterprise_id, rule=COMPLETENESS_LOW,
            severity=rule.severity, at=now, value=round(share, 4), threshold=rule.completeness_min,
            details={"local_date": local_date(day_start), "readings": readings, "expected": expected,
                     "formula": f"{readings} / {expected:.0f} = {share:.4f}", "source": SOURCE},
            policy=lifecycle.UpdatePolicy(min_relative_step=0.0))  # each bad day is worth an update
    return lifecycle.clear(state, now, {"local_date": local_date(day_start), "share": round(share, 4)})


def daily_monthly_mismatch(daily_totals: Iterable[float], monthly_total: float, tolerance: float = 0.05) -> float | None:
    """Relative difference |Σ daily − monthly| ÷ monthly when above ``tolerance``, else ``None``."""
    total = sum(daily_totals)
    if monthly_total == 0:
        return None if total == 0 else float("inf")
    diff = abs(total - monthly_total) / abs(monthly_total)
    return diff if diff > tolerance else None


def is_future(ts: datetime, now: datetime, tolerance: timedelta = timedelta(minutes=5)) -> bool:
    """A measurement time later than processing time ``now`` + ``tolerance``."""
    return ts > now + tolerance
