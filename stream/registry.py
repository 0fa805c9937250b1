"""Registry rows (storage) -> the domain's rule configuration and meter specs.

The only place that decides which rules a site gets: a data centre gets the PUE rule (its
own limit and window) and the annual 10 000 tce rule; a plant gets one quota rule per
product and indicator it declares (``alerts.rules.quota.site_quota_rules``, beside the rule:
the standard's corrections for the site's declared parameters, and the allocation of the
site's energy meters to its products, which the portal's unit-product view shares); a unit
with an energy budget gets the budget rule; every site gets the data-quality rule. Meter
specs: ``storage.read.registry.meter_spec``, electricity valued as NXEM_ELECTRICITY_BASIS says.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, Protocol

from alerts.engine import SiteRules
from alerts.rules.annual import AnnualTceRule
from alerts.rules.budget import BudgetRule
from alerts.rules.pue import PueAnnualRule, PueRule
from analytics.coefficients import CALORIFIC_VALUE, ElectricityValue
from analytics.pue import site_limit, size_class
from alerts.rules.quota import QuotaRule, site_quota_rules
from analytics.site_energy import MeterSpec
from storage.read.registry import meter_spec as meter_spec  # re-exported: the rules' spec of a row
from stream.sites import Registry



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
        quotas = list(site_quota_rules(site, meters))
    budget = BudgetRule(budget_tce=site.energy_budget_tce) if site.energy_budget_tce else None
    return SiteRules(
        site_id=site.id, enterprise_id=site.enterprise_id,
        kind="data_centre" if site.kind == "data_centre" else "plant",
        pue=pue, pue_annual=pue_annual, annual_tce=annual, quotas=tuple(quotas), budget=budget,
    )


class SpecCache:
    """Meter specs by meter row identity: storage's RowCache hands back the same row object
    for an unchanged row, so an unchanged meter keeps its spec across registry reloads."""

    def __init__(self, electricity: ElectricityValue = CALORIFIC_VALUE) -> None:
        self._specs: dict[int, tuple[MeterRowLike, MeterSpec]] = {}
        self._electricity = electricity

    def specs(self, meters: Mapping[int, MeterRowLike]) -> dict[int, MeterSpec]:
        old, new = self._specs, {}
        for mid, m in meters.items():
            hit = old.get(mid)
            new[mid] = (m, hit[1] if hit is not None and hit[0] is m else meter_spec(m, self._electricity))
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
