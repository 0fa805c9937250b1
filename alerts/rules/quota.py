"""Plant quota: unit-product energy consumption per local day, month and year-to-date.

Value = the product's own energy ÷ its output over the period, per indicator row of
``analytics.quotas`` (kgce/t for 综合能耗, kWh/t for 电耗 indicators such as GB 21346-2022
铝液交流电耗, kgce/kg, kgce/m3, kgce/toe). The rule owns its inputs: which meters form the
numerator (the ``Allocation`` of the site's energy to its products, the row's numerator kind,
the indicator's own meter list) and the denominator (the output product's product_output
meters), and the windows (local day, month, year to date).

Above 3级 (limit) is a violation for an existing plant, above 2级 for a plant marked new-build,
each after the standard's corrections for the site's declared parameters, compared at the
standard's precision: a value on the limit is compliant. Below ``min_output_t`` in the period
the ratio is not judged (no false alarm on a day of tiny output), nor when the meters cover
less than ``min_coverage`` of it. A site of two or more products whose energy meters are not
all tagged or apportioned is not judged at all: it gets one ``quota_boundary_ambiguous``
configuration alert naming the site and the untagged meters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from alerts import lifecycle
from alerts.lifecycle import Alert, Run
from analytics.coefficients import scale_unit
from analytics.periods import Period, local_date, local_start
from analytics.quotas import (
    QUOTAS,
    Allocation,
    Limits,
    MeterUse,
    Quota,
    QuotaParams,
    allocate,
    at_precision,
    exceeds,
    find,
    level_of,
    limits,
    unit_consumption,
)
from analytics.site_energy import MeterSpec, SiteEnergyState, window_energy
from nxem.contract import AlertEvent, Severity, alert_key

RULE = "quota_exceeded"
BOUNDARY_RULE = "quota_boundary_ambiguous"
#: GB/T 2589-2020: a product's comprehensive consumption is the energy inside its boundary.
BOUNDARY_STANDARD = "GB/T 2589-2020 (energy of the product's boundary) and the product's quota standard"


@dataclass(frozen=True)
class QuotaRule:
    quota: Quota
    new_build: bool = False
    #: smallest output judged, tonnes of product (m3 outputs: thousands of m3)
    min_output_t: float = 1.0
    periods: tuple[Period, ...] = ("day", "month", "year")
    min_coverage: float = 0.9
    severity: Severity = "major"
    params: QuotaParams = field(default_factory=QuotaParams)
    #: the indicator's own numerator meters (registry ``meters:``), among the product's
    meters: frozenset[int] | None = None
    #: which energy is the product's (built from the registry); None: from the specs' tags
    allocation: Allocation | None = None

    @property
    def limits(self) -> Limits:
        return limits(self.quota, self.params)

    @property
    def threshold(self) -> float:
        """2级 for a new-build plant, else 3级 (the limit for existing plants), after the
        standard's corrections, at the standard's precision."""
        lim = self.limits
        return at_precision(lim.level2 if self.new_build else lim.level3, self.quota.decimals)

    def rule_name(self, period: Period) -> str:
        return f"{RULE}.{self.quota.product}.{self.quota.indicator}.{period}"

    @property
    def min_output(self) -> float:
        """``min_output_t`` in the indicator's output unit."""
        unit = self.quota.output_unit
        return self.min_output_t * (1000.0 if unit in ("kg", "m3") else 1.0)


def quota_rules(product: str, new_build: bool = False, min_output_t: float = 1.0,
                params: QuotaParams | None = None) -> tuple[QuotaRule, ...]:
    """Rules for every quota indicator of ``product`` (KeyError if the product has none)."""
    return tuple(QuotaRule(q, new_build, min_output_t, params=params or QuotaParams()) for q in QUOTAS[product])


@dataclass(frozen=True)
class QuotaInput:
    site_id: int
    enterprise_id: str
    period: Period
    start: datetime  # period start actually evaluated (UTC)
    end: datetime
    energy: float  # kgce (or kWh) of the product's numerator meters, weighted by their shares
    output: float  # in the indicator's output unit (t, kg, m3, toe)
    coverage: float
    meters: Mapping[str, float] = field(default_factory=dict)  # numerator meter code -> share


