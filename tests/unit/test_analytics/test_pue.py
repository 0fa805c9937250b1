from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from analytics.pue import grade, merged_pue, pue


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
