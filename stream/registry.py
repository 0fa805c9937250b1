"""Registry rows (storage) -> the domain's rule configuration and meter specs.

The only place that decides which rules a site gets: a data centre gets the PUE rule (its
own limit and window) and the annual 10 000 tce rule; a plant gets one quota rule per
product and indicator it declares (with the standard's corrections for the site's declared
parameters, and the allocation of the site's energy meters to its products); a unit with an
energy budget gets the budget rule; every site gets the data-quality rule.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, Protocol

from alerts.engine import SiteRules
from alerts.rules.annual import AnnualTceRule
from alerts.rules.budget import BudgetRule
from alerts.rules.pue import PueAnnualRule, PueRule
from analytics.pue import site_limit, size_class
from alerts.rules.quota import QuotaRule
from analytics.quotas import QUOTAS, MeterUse, QuotaParams, allocate, find
from analytics.site_energy import MeterSpec
from stream.sites import Registry

INDICATOR_UNITS = {"kgce_per_t": "kgce/t", "kwh_per_t": "kWh/t"}
_PARAMS = frozenset(QuotaParams.__dataclass_fields__)


class SiteRowLike(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def enterprise_id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def new_build(self) -> bool: ...
    @property
    def pue_limit(self) -> float | None: ...
    @property
    def pue_window_hours(self) -> float | None: ...
    @property
    def energy_budget_tce(self) -> float | None: ...
    @property
    def products(self) -> Sequence[Any]: ...


class MeterRowLike(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def site_id(self) -> int: ...
    @property
    def carrier(self) -> str: ...
    @property
    def unit(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def multiplier(self) -> float: ...
    @property
    def rollover(self) -> float | None: ...
    @property
    def coefficient(self) -> str | None: ...
    @property
    def product(self) -> str | None: ...


def _product_fields(p: Any) -> tuple[str, str, tuple[str, ...], dict[str, Any]]:
    """(product, indicator, the indicator's own meter codes, correction parameters)."""
    get = p.get if isinstance(p, Mapping) else (lambda k, d=None: getattr(p, k, d))
    params = get("parameters", None) or {}
    return (str(get("product")), str(get("indicator", "kgce_per_t") or "kgce_per_t"), tuple(get("meters", None) or ()),
            dict(params.items() if isinstance(params, Mapping) else params))


def _quota_rules(site: SiteRowLike, meters: Sequence[MeterRowLike]) -> list[QuotaRule]:
    """One rule per declared (product, indicator), sharing the site's allocation of energy."""
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
        out += [QuotaRule(quota=q, new_build=site.new_build, params=qp, meters=own, allocation=alloc) for q in rows]
    return out


def site_rules(site: SiteRowLike, meters: Sequence[MeterRowLike] = ()) -> SiteRules:
    pue = pue_annual = annual = None
    quotas: list[QuotaRule] = []
    if site.kind == "data_centre":
        # the limit stored at registry load (storage.registry: the site's own, else by new-build
        # flag and size class), or derived here the same way when a row has none
        limit, source = site.pue_limit, getattr(site, "pue_limit_source", None)
        if limit is None or source is None:
            size = size_class(getattr(site, "standard_racks", None), getattr(site, "it_capacity_kw", None))
            limit, source = site_limit(limit, site.new_build, size)
        pue = PueRule(  # the operational warning on the site's short window
            limit=limit, limit_source=source,
            window=timedelta(hours=site.pue_window_hours) if site.pue_window_hours else PueRule().window,
        )
        pue_annual = PueAnnualRule(limit=limit, limit_source=source)  # compliance: the annual PUE
        annual = AnnualTceRule()
    else:
        quotas = _quota_rules(site, meters)
    budget = BudgetRule(budget_tce=site.energy_budget_tce) if site.energy_budget_tce else None
    return SiteRules(
        site_id=site.id, enterprise_id=site.enterprise_id,
        kind="data_centre" if site.kind == "data_centre" else "plant",
        pue=pue, pue_annual=pue_annual, annual_tce=annual, quotas=tuple(quotas), budget=budget,
    )


def meter_spec(m: MeterRowLike) -> MeterSpec:
    return MeterSpec(
        meter_id=m.id, site_id=m.site_id, carrier=m.carrier, unit=m.unit,
        role=m.role,  # type: ignore[arg-type]  # validated by the registry loader
        kind=m.kind,  # type: ignore[arg-type]
        multiplier=m.multiplier, rollover=m.rollover, coefficient=m.coefficient, product=m.product,
        interval_s=float(getattr(m, "interval_s", 900)),  # the registry's reading interval
    )


class SpecCache:
    """Meter specs by meter row identity: storage's RowCache hands back the same row object
    for an unchanged row, so an unchanged meter keeps its spec across registry reloads."""

    def __init__(self) -> None:
        self._specs: dict[int, tuple[MeterRowLike, MeterSpec]] = {}

    def specs(self, meters: Mapping[int, MeterRowLike]) -> dict[int, MeterSpec]:
        old, new = self._specs, {}
        for mid, m in meters.items():
            hit = old.get(mid)
            new[mid] = (m, hit[1] if hit is not None and hit[0] is m else meter_spec(m))
        self._specs = new
        return {mid: spec for mid, (_m, spec) in new.items()}


def build_registry(sites: Mapping[int, SiteRowLike], meters: Mapping[int, MeterRowLike],
                   cache: SpecCache | None = None) -> Registry:
    specs = (cache or SpecCache()).specs(meters)
    by_site: dict[int, dict[int, MeterSpec]] = {}
    rows_by_site: dict[int, list[MeterRowLike]] = {}
    for mid, spec in specs.items():
        by_site.setdefault(spec.site_id, {})[mid] = spec
        rows_by_site.setdefault(spec.site_id, []).append(meters[mid])
    return Registry(
        sites={sid: site_rules(s, rows_by_site.get(sid, ())) for sid, s in sites.items()},
        meters=specs,
        meters_by_site=by_site,
    )
