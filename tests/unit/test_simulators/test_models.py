"""Worked examples for the simulators' pure models: USCC, registers, rollover, plants, truth."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from simulators import uscc
from simulators.generate import Publish, generate
from simulators.reference import QUOTAS, specific_for_level
from simulators.scenario import data_centre_document, data_centre_scenario, parse_scenario
from simulators.sites import DataCentreSim, PlantSim
from simulators.truth import TruthBuilder, checksum, reading_hash

CST = timezone(timedelta(hours=8))
START = datetime(2026, 1, 5, tzinfo=CST)
ENT = "91640500MA76L8XK3A"  # check character computed by hand below


def _register_series(sc_hours: float, pue: float, it_kw: float) -> dict[str, list[float]]:
    sc = data_centre_scenario(ENT, "zw-dc-01", "gw-a", pue, it_kw, START, sc_hours)
    out: dict[str, list[float]] = {"it-main": [], "facility-main": []}
    for _, events in generate(sc):
        for ev in events:
            assert isinstance(ev, Publish)
            for r in ev.accepted:
                out[r.meter].append(r.value)
    return out


@pytest.mark.parametrize(
    ("code", "valid"),
    [
        # GB 32100-2015 example: Σ value×weight over the first 17 = 1640; 1640 mod 31 = 28;
        # 31 - 28 = 3 -> '3'
        ("91350100M000100Y43", True),
        ("91350100M000100Y44", False),
        ("91640500MA76L8XK3A", True),
        ("91640500MA76L8XK3Q", False),  # right shape, wrong check character
        ("91640500MA76L8XK3", False),  # 17 characters
        ("91640500MA76L8XK3I", False),  # I is not in the charset
    ],
)
def test_uscc_check_character(code: str, valid: bool) -> None:
    assert uscc.is_valid(code) is valid


def test_generated_usccs_are_valid_and_carry_the_city_division() -> None:
    import random

    rng = random.Random(7)
    for city, division in uscc.DIVISIONS.items():
        code = uscc.generate(rng, city)
        assert uscc.is_valid(code) and code[2:8] == division


def test_2mw_data_centre_at_pue_1_3_over_one_hour() -> None:
    # 2000 kW × 0.25 h = 500 kWh IT per quarter-hour; facility 500 × 1.3 = 650 kWh.
    # After one hour (4 readings): IT register 2000 kWh, facility 2600 kWh.
    series = _register_series(1, 1.3, 2000)
    assert series["it-main"] == [500.0, 1000.0, 1500.0, 2000.0]
    assert series["facility-main"] == [650.0, 1300.0, 1950.0, 2600.0]


def test_six_hours_is_24_readings_per_meter() -> None:
    series = _register_series(6, 1.1, 2000)
    assert len(series["it-main"]) == len(series["facility-main"]) == 24  # 6 h / 15 min


def test_register_wraps_at_rollover_with_multiplier() -> None:
    # rollover 1000 register units, multiplier 10 (CT ratio): 2000 kW × 0.25 h = 500 kWh =
    # 50 register units per quarter-hour; 20 intervals = 1000 units -> wraps to 0, then 50, …
    doc = data_centre_document(ENT, "zw-dc-01", "gw-a", 1.0, 2000, START, 6)
    it = doc["enterprises"][0]["sites"][0]["gateways"][0]["meters"][0]
    it.update(multiplier=10, rollover=1000)
    sc = parse_scenario(doc, now=START)
    values = [r.value for _, evs in generate(sc) for e in evs if isinstance(e, Publish)
              for r in e.accepted if r.meter == "it-main"]
    assert values[18:22] == [950.0, 0.0, 50.0, 100.0]


def test_fixed_pue_and_temperature_pue() -> None:
    fixed = DataCentreSim(it_capacity_mw=10, utilisation=1.0, pue=1.2)
    # 10 MW × 8760 h = 87 600 MWh IT; × 1.2 = 105 120 MWh; × 0.1229 kgce/kWh ≈ 12 919 tce
    q = fixed.quantities("中卫", START, 8760, START)
    assert q["facility"] * 0.1229 / 1000 == pytest.approx(12_919.248)
    seasonal = DataCentreSim(it_capacity_mw=10)
    winter = seasonal.pue_at("中卫", datetime(2026, 1, 15, 3, tzinfo=CST))
    summer = seasonal.pue_at("中卫", datetime(2026, 7, 15, 15, tzinfo=CST))
    assert winter == pytest.approx(1.12)  # free cooling below 5 °C
    assert 1.3 < summer <= 1.40


def test_plant_levels_against_gb_21343_carbide() -> None:
    q = QUOTAS["calcium_carbide"]  # 805 / 823 / 940 kgce/t
    assert specific_for_level(q, "violating") == pytest.approx(987.0)  # 940 × 1.05
    assert specific_for_level(q, "marginal") == pytest.approx(881.5)  # (823 + 940) / 2
    plant = PlantSim("calcium_carbide", output_t_per_h=10, level="violating")
    qty = plant.quantities(START, 1.0)
    # 10 t × 987 kgce/t = 9870 kgce: 80 % electricity = 7896 kgce / 0.1229 = 64 247.35 kWh
    assert qty["product"] == 10
    assert qty["consumed:electricity_calorific"] == pytest.approx(7896 / 0.1229)
    assert qty["consumed:coke"] == pytest.approx(1974 / 971.4)  # t of coke


def test_truth_counts_checksums_and_pue_alert() -> None:
    sc = data_centre_scenario(ENT, "zw-dc-01", "gw-a", 1.3, 2000, START, 6)
    tb = TruthBuilder(sc)
    readings = []
    for _, evs in generate(sc):
        for ev in evs:
            assert isinstance(ev, Publish)
            tb.record(ev)
            readings += [(r.meter, r.ts, r.value) for r in ev.accepted if r.meter == "it-main"]
    truth = tb.finish()
    it = truth.meter("gw-a", "it-main")
    assert it.count == 24 and it.checksum == checksum(readings)
    assert it.expected_quantity == 12_000.0  # 2000 kW × 6 h
    assert [(a.rule, a.value, a.threshold) for a in truth.alerts] == [("pue_above_limit", 1.3, 1.2)]


def test_reading_hash_is_timezone_independent() -> None:
    t = datetime(2026, 1, 5, 8, tzinfo=CST)
    assert reading_hash("m", t, 1.5) == reading_hash("m", t.astimezone(timezone.utc), 1.5)
    assert reading_hash("m", t, 0.0) == reading_hash("m", t, -0.0)
