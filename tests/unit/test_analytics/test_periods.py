from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from analytics.periods import local_date, local_start, next_local_year
from analytics.site_energy import local_day_start


def test_reading_at_1630z_belongs_to_the_next_local_day() -> None:
    ts = datetime(2026, 1, 1, 16, 30, tzinfo=UTC)  # = 2026-01-02 00:30 Asia/Shanghai
    assert local_date(ts) == "2026-01-02"
    assert local_start(ts, "day") == datetime(2026, 1, 1, 16, 0, tzinfo=UTC)
    assert local_day_start(ts) == datetime(2026, 1, 1, 16, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("ts", "period", "start"),
    [
        (datetime(2026, 3, 15, 3, tzinfo=UTC), "month", datetime(2026, 2, 28, 16, tzinfo=UTC)),
        (datetime(2026, 1, 1, 15, 59, tzinfo=UTC), "year", datetime(2025, 12, 31, 16, tzinfo=UTC)),
        (datetime(2025, 12, 31, 16, 0, tzinfo=UTC), "year", datetime(2025, 12, 31, 16, tzinfo=UTC)),
    ],
)
def test_local_period_starts(ts: datetime, period: str, start: datetime) -> None:
    assert local_start(ts, period) == start  # type: ignore[arg-type]


def test_next_local_year() -> None:
    assert next_local_year(datetime(2026, 6, 1, tzinfo=UTC)) == datetime(2026, 12, 31, 16, tzinfo=UTC)


def test_fixed_utc_plus_8_agrees_with_zoneinfo_since_1992() -> None:
    tz = ZoneInfo("Asia/Shanghai")
    t = datetime(1992, 1, 1, tzinfo=UTC)
    while t.year < 2040:
        assert t.astimezone(tz).utcoffset() == timedelta(hours=8)
        assert local_date(t) == t.astimezone(tz).date().isoformat()
        t += timedelta(days=17, hours=5)
