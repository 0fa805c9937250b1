"""Registry file parsing: defaults, ignored scenario keys, and errors that name the field."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from storage.registry import load_registry_file
from storage.registry_format import RegistryError, parse_registry

REPO = Path(__file__).resolve().parents[3]
ENT = "91640500MA76L8XK3A"


def doc() -> dict[str, Any]:
    return {"enterprises": [{
        "id": ENT, "name": "中卫云数据有限公司", "city": "中卫", "industry": "data_centre",
        "sites": [{"code": "zw-dc-01", "name": "一号", "kind": "data_centre",
                   "gateways": [{"id": "gw-a", "meters": [
                       {"code": "it-main", "carrier": "electricity", "unit": "kWh", "role": "it_load",
                        "kind": "register", "digits": 9}]}]}]}]}


def test_defaults_are_applied() -> None:
    site = parse_registry(doc()).enterprises[0].sites[0]
    # no pue_limit: derived at load from the new-build flag and size class; a 7-day operational window
    assert (site.pue_limit, site.pue_window_hours, site.new_build, site.energy_budget_tce, site.products) == (
        None, 168, False, None, ())
    assert (site.standard_racks, site.it_capacity_kw) == (None, None)
    meter = site.gateways[0].meters[0]
    # digits 9: the register wraps at 10⁹
    assert (meter.multiplier, meter.rollover, meter.coefficient, meter.product) == (1.0, 1e9, None, None)
    assert (meter.shares, meter.feedstock, meter.interval_s) == ((), False, 900)  # 15 minutes


def test_scenario_blocks_are_ignored() -> None:
    d = doc()
    d["simulation"] = {"duration": "2d"}
    d["faults"] = [{"kind": "offline"}]
    d["enterprises"][0]["sites"][0]["sim"] = {"pue": 1.3}
    d["enterprises"][0]["sites"][0]["gateways"][0]["meters"][0]["sim"] = {"initial": 5}
    assert parse_registry(d) == parse_registry(doc())


def _set(d: dict[str, Any], path: list[Any], value: Any) -> dict[str, Any]:
    d = copy.deepcopy(d)
    node: Any = d
    for key in path[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return d


_DELETE = object()
E0 = ["enterprises", 0]
S0 = [*E0, "sites", 0]
M0 = [*S0, "gateways", 0, "meters", 0]


@pytest.mark.parametrize(("path", "value", "where", "message"), [
    ([*E0, "id"], "91640500MA76L8XK3Q", "enterprises[0].id", "expected 'A'"),
    ([*E0, "id"], 91640500, "enterprises[0].id", "string"),
    ([*E0, "city"], "西安", "enterprises[0].city", "银川 | 石嘴山 | 吴忠 | 固原 | 中卫 | 宁东"),
    ([*E0, "industry"], "steel", "enterprises[0].industry", "is not one of"),
    ([*E0, "name"], _DELETE, "enterprises[0].name", "is required"),
    ([*S0, "kind"], "office", "enterprises[0].sites[0].kind", "data_centre | plant"),
    ([*S0, "pue_limit"], 0.9, "enterprises[0].sites[0].pue_limit", "at least 1.0"),
    ([*S0, "pue_limit"], "1.2", "enterprises[0].sites[0].pue_limit", "finite number"),
    ([*S0, "pue_window_hours"], 1.5, "enterprises[0].sites[0].pue_window_hours", "whole number"),
    ([*S0, "new_build"], "yes", "enterprises[0].sites[0].new_build", "true or false"),
    ([*S0, "energy_budget_tce"], -5, "enterprises[0].sites[0].energy_budget_tce", "> 0"),
    ([*S0, "products"], [{"product": "calcium_carbide"}], "enterprises[0].sites[0].products[0].indicator", "required"),
    ([*S0, "gateways", 0, "id"], "gw a/b", "enterprises[0].sites[0].gateways[0].id", "does not match"),
    ([*M0, "role"], "lighting", "enterprises[0].sites[0].gateways[0].meters[0].role", "consumed | exported"),
    ([*M0, "kind"], "cumulative", "enterprises[0].sites[0].gateways[0].meters[0].kind", "register | interval"),
    ([*M0, "multiplier"], 0, "enterprises[0].sites[0].gateways[0].meters[0].multiplier", "> 0"),
    ([*M0, "multiplier"], float("nan"), "enterprises[0].sites[0].gateways[0].meters[0].multiplier", "finite"),
    ([*M0, "unit"], "", "enterprises[0].sites[0].gateways[0].meters[0].unit", "non-empty"),
    ([*M0, "role"], "product_output", "enterprises[0].sites[0].gateways[0].meters[0].product", "product_output"),
    (["enterprises"], {"a": 1}, "$.enterprises", "must be a list"),
    (["enterprises"], _DELETE, "$.enterprises", "is required"),
])
def test_errors_name_the_field(path: list[Any], value: Any, where: str, message: str) -> None:
    with pytest.raises(RegistryError) as exc:
        parse_registry(_set(doc(), path, value), "fleet.yaml")
    assert exc.value.path == where
    assert message in exc.value.message
    assert str(exc.value).startswith(f"fleet.yaml: {where}: ")


def test_duplicates_are_refused_with_both_places() -> None:
    d = doc()
    gws = d["enterprises"][0]["sites"][0]["gateways"]
    gws[0]["meters"].append(dict(gws[0]["meters"][0]))
    with pytest.raises(RegistryError, match=r"meters\[1\]\.code: duplicate meter code 'it-main'"):
        parse_registry(d)
    d = doc()
    d["enterprises"][0]["sites"].append(copy.deepcopy(d["enterprises"][0]["sites"][0]))
    d["enterprises"][0]["sites"][1]["gateways"][0]["id"] = "gw-b"
    with pytest.raises(RegistryError, match=r"sites\[1\]\.code: duplicate site code 'zw-dc-01' \(first at"):
        parse_registry(d)


def test_files_report_their_path(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("enterprises: [", encoding="utf-8")
    with pytest.raises(RegistryError, match="bad.yaml: \\$: not valid YAML"):
        load_registry_file(bad)
    with pytest.raises(RegistryError, match="cannot read"):
        load_registry_file(tmp_path / "missing.yaml")


@pytest.mark.parametrize("path", sorted((REPO / "examples").rglob("*.yaml")), ids=lambda p: p.name)
def test_every_example_file_parses(path: Path) -> None:
    reg = load_registry_file(path)
    assert reg.enterprises
    assert yaml.safe_load(path.read_text(encoding="utf-8"))["enterprises"]


# ------------------------------------------- conversions, registers, products (issue 14)

PLANT_ENT = "91640181MA76L8XK30"


def plant(meters: list[dict[str, Any]], products: list[dict[str, Any]] | None = None,
          **site: Any) -> dict[str, Any]:
    return {"enterprises": [{
        "id": PLANT_ENT, "name": "宁东化工", "city": "宁东", "industry": "other",
        "sites": [{"code": "nd-chem-01", "name": "一厂", "kind": "plant",
                   "products": products if products is not None else [{"product": "calcium_carbide",
                                                                        "indicator": "kgce_per_t"}],
                   "gateways": [{"id": "gw-nd", "meters": meters}], **site}]}]}


def m(code: str, carrier: str = "electricity", unit: str = "kWh", role: str = "consumed", **kw: Any) -> dict[str, Any]:
    return {"code": code, "carrier": carrier, "unit": unit, "role": role, "kind": "interval", **kw}


OUT = m("carbide-out", "product", "t", "product_output", product="calcium_carbide")
MP = "enterprises[0].sites[0].gateways[0].meters"


def refused(doc: dict[str, Any]) -> RegistryError:
    with pytest.raises(RegistryError) as exc:
        parse_registry(doc, "plant.yaml")
    return exc.value


def test_a_natural_gas_meter_without_its_coefficient_is_refused_with_the_candidates() -> None:
    err = refused(plant([m("kiln-gas", "natural_gas", "m3"), OUT]))
    assert err.path == f"{MP}[0].coefficient"
    # GB/T 2589 Table A.1: gas-field 1.2143, oil-field 1.3300 kgce/m3; the meter is named by its code
    assert "'kiln-gas'" in err.message
    assert "natural_gas_gasfield (1.2143 kgce/m3)" in err.message and "natural_gas_oilfield (1.33 kgce/m3)" in err.message
    # naming one loads
    assert parse_registry(plant([m("kiln-gas", "natural_gas", "m3", coefficient="natural_gas_gasfield"), OUT]))


def test_steam_by_mass_needs_its_pressure_row_and_can_name_it() -> None:
    err = refused(plant([m("steam-in", "steam", "t"), OUT]))
    assert err.path == f"{MP}[0].coefficient"
    for key in ("steam_10MPa", "steam_3.5MPa", "steam_1.0MPa", "steam_0.3MPa", "steam_lt0.3MPa"):
        assert key in err.message
    ok = parse_registry(plant([m("steam-in", "steam", "t", coefficient="steam_3.5MPa"), OUT]))
    assert ok.enterprises[0].sites[0].gateways[0].meters[0].coefficient == "steam_3.5MPa"
    # steam metered as heat needs no row (0.03412 kgce/MJ)
    assert parse_registry(plant([m("steam-in", "steam", "GJ"), OUT]))


def test_every_coefficient_of_analytics_is_loadable() -> None:
    from analytics.coefficients import COEFFICIENTS

    meters = [m(f"m{i}", row.carrier, row.base_unit, coefficient=key) for i, (key, row) in enumerate(COEFFICIENTS.items())]
    reg = parse_registry(plant([*meters, OUT]))
    assert {x.coefficient for x in reg.enterprises[0].sites[0].gateways[0].meters} >= set(COEFFICIENTS)
    assert len(COEFFICIENTS) == 26


@pytest.mark.parametrize(("meter", "where", "words"), [
    (m("x", coefficient="unicorn_dust"), "coefficient", "candidates: electricity_calorific"),
    (m("x", "coke", "kg", coefficient="raw_coal"), "coefficient", "is for 'raw_coal'"),
    (m("x", "unobtainium", "kg"), "coefficient", "known carriers"),
    (m("x", unit="furlong"), "unit", "unknown unit"),
    (m("x", unit="m3", role="it_load"), "unit", "kWh, MWh or GWh"),
    (m("x", "product", "MJ", "product_output", product="calcium_carbide"), "unit", "t, kg or m3"),
    (m("x", "heat", "GJ", "exported", feedstock=True), "feedstock", "only a consumed meter"),
    (m("x", product="methanol"), "product", "does not declare"),
    (m("x", shares={"calcium_carbide": 0.5, "methanol": 0.5}), "shares.methanol", "does not declare"),
    (m("x", shares={"calcium_carbide": 0.5}), "shares", "sum to 0.5, not 1"),
    (m("x", product="calcium_carbide", shares={"calcium_carbide": 1}), "shares", "not both"),
])
def test_meter_errors_name_the_meter(meter: dict[str, Any], where: str, words: str) -> None:
    err = refused(plant([meter, OUT]))
    assert err.path == f"{MP}[0].{where}" and words in err.message and "'x'" in err.message


@pytest.mark.parametrize(("wrap", "modulus"), [
    ({"digits": 8}, 1e8),  # 8 digits: 00 000 000 .. 99 999 999
    ({"digits": 8, "decimals": 2}, 1e6),  # 999 999.99 then 0
    ({"register_max": 99_999_999}, 1e8),  # the installer's form: 99 999 999 + 1
    ({"register_max": 999_999.99}, 1e6),  # + one step of its last decimal, 0.01
    ({"register_max": 65_535}, 65_536.0),  # a 16-bit counter
    ({"rollover": 100_000_000}, 1e8),  # the modulus itself
])
def test_the_wrap_point_in_each_form(wrap: dict[str, Any], modulus: float) -> None:
    reg = parse_registry(plant([m("reg", kind="register", **wrap), OUT]))
    assert reg.enterprises[0].sites[0].gateways[0].meters[0].rollover == modulus


def test_an_eight_digit_register_wrapping_loses_no_unit() -> None:
    from analytics import site_energy as se

    reg = parse_registry(plant([m("reg", kind="register", register_max=99_999_999), OUT]))
    spec = reg.enterprises[0].sites[0].gateways[0].meters[0]
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    s = se.MeterSpec(1, 1, spec.carrier, spec.unit, "consumed", "register", rollover=spec.rollover)
    state, events = se.apply_readings(se.initial_state(), {1: s},
                                      [(1, t0, 99_999_998.0), (1, t0 + timedelta(minutes=15), 3.0)])
    # 99 999 999 − 99 999 998 = 1, + 1 to wrap to 0, + 3 = 5 kWh (a modulus of 99 999 999 gave 4)
    w = se.window_energy(state, {1: s}, t0, t0 + timedelta(minutes=15))
    assert w.quantity_by_meter[1] == 5.0 and [e.kind for e in events] == ["rollover"]


@pytest.mark.parametrize(("meter", "where", "words"), [
    (m("reg", kind="register"), "digits", "a register must say where it wraps"),
    (m("reg", kind="register", rollover=99_999_999), "rollover", "register_max: 99999999 or rollover: 100000000"),
    (m("reg", kind="register", rollover=999_999.99), "rollover", "register_max: 999999.99 or rollover: 1000000"),
    (m("reg", kind="register", digits=8, rollover=100_000_000), "rollover", "not digits and rollover"),
    (m("reg", kind="register", decimals=2, rollover=100_000_000), "decimals", "goes with digits"),
    (m("reg", kind="register", digits=8, decimals=8), "decimals", "no integer digit"),
    (m("reg", kind="register", digits=8.5), "digits", "whole number"),
])
def test_register_wrap_errors(meter: dict[str, Any], where: str, words: str) -> None:
    err = refused(plant([meter, OUT]))
    assert err.path == f"{MP}[0].{where}" and words in err.message


def test_an_interval_meter_needs_no_wrap_point() -> None:
    reg = parse_registry(plant([m("x"), OUT]))
    assert reg.enterprises[0].sites[0].gateways[0].meters[0].rollover is None


PP = "enterprises[0].sites[0].products[0]"


@pytest.mark.parametrize(("product", "where", "words"), [
    ({"product": "steel", "indicator": "kgce_per_t"}, "product", "has no quota row"),
    ({"product": "aluminium", "indicator": "kgce_per_kg"}, "indicator", "kwh_per_t (铝液交流电耗, kWh/t)"),
    ({"product": "silicomanganese", "indicator": "kwh_per_t", "parameters": {"altitude_m": 1}}, "parameters.altitude_m",
     "site fields"),
    ({"product": "silicomanganese", "indicator": "kwh_per_t", "parameters": {"ore_grade_pct": 120}},
     "parameters.ore_grade_pct", "within 0..100"),
    ({"product": "calcium_carbide", "indicator": "kgce_per_t", "parameters": {"ore_grade_pct": 38}},
     "parameters.ore_grade_pct", "none"),
    ({"product": "coal_oil_indirect", "indicator": "kgce_per_toe"}, "parameters.toe_per_t", "tonnes of oil equivalent"),
    ({"product": "calcium_carbide", "indicator": "kwh_per_t", "meters": ["nowhere"]}, "meters[0]", "not a meter"),
])
def test_product_errors(product: dict[str, Any], where: str, words: str) -> None:
    err = refused(plant([m("furnace"), OUT], [product]))
    assert err.path == f"{PP}.{where}" and words in err.message


def test_products_with_their_meters_parameters_and_site_altitude() -> None:
    meters = [m("furnace"), m("aux"), m("ore-coke", "coke", "kg"),
              m("out", "product", "t", "product_output", product="silicomanganese")]
    products: list[dict[str, Any]] = [{"product": "silicomanganese", "indicator": "kwh_per_t", "meters": ["furnace"],
                 "parameters": {"ore_grade_pct": 38}},
                {"product": "silicomanganese", "indicator": "kgce_per_t"}]
    site = parse_registry(plant(meters, products)).enterprises[0].sites[0]
    assert site.products[0].meters == ("gw-nd/furnace",) and site.products[0].parameters == (("ore_grade_pct", 38.0),)
    assert site.products[1].meters == ()
    # a clinker kiln declared at 1 750 m needs the local pressure of GB 16780-2021's factor
    clinker = [{"product": "cement_clinker", "indicator": "kgce_per_t"}]
    kiln = [m("kiln"), m("out", "product", "t", "product_output", product="cement_clinker")]
    err = refused(plant(kiln, clinker, altitude_m=1750))
    assert err.path == "enterprises[0].sites[0].atmospheric_pressure_pa"
    s = parse_registry(plant(kiln, clinker, altitude_m=1750, atmospheric_pressure_pa=82_000)).enterprises[0].sites[0]
    assert (s.altitude_m, s.atmospheric_pressure_pa) == (1750.0, 82_000.0)


def test_shares_and_tags_on_a_two_product_site() -> None:
    products: list[dict[str, Any]] = [{"product": "calcium_carbide", "indicator": "kgce_per_t"},
                                      {"product": "methanol", "indicator": "kgce_per_t"}]
    meters = [m("furnace", product="calcium_carbide"), m("utility", shares={"methanol": 0.75, "calcium_carbide": 0.25}),
              m("coal", "raw_coal", "t", product="methanol", feedstock=True), OUT,
              m("meoh-out", "product", "t", "product_output", product="methanol")]
    got = parse_registry(plant(meters, products)).enterprises[0].sites[0].gateways[0].meters
    assert got[1].shares == (("calcium_carbide", 0.25), ("methanol", 0.75)) and got[2].feedstock
    # an indicator's own meter must be its product's
    bad = [{**products[0], "meters": ["coal"]}, products[1]]
    err = refused(plant(meters, bad))
    assert err.path == f"{PP}.meters[0]" and "not an energy meter of product 'calcium_carbide'" in err.message
