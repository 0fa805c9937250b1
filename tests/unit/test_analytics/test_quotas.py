from __future__ import annotations

import csv
from pathlib import Path

import pytest

from analytics.quotas import QUOTAS, level_of, unit_consumption

DATA = Path(__file__).resolve().parents[3] / "analytics" / "data"


def test_carbide_plant_at_960_breaches_gb21343_level3() -> None:
    # 96 000 kgce for 100 t of calcium carbide = 960 kgce/t > 940 (GB 21343-2023 表1 3级)
    carbide = next(q for q in QUOTAS["calcium_carbide"] if q.unit == "kgce/t")
    value = unit_consumption(96_000.0, 100.0)
    assert value == pytest.approx(960.0)
    assert carbide.level3 == 940
    assert value is not None and value > 940
    assert level_of(960.0, carbide) == "超过3级(不达标)"
    assert level_of(820.0, carbide) == "2级"


@pytest.mark.parametrize(("energy", "t", "min_t"), [(10.0, 0.0, 1.0), (10.0, 0.5, 1.0), (10.0, -1.0, 0.0)])
def test_minimum_output_guard_gives_no_value(energy: float, t: float, min_t: float) -> None:
    assert unit_consumption(energy, t, min_t) is None


def test_required_products_are_present_with_their_standards() -> None:
    want = {"calcium_carbide": "GB 21343-2023", "methanol": "GB 29436-2023", "coke": "GB 21342-2025",
            "ferrosilicon": "GB 21341-2022", "aluminium": "GB 21346-2022", "cement_clinker": "GB 16780-2021"}
    for product, std in want.items():
        assert {q.standard for q in QUOTAS[product]} == {std}
    # electrolytic aluminium in the indicator's own unit: 铝锭综合交流电耗 kWh/t
    assert any(q.unit == "kWh/t" and q.level3 == 13750 for q in QUOTAS["aluminium"])


def test_table_equals_the_copied_csv() -> None:
    with (DATA / "quotas.csv").open(newline="", encoding="utf-8") as f:
        rows = {(r["standard"], r["product_cn"], r["indicator_cn"]): r for r in csv.DictReader(f)}
    for qs in QUOTAS.values():
        for q in qs:
            r = rows[(q.standard, q.product_cn.replace("(铝锭)", "(铝锭)"), q.indicator_cn)]
            assert (float(r["level1_advanced"]), float(r["level2_new_build"]), float(r["level3_limit_existing"])) == (
                q.level1, q.level2, q.level3)
            assert r["unit"] == q.unit and r["confidence"] == q.confidence and r["source"]
