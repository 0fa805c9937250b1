"""Native-path daily rollup (``rollup_1d``), maintained inside the ingest transaction.

A row holds value statistics of one meter on one Asia/Shanghai day (count, sum, min, max,
first and last value with their timestamps), never energy: a register meter's energy on a
day is ``last_value − the previous day's last_value`` and is taken at query time.

``merge`` gets exactly the rows the transaction inserted (all of them on the COPY fast path,
the ``RETURNING`` rows on the staged path), groups them per (meter, local day) here -- a
slice and a bisect per group on the already sorted batch, ~20 ms per 100 k rows -- and
merges each group into its day: count and sum add, min/max/first/last combine. Readings are
insert-only, which is what makes the merge exact, for late and out-of-order data too.
``rebuild`` recomputes days from ``readings`` (repair, or after a bulk load that bypassed
``write_batch``).

The 15-minute and hourly levels are views over ``readings`` (migration 0004). With
TimescaleDB all three are continuous aggregates and nothing here runs.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import Any, Final

import psycopg

#: Local (Asia/Shanghai, UTC+8, no daylight saving since 1991) midnight, as the bucket origin.
ORIGIN_LOCAL_DAY_SQL: Final = "TIMESTAMPTZ '2000-01-01 00:00:00+08'"
ORIGIN_LOCAL_DAY: Final = datetime(1999, 12, 31, 16, 0, tzinfo=UTC)
DAY: Final = timedelta(days=1)

Row = tuple[int, datetime, float]
_TS = itemgetter(1)


def touched_ranges(rows: Sequence[Row]) -> tuple[list[int], list[datetime], list[datetime]]:
    """(meter ids, earliest ts, latest ts) per meter of rows sorted by (meter_id, ts)."""
    ids: list[int] = []
    los: list[datetime] = []
    his: list[datetime] = []
    i, n = 0, len(rows)
    key = itemgetter(0)
    while i < n:
        meter = rows[i][0]
        j = bisect_right(rows, meter, lo=i, key=key)
        ids.append(meter)
        los.append(rows[i][1])
        his.append(rows[j - 1][1])
        i = j
    return ids, los, his


def local_day(ts: datetime) -> datetime:
    """Start (as an aware UTC datetime) of the Asia/Shanghai day containing ``ts``."""
    return ORIGIN_LOCAL_DAY + ((ts - ORIGIN_LOCAL_DAY) // DAY) * DAY


def daily_groups(rows: Sequence[Row]) -> list[list[Any]]:
    """Column lists (meter, day, n, sum, min, max, first_ts, first, last_ts, last) of the
    rows sorted by (meter_id, ts), one entry per (meter, local day)."""
    cols: list[list[Any]] = [[] for _ in range(10)]
    ids, _, _ = touched_ranges(rows)
    start = 0
    for meter in ids:
        end = bisect_right(rows, meter, lo=start, key=itemgetter(0))
        i = start
        while i < end:
            day = local_day(rows[i][1])
            j = bisect_left(rows, day + DAY, lo=i, hi=end, key=_TS)
            values = [r[2] for r in rows[i:j]]
            for col, v in zip(cols, (meter, day, j - i, sum(values), min(values), max(values),
                                     rows[i][1], rows[i][2], rows[j - 1][1], rows[j - 1][2]), strict=True):
                col.append(v)
            i = j
        start = end
    return cols


_MERGE = """
INSERT INTO rollup_1d AS d (meter_id, bucket, n, sum_value, min_value, max_value, first_ts, first_value,
                            last_ts, last_value)
SELECT * FROM unnest(%s::integer[], %s::timestamptz[], %s::integer[], %s::float8[], %s::float8[], %s::float8[],
                     %s::timestamptz[], %s::float8[], %s::timestamptz[], %s::float8[])
ON CONFLICT (meter_id, bucket) DO UPDATE SET
  n = d.n + EXCLUDED.n,
  sum_value = d.sum_value + EXCLUDED.sum_value,
  min_value = least(d.min_value, EXCLUDED.min_value),
  max_value = greatest(d.max_value, EXCLUDED.max_value),
  first_ts = least(d.first_ts, EXCLUDED.first_ts),
  first_value = CASE WHEN EXCLUDED.first_ts < d.first_ts THEN EXCLUDED.first_value ELSE d.first_value END,
  last_ts = greatest(d.last_ts, EXCLUDED.last_ts),
  last_value = CASE WHEN EXCLUDED.last_ts > d.last_ts THEN EXCLUDED.last_value ELSE d.last_value END
"""


def merge(conn: psycopg.Connection[Any], inserted: Sequence[Row]) -> None:
    """Merge rows this transaction inserted (sorted by (meter_id, ts)) into ``rollup_1d``."""
    if inserted:
        conn.execute(_MERGE, daily_groups(inserted))


_STATS = """
  count(*)::integer, sum(r.value), min(r.value), max(r.value),
  min(r.ts), (min(ARRAY[extract(epoch FROM r.ts)::float8, r.value]))[2],
  max(r.ts), (max(ARRAY[extract(epoch FROM r.ts)::float8, r.value]))[2]"""


def rebuild(conn: psycopg.Connection[Any], start: datetime, end: datetime) -> None:
    """Recompute ``rollup_1d`` exactly from ``readings`` for the local days overlapping
    [start, end) (as the owner, the ingest role or a superuser)."""
    lo, hi = local_day(start), local_day(end - timedelta(microseconds=1)) + DAY
    conn.execute("DELETE FROM rollup_1d WHERE bucket >= %s AND bucket < %s", (lo, hi))
    conn.execute(f"""
        INSERT INTO rollup_1d
        SELECT r.meter_id, date_bin(INTERVAL '1 day', r.ts, {ORIGIN_LOCAL_DAY_SQL}), {_STATS}
        FROM readings r WHERE r.ts >= %s AND r.ts < %s GROUP BY 1, 2""", (lo, hi))