def evaluate(rule: QuotaRule, state: Alert | None, inp: QuotaInput, now: datetime) -> tuple[Alert | None, list[AlertEvent]]:
    if inp.coverage < rule.min_coverage:
        return state, []
    value = unit_consumption(inp.energy, inp.output, rule.min_output)
    if value is None:
        return state, []
    q = rule.quota
    lim = rule.limits
    limit = lim.level2 if rule.new_build else lim.level3
    threshold = at_precision(limit, q.decimals)
    level = "2级 (new build)" if rule.new_build else "3级 (limit, existing plant)"
    out_unit = q.output_unit
    details: dict[str, Any] = {
        "product": q.product, "product_cn": q.product_cn, "indicator": q.indicator, "indicator_cn": q.indicator_cn,
        "unit": q.unit, "numerator": q.numerator, "period": inp.period, "local_date_from": local_date(inp.start),
        "window_start": inp.start.isoformat(), "window_end": inp.end.isoformat(), "energy": inp.energy,
        "energy_unit": q.energy_unit, "output": inp.output, "output_unit": out_unit, "meters": dict(inp.meters),
        "value": round(value, 4), "value_at_precision": at_precision(value, q.decimals), "decimals": q.decimals,
        "threshold": threshold, "threshold_level": level, "level1_reference": at_precision(lim.level1, q.decimals),
        "level2": at_precision(lim.level2, q.decimals), "level3": at_precision(lim.level3, q.decimals),
        "table_levels": [q.level1, q.level2, q.level3], "corrections": list(lim.applied),
        "meets_level": level_of(value, q, lim),
        "formula": f"{q.indicator_cn} = {inp.energy:.3f} {q.energy_unit} / {inp.output:.3f} {out_unit}"
                   f" = {value:.3f} {q.unit}",
        "comparison": "GB/T 8170-2008 修约值比较法: value and limit rounded to "
                      f"{q.decimals} decimal(s); only strictly greater is a violation",
        "standard": f"{q.standard} {q.table}", "confidence": q.confidence, "coverage": round(inp.coverage, 4),
    }
    if exceeds(value, limit, q.decimals):
        return lifecycle.trigger(state, source_kind="site", source_id=inp.site_id, enterprise_id=inp.enterprise_id,
                                 rule=rule.rule_name(inp.period), severity=rule.severity, at=now,
                                 value=round(value, 4), threshold=threshold, details=details)
    return lifecycle.clear(state, now, {"cleared_value": round(value, 4)})


# ------------------------------------------------------------------ a site's quota rules


def allocation_from_specs(site_id: int, rules: Sequence[QuotaRule], specs: Mapping[int, MeterSpec]) -> Allocation:
    """The allocation when the registry gave none: product tags of the specs, every untagged
    energy meter to the product of a one-product site (meters named by id)."""
    uses = [MeterUse(m, str(m), s.role, s.carrier, s.product) for m, s in specs.items()]
    return allocate(str(site_id), (r.quota.product for r in rules), uses)


def _output(q: Quota, rule: QuotaRule, specs: Mapping[int, MeterSpec], qty: Mapping[int, float]) -> float:
    """The period's output in the indicator's unit (t, kg, m3 or toe) from the output meters'
    quantities (meter unit × multiplier); toe = t × the product's declared ``toe_per_t``."""
    unit = q.output_unit
    total = 0.0
    for mid, spec in specs.items():
        base, factor = scale_unit(spec.unit)
        amount = qty.get(mid, 0.0) * factor  # kg or m3
        if base == "kg":
            t = amount / 1000.0
            total += amount if unit == "kg" else t * (rule.params.toe_per_t or 0.0) if unit == "toe" else t
        elif base == "m3" and unit == "m3":
            total += amount
    return total


def site_inputs(rules: Sequence[QuotaRule], alloc: Allocation, energy: SiteEnergyState,
                specs: Mapping[int, MeterSpec], day_end: datetime, *, site_id: int,
                enterprise_id: str) -> list[tuple[QuotaRule, QuotaInput]]:
    """Each rule's input for each of its periods ending at ``day_end`` (a local midnight): the
    product's own energy (its numerator meters, weighted by their shares) and its output."""
    first = energy.earliest()
    if first is None:
        return []
    last = day_end - timedelta(microseconds=1)  # inside the local day just completed
    codes = alloc.meters
    out: list[tuple[QuotaRule, QuotaInput]] = []
    for rule in rules:
        q = rule.quota
        weights = {m: w for m, w in alloc.numerator(q, rule.meters).items() if m in specs}
        outs = {m: specs[m] for m in alloc.output_meters(q) if m in specs and specs[m].role == "product_output"}
        if not outs or not weights:
            continue  # no output meter, or no meter of this numerator: not judged
        groups: dict[float, dict[int, MeterSpec]] = {}
        for m, w in weights.items():
            groups.setdefault(w, {})[m] = specs[m]
        shown = {(codes[m].code if m in codes else str(m)): w for m, w in weights.items()}
        for period in rule.periods:
            start = max(local_start(last, period), first)
            if start >= day_end:
                continue
            num = 0.0
            cov = 1.0
            for w, sub in groups.items():
                win = window_energy(energy, sub, start, day_end)
                num += w * (win.electricity_kwh if q.energy_unit == "kWh" else win.net_kgce)
                cov = min(cov, win.coverage(sub))
            wout = window_energy(energy, outs, start, day_end)
            cov = min(cov, wout.coverage(outs))
            out.append((rule, QuotaInput(site_id, enterprise_id, period, start, day_end, num,
                                         _output(q, rule, outs, wout.quantity_by_meter), cov, shown)))
    return out


