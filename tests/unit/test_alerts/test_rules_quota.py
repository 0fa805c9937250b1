"""Quota rule: each product is charged its own energy, an ambiguous site is not judged, on the
limit is compliant, corrections move the limit as the standard says. Numbers are worked by hand
(GB/T 2589: electricity 0.1229 kgce/kWh, coke 0.9714 kgce/kg, raw coal 0.7143 kgce/kg, heat
0.03412 kgce/MJ)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

import pytest

from alerts import lifecycle
from alerts.lifecycle import Alert, Run
from alerts.rules import quota
from alerts.rules.quota import QuotaInput, QuotaRule, quota_rules
from analytics.quotas import Allocation, MeterUse, QuotaParams, allocate, find
from analytics.site_energy import MeterSpec, SiteEnergyState, apply_readings, initial_state
from nxem.contract import AlertEvent

ENT = "91640181MA76L8XK30"
T0 = datetime(2025, 12, 31, 16, 0, tzinfo=UTC)  # 2026-01-01 00:00 Asia/Shanghai
DAY_END = T0 + timedelta(days=1)  # 2026-01-02 00:00 local: the first day is complete
SITE = 7


def spec(mid: int, carrier: str, unit: str, role: str, product: str | None = None) -> MeterSpec:
    coef = "natural_gas_gasfield" if carrier == "natural_gas" else None
    return MeterSpec(mid, SITE, carrier, unit, role, "interval", coefficient=coef, product=product,  # type: ignore[arg-type]
                     interval_s=3600)


def hourly(daily: Mapping[int, float], days: int = 1) -> list[tuple[int, datetime, float]]:
    """Each meter's daily quantity as 24 hourly interval readings a day (ending on the hour)."""
    return [(m, T0 + timedelta(hours=h), q / 24) for h in range(1, 24 * days + 1) for m, q in daily.items()]


def energy_of(specs: Mapping[int, MeterSpec], daily: Mapping[int, float], days: int = 1) -> SiteEnergyState:
    state, events = apply_readings(initial_state(timedelta(days=40)), specs, hourly(daily, days))
    assert events == []
    return state


def day_inputs(rules: Sequence[QuotaRule], specs: Mapping[int, MeterSpec], energy: SiteEnergyState,
               alloc: Allocation | None = None) -> dict[str, QuotaInput]:
    alloc = alloc or quota.allocation_from_specs(SITE, rules, specs)
    got = quota.site_inputs(rules, alloc, energy, specs, DAY_END, site_id=SITE, enterprise_id=ENT)
    return {r.rule_name(i.period): i for r, i in got if i.period == "day"}


def run_site(rules: Sequence[QuotaRule], specs: Mapping[int, MeterSpec], energy: SiteEnergyState) -> list[AlertEvent]:
    run = Run({})
    quota.evaluate_site(rules, run, energy, specs, DAY_END, DAY_END, site_id=SITE, enterprise_id=ENT)
    return run.events


def rules_for(*pairs: tuple[str, str], alloc: Allocation | None = None,
              params: QuotaParams | None = None) -> tuple[QuotaRule, ...]:
    out = []
    for product, indicator in pairs:
        q = find(product, indicator)
        assert q is not None, (product, indicator)
        out.append(QuotaRule(q, params=params or QuotaParams(), allocation=alloc))
    return tuple(out)


# A carbide line and a methanol line on one site, every meter tagged to its product.
TWO = {1: spec(1, "electricity", "kWh", "consumed", "calcium_carbide"),
       2: spec(2, "coke", "kg", "consumed", "calcium_carbide"),
       3: spec(3, "raw_coal", "t", "consumed", "methanol"),
       4: spec(4, "electricity", "kWh", "consumed", "methanol"),
       5: spec(5, "product", "t", "product_output", "calcium_carbide"),
       6: spec(6, "product", "t", "product_output", "methanol")}
TWO_DAY = {1: 320_000.0, 2: 50_000.0, 3: 400.0, 4: 100_000.0, 5: 100.0, 6: 200.0}
TWO_RULES = rules_for(("calcium_carbide", "kgce_per_t"), ("calcium_carbide", "kwh_per_t"), ("methanol", "kgce_per_t"))


