"""Annual energy budget (用能预算): year-to-date plus projection above the budget."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from nxem.contract import Severity

RULE = "energy_budget_exceeded"


@dataclass(frozen=True)
class BudgetRule:
    budget_tce: float  # the unit's annual budget, tce (local calendar year)
    trend_window: timedelta = timedelta(days=30)
    min_trend_coverage: float = 0.8
    severity: Severity = "major"  # year-to-date already above the budget
    projection_severity: Severity = "warning"  # year-to-date + projection above it
