"""One entry point evaluating every rule of a site: what the stream worker calls per batch.

``evaluate_site(rules, state, energy, specs, now)`` reads the site's streaming energy state
(``analytics.site_energy``) and returns the new rule state and the alert transitions.
``now`` is event time (the newest reading of the site), so backfilled history raises alerts at
the time they happened. Cost control: nothing is evaluated until ``floor(now)`` crosses a new
15-minute edge (PUE, silent meters, flagged readings), and the day-level rules (annual tce,
budget, quotas, completeness) run once per new local (Asia/Shanghai) day. Every window ends
on a 15-minute edge, so late readings inside the current bucket are still counted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from alerts import lifecycle
from alerts.lifecycle import Alert, Run
from alerts.rules import annual, budget, quality, quota
from alerts.rules import pue as pue_rule
from alerts.rules.annual import AnnualTceRule
from alerts.rules.budget import BudgetRule
from alerts.rules.pue import PueAnnualRule, PueRule
from alerts.rules.quality import QualityRule
from alerts.rules.quota import QuotaRule
from analytics.coefficients import ConversionError
from analytics.periods import local_start
from analytics.site_energy import (
    BUCKET_S,
    MeterSpec,
    SiteEnergyState,
    floor_bucket,
    validate_spec,
)
from nxem.contract import AlertEvent, alert_key

SiteKind = Literal["data_centre", "plant"]
CONFIG_RULE = "meter_config_invalid"
_BUCKET = timedelta(seconds=BUCKET_S)


@dataclass(frozen=True)
class SiteRules:
    """Every rule configured for one site (frozen; built from the registry)."""

    site_id: int
    enterprise_id: str
    kind: SiteKind
    pue: PueRule | None = None  # operational warning (short window)
    pue_annual: PueAnnualRule | None = None  # compliance (annual PUE)
    annual_tce: AnnualTceRule | None = None
    quotas: tuple[QuotaRule, ...] = ()
    budget: BudgetRule | None = None
    quality: QualityRule | None = field(default_factory=QualityRule)


@dataclass(frozen=True)
class SiteRulesState:
    """Active alerts by key, and how far evaluation has got (event time)."""

    active: Mapping[str, Alert] = field(default_factory=dict)
    last_end: datetime | None = None  # last 15-minute edge evaluated


def initial_state() -> SiteRulesState:
    return SiteRulesState()


def restore_state(active: list[AlertEvent], newest_stored: datetime | None = None) -> SiteRulesState:
    """Rule state of a site rebuilt from its stored active alerts (transitions, any order) and
    the time of its newest stored reading.

    The worker stores a poll's readings and the transitions evaluated from them in one
    transaction, and evaluation never goes back in event time, so a stored reading has been
    evaluated: evaluation resumes after ``floor_bucket(newest_stored)``, exactly where it had
    got (``last_end``). Readings at or before it -- a redelivered poll, a topic replayed from the
    start -- are applied to the energy state (which recognises them) but evaluated again at no
    edge, so they add no transition: not an ``updated`` compared with the latest value, not a
    clear or reopen at an old time. ``None`` (no stored reading) starts from scratch."""
    last_end = floor_bucket(newest_stored) if newest_stored is not None else None
    return SiteRulesState(active=lifecycle.restore(active), last_end=last_end)


def _pue(rules: SiteRules, rule: PueRule, run: Run, energy: SiteEnergyState,
         specs: Mapping[int, MeterSpec], end: datetime, now: datetime) -> None:
    # the rule owns its inputs (which meters, the windows, the samples): alerts.rules.pue
    inp = pue_rule.gather(rule, rules.site_id, rules.enterprise_id, energy, specs, end)
    if inp is not None:
        key = alert_key("site", rules.site_id, pue_rule.RULE)
        run.set(key, pue_rule.evaluate(rule, run.get(key), inp, now))


def _pue_annual(rules: SiteRules, rule: PueAnnualRule, run: Run, energy: SiteEnergyState,
                specs: Mapping[int, MeterSpec], day_end: datetime, now: datetime) -> None:
    inp = pue_rule.gather_annual(rule, rules.site_id, rules.enterprise_id, energy, specs, day_end)
    if inp is not None:
        key = alert_key("site", rules.site_id, pue_rule.ANNUAL_RULE)
        run.set(key, pue_rule.evaluate_annual(rule, run.get(key), inp, now))


def _annual(rules: SiteRules, rule: AnnualTceRule, run: Run, energy: SiteEnergyState,
            specs: Mapping[int, MeterSpec], day_end: datetime, now: datetime) -> None:
    # the rule owns its inputs (calendar years, rolling 12 months, trend): alerts.rules.annual
    inp = annual.gather(rule, rules.site_id, rules.enterprise_id, energy, specs, day_end)
    if inp is not None:
        key = alert_key("site", rules.site_id, annual.RULE)
        run.set(key, annual.evaluate(rule, run.get(key), inp, now))


def _budget(rules: SiteRules, rule: BudgetRule, run: Run, energy: SiteEnergyState,
            specs: Mapping[int, MeterSpec], day_end: datetime, now: datetime) -> None:
    inp = budget.gather(rule, rules.site_id, rules.enterprise_id, energy, specs, day_end)
    if inp is not None:
        key = alert_key("site", rules.site_id, budget.RULE)
        run.set(key, budget.evaluate(rule, run.get(key), inp, now))


def _quotas(rules: SiteRules, rule: tuple[QuotaRule, ...], run: Run, energy: SiteEnergyState,
            specs: Mapping[int, MeterSpec], day_end: datetime, now: datetime) -> None:
    # the quota rule owns its inputs (which meters are each product's, the output, the windows)
    quota.evaluate_site(rule, run, energy, specs, day_end, now, site_id=rules.site_id,
                        enterprise_id=rules.enterprise_id)


def _quality_bucket(rules: SiteRules, rule: QualityRule, run: Run, energy: SiteEnergyState,
                    specs: Mapping[int, MeterSpec], end: datetime, now: datetime) -> None:
    for meter_id, spec in specs.items():
        key = alert_key("meter", meter_id, quality.METER_SILENT)
        run.set(key, quality.silent(rule, run.get(key), meter_id=meter_id, enterprise_id=rules.enterprise_id,
                                    last=energy.last_reading(meter_id), interval_s=spec.interval_s, now=now))
        for kind, name in quality.FLAG_RULES.items():
            key = alert_key("meter", meter_id, name)
            ev = energy.flags.get((meter_id, kind))
            if ev is None and key not in run.active:
                continue
            run.set(key, quality.flagged(rule, run.get(key), rule_name=name, enterprise_id=rules.enterprise_id,
                                         event=ev, now=now))


def _completeness(rules: SiteRules, rule: QualityRule, run: Run, energy: SiteEnergyState,
                  specs: Mapping[int, MeterSpec], day_end: datetime, now: datetime) -> None:
    day_start = day_end - timedelta(days=1)
    for meter_id, spec in specs.items():
        readings = quality.day_readings(energy, meter_id, spec, day_end)
        if readings is None:
            continue  # the meter's first (partial) day is not judged
        key = alert_key("meter", meter_id, quality.COMPLETENESS_LOW)
        run.set(key, quality.completeness(rule, run.get(key), meter_id=meter_id, enterprise_id=rules.enterprise_id,
                                          day_start=day_start, readings=readings, interval_s=spec.interval_s,
                                          now=now))


#: The engine is this table: (the ``SiteRules`` field holding a rule's config, how it is run).
#: Each runner is a few lines handing the rule module's own ``gather`` (its inputs: which meters,
#: which window) to its ``evaluate``; a site without that config (None or empty) skips it.
#: ``PER_BUCKET`` rules run at every 15-minute edge (``at`` = the edge), ``PER_DAY`` rules once per
#: new local day (``at`` = the local midnight that closed the day).
_Runner = Callable[[SiteRules, Any, Run, SiteEnergyState, Mapping[int, MeterSpec], datetime, datetime], None]
PER_BUCKET: Final[tuple[tuple[str, _Runner], ...]] = (
    ("pue", _pue),
    ("quality", _quality_bucket),
)
PER_DAY: Final[tuple[tuple[str, _Runner], ...]] = (
    ("pue_annual", _pue_annual),
    ("annual_tce", _annual),
    ("budget", _budget),
    ("quotas", _quotas),
    ("quality", _completeness),
)


def _valid(specs: Mapping[int, MeterSpec]) -> tuple[dict[int, MeterSpec], dict[str, str]]:
    """Specs that convert, and the reason for each that does not (cached, cheap per call)."""
    ok: dict[int, MeterSpec] = {}
    bad: dict[str, str] = {}
    for m, s in specs.items():
        try:
            validate_spec(s)
        except ConversionError as err:
            bad[str(m)] = f"meter {m}: {err}"
        else:
            ok[m] = s
    return ok, bad


def evaluate_site(
    rules: SiteRules, state: SiteRulesState, energy: SiteEnergyState, specs: Mapping[int, MeterSpec], now: datetime,
) -> tuple[SiteRulesState, list[AlertEvent]]:
    """Evaluate every rule of the site at event time ``now``; (new state, transitions).

    A meter spec that cannot be converted (unknown carrier/unit, gas without a coefficient)
    raises no exception here: it is left out of every rule and becomes one
    ``meter_config_invalid`` site alert naming the meters.
    """
    # runs once per site per poll: while ``now`` is inside the bucket after the last evaluated
    # edge there is nothing to do, decided without epoch conversions (last_end is an edge)
    if state.last_end is not None and now.tzinfo is not None and now - state.last_end < _BUCKET:
        return state, []
    end = floor_bucket(now)
    if state.last_end is not None and end <= state.last_end:
        return state, []
    run = Run(state.active)
    day_end = local_start(end, "day")
    new_day = state.last_end is None or local_start(state.last_end, "day") < day_end
    cfg_key = alert_key("site", rules.site_id, CONFIG_RULE)
    specs, invalid = _valid(specs)
    try:
        for table, at in ((PER_BUCKET, end), (PER_DAY if new_day else (), day_end)):
            for field_name, runner in table:
                config = getattr(rules, field_name)
                if config:
                    runner(rules, config, run, energy, specs, at, now)
    except ConversionError as err:  # defensive: specs were validated above
        invalid["site"] = str(err)
    if invalid:
        run.set(cfg_key, lifecycle.trigger(
            run.get(cfg_key), source_kind="site", source_id=rules.site_id, enterprise_id=rules.enterprise_id,
            rule=CONFIG_RULE, severity="major", at=now, value=float(len(invalid)),
            details={"error": "; ".join(invalid.values()), "meters": sorted(invalid)},
            policy=lifecycle.UpdatePolicy(min_relative_step=0.0)))
    else:
        run.set(cfg_key, lifecycle.clear(run.get(cfg_key), now))
    return SiteRulesState(active=run.active, last_end=end), run.events


def evaluate_silence(
    rules: SiteRules, state: SiteRulesState, energy: SiteEnergyState, specs: Mapping[int, MeterSpec],
    now: datetime,
) -> tuple[SiteRulesState, list[AlertEvent]]:
    """Process-time check for meters (or whole sites) that went silent: ``now`` is the wall
    clock passed in by the caller, e.g. once a minute for every site it holds."""
    if rules.quality is None:
        return state, []
    run = Run(state.active)
    for meter_id, spec in specs.items():
        key = alert_key("meter", meter_id, quality.METER_SILENT)
        run.set(key, quality.silent(rules.quality, run.get(key), meter_id=meter_id,
                                    enterprise_id=rules.enterprise_id, last=energy.last_reading(meter_id),
                                    interval_s=spec.interval_s, now=now))
    return SiteRulesState(active=run.active, last_end=state.last_end), run.events