def test_a_compliant_carbide_line_is_not_charged_the_methanol_lines_energy() -> None:
    ins = day_inputs(TWO_RULES, TWO, energy_of(TWO, TWO_DAY))
    carbide = ins["quota_exceeded.calcium_carbide.kgce_per_t.day"]
    # carbide: 320 000 kWh × 0.1229 = 39 328 + 50 000 kg coke × 0.9714 = 48 570 -> 87 898 kgce / 100 t
    # = 878.98 kgce/t (3级 ≤ 940, compliant). Charged the whole site it would be (87 898 + 298 010)
    # / 100 = 3 859.08 kgce/t.
    assert (carbide.energy, carbide.output) == pytest.approx((87_898.0, 100.0))
    assert carbide.energy / carbide.output == pytest.approx(878.98)
    # methanol: 400 t coal × 714.3 = 285 720 + 100 000 kWh × 0.1229 = 12 290 -> 298 010 / 200 t = 1 490.05
    methanol = ins["quota_exceeded.methanol.kgce_per_t.day"]
    assert methanol.energy / methanol.output == pytest.approx(1_490.05)
    # 电炉电耗 uses the carbide line's electricity only: 320 000 / 100 = 3 200 kWh/t (the whole
    # site's 420 000 kWh would make 4 200)
    furnace = ins["quota_exceeded.calcium_carbide.kwh_per_t.day"]
    assert (furnace.energy, furnace.output) == pytest.approx((320_000.0, 100.0))
    # 878.98 ≤ 940, 3 200 on the limit 3 200 (compliant), 1 490.05 ≤ 1 800: nothing opens
    assert run_site(TWO_RULES, TWO, energy_of(TWO, TWO_DAY)) == []


def test_each_product_of_a_tagged_two_product_site_gets_its_own_judgment() -> None:
    # the methanol line now burns 500 t coal: 357 150 + 12 290 = 369 440 kgce / 200 t = 1 847.2 > 1 800
    ev = run_site(TWO_RULES, TWO, energy_of(TWO, {**TWO_DAY, 3: 500.0}))
    opened = {e.rule: e for e in ev if e.kind == "opened"}
    assert set(opened) == {"quota_exceeded.methanol.kgce_per_t.day", "quota_exceeded.methanol.kgce_per_t.month",
                           "quota_exceeded.methanol.kgce_per_t.year"}
    day = opened["quota_exceeded.methanol.kgce_per_t.day"]
    assert day.value == pytest.approx(1_847.2) and day.threshold == 1800.0
    assert day.details["meters"] == {"3": 1.0, "4": 1.0} and day.details["standard"] == "GB 29436-2023 表1"


def test_an_ambiguous_site_gets_a_configuration_alert_and_no_judgment() -> None:
    # meter 4 names no product on a two-product site, with no shares: the carbide line would be
    # 960 kgce/t (over 940) with or without it, but neither product is judged
    specs = {**TWO, 4: spec(4, "electricity", "kWh", "consumed")}
    uses = [MeterUse(m, code, s.role, s.carrier, s.product) for (m, s), code in
            zip(specs.items(), ["furnace-power", "coke-feed", "coal-feed", "utility-power", "carbide-out", "meoh-out"],
                strict=True)]
    alloc = allocate("nd-chem-01", ["calcium_carbide", "methanol"], uses)
    rules = rules_for(("calcium_carbide", "kgce_per_t"), ("methanol", "kgce_per_t"), alloc=alloc)
    ev = run_site(rules, specs, energy_of(specs, {**TWO_DAY, 2: 58_800.0}))
    assert [(e.rule, e.kind, e.value) for e in ev] == [("quota_boundary_ambiguous", "opened", 1.0)]
    d = ev[0].details
    assert d["site"] == "nd-chem-01" and d["untagged_meters"] == ["utility-power"]
    assert "nd-chem-01" in d["error"] and "utility-power" in d["error"]
    # tagging the meter (a registry change) clears the configuration alert and judges again
    fixed = allocate("nd-chem-01", ["calcium_carbide", "methanol"],
                     [MeterUse(u.meter_id, u.code, u.role, u.carrier, u.product or "methanol") for u in uses])
    run = Run({a.key: a for a in _active(ev)})
    quota.evaluate_site(rules_for(("calcium_carbide", "kgce_per_t"), ("methanol", "kgce_per_t"), alloc=fixed), run,
                        energy_of(specs, {**TWO_DAY, 2: 58_800.0}), specs, DAY_END, DAY_END, site_id=SITE,
                        enterprise_id=ENT)
    kinds = {(e.rule, e.kind) for e in run.events}
    # carbide: 39 328 + 58 800 × 0.9714 = 57 118.32 -> 96 446.32 / 100 = 964.46 > 940
    assert ("quota_boundary_ambiguous", "cleared") in kinds
    assert ("quota_exceeded.calcium_carbide.kgce_per_t.day", "opened") in kinds


def _active(events: Iterable[AlertEvent]) -> list[Alert]:
    return list(lifecycle.restore(list(events)).values())


