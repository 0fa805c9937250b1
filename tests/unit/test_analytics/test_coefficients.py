from __future__ import annotations

import csv
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from analytics.coefficients import COEFFICIENTS, ConversionError, electricity_equivalent_kgce, resolve, to_kgce
from nxem.errors import NxemError

DATA = Path(__file__).resolve().parents[3] / "analytics" / "data"


@pytest.mark.parametrize(
    ("qty", "carrier", "unit", "coef", "kgce"),
    [
        # 1 000 kWh × 0.1229 kgce/kWh (GB/T 2589-2020, 当量值) = 122.9 kgce
        (1000.0, "electricity", "kWh", None, 122.9),
        # 105 120 MWh (10 MW IT × 8760 h × PUE 1.2) × 1000 × 0.1229 = 12 919 248 kgce ≈ 12 919 tce
        (105_120.0, "electricity", "MWh", None, 12_919_248.0),
        # 1 000 m³ gas-field gas × 1.2143 = 1 214.3 kgce; oil-field × 1.3300 = 1 330 kgce
        (1000.0, "natural_gas", "m3", "natural_gas_gasfield", 1214.3),
        (1000.0, "natural_gas", "m3", "natural_gas_oilfield", 1330.0),
        # 10 GJ heat = 10 000 MJ × 0.03412 = 341.2 kgce
        (10.0, "heat", "GJ", None, 341.2),
        # steam metered as heat uses the heat coefficient: 500 MJ × 0.03412 = 17.06 kgce
        (500.0, "steam", "MJ", None, 17.06),
        # steam by the pressure table (industry convention): 2 t × 1000 × 0.108571 = 217.142 kgce
        (2.0, "steam", "t", "steam_1.0MPa", 217.142),
        # 3 t raw coal × 1000 × 0.7143 = 2 142.9 kgce; 1 t coke × 971.4
        (3.0, "raw_coal", "t", None, 2142.9),
        (1.0, "coke", "t", None, 971.4),
    ],
)
def test_worked_conversions(qty: float, carrier: str, unit: str, coef: str | None, kgce: float) -> None:
    assert to_kgce(qty, carrier, unit, coef) == pytest.approx(kgce, rel=1e-12)


@pytest.mark.parametrize(
    ("carrier", "unit", "coef", "words"),
    [
        ("unobtainium", "kg", None, "unknown energy carrier"),
        ("electricity", "furlong", None, "unknown unit"),
        ("natural_gas", "m3", None, "explicit coefficient"),  # two values in use: never guessed
        ("steam", "t", None, "pressure row"),
        ("electricity", "m3", None, "does not fit"),
        ("natural_gas", "m3", "raw_coal", "is for"),
        ("coke", "kg", "no_such_row", "unknown coefficient"),
        ("electricity_equivalent", "kWh", None, "per year"),
    ],
)
def test_unknown_or_ambiguous_is_an_error_never_zero(carrier: str, unit: str, coef: str | None, words: str) -> None:
    with pytest.raises(ConversionError, match=words) as info:
        to_kgce(1.0, carrier, unit, coef)
    assert isinstance(info.value, NxemError)


def test_equivalent_value_is_per_year_and_configured() -> None:
    # 1 000 kWh at a configured 2022 rate of 0.3007 kgce/kWh = 300.7 kgce
    assert electricity_equivalent_kgce(1000.0, 2022, {2022: 0.3007}) == pytest.approx(300.7)
    with pytest.raises(ConversionError, match="2023"):
        electricity_equivalent_kgce(1000.0, 2023, {2022: 0.3007})


def test_electricity_calorific_value_matches_its_definition() -> None:
    # 3 600 kJ/kWh ÷ 29 307 kJ/kgce = 0.12284 -> tabulated 0.1229
    assert 3600 / 29307 == pytest.approx(resolve("electricity", "kWh")[0], abs=1e-4)


def test_table_equals_the_copied_csv_with_sources() -> None:
    with (DATA / "coefficients.csv").open(newline="", encoding="utf-8") as f:
        rows = {r["carrier_id"]: r for r in csv.DictReader(f)}
    for key, c in COEFFICIENTS.items():
        row = rows[key]
        assert float(row["kgce_per_unit"]) == pytest.approx(c.kgce_per_unit), key
        assert row["source"] and row["confidence"]
        assert row["confidence"].split("(")[0] == c.confidence.split("(")[0], key


@given(st.lists(st.floats(min_value=0, max_value=1e7, allow_nan=False), min_size=1, max_size=30))
def test_conversion_is_additive_over_periods(parts: list[float]) -> None:
    whole = to_kgce(sum(parts), "natural_gas", "m3", "natural_gas_gasfield")
    assert sum(to_kgce(p, "natural_gas", "m3", "natural_gas_gasfield") for p in parts) == pytest.approx(whole, rel=1e-9, abs=1e-6)


def test_a_tabulated_coefficient_scales_exactly() -> None:
    # 0.9714 kgce/kg × 1 000 kg/t = 971.4 kgce/t as written, not the float product 971.4000000000001
    assert resolve("coke", "t")[0] == 971.4 and resolve("raw_coal", "t")[0] == 714.3
    assert resolve("heat", "GJ")[0] == 34.12


def test_conversion_problems_list_the_candidates() -> None:
    from analytics.coefficients import candidates, conversion_problem

    assert conversion_problem("electricity", "MWh", None) is None
    gas = conversion_problem("natural_gas", "m3", None)
    assert gas is not None and "natural_gas_gasfield (1.2143 kgce/m3)" in gas and "natural_gas_oilfield (1.33 kgce/m3)" in gas
    steam = conversion_problem("steam", "t", None)
    assert steam is not None and "steam_1.0MPa (0.108571 kgce/kg)" in steam
    # steam in GJ converts as heat; its candidates are the heat row
    assert [r.key for r in candidates("steam", "GJ")] == ["heat"]
    wrong_unit = conversion_problem("natural_gas", "kg", "natural_gas_gasfield")
    assert wrong_unit is not None and "natural_gas is metered in" in wrong_unit and "m3" in wrong_unit


def test_the_electricity_basis_is_passed_in() -> None:
    from analytics.coefficients import CALORIFIC_VALUE, ElectricityValue

    # default 当量值: 1 000 kWh × 0.1229 = 122.9 kgce (GB/T 2589-2020)
    assert to_kgce(1000.0, "electricity", "kWh", "electricity_calorific") == pytest.approx(122.9)
    assert CALORIFIC_VALUE.basis == "calorific_value" and "当量值" in CALORIFIC_VALUE.label
    # 等价值 at a configured 0.3007 kgce/kWh: 2 MWh × 1 000 × 0.3007 = 601.4 kgce, whatever id the meter names
    equiv = ElectricityValue("equivalent_value", 0.3007)
    assert to_kgce(2.0, "electricity", "MWh", "electricity_calorific", equiv) == pytest.approx(601.4)
    assert resolve("electricity", "kWh", None, equiv)[1].key == "electricity_equivalent"
    # other carriers are untouched: 1 t coke is still 971.4 kgce
    assert to_kgce(1.0, "coke", "t", None, equiv) == 971.4
    with pytest.raises(ConversionError, match="needs the year's rate"):
        ElectricityValue("equivalent_value")
    with pytest.raises(ConversionError, match="not one of"):
        ElectricityValue("wishful")  # type: ignore[arg-type]
