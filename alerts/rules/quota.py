"""Plant quota: unit-product energy consumption per local day, month and year-to-date.

Value = energy of the product ÷ its output over the period (kgce/t for 综合能耗 indicators,
kWh/t for electricity indicators such as GB 21346-2022 铝锭综合交流电耗). Above 3级 (limit) is a
violation for an existing plant; above 2级 for a plant marked new-build; 1级 is shown as the
reference. Below ``min_output_t`` in the period the ratio is not judged (no false alarm on a
day of tiny output), and a period whose meters cover less than ``min_coverage`` is not judged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from alerts import lifecycle
from alerts.lifecycle import Alert
from analytics.periods import Period, local_date
from analytics.quotas import QUOTAS, Quota, level_of, unit_consumption
from nxem.contract import AlertEvent, Severity

RULE = "quota_exceeded"


@dataclass(frozen=True)
class QuotaRule:
    quota: Quota
    new_build: bool = False
    min_output_t: float = 1.0
    periods: tuple[Period, ...] = ("day", "month", "year")
    min_coverage: float = 0.9
    severity: Severity = "major"

    @property
    def threshold(self) -> float:
        """2级 for a new-build plant, else 3级 (the limit for existing plants)."""
        return self.quota.level2 if self.new_build else self.quota.level3

    def rule_name(self, period: Period) -> str:
        unit = "kgce_per_t" if self.quota.unit == "kgce/t" else "kwh_per_t"
        return f"{RULE}.{self.quota.product}.{unit}.{period}"


def quota_rules(product: str, new_build: bool = False, min_output_t: float = 1.0) -> tuple[QuotaRule, ...]:
    """Rules for every quota indicator of ``product`` (KeyError if the product has none)."""
    return tuple(QuotaRule(q, new_build, min_output_t) for q in QUOTAS[product])


@dataclass(frozen=True)
class QuotaInput:
    site_id: int
    enterprise_id: str
    period: Period
    start: datetime  # period start actually evaluated (UTC)
    end: datetime
    energy: float  # kgce (or kWh for kWh/t indicators) attributed to the product
    output_t: float
    coverage: float


def evaluate(rule: QuotaRule, state: Alert | None, inp: QuotaInput, now: datetime) -> tuple[Alert | None, list[AlertEvent]]:
    if inp.coverage < rule.min_coverage:
        return state, []
    value = unit_consumption(inp.energy, inp.output_t, rule.min_output_t)
    if value is None:
        return state, []
    q = rule.quota
    level = "2级 (new build)" if rule.new_build else "3级 (limit, existing plant)"
    details: dict[str, Any] = {
        "product": q.product, "product_cn": q.product_cn, "indicator": q.indicator_cn, "unit": q.unit,
        "period": inp.period, "local_date_from": local_date(inp.start), "window_start": inp.start.isoformat(),
        "window_end": inp.end.isoformat(), "energy": inp.energy, "energy_unit": q.unit.split("/")[0],
        "output_t": inp.output_t, "value": round(value, 4), "threshold": rule.threshold, "threshold_level": level,
        "level1_reference": q.level1, "level2": q.level2, "level3": q.level3, "meets_level": level_of(value, q),
        "formula": f"{q.indicator_cn} = {inp.energy:.3f} / {inp.output_t:.3f} t = {value:.3f} {q.unit}",
        "standard": f"{q.standard} {q.table}", "confidence": q.confidence, "coverage": round(inp.coverage, 4),
    }
    if value > rule.threshold:
        return lifecycle.trigger(state, source_kind="site", source_id=inp.site_id, enterprise_id=inp.enterprise_id,
                                 rule=rule.rule_name(inp.period), severity=rule.severity, at=now,
                                 value=round(value, 4), threshold=rule.threshold, details=details)
    return lifecycle.clear(state, now, {"cleared_value": round(value, 4)})
