"""The SQL form of ``analytics.energy_definition``: per meter and bucket, the quantity its
readings give, and the sign each role has in a site's tce -- the only SQL implementation.

The sign and step expressions are rendered from the definition's constants (``TCE_SIGN``,
``ROLLOVER_PLAUSIBLE_SHARE``), so changing the definition changes this SQL.

How a bucket's quantity is built (the module docstring of ``analytics.day_totals`` says the
same for the daily rollup, which the worker rebuilds its state from):

1. ``src``: the meter's rows at the grain -- per quarter-hour or hour from the raw readings
   of the range (negative values left out, as the stream refuses them), per local day from
   the daily rollup (``v_rollup_1d``): count, sum, min, max, first and last reading -- plus
   the meter's last row before the range and its first row after it, so a step or an interval
   crossing either edge is shared correctly (a reading at the range's end closes the range's
   last interval);
2. ``pieces``: each row gives (a) the step into its first reading -- an interval meter's
   first value over (max(first ts − interval, previous row's last ts), first ts], a
   register's step from the previous row's last reading (the definition's step rule; none
   for the meter's first row: the baseline) -- and (b) the rest of the row, after its first
   reading: an interval meter's other values, a register's advance from first to last
   reading (one wrap, else one reset, inferred from min and max);
3. ``spread``: each piece shared linearly by time among the buckets it spans (Asia/Shanghai
   buckets: quarter-hours, hours, local days);
4. ``qty``: per meter and bucket of the range that a piece reaches, the quantity (meter unit
   × multiplier) and the seconds covered by data. A bucket no piece reaches (a register's
   baseline alone, a reset, no data) has no row: "no data", not 0.
"""

from __future__ import annotations

from typing import Any, Final, Literal

import psycopg

from analytics import coefficients
from analytics.coefficients import CALORIFIC_VALUE, ElectricityValue
from analytics.energy_definition import ROLLOVER_PLAUSIBLE_SHARE, TCE_SIGN
from analytics.periods import CST
from nxem.localtime import LOCAL_TZ_NAME, ORIGIN_SQL

Grain = Literal["15min", "hour", "day"]
#: Bucket width of each grain, seconds.
WIDTH_S: Final[dict[Grain, int]] = {"15min": 900, "hour": 3600, "day": 86_400}

_OFFSET = CST.utcoffset(None)
assert _OFFSET is not None
#: Asia/Shanghai is UTC+8 without daylight saving since 1991: buckets are epoch arithmetic.
OFFSET_S: Final = int(_OFFSET.total_seconds())
LOCAL_TZ: Final = LOCAL_TZ_NAME
#: Origin of every bucket: a local midnight, so each width lines up with local clock times.
ORIGIN: Final = ORIGIN_SQL


def sign_sql(role: str = "m.role") -> str:
    """The tce sign of a meter role (``TCE_SIGN``) as a SQL expression."""
    whens = " ".join(f"WHEN '{r}' THEN {s}" for r, s in TCE_SIGN.items() if s)
    return f"CASE {role} {whens} ELSE 0 END"


def _wrap_sql(roll: str, hi: str, lo: str) -> str:
    """Condition: a register going from ``hi`` down to ``lo`` is a plausible wrap at ``roll``."""
    return f"({roll} IS NOT NULL AND {roll} - {hi} + {lo} BETWEEN 0 AND {roll} * {ROLLOVER_PLAUSIBLE_SHARE!r})"


def step_sql(prev: str, value: str, roll: str = "roll") -> str:
    """Raw quantity of one register step ``prev`` -> ``value``: the difference, a plausible
    wrap, or NULL for a reset, which is not summed (``analytics.energy_definition.register_step``)."""
    return (f"CASE WHEN {value} >= {prev} THEN {value} - {prev}"
            f" WHEN {_wrap_sql(roll, prev, value)} THEN {roll} - {prev} + {value} END")


def within_sql(first: str = "first_value", last: str = "last_value", lo: str = "min_value",
               hi: str = "max_value", roll: str = "roll") -> str:
    """Raw quantity a register advanced from its first to its last reading in one bucket:
    up only; else one wrap (max -> min) when plausible; else one reset, not summed."""
    return (f"CASE WHEN {lo} >= {first} AND {hi} <= {last} THEN greatest({last} - {first}, 0)"
            f" WHEN {_wrap_sql(roll, hi, lo)} THEN ({hi} - {first}) + ({roll} - {hi} + {lo}) + ({last} - {lo})"
            f" ELSE greatest({hi} - {first}, 0) + greatest({last} - {lo}, 0) END")


