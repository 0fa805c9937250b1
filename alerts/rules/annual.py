"""Data centre at or above 10 000 tce per year (rolling 12 months), and its projection."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from nxem.contract import Severity

RULE = "dc_annual_tce"
#: 重点用能单位 threshold, tce/yr (节约能源法 art. 52, recalled-unverified); Ningxia plan: data
#: centres above it must be in the online monitoring system (as given in the brief).
KEY_UNIT_TCE_PER_YEAR = 10_000.0


@dataclass(frozen=True)
class AnnualTceRule:
    threshold_tce: float = KEY_UNIT_TCE_PER_YEAR
    period: timedelta = timedelta(days=365)  # rolling 12 months
    trend_window: timedelta = timedelta(days=30)  # recent rate for the projection
    horizon: timedelta = timedelta(days=365)  # warn when the projection crosses within this
    min_trend_coverage: float = 0.8
    severity: Severity = "major"
    projection_severity: Severity = "warning"
