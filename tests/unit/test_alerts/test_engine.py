from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import pytest

from alerts import engine
from alerts.rules.annual import AnnualTceRule
from alerts.rules.budget import BudgetRule
from alerts.rules.pue import PueRule
from alerts.rules.quota import quota_rules
from analytics.site_energy import MeterSpec, SiteEnergyState, apply_readings, initial_state
from nxem.contract import AlertEvent

ENT = "91640500MA76L8XK3Q"
T0 = datetime(2025, 12, 31, 16, 0, tzinfo=UTC)  # 2026-01-01 00:00 Asia/Shanghai
Q = timedelta(minutes=15)
DC = {1: MeterSpec(1, 5, "electricity", "kWh", "it_load", "register", rollover=1e9),
      2: MeterSpec(2, 5, "electricity", "kWh", "total_facility", "register", rollover=1e9)}


def dc_rows(it_kw: float, pue: float, n: int, step: timedelta = Q, start: datetime = T0) -> list[tuple[int, datetime, float]]:
    h = step.total_seconds() / 3600
    return [r for k in range(n + 1) for r in ((1, start + k * step, it_kw * h * k), (2, start + k * step, it_kw * h * k * pue))]


def drive(rules: engine.SiteRules, specs: Mapping[int, MeterSpec], batches: list[list[tuple[int, datetime, float]]],
          energy: SiteEnergyState | None = None, state: engine.SiteRulesState | None = None,
          ) -> tuple[engine.SiteRulesState, SiteEnergyState, list[AlertEvent]]:
    energy = energy or initial_state(timedelta(days=400))
    state = state or engine.initial_state()
    out: list[AlertEvent] = []
    for rows in batches:
        energy, _ = apply_readings(energy, specs, rows)
        state, ev = engine.evaluate_site(rules, state, energy, specs, max(r[1] for r in rows))
        out += ev
    return state, energy, out


def dc_rules(**kw: object) -> engine.SiteRules:
    return engine.SiteRules(5, ENT, "data_centre", pue=PueRule(window=timedelta(hours=1)), **kw)  # type: ignore[arg-type]


def test_backfilled_hot_data_centre_opens_one_pue_alert_in_a_single_batch() -> None:
    # 2 000 kW IT at PUE 1.3 for 6 h: facility 2 600 kWh / IT 2 000 kWh per hour = 1.3 > 1.2
    _, _, ev = drive(dc_rules(), DC, [dc_rows(2000, 1.3, 24)])
    assert [(e.rule, e.kind, e.value, e.threshold) for e in ev] == [("pue_above_limit", "opened", 1.3, 1.2)]
    assert ev[0].at == T0 + 24 * Q and ev[0].source_kind == "site" and ev[0].source_id == 5


def test_cool_data_centre_raises_nothing_and_live_hot_one_opens_once() -> None:
    assert drive(dc_rules(), DC, [dc_rows(2000, 1.1, 24)])[2] == []
    rows = dc_rows(2000, 1.3, 24)
    _, _, ev = drive(dc_rules(), DC, [rows[i:i + 2] for i in range(0, len(rows), 2)])
    assert [e.kind for e in ev] == ["opened"]
    # min coverage 1 h window + min duration 1 h: first possible at T0 + 2 h
    assert ev[0].at == T0 + timedelta(hours=2)


def test_facility_reading_ahead_of_its_it_partner_does_not_spike() -> None:
    rows = dc_rows(2000, 1.1, 24)
    last_fac = rows.pop()  # IT reading of the last quarter-hour still in flight …
    rows.pop()
    rows.append(last_fac)  # … but the facility reading already arrived
    assert drive(dc_rules(), DC, [rows])[2] == []


def test_evaluation_is_skipped_inside_the_same_bucket() -> None:
    state, energy, _ = drive(dc_rules(), DC, [dc_rows(2000, 1.3, 24)])
    again, ev = engine.evaluate_site(dc_rules(), state, energy, DC, T0 + 24 * Q + timedelta(minutes=5))
    assert again is state and ev == []


