"""Stored readings: raw (the worker's rebuild), downsampled for charts, and a register's first
and last reading over whole local days (the daily checks' month-to-date register difference).

Buckets line up on local (Asia/Shanghai) midnight. Values are raw (the meter's register or
interval value, before its multiplier).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Final

import psycopg
from psycopg.rows import dict_row

from storage.read.energy_sql import ORIGIN


def readings_since(conn: psycopg.Connection[Any], meter_ids: Sequence[int],
                   since: datetime) -> list[tuple[int, datetime, float]]:
    """Raw readings of ``meter_ids`` at or after ``since``, ordered by (ts, meter_id)
    (the worker rebuilds a site's rule state from these)."""
    rows = conn.execute(
        "SELECT meter_id, ts, value FROM v_readings WHERE meter_id = ANY(%s) AND ts >= %s ORDER BY ts, meter_id",
        (list(meter_ids), since)).fetchall()
    return [(int(m), t, float(v)) for m, t, v in rows]


#: Round bucket widths of a downsampled chart, seconds; then whole days.
_WIDTHS_S: Final = (60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400)


def bucket_seconds(t0: datetime, t1: datetime, max_points: int) -> int:
    """The smallest round bucket width giving at most ``max_points`` buckets over [t0, t1)."""
    span = (t1 - t0).total_seconds()
    for step in _WIDTHS_S:
        if span / step <= max_points:
            return step
    days = -(-span // (86400 * max_points))
    return int(days) * 86400


def readings(conn: psycopg.Connection[Any], meter_id: int, t0: datetime, t1: datetime,
             max_points: int) -> tuple[int, list[dict[str, Any]]]:
    """(bucket width s, [{ts, avg, min, max, n}]) of a meter's readings in [t0, t1), at most
    ``max_points`` buckets aligned on local midnight. Buckets under 15 minutes come from
    ``v_readings``, wider ones from ``v_rollup_15m``."""
    step = bucket_seconds(t0, t1, max_points)
    params = {"m": meter_id, "t0": t0, "t1": t1, "step": timedelta(seconds=step)}
    if step < 900:
        sql = (f"SELECT date_bin(%(step)s, ts, {ORIGIN}) AS ts, avg(value) AS avg, min(value) AS min,"
               " max(value) AS max, count(*)::int AS n FROM v_readings"
               " WHERE meter_id = %(m)s AND ts >= %(t0)s AND ts < %(t1)s GROUP BY 1 ORDER BY 1")
    else:
        sql = (f"SELECT date_bin(%(step)s, bucket, {ORIGIN}) AS ts, sum(sum_value) / sum(n) AS avg,"
               " min(min_value) AS min, max(max_value) AS max, sum(n)::int AS n FROM v_rollup_15m"
               " WHERE meter_id = %(m)s AND bucket >= %(t0)s AND bucket < %(t1)s GROUP BY 1 ORDER BY 1")
    with conn.cursor(row_factory=dict_row) as cur:
        return step, cur.execute(sql, params).fetchall()


Reading = tuple[datetime, float]


def first_and_last(conn: psycopg.Connection[Any], meter_ids: Sequence[int], start: datetime,
                   end: datetime) -> dict[int, tuple[Reading, Reading]]:
    """Per meter, its first and last reading (ts, raw value) in [start, end) of whole local
    days (from the daily rollup); meters without a reading there are left out."""
    rows = conn.execute(
        "SELECT meter_id, min(first_ts), (min(ARRAY[extract(epoch FROM first_ts)::float8, first_value]))[2],"
        " max(last_ts), (max(ARRAY[extract(epoch FROM last_ts)::float8, last_value]))[2]"
        " FROM v_rollup_1d WHERE meter_id = ANY(%s) AND bucket >= %s AND bucket < %s GROUP BY meter_id",
        (list(meter_ids), start, end)).fetchall()
    return {int(m): ((t0, float(v0)), (t1, float(v1))) for m, t0, v0, t1, v1 in rows}
