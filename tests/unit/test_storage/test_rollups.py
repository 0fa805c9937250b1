"""Asia/Shanghai day boundaries of the daily rollup (the merge itself runs in PostgreSQL:
tests/integration/test_storage/test_rollup_merge.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from storage.rollups import local_day

CST = timezone(timedelta(hours=8))


def test_local_day_starts_at_16_utc() -> None:
    # 2026-03-01 15:59 UTC is 23:59 local on 03-01; 16:00 UTC is 00:00 local on 03-02
    assert local_day(datetime(2026, 3, 1, 15, 59, tzinfo=UTC)) == datetime(2026, 2, 28, 16, tzinfo=UTC)
    assert local_day(datetime(2026, 3, 1, 16, 0, tzinfo=UTC)) == datetime(2026, 3, 1, 16, tzinfo=UTC)
    assert local_day(datetime(2026, 3, 2, 0, 0, tzinfo=CST)) == datetime(2026, 3, 1, 16, tzinfo=UTC)
