"""The daily rollup merge runs in PostgreSQL (storage.rollups.merge_sql): per meter and
Asia/Shanghai day, from exactly the rows a write inserted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from storage.ingest import write_batch
from tests.integration.test_storage.conftest import Db, load_demo, meter_ids

pytestmark = pytest.mark.integration

COLS = "bucket, n, sum_value, min_value, max_value, first_ts, first_value, last_ts, last_value"


def test_groups_split_at_local_midnight_and_per_meter(nativedb: Db) -> None:
    db = nativedb  # the native daily level (TimescaleDB: a continuous aggregate)
    load_demo(db)
    m = meter_ids(db)
    a, b = m["gw-nd-a/power"], m["gw-nd-a/coke"]
    t = datetime(2026, 3, 1, 15, 30, tzinfo=UTC)  # 23:30 local
    q = timedelta(minutes=15)
    rows = [(a, t + 3 * q, 7.0), (a, t, 10.0), (b, t, 1.0), (a, t + q, 20.0), (a, t + 2 * q, 5.0)]  # unsorted
    with db.connect("nxem_ingest") as conn:
        first = write_batch(conn, rows, [], [])
        replay = write_batch(conn, rows, [], [])  # changes nothing, rollup included
    assert (first.inserted, replay.inserted, replay.duplicates) == (5, 0, 5)
    day1, day2 = datetime(2026, 2, 28, 16, tzinfo=UTC), datetime(2026, 3, 1, 16, tzinfo=UTC)
    got = {mid: db.sql(f"SELECT {COLS} FROM rollup_1d WHERE meter_id = %s ORDER BY bucket", (mid,)) for mid in (a, b)}
    # meter a: 23:30 and 23:45 local on day 1 (10 + 20 = 30); 00:00 and 00:15 on day 2 (5 + 7 = 12)
    assert got[a] == [
        (day1, 2, 30.0, 10.0, 20.0, t, 10.0, t + q, 20.0),
        (day2, 2, 12.0, 5.0, 7.0, t + 2 * q, 5.0, t + 3 * q, 7.0),
    ]
    assert got[b] == [(day1, 1, 1.0, 1.0, 1.0, t, 1.0, t, 1.0)]


def test_a_batch_with_some_new_rows_merges_only_the_new_ones(nativedb: Db) -> None:
    db = nativedb  # the native daily level (TimescaleDB: a continuous aggregate)
    load_demo(db)
    a = meter_ids(db)["gw-nd-a/power"]
    t = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)  # 08:00 local, day starting 2026-02-28T16:00Z
    q = timedelta(minutes=15)
    with db.connect("nxem_ingest") as conn:
        write_batch(conn, [(a, t, 4.0), (a, t + q, 6.0)], [], [])
        mixed = write_batch(conn, [(a, t + q, 6.0), (a, t + 2 * q, 9.0)], [], [])
    assert (mixed.inserted, mixed.duplicates, mixed.staged) == (1, 1, True)
    # 4 + 6 + 9 = 19 over 3 readings, not 25 over 4
    assert db.sql("SELECT n, sum_value, last_value FROM rollup_1d WHERE meter_id = %s", (a,)) == [(3, 19.0, 9.0)]


def test_closed_days_and_a_late_reading_into_one(nativedb: Db) -> None:
    db = nativedb  # the native daily level (TimescaleDB: a continuous aggregate)
    from storage import rollups

    load_demo(db)
    a = meter_ids(db)["gw-nd-a/power"]
    t = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)  # 08:00 local on 03-01 (day bucket 02-28T16:00Z)
    h = timedelta(hours=1)
    day = datetime(2026, 2, 28, 16, tzinfo=UTC)
    with db.connect("nxem_ingest") as conn:
        write_batch(conn, [(a, t, 4.0), (a, t + h, 6.0), (a, t + 24 * h, 1.0)], [], [])  # day 1: 4 + 6; day 2: 1
        live = db.sql(f"SELECT {COLS} FROM rollup_1d WHERE meter_id = %s ORDER BY bucket", (a,))
        # close everything that ended an hour before 2026-03-10 (several calls: max 3 days each)
        while (res := rollups.maintain(conn, datetime(2026, 3, 10, tzinfo=UTC))).closed_days:
            pass
        assert res.closed_through == datetime(2026, 3, 8, 16, tzinfo=UTC)  # local 03-09 is the last ended day
        assert db.sql("SELECT count(*) FROM rollup_1d_closed WHERE meter_id = %s", (a,)) == [(2,)]
        assert db.sql(f"SELECT {COLS} FROM rollup_1d WHERE meter_id = %s ORDER BY bucket", (a,)) == live
        # a late reading for closed day 1: seen at once through the view, then recomputed
        late = write_batch(conn, [(a, t + 2 * h, 5.0)], [], [])
        assert late.inserted == 1
        assert db.sql("SELECT bucket FROM rollup_dirty WHERE meter_id = %s", (a,)) == [(day,)]
        # day 1 = 4 + 6 + 5 = 15 over 3 readings, last at 10:00 local
        expect = (day, 3, 15.0, 4.0, 6.0, t, 4.0, t + 2 * h, 5.0)
        assert db.sql(f"SELECT {COLS} FROM rollup_1d WHERE meter_id = %s AND bucket = %s", (a, day)) == [expect]
        assert rollups.maintain(conn, datetime(2026, 3, 10, tzinfo=UTC)).recomputed == 1
    assert db.sql("SELECT count(*) FROM rollup_dirty") == [(0,)]
    assert db.sql(f"SELECT {COLS} FROM rollup_1d_closed WHERE meter_id = %s AND bucket = %s", (a, day)) == [expect]
    assert db.sql(f"SELECT {COLS} FROM rollup_1d WHERE meter_id = %s AND bucket = %s", (a, day)) == [expect]