_ROW = "meter_id, bucket, n, sum_value, min_value, max_value, first_ts, first_value, last_ts, last_value"

# Quarter-hours and hours: the raw readings of the range grouped by bucket, and the single
# readings either side of it (by the primary key (meter_id, ts): a few index probes).
_SRC_RAW = """
src AS (
  SELECT r.meter_id, date_bin(interval '{w} seconds', r.ts, {origin}) AS bucket, count(*)::int AS n,
         sum(r.value) AS sum_value, min(r.value) AS min_value, max(r.value) AS max_value,
         min(r.ts) AS first_ts, (min(ARRAY[extract(epoch FROM r.ts)::float8, r.value]))[2] AS first_value,
         max(r.ts) AS last_ts, (max(ARRAY[extract(epoch FROM r.ts)::float8, r.value]))[2] AS last_value
  FROM v_readings r
  WHERE r.meter_id = ANY(%(meters)s) AND r.ts >= %(lo)s AND r.ts < %(hi)s AND r.value >= 0
  GROUP BY 1, 2
  UNION ALL
  SELECT m.id, date_bin(interval '{w} seconds', e.ts, {origin}), 1, e.value, e.value, e.value, e.ts, e.value,
         e.ts, e.value
  FROM unnest(%(meters)s::int[]) AS m(id)
  CROSS JOIN LATERAL (
    (SELECT r.ts, r.value FROM v_readings r WHERE r.meter_id = m.id AND r.ts < %(lo)s AND r.value >= 0
     ORDER BY r.ts DESC LIMIT 1)
    UNION ALL
    (SELECT r.ts, r.value FROM v_readings r WHERE r.meter_id = m.id AND r.ts >= %(hi)s AND r.value >= 0
     ORDER BY r.ts LIMIT 1)) e
)"""

# Local days: the daily rollup of the range and its rows either side.
_SRC_DAY = f"""
src AS (
  SELECT {_ROW} FROM v_rollup_1d r
  WHERE r.meter_id = ANY(%(meters)s) AND r.bucket >= %(lo)s AND r.bucket < %(hi)s
  UNION ALL
  SELECT e.* FROM unnest(%(meters)s::int[]) AS m(id)
  CROSS JOIN LATERAL (
    (SELECT {_ROW} FROM v_rollup_1d r WHERE r.meter_id = m.id AND r.bucket < %(lo)s ORDER BY r.bucket DESC LIMIT 1)
    UNION ALL
    (SELECT {_ROW} FROM v_rollup_1d r WHERE r.meter_id = m.id AND r.bucket >= %(hi)s ORDER BY r.bucket LIMIT 1)) e
)"""

_PIECES = """,
chain AS (
  SELECT s.meter_id, s.n, s.sum_value, s.min_value, s.max_value, s.first_value, s.last_value,
         extract(epoch FROM s.first_ts)::float8 AS t_first, extract(epoch FROM s.last_ts)::float8 AS t_last,
         extract(epoch FROM lag(s.last_ts) OVER w)::float8 AS p_ts, lag(s.last_value) OVER w AS p_value,
         mt.kind = 'interval' AS by_interval, mt.multiplier AS mult, mt.rollover AS roll,
         mt.interval_s::float8 AS ival
  FROM src s JOIN meters mt ON mt.id = s.meter_id
  WINDOW w AS (PARTITION BY s.meter_id ORDER BY s.first_ts)
), pieces AS (
  -- (a) the step into the row's first reading (a register's first row is its baseline)
  SELECT meter_id, CASE WHEN by_interval THEN greatest(t_first - ival, p_ts) ELSE p_ts END AS a, t_first AS b,
         mult * CASE WHEN by_interval THEN first_value ELSE {step} END AS qty, NULL::float8 AS cov
  FROM chain WHERE by_interval OR p_ts IS NOT NULL
  UNION ALL
  -- (b) the rest of the row, after its first reading (inside its bucket)
  SELECT meter_id, t_first, t_last, mult * CASE WHEN by_interval THEN sum_value - first_value ELSE {within} END,
         CASE WHEN by_interval THEN least((n - 1) * ival, t_last - t_first) END
  FROM chain WHERE n > 1
), bounds AS (
  SELECT floor((extract(epoch FROM %(lo)s::timestamptz) + {off}) / {w})::bigint AS k0,
         ceil((extract(epoch FROM %(hi)s::timestamptz) + {off}) / {w})::bigint AS k1
), spread AS (
  SELECT p.meter_id, k.k,
         p.qty * (least(p.b, k.k * {w} - {off} + {w}) - greatest(p.a, k.k * {w} - {off})) / (p.b - p.a) AS qty,
         coalesce(p.cov / (p.b - p.a), 1) * (least(p.b, k.k * {w} - {off} + {w}) - greatest(p.a, k.k * {w} - {off}))
           AS covered_s
  FROM pieces p CROSS JOIN bounds
  CROSS JOIN LATERAL generate_series(greatest(floor((p.a + {off}) / {w})::bigint, bounds.k0),
                                     least(ceil((p.b + {off}) / {w})::bigint - 1, bounds.k1 - 1)) AS k(k)
  WHERE p.b > p.a AND p.qty IS NOT NULL  -- a reset is not summed: it adds no bucket either
), qty AS (
  SELECT meter_id, k, to_timestamp(k * {w} - {off}) AS bucket,
         DATE '1970-01-01' + floor(k * {w} / 86400.0)::int AS day, sum(qty) AS qty, sum(covered_s) AS covered_s
  FROM spread GROUP BY meter_id, k
)"""