def test_declared_shares_apportion_a_shared_meter() -> None:
    # a utilities feeder of 40 000 kWh/day, 25 % carbide / 75 % methanol
    specs = {**TWO, 8: spec(8, "electricity", "kWh", "consumed")}
    uses = [MeterUse(m, f"m{m}", s.role, s.carrier, s.product,
                     (("calcium_carbide", 0.25), ("methanol", 0.75)) if m == 8 else ()) for m, s in specs.items()]
    alloc = allocate("nd-chem-01", ["calcium_carbide", "methanol"], uses)
    ins = day_inputs(rules_for(("calcium_carbide", "kgce_per_t"), ("calcium_carbide", "kwh_per_t"),
                               ("methanol", "kgce_per_t"), alloc=alloc), specs, energy_of(specs, {**TWO_DAY, 8: 40_000.0}),
                     alloc)
    # carbide: 87 898 + 0.25 × 40 000 × 0.1229 (= 1 229) = 89 127 kgce -> 891.27 kgce/t
    assert ins["quota_exceeded.calcium_carbide.kgce_per_t.day"].energy == pytest.approx(89_127.0)
    # 电炉电耗: 320 000 + 0.25 × 40 000 = 330 000 kWh -> 3 300 kWh/t
    assert ins["quota_exceeded.calcium_carbide.kwh_per_t.day"].energy == pytest.approx(330_000.0)
    # methanol: 298 010 + 0.75 × 4 916 = 3 687 -> 301 697 kgce -> 1 508.485 kgce/t
    assert ins["quota_exceeded.methanol.kgce_per_t.day"].energy == pytest.approx(301_697.0)
    assert ins["quota_exceeded.methanol.kgce_per_t.day"].meters == {"m3": 1.0, "m4": 1.0, "m8": 0.75}


def test_an_indicators_own_meter_list_and_exported_energy() -> None:
    # one carbide plant: furnace 320 000 kWh, auxiliaries 30 000 kWh, coke 50 000 kg, waste-heat
    # steam exported 100 GJ (= 100 000 MJ × 0.03412 = 3 412 kgce), 100 t carbide
    specs = {1: spec(1, "electricity", "kWh", "consumed"), 2: spec(2, "electricity", "kWh", "consumed"),
             3: spec(3, "coke", "kg", "consumed"), 4: spec(4, "heat", "GJ", "exported"),
             5: spec(5, "product", "t", "product_output", "calcium_carbide")}
    alloc = allocate("c", ["calcium_carbide"], [MeterUse(m, f"m{m}", s.role, s.carrier, s.product) for m, s in specs.items()])
    furnace = find("calcium_carbide", "kwh_per_t")
    total = find("calcium_carbide", "kgce_per_t")
    assert furnace is not None and total is not None
    rules = (QuotaRule(total, allocation=alloc), QuotaRule(furnace, meters=frozenset({1}), allocation=alloc))
    ins = day_inputs(rules, specs, energy_of(specs, {1: 320_000.0, 2: 30_000.0, 3: 50_000.0, 4: 100.0, 5: 100.0}), alloc)
    # 电炉电耗: the furnace meter only, 320 000 kWh / 100 t = 3 200 kWh/t (exported steam is not electricity)
    assert ins["quota_exceeded.calcium_carbide.kwh_per_t.day"].energy == pytest.approx(320_000.0)
    # 综合能耗: 350 000 × 0.1229 = 43 015 + 48 570 − 3 412 = 88 173 kgce -> 881.73 kgce/t
    assert ins["quota_exceeded.calcium_carbide.kgce_per_t.day"].energy == pytest.approx(88_173.0)


def test_feedstock_is_left_out_only_where_the_standard_says() -> None:
    # MTO: 1 000 t feedstock coal (714 300 kgce), 200 t fuel coal (142 860), 100 000 kWh (12 290), 300 t olefins
    specs = {1: spec(1, "raw_coal", "t", "consumed"), 2: spec(2, "raw_coal", "t", "consumed"),
             3: spec(3, "electricity", "kWh", "consumed"), 4: spec(4, "product", "t", "product_output", "olefins_mto")}
    uses = [MeterUse(m, f"m{m}", s.role, s.carrier, s.product, feedstock=m == 1) for m, s in specs.items()]
    alloc = allocate("mto", ["olefins_mto"], uses)
    ins = day_inputs(rules_for(("olefins_mto", "kgce_per_t"), ("olefins_mto", "with_feedstock_kgce_per_t"), alloc=alloc),
                     specs, energy_of(specs, {1: 1000.0, 2: 200.0, 3: 100_000.0, 4: 300.0}), alloc)
    # 原料用能不纳入: (142 860 + 12 290) / 300 = 517.17 kgce/t; 含原料用能: 869 450 / 300 = 2 898.17
    assert ins["quota_exceeded.olefins_mto.kgce_per_t.day"].energy == pytest.approx(155_150.0)
    assert ins["quota_exceeded.olefins_mto.with_feedstock_kgce_per_t.day"].energy == pytest.approx(869_450.0)


