from __future__ import annotations

import csv
from pathlib import Path

import pytest

from analytics.quotas import (
    QUOTAS,
    QUOTAS_CSV,
    ROWS,
    MeterUse,
    QuotaParams,
    allocate,
    at_precision,
    exceeds,
    find,
    level_of,
    limits,
    parse_quotas,
    unit_consumption,
)

DATA = Path(__file__).resolve().parents[3] / "analytics" / "data"


def test_carbide_plant_at_960_breaches_gb21343_level3() -> None:
    # 96 000 kgce for 100 t of calcium carbide = 960 kgce/t > 940 (GB 21343-2023 表1 3级)
    carbide = find("calcium_carbide", "kgce_per_t")
    assert carbide is not None and carbide.level3 == 940
    value = unit_consumption(96_000.0, 100.0)
    assert value == pytest.approx(960.0)
    assert level_of(960.0, carbide) == "超过3级(不达标)"
    assert level_of(820.0, carbide) == "2级"  # 805 < 820 ≤ 823
    assert level_of(940.0, carbide) == "3级"  # on the limit: compliant
    assert level_of(805.4, carbide) == "1级"  # 805.4 -> 805 at whole kgce/t


@pytest.mark.parametrize(("energy", "t", "min_t"), [(10.0, 0.0, 1.0), (10.0, 0.5, 1.0), (10.0, -1.0, 0.0)])
def test_minimum_output_guard_gives_no_value(energy: float, t: float, min_t: float) -> None:
    assert unit_consumption(energy, t, min_t) is None


@pytest.mark.parametrize(("x", "decimals", "rounded"), [
    (940.4, 0, 940.0), (940.5, 0, 940.0), (941.5, 0, 942.0), (940.6, 0, 941.0),  # GB/T 8170: half to even
    (6.35, 1, 6.4), (6.25, 1, 6.2), (6.251, 1, 6.3), (2.585, 2, 2.58),
    (3199.9999999999995, 0, 3200.0),  # a float sum's residue does not make a violation
])
def test_rounding_at_the_stated_precision(x: float, decimals: int, rounded: float) -> None:
    assert at_precision(x, decimals) == rounded


def test_on_the_limit_is_not_exceeding() -> None:
    assert not exceeds(940.0, 940.0, 0) and not exceeds(940.0000000001, 940.0, 0) and exceeds(940.6, 940.0, 0)


def test_the_products_made_in_ningxia_have_their_quota_rows() -> None:
    want = {
        "calcium_carbide": "GB 21343-2023", "dicyandiamide": "GB 21343-2023", "methanol": "GB 29436-2023",
        "methanol_coke_oven_gas": "GB 29436-2023", "ethylene_glycol_coal": "GB 29436-2023", "coke": "GB 21342-2025",
        "semi_coke": "GB 29995-2024", "ferrosilicon": "GB 21341-2022", "silicomanganese": "GB 21341-2022",
        "aluminium": "GB 21346-2022", "cement_clinker": "GB 16780-2021", "industrial_silicon_coal": "GB 21347-2023",
        "magnesium": "GB 21347-2023", "polysilicon_trichlorosilane": "GB 29447-2026",
        "monocrystalline_silicon": "GB 47835-2026", "olefins_mto": "GB 30180-2024", "olefins_mtp": "GB 30180-2024",
        "coal_oil_indirect": "GB 30180-2024", "coal_oil_direct": "GB 30180-2024", "ammonia_pulverized_coal": "GB 21344-2023",
        "urea_electric_drive": "GB 21344-2023", "caustic_soda_30": "GB 21257-2024", "pvc_carbide": "GB 21257-2024",
    }
    for product, std in want.items():
        assert {q.standard for q in QUOTAS[product]} == {std}, product