def test_restart_restores_the_active_alert_without_reopening_it() -> None:
    rows = dc_rows(2000, 1.3, 28)
    state, energy, ev = drive(dc_rules(), DC, [rows[:50]])
    assert [e.kind for e in ev] == ["opened"]
    restored = engine.restore_state(ev)
    _, _, ev2 = drive(dc_rules(), DC, [rows[50:]], energy=energy, state=restored)
    assert ev2 == []


def test_ten_megawatt_data_centre_crosses_10000_tce() -> None:
    # 10 MW IT × 24 h × PUE 1.2 = 288 000 kWh/day facility; × 0.1229 = 35 395.2 kgce/day
    # × 365 = 12 919 248 kgce ≈ 12 919 tce/yr ≥ 10 000 tce
    rules = engine.SiteRules(5, ENT, "data_centre", annual_tce=AnnualTceRule(), quality=None)
    day = timedelta(days=1)
    rows = dc_rows(10_000, 1.2, 366, step=day)
    _, _, ev = drive(rules, DC, [rows[i:i + 2] for i in range(0, len(rows), 2)])
    kinds = [(e.kind, e.severity) for e in ev]
    assert kinds[0] == ("opened", "warning")  # projected crossing within the year
    first = ev[0]
    # after the first 30 days: 30 × 35.3952 = 1 061.856 tce; (10 000 − that) / 35.3952 per day
    # = 252.5 more days -> crossing ≈ day 282.5 after the start
    assert first.details["projected_date"].startswith((T0 + timedelta(days=282.5)).date().isoformat()[:7])
    assert ("updated", "major") in kinds
    major = next(e for e in ev if e.severity == "major")
    assert major.value is not None and major.value >= 10_000
    final = [e for e in ev if e.severity == "major"][-1]
    assert final.threshold == 10_000
    # full year held: 365 days × 35.3952 = 12 919.248 tce
    assert drive(rules, DC, [rows])[2][-1].value == pytest.approx(12_919.248, rel=1e-6)


def carbide_plant(kgce_per_t: float, t_per_day: float, days: int, min_output: float = 1.0,
                  new_build: bool = False) -> tuple[engine.SiteRules, dict[int, MeterSpec], list[list[tuple[int, datetime, float]]]]:
    specs = {10: MeterSpec(10, 6, "electricity", "kWh", "consumed", "interval", interval_s=3600),
             11: MeterSpec(11, 6, "product", "t", "product_output", "interval", product="calcium_carbide", interval_s=3600)}
    rules = engine.SiteRules(6, ENT, "plant", quotas=quota_rules("calcium_carbide", new_build, min_output), quality=None)
    kwh_per_h = kgce_per_t * t_per_day / 0.1229 / 24
    batches = [[(10, T0 + timedelta(hours=h), kwh_per_h), (11, T0 + timedelta(hours=h), t_per_day / 24)]
               for h in range(1, 24 * days + 2)]
    return rules, specs, batches


def test_carbide_plant_at_960_kgce_per_t_breaches_gb21343_level3() -> None:
    # 100 t/day at 960 kgce/t: 96 000 kgce/day = 781 122.86 kWh/day at 0.1229 kgce/kWh; 960 > 940
    rules, specs, batches = carbide_plant(960, 100, 2)
    _, _, ev = drive(rules, specs, batches)
    opened = {e.rule: e for e in ev if e.kind == "opened"}
    day = opened["quota_exceeded.calcium_carbide.kgce_per_t.day"]
    assert day.value == pytest.approx(960.0) and day.threshold == 940
    assert day.details["local_date_from"] == "2026-01-01" and day.details["standard"].startswith("GB 21343-2023")
    assert "quota_exceeded.calcium_carbide.kgce_per_t.month" in opened
    # furnace electricity 781 122.86 / 100 = 7 811 kWh/t > 3 200 kWh/t (单位产品电炉电耗 3级) as well
    assert "quota_exceeded.calcium_carbide.kwh_per_t.day" in opened


def test_compliant_and_new_build_carbide_plants() -> None:
    rules, specs, batches = carbide_plant(900, 100, 2)
    assert not [e for e in drive(rules, specs, batches)[2] if "kgce_per_t" in e.rule]
    # 900 kgce/t passes 3级 940 but breaches 2级 823 for a new build
    rules, specs, batches = carbide_plant(900, 100, 2, new_build=True)
    ev = [e for e in drive(rules, specs, batches)[2] if "kgce_per_t.day" in e.rule]
    assert ev and ev[0].threshold == 823