def _judge(product: str, indicator: str, energy: float, output: float, params: QuotaParams | None = None,
           new_build: bool = False) -> list[AlertEvent]:
    q = find(product, indicator)
    assert q is not None
    inp = QuotaInput(SITE, ENT, "day", T0, DAY_END, energy, output, 1.0)
    return quota.evaluate(QuotaRule(q, new_build, params=params or QuotaParams()), None, inp, DAY_END)[1]


@pytest.mark.parametrize(("kgce", "violates"), [
    (94_000.0, False),  # 940.0 kgce/t: on the limit (GB 21343-2023 表1 3级 940) is compliant
    (94_040.0, False),  # 940.4 -> 940 at the table's precision (whole kgce/t): compliant
    (94_050.0, False),  # 940.5 -> 940 (GB/T 8170 round half to even): compliant
    (94_060.0, True),  # 940.6 -> 941 > 940: violation
    (94_150.0, True),  # 941.5 -> 942 > 940
])
def test_on_the_limit_is_compliant_at_the_standards_precision(kgce: float, violates: bool) -> None:
    ev = _judge("calcium_carbide", "kgce_per_t", kgce, 100.0)
    assert [e.kind for e in ev] == (["opened"] if violates else [])


def test_polysilicon_per_kg_at_one_decimal() -> None:
    # GB 29447-2026 多晶硅(三氯氢硅法) 3级 6.3 kgce/kg; 10 t = 10 000 kg
    assert _judge("polysilicon_trichlorosilane", "kgce_per_kg", 63_400.0, 10_000.0) == []  # 6.34 -> 6.3
    ev = _judge("polysilicon_trichlorosilane", "kgce_per_kg", 63_500.0, 10_000.0)  # 6.35 -> 6.4 (5 after odd 3)
    assert [(e.kind, e.threshold) for e in ev] == [("opened", 6.3)]


def test_aluminium_is_judged_on_the_liquid_aluminium_ac_consumption() -> None:
    # GB 21346-2022 铝液交流电耗 3级 13 350 kWh/t: a smelter at 13 500 kWh/t breaches it (the
    # ingot row 铝锭综合交流电耗 13 750 would have passed it)
    ev = _judge("aluminium", "kwh_per_t", 1_350_000.0, 100.0)
    assert [(e.kind, e.value, e.threshold) for e in ev] == [("opened", 13_500.0, 13_350.0)]
    assert ev[0].details["indicator_cn"] == "铝液交流电耗" and ev[0].details["standard"] == "GB 21346-2022 表1"


def test_the_altitude_correction_raises_the_clinker_limit_at_guyuan() -> None:
    # 固原 clinker kiln at 1 750 m, local pressure 82 000 Pa: K = 1.179 − 0.211 × 82 000 / 101 325
    # = 1.179 − 0.170757 = 1.008243; 3级 117 × K = 117.96 -> 118 at whole kgce/t (GB 16780-2021)
    guyuan = QuotaParams(altitude_m=1750.0, atmospheric_pressure_pa=82_000.0)
    # 11 780 kgce / 100 t = 117.8 -> 118: over the table's 117, within the corrected 118
    assert [e.threshold for e in _judge("cement_clinker", "kgce_per_t", 11_780.0, 100.0)] == [117.0]
    assert _judge("cement_clinker", "kgce_per_t", 11_780.0, 100.0, guyuan) == []
    # 118.6 -> 119 > 118 still breaches, and the alert shows the correction
    ev = _judge("cement_clinker", "kgce_per_t", 11_860.0, 100.0, guyuan)
    assert ev[0].threshold == 118.0 and "1750 m" in ev[0].details["corrections"][0]
    # at 1 400 m (below 1 500 m) nothing is corrected
    assert _judge("cement_clinker", "kgce_per_t", 11_780.0, 100.0,
                  QuotaParams(altitude_m=1400.0, atmospheric_pressure_pa=86_000.0))[0].threshold == 117.0