@pytest.mark.parametrize(("product", "indicator", "cn", "unit", "levels", "numerator"), [
    # GB 21346-2022 表1: the electrolysis indicator 铝液交流电耗 (12 950 / 13 000 / 13 350 kWh/t)
    ("aluminium", "kwh_per_t", "铝液交流电耗", "kWh/t", (12950, 13000, 13350), "electricity"),
    ("aluminium", "ingot_kwh_per_t", "铝锭综合交流电耗", "kWh/t", (13300, 13400, 13750), "electricity"),
    ("calcium_carbide", "kwh_per_t", "单位产品电炉电耗", "kWh/t", (3000, 3080, 3200), "electricity"),
    ("silicomanganese", "kwh_per_t", "单位产品冶炼电耗", "kWh/t", (3800, 4000, 4250), "electricity"),
    ("silicomanganese", "kgce_per_t", "单位产品综合能耗", "kgce/t", (850, 860, 950), "energy"),
    # GB 30180-2024 表1: MTO without and with feedstock energy
    ("olefins_mto", "kgce_per_t", "单位产品能耗", "kgce/t", (900, 1200, 1600), "energy_excl_feedstock"),
    ("olefins_mto", "with_feedstock_kgce_per_t", "单位产品能耗", "kgce/t", (2600, 2800, 3300), "energy"),
    ("polysilicon_trichlorosilane", "kgce_per_kg", "单位产品综合能耗", "kgce/kg", (5.0, 5.5, 6.3), "energy"),
    ("cement_clinker", "coal_kgce_per_t", "熟料单位产品综合煤耗", "kgce/t", (94, 100, 109), "coal"),
])
def test_rows_state_numerator_and_levels(product: str, indicator: str, cn: str, unit: str,
                                         levels: tuple[float, float, float], numerator: str) -> None:
    q = find(product, indicator)
    assert q is not None
    assert (q.indicator_cn, q.unit, (q.level1, q.level2, q.level3), q.numerator) == (cn, unit, levels, numerator)


def test_every_row_cites_its_source_and_is_consistent() -> None:
    assert len(ROWS) == 79
    for q in ROWS:
        assert q.standard.startswith("GB ") and q.table and q.confidence == "secondary-transcription"
        assert (q.energy_unit == "kWh") == (q.numerator == "electricity"), q
        assert q.level1 <= q.level2 <= q.level3, q
    # the reference's families without a judgeable row here: steel processes, coal power, gas
    # combined cycle, coal mining (their corrections are not transcribed), 高炉锰铁 (flagged suspicious)
    assert not {q.standard for q in ROWS} & {"GB 21256-2025", "GB 21258-2024", "GB 45247-2025", "GB 29445-2025"}
    assert not any("高炉锰铁" in q.product_cn for q in ROWS)


def test_the_table_is_the_shipped_csv() -> None:
    text = (DATA / "quotas.csv").read_text(encoding="utf-8")
    assert QUOTAS_CSV == text and parse_quotas(text) == ROWS
    rows = list(csv.DictReader(text.splitlines()))
    assert all(r["source"] and r["confidence"] for r in rows)


def test_corrections_sit_on_the_rows_the_reference_gives_them_for() -> None:
    corrected = {(q.product, q.indicator): q.correction.kind for q in ROWS if q.correction}
    assert corrected[("cement_clinker", "kgce_per_t")] == "altitude"
    assert corrected[("coke", "kgce_per_t")] == corrected[("coke_stamp_charged", "kgce_per_t")] == "coke"
    assert corrected[("cement", "kgce_per_t")] == "clinker_ratio"
    assert {k for k, v in corrected.items() if v == "ore_grade"} == {
        (q.product, "kwh_per_t") for q in ROWS if q.standard == "GB 21341-2022" and q.unit == "kWh/t"}


def test_stamp_charged_coke_mixed_gas_and_altitude_without_pressure() -> None:
    stamp = find("coke_stamp_charged", "kgce_per_t")
    assert stamp is not None
    # GB 21342-2025 捣固焦炉: + 12.00 × 0.25 = + 3 on every level: 118 / 118 / 143
    lim = limits(stamp, QuotaParams(mixed_gas_ratio=0.25))
    assert (lim.level1, lim.level2, lim.level3) == pytest.approx((118.0, 118.0, 143.0))
    clinker = find("cement_clinker", "kgce_per_t")
    assert clinker is not None
    lim = limits(clinker, QuotaParams(altitude_m=1800.0))
    assert lim.level3 == 117 and "NOT applied" in lim.applied[0]


def test_allocation_rules() -> None:
    meters = [MeterUse(1, "a", "consumed", "electricity"), MeterUse(2, "b", "consumed", "coke", product="x"),
              MeterUse(3, "c", "exported", "heat", shares=(("x", 0.4), ("y", 0.6))),
              MeterUse(4, "out-x", "product_output", "product", product="x"), MeterUse(5, "it", "it_load", "electricity")]
    one = allocate("s1", ["x"], [m for m in meters if m.meter_id != 3])
    # one product: the untagged meter is its own; it_load is not an energy input
    assert dict(one.weights["x"]) == {1: 1.0, 2: 1.0} and one.untagged == () and one.outputs["x"] == (4,)
    two = allocate("s2", ["x", "y"], meters)
    assert two.untagged == ("a",)
    assert dict(two.weights["x"]) == {2: 1.0, 3: 0.4} and dict(two.weights["y"]) == {3: 0.6}
