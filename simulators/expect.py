"""The alerts a correct system must (and must not) raise for a scenario, from its parameters.

Pure and independent of ``analytics``/``alerts``: the numbers come from the site models
(IT kWh × PUE; tonnes × kgce/t) and the reference tables copied into ``reference.py``. When a
figure is within ``MARGIN`` of its threshold the truth abstains (``not_evaluated``) instead of
guessing how the system's hysteresis resolves it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Final

from simulators.generate import site_quantities
from simulators.reference import COEFFICIENTS, ELECTRICITY_KGCE_PER_KWH, KEY_UNIT_TCE_PER_YEAR, QUOTAS
from simulators.scenario import Enterprise, Scenario, Site
from simulators.sites import CST, DataCentreSim, PlantSim

MARGIN: Final = 0.005  # relative distance to a threshold below which the truth abstains
SILENT_INTERVALS: Final = 4  # a meter silent this many intervals in a row must raise meter_silent
COMPLETENESS_MIN: Final = 0.9  # national monitoring rule: ≥ 90 % of expected points per day

# Rule names used by the ground truth; the alerts package may name its rules differently.
PUE_ABOVE_LIMIT: Final = "pue_above_limit"
DC_ANNUAL_TCE: Final = "dc_annual_tce"
QUOTA_EXCEEDED: Final = "quota_exceeded"
ENERGY_BUDGET: Final = "energy_budget_exceeded"
METER_SILENT: Final = "meter_silent"
COUNTER_BACKWARDS: Final = "counter_backwards"
VALUE_OUT_OF_RANGE: Final = "value_out_of_range"
COMPLETENESS_LOW: Final = "completeness_low"


@dataclass(frozen=True)
class ExpectedAlert:
    rule: str
    enterprise: str
    site: str
    period_start: str  # ISO 8601, UTC
    period_end: str
    value: float
    threshold: float
    unit: str
    meter: str | None = None
    basis: str = ""  # the arithmetic, so a reader can check it


def _iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).isoformat()


def _daily(sc: Scenario, e: Enterprise, s: Site) -> dict[date, dict[str, float]]:
    """Site quantities per local (Asia/Shanghai) day; an interval belongs to its middle's day."""
    sim = sc.simulation
    days: dict[date, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for k in range(1, sim.ticks + 1):
        tick = sim.start + k * sim.interval
        day = (tick - sim.interval / 2).astimezone(CST).date()
        for key, v in site_quantities(e, s, tick, sim.interval, sim.start).items():
            days[day][key] += v
    return days


def _day_bounds(d0: date, d1: date, sc: Scenario) -> tuple[str, str]:
    lo = max(datetime.combine(d0, time(), CST), sc.simulation.start)
    hi = min(datetime.combine(d1 + timedelta(days=1), time(), CST), sc.simulation.end)
    return _iso(lo), _iso(hi)


def _judge(value: float, threshold: float, alert: ExpectedAlert, alerts: list[ExpectedAlert],
           quiet: list[ExpectedAlert], skipped: list[str], quiet_value: float | None = None) -> None:
    """Alert above threshold+margin, quiet when ``quiet_value`` (default value) is below it-margin."""
    qv = value if quiet_value is None else quiet_value
    if value > threshold * (1 + MARGIN):
        alerts.append(alert)
    elif qv < threshold * (1 - MARGIN):
        quiet.append(alert)
    else:
        skipped.append(f"{alert.rule} {alert.site}: {value:.4f} too close to {threshold}")


def _pue(sc: Scenario, e: Enterprise, s: Site, m: DataCentreSim, days: dict[date, dict[str, float]],
         out: tuple[list[ExpectedAlert], list[ExpectedAlert], list[str]]) -> None:
    if s.pue_limit is None:
        return
    keys = sorted(d for d in days if days[d]["it"] > 0)
    if not keys:
        out[2].append(f"{PUE_ABOVE_LIMIT} {s.code}: no IT energy")
        return
    window = max(1, round(s.pue_window_hours / 24))
    spans = [(keys[0], keys[-1])] if len(keys) <= window else [
        (keys[i], keys[i + window - 1]) for i in range(len(keys) - window + 1)]

    def ratio(d0: date, d1: date) -> float:
        sel = [days[d] for d in keys if d0 <= d <= d1]
        return sum(x["facility"] for x in sel) / sum(x["it"] for x in sel)

    worst = max(spans, key=lambda p: ratio(*p))
    value = round(ratio(*worst), 6)
    worst_day = max(ratio(d, d) for d in keys)  # a shorter window must not cross either
    start, end = _day_bounds(*worst, sc) if len(spans) > 1 else (_iso(sc.simulation.start), _iso(sc.simulation.end))
    basis = ("PUE = facility kWh / IT kWh over the window" if m.pue is None
             else f"fixed PUE {m.pue}: facility = IT kWh × {m.pue}")
    _judge(value, s.pue_limit, ExpectedAlert(PUE_ABOVE_LIMIT, e.id, s.code, start, end, value, s.pue_limit,
                                             "ratio", basis=basis), *out, quiet_value=max(value, worst_day))


def _annual(sc: Scenario, e: Enterprise, s: Site, days: dict[date, dict[str, float]], tce_of: str,
            out: tuple[list[ExpectedAlert], list[ExpectedAlert], list[str]]) -> None:
    keys = sorted(days)
    tce_day = {d: _tce(days[d]) for d in keys}
    peak_year = max(tce_day.values(), default=0.0) * 365
    if len(keys) >= 365:
        last = keys[-365:]
        value = round(sum(tce_day[d] for d in last), 3)
        start, end = _day_bounds(last[0], last[-1], sc)
        _judge(value, KEY_UNIT_TCE_PER_YEAR, ExpectedAlert(
            DC_ANNUAL_TCE, e.id, s.code, start, end, value, KEY_UNIT_TCE_PER_YEAR, "tce",
            basis=f"Σ {tce_of} over the last 365 days"), *out, quiet_value=max(value, peak_year))
    elif peak_year < KEY_UNIT_TCE_PER_YEAR * (1 - MARGIN):
        out[1].append(ExpectedAlert(DC_ANNUAL_TCE, e.id, s.code, _iso(sc.simulation.start),
                                    _iso(sc.simulation.end), round(peak_year, 3), KEY_UNIT_TCE_PER_YEAR, "tce",
                                    basis=f"highest day × 365 of {tce_of}: cannot reach the threshold"))
    else:
        out[2].append(f"{DC_ANNUAL_TCE} {s.code}: run shorter than a year and could reach the threshold")


def _tce(q: Mapping[str, float]) -> float:
    """Comprehensive energy of a day's quantities, tce (net of exports; GB/T 2589 calorific)."""
    if "facility" in q:
        return q["facility"] * ELECTRICITY_KGCE_PER_KWH / 1000
    kgce = 0.0
    for key, v in q.items():
        if ":" in key:
            sign = 1.0 if key.startswith("consumed:") else -1.0
            kgce += sign * v * COEFFICIENTS[key.split(":", 1)[1]][1]
    return kgce / 1000


def _quota(sc: Scenario, e: Enterprise, s: Site, m: PlantSim,
           out: tuple[list[ExpectedAlert], list[ExpectedAlert], list[str]]) -> None:
    q = QUOTAS[m.product]
    threshold = q.level2_kgce_per_t if s.new_build else q.level3_kgce_per_t
    level = "2级 (new build)" if s.new_build else "3级 (limit)"
    _judge(m.specific, threshold, ExpectedAlert(
        QUOTA_EXCEEDED, e.id, s.code, _iso(sc.simulation.start), _iso(sc.simulation.end), m.specific, threshold,
        "kgce/t", basis=f"{m.product} at {m.specific} kgce/t vs {q.standard} {level} {threshold}"), *out)


def _faults(sc: Scenario, e: Enterprise, s: Site, per_day: Mapping[tuple[str, str], Mapping[date, int]],
            alerts: list[ExpectedAlert]) -> None:
    sim = sc.simulation
    for g in s.gateways:
        for f in g.faults:
            lo, hi = max(f.start, sim.start), min(f.end, sim.end + sim.interval)
            ticks = sum(1 for k in range(1, sim.ticks + 1) if lo <= sim.start + k * sim.interval < hi)
            meters = [m for m in g.meters if f.meter is None or f.meter == m.code]
            for m in meters:
                a = None
                if f.kind == "offline" and f.probability >= 1 and ticks >= SILENT_INTERVALS:
                    a = ExpectedAlert(METER_SILENT, e.id, s.code, _iso(lo), _iso(hi), float(ticks),
                                      float(SILENT_INTERVALS), "intervals", m.code, "offline window")
                elif f.kind == "counter_reset" and ticks > 0 and m.kind == "register":
                    a = ExpectedAlert(COUNTER_BACKWARDS, e.id, s.code, _iso(lo), _iso(lo + sim.interval), 0.0, 0.0,
                                      m.unit, m.code, "register reset to 0")
                elif f.kind == "negative" and ticks > 0:
                    a = ExpectedAlert(VALUE_OUT_OF_RANGE, e.id, s.code, _iso(lo), _iso(hi), -1.0, 0.0, m.unit, m.code,
                                      "negative readings")
                if a is not None:
                    alerts.append(a)
    for g in s.gateways:
        for m in g.meters:
            per_tick = timedelta(days=1) / (m.interval or sim.interval)  # readings a day at its own interval
            counts = per_day.get((g.id, m.code), {})
            d = sim.start.astimezone(CST).date()
            while datetime.combine(d + timedelta(days=1), time(), CST) <= sim.end:
                if datetime.combine(d, time(), CST) >= sim.start:
                    share = counts.get(d, 0) / per_tick
                    if share < COMPLETENESS_MIN:
                        b0, b1 = _day_bounds(d, d, sc)
                        alerts.append(ExpectedAlert(COMPLETENESS_LOW, e.id, s.code, b0, b1, round(share, 4),
                                                    COMPLETENESS_MIN, "share", m.code,
                                                    f"{counts.get(d, 0)} of {per_tick:.0f} readings on {d}"))
                d += timedelta(days=1)


def expected_alerts(
    sc: Scenario, per_day: Mapping[tuple[str, str], Mapping[date, int]],
) -> tuple[list[ExpectedAlert], list[ExpectedAlert], list[str]]:
    """(must raise, must not raise, not judged) for the whole scenario."""
    alerts: list[ExpectedAlert] = []
    quiet: list[ExpectedAlert] = []
    skipped: list[str] = []
    out = (alerts, quiet, skipped)
    for e in sc.enterprises:
        for s in e.sites:
            if s.model is not None:
                days = _daily(sc, e, s)
                if isinstance(s.model, DataCentreSim):
                    _pue(sc, e, s, s.model, days, out)
                    _annual(sc, e, s, days, "facility kWh × 0.1229 kgce/kWh", out)
                else:
                    _quota(sc, e, s, s.model, out)
                if s.energy_budget_tce is not None:
                    total = sum(_tce(q) for q in days.values())
                    run_days = (sc.simulation.end - sc.simulation.start) / timedelta(days=1)
                    projected = total * 365 / max(run_days, 1e-9)
                    _judge(total, s.energy_budget_tce, ExpectedAlert(
                        ENERGY_BUDGET, e.id, s.code, _iso(sc.simulation.start), _iso(sc.simulation.end),
                        round(total, 3), s.energy_budget_tce, "tce", basis="Σ tce over the run"),
                        *out, quiet_value=max(total, projected))
            _faults(sc, e, s, per_day, alerts)
    return alerts, quiet, skipped
