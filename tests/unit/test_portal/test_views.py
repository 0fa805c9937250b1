"""Local-time ranges, CSV rendering and formatting."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest
from fastapi import HTTPException

from portal import views


def test_local_day_bounds_are_shanghai_midnights() -> None:
    t0, t1 = views.utc_bounds(date(2026, 3, 1), date(2026, 3, 1))
    assert t0 == datetime(2026, 2, 28, 16, tzinfo=timezone.utc)
    assert t1 == datetime(2026, 3, 1, 16, tzinfo=timezone.utc)


def test_date_range_defaults_and_errors() -> None:
    d0, d1 = views.date_range(None, date(2026, 3, 7))
    assert (d0, d1) == (date(2026, 3, 1), date(2026, 3, 7))
    with pytest.raises(HTTPException) as err:
        views.date_range(date(2026, 3, 8), date(2026, 3, 7))
    assert err.value.status_code == 400
    with pytest.raises(HTTPException):
        views.date_range(date(2020, 1, 1), date(2026, 1, 1))


def test_csv_quotes_and_serialises() -> None:
    out = views.to_csv([{"a": "x,y", "b": None, "c": {"k": 1}, "d": date(2026, 1, 2)}], ["a", "b", "c", "d"])
    assert out == 'a,b,c,d\r\n"x,y",,"{""k"": 1}",2026-01-02\r\n'


def test_local_time_display() -> None:
    assert views.local(datetime(2026, 1, 1, 16, 30, tzinfo=timezone.utc)) == "2026-01-02 00:30"
