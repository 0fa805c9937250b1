"""A data centre's PUE against its limit: the annual PUE is the compliance figure, a short
window (7 days by default) the operational warning.

* ``pue_annual_above_limit`` (``PueAnnualRule``, major): the PUE of the last 365 local days
  (GB 40879-2021 rates the full-year metered 电能比 RM2 = E / E_IT) above the site's limit, at
  the limits' precision (0.01: on the limit is compliant). Judged once per local day, only
  when both meters cover at least 90 % of the year (the national online-monitoring
  completeness rule, shared/reference/README.md); every evaluation updates an open alert. The
  GB 40879 grade of the year is given for every centre.
* ``pue_above_limit`` (``PueRule``, warning): the PUE of the configured window above the limit,
  with hysteresis and a minimum duration -- an excursion of days or weeks shows here while the
  year stays compliant. Judged on samples: the PUE of the window ending at each 15-minute edge
  over the last ``min_duration`` (newest last). It opens only if every sample is above the
  limit, and clears only if every sample is below ``limit - clear_margin``; in between it
  holds. Because the samples come from the data, not from how often it is evaluated, a
  backfill or a restart reaches the same decision as live processing. A sample without IT
  energy or without enough window coverage is "no value": no transition is made on it.

The limit (``analytics.pue.site_limit``): the site's own, else 1.2 (Ningxia plan) for a new
large or very large centre, else the GB 40879-2021 limit value 1.50.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from alerts import lifecycle
from alerts.lifecycle import Alert, UpdatePolicy
from analytics.periods import local_date
from analytics.pue import (
    GB40879,
    GB40879_LIMIT_SOURCE,
    GB40879_LIMIT_VALUE,
    GRADE_CONFIDENCE,
    LIMIT_DECIMALS,
    NINGXIA_PUE_LIMIT,
    PUE_FORMULA,
    above,
    grade,
    pue,
)
from analytics.site_energy import MeterSpec, SiteEnergyState, floor_bucket, window_energy
from nxem.contract import AlertEvent, Severity

RULE = "pue_above_limit"
ANNUAL_RULE = "pue_annual_above_limit"
#: every evaluation of the annual rule (once per local day) updates an open alert
EVERY_DAY = UpdatePolicy(min_relative_step=-1.0, min_absolute_step=-1.0)


@dataclass(frozen=True)
class PueRule:
    """The operational warning on a short window."""

    limit: float = NINGXIA_PUE_LIMIT  # the site's limit (analytics.pue.site_limit)
    window: timedelta = timedelta(days=7)  # rolling window of the PUE (registry pue_window_hours)
    clear_margin: float = 0.02  # hysteresis: clears below limit - margin
    min_duration: timedelta = timedelta(hours=1)  # breach must hold over this much data
    min_coverage: float = 0.9  # share of the window both meters must cover
    severity: Severity = "warning"  # operational: below the annual compliance alert's major
    limit_source: str = "Ningxia plan: new large data centres PUE ≤ 1.2 (as given; configurable per site)"
    update: UpdatePolicy = UpdatePolicy(min_relative_step=0.02)  # ≈ 0.024 at PUE 1.2


@dataclass(frozen=True)
class PueAnnualRule:
    """The compliance rule: the annual PUE."""

    limit: float = GB40879_LIMIT_VALUE
    limit_source: str = GB40879_LIMIT_SOURCE
    period: timedelta = timedelta(days=365)
    #: share of the year both meters must cover: ≥ 90 % (national online-monitoring completeness
    #: rule, shared/reference/README.md); a centre with less is not judged yet
    min_coverage: float = 0.9
    severity: Severity = "major"


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


def pue_meters(specs: Mapping[int, MeterSpec]) -> dict[int, MeterSpec] | None:
    """The IT and facility meters of a site, or ``None`` unless it has both."""
    sub = {m: s for m, s in specs.items() if s.role in ("it_load", "total_facility")}
    return sub if {s.role for s in sub.values()} == {"it_load", "total_facility"} else None


def gather(rule: PueRule, site_id: int, enterprise_id: str, energy: SiteEnergyState,
           specs: Mapping[int, MeterSpec], end: datetime) -> PueInput | None:
    """Samples of the window ending at each 15-minute edge up to ``end`` (a 15-minute edge), or
    ``None`` without both meters and their data. The windows end where both IT and facility data
    have arrived: a facility reading whose IT partner is still in flight must not make a spike."""
    sub = pue_meters(specs)
    if sub is None:
        return None
    lasts = [energy.last_reading(m) for m in sub]
    known = [t for t in lasts if t is not None]
    if len(known) < len(lasts):
        return None
    data_end = min(end, floor_bucket(min(known)))
    samples = []
    for e in sample_ends(rule, data_end):
        w = window_energy(energy, sub, e - rule.window, e)
        samples.append(PueSample(w.start, w.end, w.facility_kwh, w.it_kwh, w.coverage(sub)))
    return PueInput(site_id, enterprise_id, samples)


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
        "basis": f"operational warning: PUE over the last {rule.window.total_seconds() / 86400:g} days",
        "note": "PUE over a window shorter than a year is indicative; GB 40879 RM2 is annual: the compliance"
                f" alert is {ANNUAL_RULE}",
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


@dataclass(frozen=True)
class PueAnnualInput:
    site_id: int
    enterprise_id: str
    start: datetime  # the 365 local days [start, end)
    end: datetime  # local midnight closing the day just completed
    facility_kwh: float
    it_kwh: float
    coverage: float  # min share of the year covered by the IT and facility meters


def gather_annual(rule: PueAnnualRule, site_id: int, enterprise_id: str, energy: SiteEnergyState,
                  specs: Mapping[int, MeterSpec], end: datetime) -> PueAnnualInput | None:
    """The year up to the local midnight ``end``, or ``None`` without both meters."""
    sub = pue_meters(specs)
    if sub is None:
        return None
    w = window_energy(energy, sub, end - rule.period, end)
    return PueAnnualInput(site_id, enterprise_id, w.start, w.end, w.facility_kwh, w.it_kwh, w.coverage(sub))


def evaluate_annual(rule: PueAnnualRule, state: Alert | None, inp: PueAnnualInput,
                    now: datetime) -> tuple[Alert | None, list[AlertEvent]]:
    """Compliance on the annual PUE; a year covered less than ``min_coverage`` is not judged
    (state unchanged)."""
    value = pue(inp.facility_kwh, inp.it_kwh)
    if value is None or inp.coverage < rule.min_coverage:
        return state, []
    last_day = local_date(inp.end - timedelta(microseconds=1))
    details: dict[str, Any] = {
        "basis": "compliance: annual PUE (GB 40879-2021 电能比 RM2 = E / E_IT over a year)",
        "pue": round(value, 6), "facility_kwh": inp.facility_kwh, "it_kwh": inp.it_kwh,
        "formula": f"{PUE_FORMULA} = {inp.facility_kwh:.3f} / {inp.it_kwh:.3f} = {value:.4f}",
        "window": f"{local_date(inp.start)}..{last_day}", "window_start": inp.start.isoformat(),
        "window_end": inp.end.isoformat(), "as_of_local_date": last_day, "coverage": round(inp.coverage, 4),
        "threshold": rule.limit, "compared_at": f"{LIMIT_DECIMALS} decimals (on the limit is compliant)",
        "limit_source": rule.limit_source, "standard": GB40879, "gb40879_grade": grade(value),
        "grade_confidence": GRADE_CONFIDENCE,
    }
    if above(value, rule.limit):
        return lifecycle.trigger(
            state, source_kind="site", source_id=inp.site_id, enterprise_id=inp.enterprise_id, rule=ANNUAL_RULE,
            severity=rule.severity, at=now, value=round(value, 6), threshold=rule.limit, details=details,
            policy=EVERY_DAY)
    return lifecycle.clear(state, now, {"cleared_pue": round(value, 6), "cleared_as_of_local_date": last_day,
                                        "gb40879_grade": grade(value)})
