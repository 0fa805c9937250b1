"""Native-path daily rollup (``rollup_1d``): closed days materialised, the rest live.

A row holds value statistics of one meter on one Asia/Shanghai day (count, sum, min, max,
first and last value with their timestamps), never energy: a register meter's energy on a
day is ``last_value − the previous day's last_value`` and is taken at query time.

Migration 0007 explains the shape: ``rollup_1d_closed`` holds the days up to
``rollup_state.closed_through``; ``rollup_1d`` is a view that reads those and aggregates
every later day, and every (meter, day) marked in ``rollup_dirty``, live from ``readings``.
* ingest marks the closed days a write touched (``mark_dirty_rows`` after the direct COPY:
  one single-row query when every row is live; ``mark_dirty_sql`` in the staged path's
  statement), under a FOR SHARE lock on ``rollup_state``;
* ``maintain`` (a worker's background job) closes the days that ended, recomputes the dirty
  pairs, and advances ``closed_through`` under FOR UPDATE: no day closes while a write into
  it is in flight, so the view is exact at every moment, late data included.
``rebuild`` recomputes closed days from ``readings`` (repair, or after a bulk load).

The 15-minute and hourly levels are views over ``readings`` (migration 0004). With
TimescaleDB all three are continuous aggregates and nothing here runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import psycopg

from nxem.localtime import ORIGIN_SQL

#: Local (Asia/Shanghai, UTC+8, no daylight saving since 1991) midnight, as the bucket origin.
ORIGIN_LOCAL_DAY_SQL: Final = ORIGIN_SQL
ORIGIN_LOCAL_DAY: Final = datetime(1999, 12, 31, 16, 0, tzinfo=UTC)
DAY: Final = timedelta(days=1)


def local_day(ts: datetime) -> datetime:
    """Start (as an aware UTC datetime) of the Asia/Shanghai day containing ``ts``."""
    return ORIGIN_LOCAL_DAY + ((ts - ORIGIN_LOCAL_DAY) // DAY) * DAY


_STATS = """
  count(*)::integer, sum(r.value), min(r.value), max(r.value),
  min(r.ts), (min(ARRAY[extract(epoch FROM r.ts)::float8, r.value]))[2],
  max(r.ts), (max(ARRAY[extract(epoch FROM r.ts)::float8, r.value]))[2]"""


def rebuild(conn: psycopg.Connection[Any], start: datetime, end: datetime) -> None:
    """Recompute the closed days overlapping [start, end) exactly from ``readings`` (as the
    owner, the ingest role or a superuser). Days after ``closed_through`` are live already."""
    lo, hi = local_day(start), local_day(end - timedelta(microseconds=1)) + DAY
    conn.execute("DELETE FROM rollup_1d_closed WHERE bucket >= %s AND bucket < %s", (lo, hi))
    conn.execute(f"""
        INSERT INTO rollup_1d_closed
        SELECT r.meter_id, date_bin(INTERVAL '1 day', r.ts, {ORIGIN_LOCAL_DAY_SQL}), {_STATS}
        FROM readings r WHERE r.ts >= %s AND r.ts < %s GROUP BY 1, 2""", (lo, hi))


def mark_dirty_sql(source: str) -> str:
    """Mark the closed (meter, day) pairs that rows of ``source`` (rows this transaction
    inserted) fall into. Takes ``rollup_state`` FOR SHARE: ``maintain`` waits for this
    transaction before it can close another day."""
    return f"""
