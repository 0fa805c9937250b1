from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from analytics.pue import SizeClass, above, grade, merged_pue, pue, site_limit, size_class


def test_ten_megawatt_data_centre_worked_example() -> None:
    # 10 MW IT × 8 760 h = 87 600 MWh; × PUE 1.2 = 105 120 MWh facility
    it_kwh = 10_000 * 8760.0
    assert pue(it_kwh * 1.2, it_kwh) == pytest.approx(1.2)


@pytest.mark.parametrize(("fac", "it"), [(100.0, 0.0), (0.0, 0.0), (5.0, -1.0)])
def test_zero_or_missing_it_energy_has_no_pue(fac: float, it: float) -> None:
    assert pue(fac, it) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1.15, "1级"), (1.20, "1级"), (1.25, "2级"), (1.30, "2级"), (1.45, "3级"), (1.50, "3级"),
     (1.6, "超过3级(不达标)"), (None, None)],
)
def test_gb40879_grade(value: float | None, expected: str | None) -> None:
    assert grade(value) == expected


def test_merged_pue_is_energy_weighted_not_the_plain_mean() -> None:
    # window A: 1 200 / 1 000 = 1.2; window B: 150 / 100 = 1.5; merged 1 350 / 1 100 = 1.2273 (mean would be 1.35)
    assert merged_pue([(1200.0, 1000.0), (150.0, 100.0)]) == pytest.approx(1350 / 1100)


pos = st.floats(min_value=0.001, max_value=1e6, allow_nan=False)


@given(st.lists(st.tuples(pos, pos), min_size=1, max_size=20))
def test_merged_pue_equals_it_weighted_mean_of_window_pues(windows: list[tuple[float, float]]) -> None:
    it_total = sum(i for _, i in windows)
    weighted = sum((f / i) * i for f, i in windows) / it_total
    assert merged_pue(windows) == pytest.approx(weighted, rel=1e-9)


@pytest.mark.parametrize(("racks", "it_kw", "expected"), [
    (10_000, None, "very_large"),  # 超大型 ≥ 10 000 standard racks
    (9_999, None, "large"),  # 大型 3 000 ≤ racks < 10 000
    (3_000, None, "large"),
    (2_999, None, "small_medium"),  # 中小型 < 3 000
    (None, 25_000.0, "very_large"),  # 25 000 kW / 2.5 kW a rack = 10 000 racks
    (None, 8_000.0, "large"),  # 8 MW IT = 3 200 racks
    (None, 7_497.5, "small_medium"),  # 2 999 racks
    (2_000, 30_000.0, "small_medium"),  # the racks, when given, decide
    (None, None, None),
])
def test_size_class_by_standard_racks_or_it_capacity(racks: int | None, it_kw: float | None,
                                                      expected: str | None) -> None:
    assert size_class(racks, it_kw) == expected


@pytest.mark.parametrize(("explicit", "new_build", "size", "limit"), [
    (None, True, "large", 1.2),  # Ningxia plan: new large and very large centres
    (None, True, "very_large", 1.2),
    (None, True, "small_medium", 1.5),  # GB 40879-2021 3级 limit value for the rest
    (None, True, None, 1.5),  # size unknown: not known to be large
    (None, False, "very_large", 1.5),  # an existing centre
    (1.25, False, "small_medium", 1.25),  # the site's own limit wins
])
def test_site_limit(explicit: float | None, new_build: bool, size: SizeClass | None, limit: float) -> None:
    value, source = site_limit(explicit, new_build, size)
    assert value == limit
    assert source.startswith("Ningxia plan") == (explicit is None and limit == 1.2)
    assert source.startswith("GB 40879-2021") == (limit == 1.5)


@pytest.mark.parametrize(("value", "over"), [
    (1.178, False), (1.2, False), (1.204, False),  # 1.204 is 1.20 at the limits' precision: on the limit
    (1.205, True), (1.21, True),  # 1.205 -> 1.21 (half up) > 1.20
])
def test_above_the_limit_at_its_precision(value: float, over: bool) -> None:
    assert above(value, 1.2) is over
