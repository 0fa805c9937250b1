"""Grouping a sorted batch into (meter, Asia/Shanghai day) aggregates for the daily rollup."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from storage.rollups import daily_groups, local_day, touched_ranges

CST = timezone(timedelta(hours=8))


def test_local_day_starts_at_16_utc() -> None:
    # 2026-03-01 15:59 UTC is 23:59 local on 03-01; 16:00 UTC is 00:00 local on 03-02
    assert local_day(datetime(2026, 3, 1, 15, 59, tzinfo=UTC)) == datetime(2026, 2, 28, 16, tzinfo=UTC)
    assert local_day(datetime(2026, 3, 1, 16, 0, tzinfo=UTC)) == datetime(2026, 3, 1, 16, tzinfo=UTC)
    assert local_day(datetime(2026, 3, 2, 0, 0, tzinfo=CST)) == datetime(2026, 3, 1, 16, tzinfo=UTC)


def test_groups_split_at_local_midnight_and_per_meter() -> None:
    t = datetime(2026, 3, 1, 15, 30, tzinfo=UTC)  # 23:30 local
    q = timedelta(minutes=15)
    rows = [(1, t, 10.0), (1, t + q, 20.0), (1, t + 2 * q, 5.0), (1, t + 3 * q, 7.0), (2, t, 1.0)]
    cols = daily_groups(rows)
    groups = list(zip(*cols, strict=True))
    day1, day2 = datetime(2026, 2, 28, 16, tzinfo=UTC), datetime(2026, 3, 1, 16, tzinfo=UTC)
    # meter 1: 23:30 and 23:45 local on day 1 (10 + 20 = 30); 00:00 and 00:15 on day 2 (5 + 7 = 12)
    assert groups == [
        (1, day1, 2, 30.0, 10.0, 20.0, t, 10.0, t + q, 20.0),
        (1, day2, 2, 12.0, 5.0, 7.0, t + 2 * q, 5.0, t + 3 * q, 7.0),
        (2, day1, 1, 1.0, 1.0, 1.0, t, 1.0, t, 1.0),
    ]
    assert touched_ranges(rows) == ([1, 2], [t, t], [t + 3 * q, t])
    assert daily_groups([]) == [[] for _ in range(10)]