INSERT INTO rollup_dirty (meter_id, bucket)
SELECT DISTINCT s.meter_id, date_bin(INTERVAL '1 day', s.ts, {ORIGIN_LOCAL_DAY_SQL})
FROM {source} s, (SELECT closed_through FROM rollup_state FOR SHARE) st
WHERE s.ts < st.closed_through + INTERVAL '1 day'
ON CONFLICT DO NOTHING"""


_CLOSED_THROUGH_FOR_SHARE: Final = "SELECT closed_through FROM rollup_state FOR SHARE"
_MARK_PAIRS: Final = f"""
INSERT INTO rollup_dirty (meter_id, bucket)
SELECT DISTINCT u.meter_id, date_bin(INTERVAL '1 day', u.ts, {ORIGIN_LOCAL_DAY_SQL})
FROM unnest(%s::integer[], %s::timestamptz[]) AS u (meter_id, ts)
ON CONFLICT DO NOTHING"""


def mark_dirty_rows(conn: psycopg.Connection[Any], rows: Sequence[tuple[int, datetime, float]],
                    oldest: datetime) -> int:
    """``mark_dirty_sql`` for rows this transaction inserted without a staging table (``oldest``:
    their earliest ``ts``): the same FOR SHARE lock, and live data -- every row after the
    closed days, the usual poll -- costs one single-row query; returns the rows marked."""
    row = conn.execute(_CLOSED_THROUGH_FOR_SHARE).fetchone()
    if row is None or row[0] is None:
        return 0
    bound = row[0] + DAY  # the first moment after the closed days
    if oldest >= bound:
        return 0
    late = [(m, t) for m, t, _v in rows if t < bound]
    conn.execute(_MARK_PAIRS, ([m for m, _ in late], [t for _, t in late]))
    return len(late)


@dataclass(frozen=True, slots=True)
class MaintainResult:
    closed_days: int
    recomputed: int  # dirty (meter, day) pairs recomputed
    closed_through: datetime | None


_RECOMPUTE_DIRTY = f"""
WITH d AS (DELETE FROM rollup_dirty RETURNING meter_id, bucket)
INSERT INTO rollup_1d_closed AS c
SELECT r.meter_id, d.bucket, {_STATS}
FROM d JOIN readings r ON r.meter_id = d.meter_id AND r.ts >= d.bucket AND r.ts < d.bucket + INTERVAL '1 day'
GROUP BY r.meter_id, d.bucket
ON CONFLICT (meter_id, bucket) DO UPDATE SET
  n = EXCLUDED.n, sum_value = EXCLUDED.sum_value, min_value = EXCLUDED.min_value,
  max_value = EXCLUDED.max_value, first_ts = EXCLUDED.first_ts, first_value = EXCLUDED.first_value,
  last_ts = EXCLUDED.last_ts, last_value = EXCLUDED.last_value
"""


def maintain(conn: psycopg.Connection[Any], now: datetime, grace: timedelta = timedelta(hours=1),
             max_days: int = 3) -> MaintainResult:
    """Close the local days that ended at least ``grace`` ago (at most ``max_days`` per call,
    so one call stays short) and recompute the dirty pairs, in one transaction."""
    with conn.transaction():
        row = conn.execute("SELECT closed_through FROM rollup_state FOR UPDATE").fetchone()
        closed_through: datetime | None = row[0] if row else None
        last_closable = local_day(now - grace) - DAY
        if closed_through is None:
            first = conn.execute(
                "SELECT min(c.relname) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = 'public.readings'::regclass").fetchone()
            if first is None or first[0] is None:
                return MaintainResult(0, 0, None)
            day0 = datetime.strptime(first[0][-8:], "%Y%m%d").replace(tzinfo=UTC)
            start = local_day(day0) - DAY  # the partition's UTC day may begin the local day before
        else:
            start = closed_through + DAY
        closed = 0
        day = start
        while day <= last_closable and closed < max_days:
            rebuild(conn, day, day + DAY)
            conn.execute("DELETE FROM rollup_dirty WHERE bucket = %s", (day,))
            closed_through, day, closed = day, day + DAY, closed + 1
        recomputed = conn.execute(_RECOMPUTE_DIRTY).rowcount
        conn.execute("UPDATE rollup_state SET closed_through = %s", (closed_through,))
    return MaintainResult(closed, max(recomputed, 0), closed_through)
