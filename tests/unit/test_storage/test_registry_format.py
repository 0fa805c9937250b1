"""Registry file parsing: defaults, ignored scenario keys, and errors that name the field."""

from __future__ import annotations

import copy
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
                        "kind": "register"}]}]}]}]}


def test_defaults_are_applied() -> None:
    site = parse_registry(doc()).enterprises[0].sites[0]
    assert (site.pue_limit, site.pue_window_hours, site.new_build, site.energy_budget_tce, site.products) == (
        1.2, 720, False, None, ())
    meter = site.gateways[0].meters[0]
    assert (meter.multiplier, meter.rollover, meter.coefficient, meter.product) == (1.0, None, None, None)


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