def evaluate_site(rules: Sequence[QuotaRule], run: Run, energy: SiteEnergyState, specs: Mapping[int, MeterSpec],
                  day_end: datetime, now: datetime, *, site_id: int, enterprise_id: str) -> None:
    """Every quota rule of one site for the local day ending at ``day_end`` (and its month and
    year to date), transitions into ``run``. ``specs``: the site's meters that convert. An
    ambiguous site (see ``Allocation.untagged``) gets the boundary alert and no judgment."""
    if not rules:
        return
    alloc = rules[0].allocation or allocation_from_specs(site_id, rules, specs)
    cfg_key = alert_key("site", site_id, BOUNDARY_RULE)
    if alloc.untagged:
        run.set(cfg_key, lifecycle.trigger(
            run.get(cfg_key), source_kind="site", source_id=site_id, enterprise_id=enterprise_id,
            rule=BOUNDARY_RULE, severity="major", at=now, value=float(len(alloc.untagged)),
            details={"site": alloc.site, "products": list(alloc.products), "untagged_meters": list(alloc.untagged),
                     "error": f"site {alloc.site} makes {len(alloc.products)} products "
                              f"({', '.join(alloc.products)}) and energy meters {', '.join(alloc.untagged)} name "
                              "none of them: no product is judged until each energy meter has a product or shares",
                     "standard": BOUNDARY_STANDARD},
            policy=lifecycle.UpdatePolicy(min_relative_step=0.0)))
        return
    run.set(cfg_key, lifecycle.clear(run.get(cfg_key), now))
    for rule, inp in site_inputs(rules, alloc, energy, specs, day_end, site_id=site_id, enterprise_id=enterprise_id):
        key = alert_key("site", site_id, rule.rule_name(inp.period))
        run.set(key, evaluate(rule, run.get(key), inp, now))


# ------------------------------------------------------------ which quota rules a site gets

#: an indicator named by its unit in older registry files selects the rows of that unit
INDICATOR_UNITS = {"kgce_per_t": "kgce/t", "kwh_per_t": "kWh/t"}
_PARAMS = frozenset(QuotaParams.__dataclass_fields__)


def _product_fields(p: Any) -> tuple[str, str, tuple[str, ...], dict[str, Any]]:
    """(product, indicator, the indicator's own meter codes, correction parameters)."""
    get = p.get if isinstance(p, Mapping) else (lambda k, d=None: getattr(p, k, d))
    params = get("parameters", None) or {}
    return (str(get("product")), str(get("indicator", "kgce_per_t") or "kgce_per_t"), tuple(get("meters", None) or ()),
            dict(params.items() if isinstance(params, Mapping) else params))


def site_quota_rules(site: Any, meters: Sequence[Any]) -> list[QuotaRule]:
    """One rule per (product, indicator) a plant's registry row declares (``site.products``,
    ``site.new_build``, its altitude), sharing the site's allocation of energy among its
    products over its meter rows (id, code, gateway_id, role, carrier, product, shares,
    feedstock): what the worker evaluates and the portal's unit-product view shows."""
    products = [_product_fields(p) for p in site.products]
    alloc = allocate(
        str(getattr(site, "code", site.id)), (p for p, *_ in products),
        [MeterUse(m.id, str(getattr(m, "code", m.id)), m.role, m.carrier, m.product,
                  tuple(getattr(m, "shares", ()) or ()), bool(getattr(m, "feedstock", False))) for m in meters],
    ) if meters else None
    ids = {ref: m.id for m in meters  # the registry writes an indicator's meters as "gateway/code"
           for ref in (str(getattr(m, "code", m.id)), f"{getattr(m, 'gateway_id', '')}/{getattr(m, 'code', m.id)}")}
    site_params = {"altitude_m": getattr(site, "altitude_m", None),
                   "atmospheric_pressure_pa": getattr(site, "atmospheric_pressure_pa", None)}
    out: list[QuotaRule] = []
    for product, indicator, codes, params in products:
        found = find(product, indicator)
        # an indicator named by unit ("kwh_per_t") selects the rows of that unit (older files)
        rows = (found,) if found is not None else tuple(
            q for q in QUOTAS.get(product, ()) if q.unit == INDICATOR_UNITS.get(indicator, indicator))
        qp = QuotaParams(**{k: v for k, v in {**site_params, **params}.items()
                            if v is not None and k in _PARAMS})  # validated at registry load
        own = frozenset(ids[c] for c in codes if c in ids) if codes else None
        out += [QuotaRule(quota=q, new_build=bool(site.new_build), params=qp, meters=own, allocation=alloc)
                for q in rows]
    return out
