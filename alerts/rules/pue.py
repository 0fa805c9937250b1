"""PUE above the site's limit, with hysteresis and a minimum duration.

The rule is judged on samples: the PUE of the configured window ending at each 15-minute edge
over the last ``min_duration`` (newest last). It opens only if every sample is above the limit,
and clears only if every sample is below ``limit - clear_margin``; in between it holds. Because
the samples come from the data, not from how often it is evaluated, a backfill or a restart
reaches the same decision as live processing. A sample without IT energy or without enough
window coverage is "no value": no transition is made on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from alerts import lifecycle
from alerts.lifecycle import Alert, UpdatePolicy
from analytics.pue import GB40879, GRADE_CONFIDENCE, NINGXIA_PUE_LIMIT, PUE_FORMULA, grade, pue
from nxem.contract import AlertEvent, Severity

RULE = "pue_above_limit"


@dataclass(frozen=True)
class PueRule:
    limit: float = NINGXIA_PUE_LIMIT  # Ningxia plan 1.2; hub node 1.25; national 1.3
    window: timedelta = timedelta(days=30)  # rolling window of the PUE
    clear_margin: float = 0.02  # hysteresis: clears below limit - margin
    min_duration: timedelta = timedelta(hours=1)  # breach must hold over this much data
    min_coverage: float = 0.9  # share of the window both meters must cover
    severity: Severity = "major"
    limit_source: str = "Ningxia plan: new large data centres PUE ≤ 1.2 (as given; configurable per site)"
    update: UpdatePolicy = UpdatePolicy(min_relative_step=0.02)  # ≈ 0.024 at PUE 1.2


@dataclass(frozen=True)
class PueSample:
    start: datetime
    end: datetime
    facility_kwh: float
    it_kwh: float
    coverage: float  # min over the IT and facility meters

    def value(self, rule: PueRule) -> float | None:
        return pue(self.facility_kwh, self.it_kwh) if self.coverage >= rule.min_coverage else None


@dataclass(frozen=True)
class PueInput:
    site_id: int
    enterprise_id: str
    samples: Sequence[PueSample]  # oldest first; the last is the current window


def sample_ends(rule: PueRule, end: datetime) -> list[datetime]:
    """Window ends to sample: every 15 minutes over ``min_duration`` up to ``end``."""
    n = int(rule.min_duration.total_seconds() // 900)
    return [end - timedelta(seconds=900 * k) for k in range(n, -1, -1)]


def _details(rule: PueRule, s: PueSample, value: float) -> dict[str, Any]:
    return {
        "pue": round(value, 6), "facility_kwh": s.facility_kwh, "it_kwh": s.it_kwh,
        "window_start": s.start.isoformat(), "window_end": s.end.isoformat(),
        "window_hours": rule.window.total_seconds() / 3600, "coverage": round(s.coverage, 4),
        "threshold": rule.limit, "clear_below": round(rule.limit - rule.clear_margin, 6),
        "min_duration_hours": rule.min_duration.total_seconds() / 3600,
        "formula": f"{PUE_FORMULA} = {s.facility_kwh:.3f} / {s.it_kwh:.3f} = {value:.4f}",
        "limit_source": rule.limit_source, "standard": GB40879, "gb40879_grade": grade(value),
        "grade_confidence": GRADE_CONFIDENCE,
        "note": "PUE over a window shorter than a year is indicative; GB 40879 RM2 is annual",
    }


def evaluate(rule: PueRule, state: Alert | None, inp: PueInput, now: datetime) -> tuple[Alert | None, list[AlertEvent]]:
    """(active alert or None, transitions) for the site's PUE samples at event time ``now``."""
    if not inp.samples:
        return state, []
    values = [s.value(rule) for s in inp.samples]
    last, cur = inp.samples[-1], values[-1]
    if cur is None:
        return state, []
    known = [v for v in values if v is not None]
    complete = len(known) == len(values)
    if complete and all(v > rule.limit for v in known) or (state is not None and cur >= rule.limit - rule.clear_margin):
        return lifecycle.trigger(
            state, source_kind="site", source_id=inp.site_id, enterprise_id=inp.enterprise_id, rule=RULE,
            severity=rule.severity, at=now, value=round(cur, 6), threshold=rule.limit,
            details=_details(rule, last, cur), policy=rule.update,
        )
    if state is not None and complete and all(v < rule.limit - rule.clear_margin for v in known):
        return lifecycle.clear(state, now, {"cleared_pue": round(cur, 6), "cleared_window_end": last.end.isoformat()})
    return state, []