def quantities_sql(grain: Grain) -> str:
    """``WITH src, chain, pieces, bounds, spread, qty``: per meter and bucket of ``grain`` in
    [%(lo)s, %(hi)s), ``qty(meter_id, k, bucket, day, qty, covered_s)`` -- quantity in the
    meter's unit × multiplier, seconds covered, the bucket's start and its local date. Give
    ``lo`` and ``hi`` on bucket edges (local midnights for ``day``); %(meters)s is int[]."""
    w = WIDTH_S[grain]
    src = _SRC_DAY if grain == "day" else _SRC_RAW.format(w=w, origin=ORIGIN)
    return "WITH" + src + _PIECES.format(step=step_sql("p_value", "first_value"), within=within_sql(), w=w,
                                         off=OFFSET_S)


# --------------------------------------------------------------------------- conversion


def conversion_params(conn: psycopg.Connection[Any], site_ids: list[int],
                      electricity: ElectricityValue = CALORIFIC_VALUE) -> dict[str, Any]:
    """Per meter of these sites, its factors as SQL array parameters ``f_ids``, ``f_kgce`` (kgce
    per meter unit, GB/T 2589 via ``analytics.coefficients.resolve``, electricity valued as
    ``electricity`` says, unit scaled), ``f_kwh`` (kWh per meter unit) and ``f_t`` (tonnes per
    meter unit); NULL where the meter's carrier or unit has none, so a query can say "unknown"
    instead of counting it as 0. Join them as ``FACTORS``."""
    ids: list[int] = []
    kgce: list[float | None] = []
    kwh: list[float | None] = []
    tonnes: list[float | None] = []
    for mid, carrier, unit, coefficient in conn.execute(
            "SELECT id, carrier, unit, coefficient FROM meters WHERE site_id = ANY(%s) ORDER BY id",
            (site_ids,)).fetchall():
        try:
            base, scale = coefficients.scale_unit(unit)
        except coefficients.ConversionError:
            base, scale = "", 0.0
        try:
            per_unit: float | None = coefficients.resolve(carrier, unit, coefficient, electricity)[0]
        except coefficients.ConversionError:
            per_unit = None
        ids.append(int(mid))
        kgce.append(per_unit)
        kwh.append(scale if base == "kWh" else None)
        tonnes.append(scale / 1000.0 if base == "kg" else None)
    return {"f_ids": ids, "f_kgce": kgce, "f_kwh": kwh, "f_t": tonnes}


#: The relation of ``conversion_params`` in a query: ``JOIN {FACTORS} ON f.meter_id = …``
#: (columns ``f.meter_id``, ``f.kgce_per_unit``, ``f.kwh_per_unit``, ``f.t_per_unit``).
FACTORS: Final = ("unnest(%(f_ids)s::int[], %(f_kgce)s::float8[], %(f_kwh)s::float8[], %(f_t)s::float8[])"
                  " AS f(meter_id, kgce_per_unit, kwh_per_unit, t_per_unit)")
