"""The energy periods: one list in step across the schema, the read API and the page, the
range limits of the fine periods, the rolling window taken from the data-centre annual rule,
and one SQL text per grain rendered from the definition of energy."""

from __future__ import annotations

from datetime import date, timedelta
from typing import get_args

import pytest
from fastapi import HTTPException

from alerts.rules.annual import AnnualTceRule
from analytics.energy_definition import ROLLOVER_PLAUSIBLE_SHARE
from portal import api, pages
from portal.schemas import Period
from storage.read import energy, energy_sql


def test_every_period_has_a_query_and_a_label() -> None:
    periods = set(get_args(Period))
    assert periods == {"15min", "hour", "day", "month", "year", "rolling12"} == set(get_args(energy.Period))
    assert set(energy.PERIOD_GRAIN) == periods - {"rolling12"}
    assert set(pages.PERIOD_LABELS) == periods
    assert set(energy.MAX_DAYS) <= periods


def test_each_grain_is_the_same_text_but_its_source_and_width() -> None:
    day = energy_sql.quantities_sql("day")
    assert "FROM v_rollup_1d r" in day and "v_readings" not in day
    for grain, width in (("15min", 900), ("hour", 3600)):
        sql = energy_sql.quantities_sql(grain)  # type: ignore[arg-type]
        assert "FROM v_readings r" in sql and f"interval '{width} seconds'" in sql and "{" not in sql
        # from ``chain`` on, only the bucket width differs
        tail, day_tail = sql[sql.index("chain AS"):], day[day.index("chain AS"):]
        assert tail.replace(str(width), "W") == day_tail.replace("86400", "W").replace("W.0", "86400.0")
    # the step rule's constant is the definition's
    assert f"* {ROLLOVER_PLAUSIBLE_SHARE!r})" in day


def test_rolling_window_is_the_annual_rules() -> None:
    # alerts.rules.annual: AnnualTceRule.period = 365 days (the 10 000 tce data-centre rule)
    assert energy.ROLLING_DAYS == AnnualTceRule().period.days == 365


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
