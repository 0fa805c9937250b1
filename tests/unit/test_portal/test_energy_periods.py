"""The energy periods: one list in step across the schema, the queries and the page, the range
limits of the fine periods, and the rolling window taken from the data-centre annual rule."""

from __future__ import annotations

from datetime import date, timedelta
from typing import get_args

import pytest
from fastapi import HTTPException

from alerts.rules.annual import AnnualTceRule
from portal import api, pages, queries
from portal.schemas import Period


def test_every_period_has_a_query_and_a_label() -> None:
    periods = set(get_args(Period))
    assert periods == {"15min", "hour", "day", "month", "year", "rolling12"}
    assert set(queries._PERIOD_TRUNC) == set(queries._PERIOD_GRAIN) == periods - {"rolling12"}
    assert set(pages.PERIOD_LABELS) == periods
    assert set(queries.MAX_DAYS) <= periods


def test_each_grain_reads_its_rollup_through_the_one_formula() -> None:
    grains: list[tuple[queries.Grain, str]] = [("15min", "v_rollup_15m"), ("hour", "v_rollup_1h"),
                                               ("day", "v_rollup_1d")]
    for grain, view in grains:
        sql = queries._qty_sql(grain)
        assert f"FROM {view} r" in sql and "{" not in sql
        # everything but the relation is the same text at every grain
        assert sql.replace(view, "ROLLUP") == queries._DAILY_QTY.replace("v_rollup_1d", "ROLLUP")


def test_rolling_window_is_the_annual_rules() -> None:
    # alerts.rules.annual: AnnualTceRule.period = 365 days (the 10 000 tce data-centre rule)
    assert queries.ROLLING_DAYS == AnnualTceRule().period.days == 365


@pytest.mark.parametrize(("period", "days", "refused"), [
    ("15min", 1, False), ("15min", 31, False), ("15min", 32, True),
    ("hour", 366, False), ("hour", 367, True),
    ("day", 1000, False), ("rolling12", 1000, False),
])
def test_fine_periods_have_a_range_limit(period: str, days: int, refused: bool) -> None:
    d0 = date(2026, 1, 1)
    d1 = d0 + timedelta(days=days - 1)
    if not refused:
        api.check_energy_range(period, d0, d1)
        return
    with pytest.raises(HTTPException) as err:
        api.check_energy_range(period, d0, d1)
    assert err.value.status_code == 422
    assert f"period={period} covers at most {days - 1} local days per request ({days} asked for" in err.value.detail
