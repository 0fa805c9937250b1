"""The emission-factors file (portal.emissions.load_factors) and tCO₂ beside a site's tce."""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from analytics.emissions import tco2
from analytics.site_energy import MeterSpec, WindowEnergy
from nxem.errors import ConfigError
from portal.emissions import NOT_CONFIGURED, EmissionFactors, beside_tce, load_factors

REPO = Path(__file__).resolve().parents[3]
HEADER = "key,tco2_per_unit,unit,source\n"


def _file(tmp_path: Path, body: str, header: str = HEADER) -> Path:
    path = tmp_path / "factors.csv"
    path.write_text(header + body, encoding="utf-8")
    return path


def test_good_file_is_read_per_base_unit(tmp_path: Path) -> None:
    path = _file(tmp_path, "# a comment\n"
                           "electricity,0.5,MWh,grid factor of the year (test)\n"
                           "\n"
                           'natural_gas_gasfield,21.6,10^4 m3,"guideline X, table 2 (test)"\n'
                           "heat,0.11,GJ,heat supplier (test)\n")
    f = load_factors(path)
    assert set(f.rows) == {"electricity", "natural_gas_gasfield", "heat"}
    el = f.rows["electricity"]
    # 0.5 tCO2/MWh = 0.0005 tCO2/kWh
    assert (el.base_unit, el.value, el.unit, el.line) == ("kWh", 0.5, "MWh", 3)
    assert el.factor.tco2_per_unit == pytest.approx(0.0005)
    # 21.6 tCO2 per 10^4 m3 = 0.00216 tCO2/m3; the quoted source keeps its comma
    gas = f.rows["natural_gas_gasfield"]
    assert gas.factor.tco2_per_unit == pytest.approx(0.00216) and gas.factor.source == "guideline X, table 2 (test)"
    # 0.11 tCO2/GJ = 0.00011 tCO2/MJ
    assert f.rows["heat"].factor.tco2_per_unit == pytest.approx(0.00011)


def test_example_file_loads_and_says_it_is_an_example() -> None:
    f = load_factors(REPO / "examples" / "emission_factors.example.csv")
    assert f.rows and all(r.factor.source.startswith(("EXAMPLE", "ILLUSTRATIVE")) for r in f.rows.values())


@pytest.mark.parametrize(("body", "message"), [
    ("electricity,0.0005,kWh,\n", "factors.csv:2: source is empty"),
    ("electricity,0.0005,kWh,   \n", "factors.csv:2: source is empty"),
    ("electricity,0.0005,kWh\n", "factors.csv:2: expected 4 fields"),
    ("electricity,0.0005,Wh,test\n", "factors.csv:2: unknown unit 'Wh'"),
    ("electricity,0.0021,m3,test\n",
     "factors.csv:2: unit 'm3' (per m3) does not fit 'electricity', which is metered per kWh"),
    ("natural_gas_gasfield,0.5,MWh,test\n", "factors.csv:2: unit 'MWh' (per kWh) does not fit 'natural_gas_gasfield'"),
    ("steam_1.0MPa,0.1,GJ,test\n", "does not fit 'steam_1.0MPa', which is metered per kg"),
    ("electricity,0.0005,kWh,a\nheat,0.1,GJ,b\nelectricity,0.0006,kWh,c\n",
     "factors.csv:4: duplicate key 'electricity' (first on line 2)"),
    ("electrcity,0.0005,kWh,test\n", "factors.csv:2: unknown key 'electrcity'"),
    ("electricity,abc,kWh,test\n", "factors.csv:2: tco2_per_unit 'abc' is not a number"),
    ("electricity,-0.1,kWh,test\n", "factors.csv:2: tco2_per_unit must be a finite number >= 0"),
    ("electricity,nan,kWh,test\n", "must be a finite number"),
    ("", "factors.csv holds no factors"),
])
def test_bad_rows_name_file_and_line(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ConfigError, match="NXEM_EMISSION_FACTORS_FILE") as err:
        load_factors(_file(tmp_path, body))
    assert message in str(err.value)


def test_bad_header_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"factors.csv:1: header must be key,tco2_per_unit,unit,source"):
        load_factors(_file(tmp_path, "electricity,0.5,MWh,test\n", header="key,factor,unit,source\n"))
    with pytest.raises(ConfigError, match="cannot read"):
        load_factors(tmp_path / "absent.csv")


def test_steam_carrier_may_be_given_per_kg_or_per_mj(tmp_path: Path) -> None:
    assert load_factors(_file(tmp_path, "steam,0.11,GJ,test\n")).rows["steam"].base_unit == "MJ"
    assert load_factors(_file(tmp_path, "steam,0.3,t,test\n")).rows["steam"].base_unit == "kg"


