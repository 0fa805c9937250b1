"""One entry point evaluating every rule of a site: what the stream worker calls per batch.

``evaluate_site(rules, state, energy, specs, now)`` reads the site's streaming energy state
(``analytics.site_energy``) and returns the new rule state and the alert transitions.
``now`` is event time (the newest reading of the site), so backfilled history raises alerts at
the time they happened. Window rules are evaluated once per 15-minute edge: a call whose
``floor(now)`` has not advanced since the last one returns at once, which keeps the per-batch
cost near zero at high reading rates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from alerts import lifecycle
from alerts.lifecycle import Alert
from alerts.rules import pue as pue_rule
from alerts.rules.annual import AnnualTceRule
from alerts.rules.budget import BudgetRule
from alerts.rules.pue import PueRule
from alerts.rules.quality import QualityRule
from alerts.rules.quota import QuotaRule
from analytics.coefficients import ConversionError
from analytics.site_energy import MeterSpec, SiteEnergyState, floor_bucket, window_energy
from nxem.contract import AlertEvent, alert_key

SiteKind = Literal["data_centre", "plant"]
CONFIG_RULE = "meter_config_invalid"


@dataclass(frozen=True)
class SiteRules:
    """Every rule configured for one site (frozen; built from the registry)."""

    site_id: int
    enterprise_id: str
    kind: SiteKind
    pue: PueRule | None = None
    annual_tce: AnnualTceRule | None = None
    quotas: tuple[QuotaRule, ...] = ()
    budget: BudgetRule | None = None
    quality: QualityRule | None = field(default_factory=QualityRule)


@dataclass(frozen=True)
class SiteRulesState:
    """Active alerts by key, and how far evaluation has got (event time)."""

    active: Mapping[str, Alert] = field(default_factory=dict)
    last_end: datetime | None = None  # last 15-minute edge evaluated
    seen_flags: Mapping[tuple[int, str], datetime] = field(default_factory=dict)


def initial_state() -> SiteRulesState:
    return SiteRulesState()


def restore_state(active: list[AlertEvent]) -> SiteRulesState:
    """Rule state of a site rebuilt from its stored active alerts (transitions, any order)."""
    return SiteRulesState(active=lifecycle.restore(active))


class _Run:
    """Accumulates alert changes during one evaluation."""

    def __init__(self, active: Mapping[str, Alert]) -> None:
        self.active = dict(active)
        self.events: list[AlertEvent] = []

    def set(self, key: str, result: tuple[Alert | None, list[AlertEvent]]) -> None:
        alert, events = result
        if alert is None:
            self.active.pop(key, None)
        else:
            self.active[key] = alert
        self.events.extend(events)


def _by_role(specs: Mapping[int, MeterSpec], *roles: str) -> dict[int, MeterSpec]:
    return {m: s for m, s in specs.items() if s.role in roles}


def _pue(rules: SiteRules, rule: PueRule, run: _Run, energy: SiteEnergyState,
         specs: Mapping[int, MeterSpec], end: datetime, now: datetime) -> None:
    sub = _by_role(specs, "it_load", "total_facility")
    if not any(s.role == "it_load" for s in sub.values()) or not any(s.role == "total_facility" for s in sub.values()):
        return
    lasts = [energy.last_reading(m) for m in sub]
    if any(t is None for t in lasts):
        return
    data_end = min(end, floor_bucket(min(t for t in lasts if t is not None)))
    samples = []
    for e in pue_rule.sample_ends(rule, data_end):
        w = window_energy(energy, sub, e - rule.window, e)
        samples.append(pue_rule.PueSample(w.start, w.end, w.facility_kwh, w.it_kwh, w.coverage(sub)))
    key = alert_key("site", rules.site_id, pue_rule.RULE)
    inp = pue_rule.PueInput(rules.site_id, rules.enterprise_id, samples)
    run.set(key, pue_rule.evaluate(rule, run.active.get(key), inp, now))


def evaluate_site(
    rules: SiteRules, state: SiteRulesState, energy: SiteEnergyState, specs: Mapping[int, MeterSpec], now: datetime,
) -> tuple[SiteRulesState, list[AlertEvent]]:
    """Evaluate every rule of the site at event time ``now``; (new state, transitions)."""
    end = floor_bucket(now)
    if state.last_end is not None and end <= state.last_end:
        return state, []
    run = _Run(state.active)
    cfg_key = alert_key("site", rules.site_id, CONFIG_RULE)
    try:
        if rules.pue is not None:
            _pue(rules, rules.pue, run, energy, specs, end, now)
    except ConversionError as err:
        # a meter that cannot be converted is a configuration problem, raised as an alert
        run.set(cfg_key, lifecycle.trigger(
            run.active.get(cfg_key), source_kind="site", source_id=rules.site_id,
            enterprise_id=rules.enterprise_id, rule=CONFIG_RULE, severity="major", at=now,
            details={"error": str(err)}))
    else:
        run.set(cfg_key, lifecycle.clear(run.active.get(cfg_key), now))
    return SiteRulesState(active=run.active, last_end=end, seen_flags=state.seen_flags), run.events