def test_quota_minimum_output_guard() -> None:
    # 0.5 t/day at 960 kgce/t is not judged when the guard is 1 t
    rules, specs, batches = carbide_plant(960, 0.5, 2, min_output=1.0)
    assert drive(rules, specs, batches)[2] == []


def test_budget_projection_and_excess() -> None:
    # 10 MW IT × 1.2 -> 35.3952 tce/day; a 5 000 tce budget: projected ≈ 12 919 > 5 000 -> warning
    rules = engine.SiteRules(5, ENT, "data_centre", budget=BudgetRule(budget_tce=5000), quality=None)
    rows = dc_rows(10_000, 1.2, 160, step=timedelta(days=1))
    _, _, ev = drive(rules, DC, [rows[i:i + 2] for i in range(0, len(rows), 2)])
    assert (ev[0].kind, ev[0].severity) == ("opened", "warning")
    # year-to-date passes 5 000 tce after 5 000 / 35.3952 = 141.3 days -> major
    major = next(e for e in ev if e.severity == "major")
    assert major.at.date() == (T0 + timedelta(days=142)).date()


def test_data_quality_alerts() -> None:
    specs = {**DC, 3: MeterSpec(3, 5, "electricity", "kWh", "consumed", "interval")}
    rules = engine.SiteRules(5, ENT, "data_centre")
    rows = dc_rows(100, 1.1, 96 * 3)
    rows = [r for r in rows if not (r[0] == 2 and T0 + timedelta(hours=30) < r[1] <= T0 + timedelta(hours=32))]
    rows += [(3, T0 + k * Q, 1.0) for k in range(1, 96 * 3) if k % 2 == 0]  # half its readings: completeness 50 %
    rows.sort(key=lambda r: r[1])
    # register 1 drops by 3 000 kWh at T0 + 40 h (a reset: not a plausible rollover of 1e9)
    rows = [(m, t, v if not (m == 1 and t >= T0 + timedelta(hours=40)) else v - 3000.0) for m, t, v in rows]
    batches = [[r for r in rows if r[1] == t] for t in sorted({r[1] for r in rows})]
    _, _, ev = drive(rules, specs, batches)
    got = {(e.source_id, e.rule, e.kind) for e in ev}
    assert (2, "meter_silent", "opened") in got and (2, "meter_silent", "cleared") in got
    assert (1, "counter_backwards", "opened") in got
    assert (3, "completeness_low", "opened") in got
    assert not [e for e in ev if e.rule == "completeness_low" and e.source_id != 3]
    comp = next(e for e in ev if e.rule == "completeness_low" and e.source_id == 3)
    assert comp.value == pytest.approx(0.5) and comp.details["local_date"] == "2026-01-02"
    assert all(e.source_kind == "meter" for e in ev)


def test_unconvertible_meter_becomes_a_config_alert_not_a_crash() -> None:
    specs = {7: MeterSpec(7, 5, "natural_gas", "m3", "consumed", "interval")}  # no gas coefficient
    rules = engine.SiteRules(5, ENT, "plant", annual_tce=AnnualTceRule())
    _, _, ev = drive(rules, specs, [[(7, T0 + Q, 3.0)], [(7, T0 + 2 * Q, 3.0)]])
    assert [(e.rule, e.kind) for e in ev] == [("meter_config_invalid", "opened")]
    assert "explicit coefficient" in ev[0].details["error"]


def test_evaluation_waits_for_the_next_15_minute_edge() -> None:
    # the early return (now within 15 min of the last evaluated edge) must not skip an edge
    # 2 000 kW IT at PUE 1.3 in 1-minute steps: the alert opens at the first edge where a full
    # hour window and the 1 h minimum duration are met (T0 + 2 h), not a minute later
    rows = dc_rows(2000, 1.3, 180, step=timedelta(minutes=1))
    _, _, ev = drive(dc_rules(), DC, [rows[i:i + 2] for i in range(0, len(rows), 2)])
    assert [(e.kind, e.at) for e in ev] == [("opened", T0 + timedelta(hours=2))]