# ----------------------------------------------------------------- beside_tce

def _meter(mid: int, carrier: str = "electricity", unit: str = "kWh", role: str = "consumed",
           coefficient: str | None = "electricity_calorific", code: str | None = None) -> dict[str, Any]:
    return {"id": mid, "site_id": 1, "code": code or f"m{mid}", "carrier": carrier, "unit": unit, "role": role,
            "kind": "interval", "multiplier": 1.0, "coefficient": coefficient, "product": None}


def _factors(tmp_path: Path, body: str) -> EmissionFactors:
    return load_factors(_file(tmp_path, body))


D1, D2 = date(2026, 3, 1), date(2026, 3, 2)


def test_tco2_per_period_from_per_meter_quantities(tmp_path: Path) -> None:
    f = _factors(tmp_path, "electricity,0.5,MWh,grid (test)\nnatural_gas_gasfield,0.002,m3,gas (test)\n")
    meters = [_meter(1, unit="MWh", code="el"), _meter(2, "natural_gas", "m3", coefficient="natural_gas_gasfield"),
              _meter(3, role="exported", code="pv-out")]
    qty = [{"period_start": D1, "meter_id": 1, "qty": 1.0},  # 1 MWh x 0.5 = 0.5 tCO2
           {"period_start": D1, "meter_id": 2, "qty": 100.0},  # 100 m3 x 0.002 = 0.2 tCO2
           {"period_start": D1, "meter_id": 3, "qty": 200.0},  # exported 200 kWh x 0.0005 = -0.1 tCO2
           {"period_start": D2, "meter_id": 1, "qty": 2.0}]  # 2 MWh x 0.5 = 1.0 tCO2
    em = beside_tce([D1, D2], meters, qty, f)
    assert em.note is None and em.tco2 is not None
    assert em.tco2[D1] == pytest.approx(0.5 + 0.2 - 0.1) and em.tco2[D2] == pytest.approx(1.0)
    assert [(u["meter_code"], u["key"], u["tco2_per_unit"], u["unit"]) for u in em.used] == [
        ("el", "electricity", 0.5, "MWh"), ("m2", "natural_gas_gasfield", 0.002, "m3"),
        ("pv-out", "electricity", 0.5, "MWh")]


def test_not_configured_and_missing_factor_are_null_with_reason(tmp_path: Path) -> None:
    meters = [_meter(1, code="el"), _meter(2, "natural_gas", "m3", coefficient="natural_gas_gasfield", code="gas")]
    qty = [{"period_start": D1, "meter_id": 1, "qty": 1000.0}]
    none = beside_tce([D1], meters, qty, None)
    assert none.tco2 is None and none.note == NOT_CONFIGURED
    # gas meter without a factor: null, even on a day it measured nothing (never a silent 0)
    missing = beside_tce([D1], meters, qty, _factors(tmp_path, "electricity,0.0005,kWh,test\n"))
    assert missing.tco2 is None
    assert missing.note == "no emission factor for meter gas (natural_gas_gasfield, m3) in factors.csv"


def test_steam_factor_in_the_wrong_base_unit_for_the_meter_is_null(tmp_path: Path) -> None:
    f = _factors(tmp_path, "steam,0.3,t,steam per tonne (test)\n")
    em = beside_tce([D1], [_meter(1, "steam", "GJ", coefficient=None, code="st")],
                    [{"period_start": D1, "meter_id": 1, "qty": 1.0}], f)
    assert em.tco2 is None and em.note == "emission factor 'steam' is per kg but meter st (steam, GJ) is metered per MJ"


@pytest.mark.parametrize("body", ["electricity_calorific,0.4,MWh,a\nelectricity,0.5,MWh,b\n",
                                  "electricity,0.5,MWh,b\n"])
def test_factor_lookup_agrees_with_analytics(tmp_path: Path, body: str) -> None:
    """``EmissionFactors.for_meter`` names the factor ``analytics.emissions.tco2`` applies."""
    f = _factors(tmp_path, body)
    spec = MeterSpec(1, 1, "electricity", "kWh", "consumed", "interval", coefficient="electricity_calorific")
    t = datetime(2026, 3, 1, tzinfo=timezone.utc)
    w = WindowEnergy(t, t, 0.0, 0.0, 0.0, 0.0, 0.0, {}, {}, {}, {1: 1000.0}, {}, {}, False)
    row = f.for_meter(spec)
    assert row is not None
    assert tco2(w, {1: spec}, f.mapping()) == pytest.approx(1000.0 * row.factor.tco2_per_unit)
