"""Data-quality rules from the national online-monitoring requirements (secondary sources)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from nxem.contract import Severity

METER_SILENT = "meter_silent"
COUNTER_BACKWARDS = "counter_backwards"
VALUE_OUT_OF_RANGE = "value_out_of_range"
COMPLETENESS_LOW = "completeness_low"
DAILY_MONTHLY_MISMATCH = "daily_monthly_mismatch"
FUTURE_TIMESTAMP = "future_timestamp"


@dataclass(frozen=True)
class QualityRule:
    silent_intervals: int = 4  # a meter silent this many of its intervals
    completeness_min: float = 0.9  # ≥ 90 % of expected points per local day
    daily_monthly_tolerance: float = 0.05  # daily totals vs monthly total within 5 %
    flag_clear_after: timedelta = timedelta(hours=24)  # backwards/out-of-range alert clears
    future_tolerance: timedelta = timedelta(minutes=5)
    severity: Severity = "minor"
