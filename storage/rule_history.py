"""What a worker rebuilds a site's rule state from: the daily rollup rows of its meters.

The last days come from the raw readings (``storage.read.readings.readings_since``); the days
before, up to the annual rules' horizon, from ``v_rollup_1d`` (one row per meter and
Asia/Shanghai day: count, sum, min, max, first and last reading -- the same view, table or
continuous aggregate on both backends). ``analytics.day_totals`` turns the rows into day
totals counted as the streaming state counts them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from analytics.day_totals import DayRollup


def day_rollups(conn: psycopg.Connection[Any], meter_ids: list[int], since: datetime,
                until: datetime) -> list[DayRollup]:
    """Daily rollup rows of ``meter_ids`` for the local days starting in [since, until)
    (give local midnights), ordered by meter and day."""
    rows = conn.execute(
        "SELECT meter_id, bucket, n, sum_value, min_value, max_value, first_ts, first_value, last_ts, last_value"
        " FROM v_rollup_1d WHERE meter_id = ANY(%s) AND bucket >= %s AND bucket < %s ORDER BY meter_id, bucket",
        (meter_ids, since, until)).fetchall()
    return [DayRollup(int(m), b, int(n), float(s), float(lo), float(hi), ft, float(fv), lt, float(lv))
            for m, b, n, s, lo, hi, ft, fv, lt, lv in rows]
