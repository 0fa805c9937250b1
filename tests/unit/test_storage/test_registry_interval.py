"""Registry file: a meter's reading interval and a data centre's size (issue 14)."""

from __future__ import annotations

from typing import Any

import pytest

from storage.registry_format import RegistryError, parse_registry

ENT = "91640500MA76L8XK3A"


def doc(meter: dict[str, Any] | None = None, **site: Any) -> dict[str, Any]:
    m = {"code": "it-main", "carrier": "electricity", "unit": "kWh", "role": "it_load", "kind": "register",
         "digits": 9, **(meter or {})}
    return {"enterprises": [{"id": ENT, "name": "中卫云数据有限公司", "city": "中卫", "industry": "data_centre",
                             "sites": [{"code": "zw-dc-01", "name": "一号", "kind": "data_centre", **site,
                                        "gateways": [{"id": "gw-a", "meters": [m]}]}]}]}


def meter_interval(value: Any) -> int:
    return parse_registry(doc({"interval": value})).enterprises[0].sites[0].gateways[0].meters[0].interval_s


@pytest.mark.parametrize(("value", "seconds"), [
    ("15m", 900), ("15min", 900), ("30m", 1800), ("1h", 3600), ("1d", 86_400), (900, 900), ("60s", 60),
    (3600.0, 3600), ("5", 5),
])
def test_interval_in_seconds(value: Any, seconds: int) -> None:
    assert meter_interval(value) == seconds


@pytest.mark.parametrize(("value", "why"), [
    (0, "positive whole number"), (-900, "positive whole number"), (1.5, "positive whole number"),
    ("PT15M", "positive whole number"), (True, "positive whole number"), (None, "positive whole number"),
    ("7m", "does not divide a day"),  # 86 400 / 420 = 205.7 readings a day
    (90_000, "does not divide a day"),  # longer than a day
])
def test_an_interval_that_is_not_a_divisor_of_a_day_is_refused_with_the_meter(value: Any, why: str) -> None:
    with pytest.raises(RegistryError) as exc:
        meter_interval(value)
    assert exc.value.path == "enterprises[0].sites[0].gateways[0].meters[0].interval"
    assert why in exc.value.message and "'it-main'" in exc.value.message


def test_size_and_limit_fields() -> None:
    site = parse_registry(doc(new_build=True, standard_racks=3000, it_capacity_kw=7500.0)).enterprises[0].sites[0]
    assert (site.new_build, site.standard_racks, site.it_capacity_kw, site.pue_limit) == (True, 3000, 7500.0, None)
    for bad in ({"standard_racks": 2.5}, {"standard_racks": -1}, {"it_capacity_kw": 0}, {"pue_limit": 0.9}):
        with pytest.raises(RegistryError) as exc:
            parse_registry(doc(**bad))
        assert exc.value.path == f"enterprises[0].sites[0].{next(iter(bad))}"