def test_the_ore_grade_correction_lowers_the_silicomanganese_smelting_limit() -> None:
    # GB 21341-2022 锰硅合金 冶炼电耗 3级 4 250 kWh/t, − 100 kWh/t per point above 36 %:
    # ore at 38 % -> 4 250 − 200 = 4 050; a furnace at 4 100 kWh/t passes the table, not the grade
    assert _judge("silicomanganese", "kwh_per_t", 410_000.0, 100.0) == []
    ev = _judge("silicomanganese", "kwh_per_t", 410_000.0, 100.0, QuotaParams(ore_grade_pct=38.0))
    assert [(e.kind, e.threshold) for e in ev] == [("opened", 4050.0)]


def test_the_coke_corrections() -> None:
    # GB 21342-2025 top-charged coke 3级 135 kgce/t + 8.00 × 0.5 mixed gas + 2.5 (ovens 20 years)
    # + 46.46 (wet quenching) = 187.96 -> 188; 2级 110 + 4 = 114 for a new build
    p = QuotaParams(mixed_gas_ratio=0.5, coke_oven_age_years=20.0, wet_quenching=True)
    assert _judge("coke", "kgce_per_t", 18_790.0, 100.0, p) == []  # 187.9 -> 188: on the limit
    assert [e.threshold for e in _judge("coke", "kgce_per_t", 18_860.0, 100.0, p)] == [188.0]
    assert [e.threshold for e in _judge("coke", "kgce_per_t", 11_500.0, 100.0, p, new_build=True)] == [114.0]


def test_the_clinker_ratio_correction_of_cement() -> None:
    # GB 16780-2021 cement (75 % clinker basis) 3级 94 + 1.20 × (80 − 75) = 100 kgce/t
    p = QuotaParams(clinker_ratio_pct=80.0)
    assert _judge("cement", "kgce_per_t", 9_900.0, 100.0, p) == []  # 99 ≤ 100
    assert [e.threshold for e in _judge("cement", "kgce_per_t", 9_900.0, 100.0)] == [94.0]


def test_coal_to_liquids_divides_by_tonnes_of_oil_equivalent() -> None:
    # GB 30180-2024 煤间接液化制油 3级 2 700 kgce/toe; 100 t of product at 1.02 toe/t = 102 toe;
    # 280 000 kgce / 102 toe = 2 745.1 > 2 700
    q = find("coal_oil_indirect", "kgce_per_toe")
    assert q is not None
    specs = {1: spec(1, "raw_coal", "t", "consumed"), 2: spec(2, "product", "t", "product_output", "coal_oil_indirect")}
    rule = QuotaRule(q, params=QuotaParams(toe_per_t=1.02))
    # 392 t coal × 714.3 = 280 005.6 kgce
    ins = day_inputs((rule,), specs, energy_of(specs, {1: 392.0, 2: 100.0}))
    got = ins["quota_exceeded.coal_oil_indirect.kgce_per_toe.day"]
    assert (got.energy, got.output) == pytest.approx((280_005.6, 102.0))
    assert _judge("coal_oil_indirect", "kgce_per_toe", 280_005.6, 102.0)[0].value == pytest.approx(2745.1529, abs=1e-4)


def test_coal_to_sng_divides_by_cubic_metres_and_is_compliant_on_the_limit() -> None:
    # GB 30180-2024 煤制天然气 3级 1.4 kgce/m3 (one decimal): 2 000 t coal × 714.3 = 1 428 600 kgce for
    # 100 × 10⁴ m3 = 1 000 000 m3 of SNG = 1.4286 kgce/m3 -> 1.4 at the stated precision: compliant
    specs = {1: spec(1, "raw_coal", "t", "consumed"), 2: spec(2, "product", "10^4 m3", "product_output", "coal_to_sng")}
    rules = rules_for(("coal_to_sng", "kgce_per_m3"))
    energy = energy_of(specs, {1: 2000.0, 2: 100.0})
    got = day_inputs(rules, specs, energy)["quota_exceeded.coal_to_sng.kgce_per_m3.day"]
    assert (got.energy, got.output) == pytest.approx((1_428_600.0, 1_000_000.0))
    assert run_site(rules, specs, energy) == []
    # 2 100 t: 1 500 030 kgce / 10⁶ m3 = 1.50003 -> 1.5 > 1.4
    assert [e.threshold for e in run_site(rules, specs, energy_of(specs, {1: 2100.0, 2: 100.0}))
            if e.rule.endswith(".day")] == [1.4]


def test_quota_rules_helper_covers_every_indicator_of_a_product() -> None:
    assert [r.quota.indicator for r in quota_rules("aluminium")] == [
        "kwh_per_t", "liquid_comprehensive_kwh_per_t", "ingot_kwh_per_t", "kgce_per_t"]
