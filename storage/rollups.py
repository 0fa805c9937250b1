"""Native-path rollups (``rollup_15m``, ``rollup_1d``), maintained inside the ingest transaction.

Each rollup row holds value statistics of one meter in one bucket (count, sum, min, max,
first and last value with their timestamps), never energy: a register meter's energy in a
bucket is ``last_value - previous bucket's last_value`` and is taken at query time.

Maintenance per ``write_batch`` (readings are insert-only, which is what makes this exact):
1. ``rollup_15m``: every 15-minute bucket between each touched meter's earliest and latest
   timestamp in the batch is *recomputed* from ``readings`` -- late and out-of-order data
   simply re-aggregate their bucket.
2. ``rollup_1d`` (Asia/Shanghai days): merged with the *difference* between the recomputed
   15-minute rows and their previous state (same statement, same snapshot), so a day is never
   rescanned: count and sum add the delta, min/max/first/last combine.
``rebuild`` recomputes both from ``readings`` over a range (repair, or after a bulk load
that bypassed ``write_batch``).

With TimescaleDB these relations are continuous aggregates and nothing here runs.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any, Final

import psycopg

# Bucket origins: UTC quarter-hours are also local quarter-hours; local (Asia/Shanghai,
# UTC+8, no daylight saving since 1991) midnight is 16:00 UTC.
ORIGIN_UTC: Final = "2000-01-01 00:00:00+00"
ORIGIN_LOCAL_DAY: Final = "2000-01-01 00:00:00+08"

Row = tuple[int, datetime, float]


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


_STATS = """
  count(*)::integer AS n, sum(r.value) AS sum_value, min(r.value) AS min_value, max(r.value) AS max_value,
  min(r.ts) AS first_ts, (min(ARRAY[extract(epoch FROM r.ts)::float8, r.value]))[2] AS first_value,
  max(r.ts) AS last_ts, (max(ARRAY[extract(epoch FROM r.ts)::float8, r.value]))[2] AS last_value"""

_MERGE_1D = f"""
INSERT INTO rollup_1d AS d
SELECT f.meter_id, date_bin(INTERVAL '1 day', f.bucket, TIMESTAMPTZ '{ORIGIN_LOCAL_DAY}') AS bucket,
       sum(f.n - coalesce(o.n, 0))::integer,
       sum(f.sum_value - coalesce(o.sum_value, 0)),
       min(f.min_value), max(f.max_value),
       min(f.first_ts), (min(ARRAY[extract(epoch FROM f.first_ts)::float8, f.first_value]))[2],
       max(f.last_ts), (max(ARRAY[extract(epoch FROM f.last_ts)::float8, f.last_value]))[2]
FROM fresh f LEFT JOIN old o USING (meter_id, bucket)
GROUP BY 1, 2
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

_UPSERT_15M = """
INSERT INTO rollup_15m SELECT * FROM fresh
ON CONFLICT (meter_id, bucket) DO UPDATE SET
  n = EXCLUDED.n, sum_value = EXCLUDED.sum_value, min_value = EXCLUDED.min_value,
  max_value = EXCLUDED.max_value, first_ts = EXCLUDED.first_ts, first_value = EXCLUDED.first_value,
  last_ts = EXCLUDED.last_ts, last_value = EXCLUDED.last_value
"""

_UPDATE = f"""
WITH t AS (
  SELECT * FROM unnest(%s::integer[], %s::timestamptz[], %s::timestamptz[]) AS t(meter_id, lo, hi)
), fresh AS (
  SELECT r.meter_id, date_bin(INTERVAL '15 minutes', r.ts, TIMESTAMPTZ '{ORIGIN_UTC}') AS bucket, {_STATS}
  FROM t JOIN readings r ON r.meter_id = t.meter_id
   AND r.ts >= date_bin(INTERVAL '15 minutes', t.lo, TIMESTAMPTZ '{ORIGIN_UTC}')
   AND r.ts < date_bin(INTERVAL '15 minutes', t.hi, TIMESTAMPTZ '{ORIGIN_UTC}') + INTERVAL '15 minutes'
  GROUP BY 1, 2
), old AS (
  SELECT o.* FROM rollup_15m o JOIN fresh f USING (meter_id, bucket)
), up AS ({_UPSERT_15M})
{_MERGE_1D}
"""


def update(conn: psycopg.Connection[Any], rows: Sequence[Row]) -> None:
    """Bring the rollups up to date with ``rows`` (sorted by (meter_id, ts), already stored)."""
    if not rows:
        return
    ids, los, his = touched_ranges(rows)
    conn.execute(_UPDATE, (ids, los, his))


def rebuild(conn: psycopg.Connection[Any], start: datetime, end: datetime) -> None:
    """Recompute both rollups exactly from ``readings`` for the local days overlapping
    [start, end) (as the owner, the ingest role or a superuser)."""
    day = f"date_bin(INTERVAL '1 day', %s::timestamptz, TIMESTAMPTZ '{ORIGIN_LOCAL_DAY}')"
    lo, hi = f"{day}", f"{day} + INTERVAL '1 day'"
    conn.execute(f"DELETE FROM rollup_15m WHERE bucket >= {lo} AND bucket < {hi}", (start, end))
    conn.execute(f"DELETE FROM rollup_1d WHERE bucket >= {lo} AND bucket < {hi}", (start, end))
    conn.execute(f"""
        INSERT INTO rollup_15m
        SELECT r.meter_id, date_bin(INTERVAL '15 minutes', r.ts, TIMESTAMPTZ '{ORIGIN_UTC}'), {_STATS}
        FROM readings r WHERE r.ts >= {lo} AND r.ts < {hi} GROUP BY 1, 2""", (start, end))
    conn.execute(f"""
        INSERT INTO rollup_1d
        SELECT r.meter_id, date_bin(INTERVAL '1 day', r.ts, TIMESTAMPTZ '{ORIGIN_LOCAL_DAY}'), {_STATS}
        FROM readings r WHERE r.ts >= {lo} AND r.ts < {hi} GROUP BY 1, 2""", (start, end))
