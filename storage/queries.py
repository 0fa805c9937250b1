"""Read queries: one API over the native and the TimescaleDB path.

Everything reads the tenant views (``v_readings``, ``v_rollup_15m``, ``v_rollup_1d``) or
tables with row-level security, so the same call is safe for the worker (``nxem_ingest``),
an enterprise session and an inspector session (``storage.rls.tenant_transaction``).

Energy rules (units: the meter's unit × multiplier; tce = kgce / 1000):
* interval meter: energy in a bucket = sum of its values × multiplier;
* register meter: energy in a bucket = (last value − last value of the previous bucket with
  data) × multiplier; a negative step adds ``rollover`` when the meter has one, otherwise it
  is a meter reset and counts 0; the meter's first bucket counts last − first.
* site comprehensive energy (综合能耗) = Σ consumed + Σ total_facility − Σ exported, each
  × its GB/T 2589 coefficient (kgce per unit); it_load and product_output are not energy
  inputs (it_load is part of total_facility). Meters without a coefficient are left out.
* days, months and years are Asia/Shanghai calendar periods.
"""

from __future__ import annotations

import json
import weakref
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

import psycopg

from nxem.contract import AlertEvent
from storage import timescale


def readings_since(conn: psycopg.Connection[Any], meter_ids: list[int], since: datetime) -> list[tuple[int, datetime, float]]:
    """Raw readings of ``meter_ids`` at or after ``since``, ordered by (ts, meter_id)
    (the worker rebuilds a site's rule state from these)."""
    rows = conn.execute(
        "SELECT meter_id, ts, value FROM v_readings WHERE meter_id = ANY(%s) AND ts >= %s ORDER BY ts, meter_id",
        (meter_ids, since)).fetchall()
    return [(int(m), t, float(v)) for m, t, v in rows]


def active_alert_events(conn: psycopg.Connection[Any], site_id: int) -> list[AlertEvent]:
    """The active (not cleared) alerts of a site and of its meters, as the ``opened`` event
    that started each (``at`` = started_at), carrying the latest severity, value, threshold
    and details. Used to restore rule state after a restart."""
    rows = conn.execute(
        "SELECT a.alert_key, a.source_kind, a.source_id, a.enterprise_id, a.rule, a.severity, a.started_at,"
        " a.value, a.threshold, a.details"
        " FROM alerts a WHERE a.cleared_at IS NULL AND ("
        "  (a.source_kind = 'site' AND a.source_id = %s)"
        "  OR (a.source_kind = 'meter' AND a.source_id IN (SELECT id FROM meters WHERE site_id = %s)))"
        " ORDER BY a.started_at, a.alert_key",
        (site_id, site_id)).fetchall()
    return [
        AlertEvent(alert_key=k, source_kind=sk, source_id=int(sid), enterprise_id=e, rule=r, kind="opened",
                   severity=sev, at=at, value=v, threshold=th, details=dict(d or {}))
        for k, sk, sid, e, r, sev, at, v, th, d in rows
    ]


# --------------------------------------------------------------------------- readings

LOCAL_TZ: Final = "Asia/Shanghai"
#: Origin of every bucket: a local (UTC+8) midnight, so day buckets are Ningxia days and any
#: width dividing a day lines up with local clock times.
ORIGIN: Final = "TIMESTAMPTZ '2000-01-01 00:00:00+08'"

_BACKEND: weakref.WeakKeyDictionary[psycopg.Connection[Any], bool] = weakref.WeakKeyDictionary()


def _is_timescale(conn: psycopg.Connection[Any]) -> bool:
    cached = _BACKEND.get(conn)
    if cached is None:
        cached = _BACKEND[conn] = timescale.installed(conn)
    return cached


@dataclass(frozen=True, slots=True)
class ReadingBucket:
    """Raw readings of one meter downsampled to one bucket (values in the meter's unit)."""

    bucket: datetime
    n: int
    mean: float
    min: float
    max: float
    last: float


def readings(conn: psycopg.Connection[Any], meter_id: int, start: datetime, end: datetime,
             bucket: timedelta | None = None) -> list[ReadingBucket]:
    """Readings of a meter in [start, end): raw (``bucket=None``, one row per reading with
    n = 1) or downsampled with ``time_bucket`` (TimescaleDB) / ``date_bin`` (native) -- the
    same buckets either way (origin: local midnight). Whole-day buckets read the daily
    rollup, so ``start`` and ``end`` should then be local midnights."""
    if bucket is None:
        rows = conn.execute("SELECT ts, value FROM v_readings WHERE meter_id = %s AND ts >= %s AND ts < %s"
                            " ORDER BY ts", (meter_id, start, end)).fetchall()
        return [ReadingBucket(t, 1, v, v, v, v) for t, v in rows]
    if bucket <= timedelta(0):
        raise ValueError(f"bucket must be positive, got {bucket}")
    whole_days = bucket % timedelta(days=1) == timedelta(0)
    column = "bucket" if whole_days else "ts"
    b = (timescale.bucket_sql("%(w)s", column, ORIGIN) if _is_timescale(conn)
         else f"date_bin(%(w)s::interval, {column}, {ORIGIN})")
    if whole_days:  # from the daily rollup: 365 rows a year instead of 35 040
        rows = conn.execute(
            f"SELECT {b} AS b, sum(n), sum(sum_value) / sum(n), min(min_value), max(max_value),"
            " (max(ARRAY[extract(epoch FROM last_ts)::float8, last_value]))[2]"
            " FROM v_rollup_1d WHERE meter_id = %(m)s AND bucket >= %(s)s AND bucket < %(e)s GROUP BY 1 ORDER BY 1",
            {"w": bucket, "m": meter_id, "s": start, "e": end}).fetchall()
        return [ReadingBucket(t, int(n), float(a), float(lo), float(hi), float(last))
                for t, n, a, lo, hi, last in rows]
    rows = conn.execute(
        f"SELECT {b} AS b, count(*), avg(value), min(value), max(value),"
        " (max(ARRAY[extract(epoch FROM ts)::float8, value]))[2]"
        " FROM v_readings WHERE meter_id = %(m)s AND ts >= %(s)s AND ts < %(e)s GROUP BY 1 ORDER BY 1",
        {"w": bucket, "m": meter_id, "s": start, "e": end}).fetchall()
    return [ReadingBucket(t, int(n), float(a), float(lo), float(hi), float(last)) for t, n, a, lo, hi, last in rows]


# --------------------------------------------------------------------------- energy

Grain = Literal["15m", "1h", "1d"]
Period = Literal["day", "month", "year"]

# Energy per meter per bucket, in the meter's unit × multiplier (see the module doc).
# Parameters: %(meters)s int[], %(start)s, %(end)s. The last value before the range is looked
# up too, so a register's first bucket in range is complete. Days come from the daily rollup
# (365 rows a year); 15-minute and hourly buckets from the raw readings of the range, whose
# primary key (meter_id, ts) makes that as cheap as a rollup with 15-minute meters.
_FROM_DAILY = """
WITH b AS (
  SELECT r.meter_id, r.bucket, r.sum_value, r.first_value, r.last_value
  FROM v_rollup_1d r WHERE r.meter_id = ANY(%(meters)s) AND r.bucket >= %(start)s AND r.bucket < %(end)s
), prev AS (
  SELECT m.id AS meter_id, p.last_value
  FROM unnest(%(meters)s::integer[]) AS m(id)
  CROSS JOIN LATERAL (SELECT r.last_value FROM v_rollup_1d r WHERE r.meter_id = m.id AND r.bucket < %(start)s
                      ORDER BY r.bucket DESC LIMIT 1) p
),"""

_FROM_RAW = """
WITH b AS (
  SELECT r.meter_id, {bucket} AS bucket, sum(r.value) AS sum_value,
         (min(ARRAY[extract(epoch FROM r.ts)::float8, r.value]))[2] AS first_value,
         (max(ARRAY[extract(epoch FROM r.ts)::float8, r.value]))[2] AS last_value
  FROM v_readings r WHERE r.meter_id = ANY(%(meters)s) AND r.ts >= %(start)s AND r.ts < %(end)s
  GROUP BY 1, 2
), prev AS (
  SELECT m.id AS meter_id, p.last_value
  FROM unnest(%(meters)s::integer[]) AS m(id)
  CROSS JOIN LATERAL (SELECT r.value AS last_value FROM v_readings r WHERE r.meter_id = m.id AND r.ts < %(start)s
                      ORDER BY r.ts DESC LIMIT 1) p
),"""

_STEPS = """ steps AS (
  SELECT b.meter_id, b.bucket, b.sum_value,
         b.last_value - coalesce(lag(b.last_value) OVER (PARTITION BY b.meter_id ORDER BY b.bucket),
                                 prev.last_value, b.first_value) AS step
  FROM b LEFT JOIN prev USING (meter_id)
)
SELECT s.meter_id, s.bucket,
       CASE WHEN mt.kind = 'interval' THEN s.sum_value
            WHEN s.step >= 0 THEN s.step
            WHEN mt.rollover IS NOT NULL THEN s.step + mt.rollover
            ELSE 0 END * mt.multiplier AS energy
FROM steps s JOIN meters mt ON mt.id = s.meter_id
"""


def _energy_sql(conn: psycopg.Connection[Any], grain: Grain) -> str:
    """The energy-per-meter-per-bucket query for a grain (see _FROM_DAILY / _FROM_RAW)."""
    if grain == "1d":
        return _FROM_DAILY + _STEPS
    width = "'15 minutes'" if grain == "15m" else "'1 hour'"
    bucket = (timescale.bucket_sql(width, "r.ts", ORIGIN) if _is_timescale(conn)
              else f"date_bin({width}::interval, r.ts, {ORIGIN})")
    return _FROM_RAW.format(bucket=bucket) + _STEPS


@dataclass(frozen=True, slots=True)
class MeterEnergy:
    meter_id: int
    bucket: datetime
    energy: float  # meter unit × multiplier (kWh, t, GJ, …)


def meter_energy(conn: psycopg.Connection[Any], meter_ids: list[int], start: datetime, end: datetime,
                 grain: Grain = "15m") -> list[MeterEnergy]:
    """Energy per meter per bucket in [start, end): ``15m``, ``1h`` (from 15-minute rows) or
    ``1d`` (Asia/Shanghai days; give local midnights as start and end)."""
    rows = conn.execute(f"SELECT meter_id, bucket, energy FROM ({_energy_sql(conn, grain)}) q ORDER BY 1, 2",
                        {"meters": meter_ids, "start": start, "end": end}).fetchall()
    return [MeterEnergy(int(m), t, float(e)) for m, t, e in rows]


def _local_midnight(d: date) -> datetime:
    return datetime.combine(d, time(0), tzinfo=ZoneInfo(LOCAL_TZ))


def conversion_params(conn: psycopg.Connection[Any], site_ids: list[int]) -> dict[str, Any]:
    """Per meter of these sites, its factors as SQL array parameters ``f_ids``, ``f_kgce`` (kgce
    per meter unit, GB/T 2589 via ``analytics.coefficients.resolve``, unit scaled), ``f_kwh``
    (kWh per meter unit) and ``f_t`` (tonnes per meter unit); NULL where the meter's carrier or
    unit has none, so a query can say "unknown" instead of counting it as 0. Join them as
    ``FACTORS`` (columns ``f.meter_id``, ``f.kgce_per_unit``, ``f.kwh_per_unit``, ``f.t_per_unit``)."""
    from analytics import coefficients

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
            per_unit: float | None = coefficients.resolve(carrier, unit, coefficient)[0]
        except coefficients.ConversionError:
            per_unit = None
        ids.append(int(mid))
        kgce.append(per_unit)
        kwh.append(scale if base == "kWh" else None)
        tonnes.append(scale / 1000.0 if base == "kg" else None)
    return {"f_ids": ids, "f_kgce": kgce, "f_kwh": kwh, "f_t": tonnes}


#: The relation of ``conversion_params`` in a query: ``JOIN {FACTORS} ON f.meter_id = …``.
FACTORS: Final = ("unnest(%(f_ids)s::int[], %(f_kgce)s::float8[], %(f_kwh)s::float8[], %(f_t)s::float8[])"
                   " AS f(meter_id, kgce_per_unit, kwh_per_unit, t_per_unit)")


# Sign of each role in comprehensive energy consumption (GB/T 2589: consumed − exported).
_SIGN = "CASE mt.role WHEN 'consumed' THEN 1 WHEN 'total_facility' THEN 1 WHEN 'exported' THEN -1 ELSE 0 END"


@dataclass(frozen=True, slots=True)
class PeriodEnergy:
    period: date  # first local day of the period
    tce: float | None  # comprehensive energy consumption, tce; None when a counted meter has no conversion


def site_energy_tce(conn: psycopg.Connection[Any], site_id: int, start: date, end: date,
                    period: Period = "day") -> list[PeriodEnergy]:
    """Comprehensive energy of a site per local day, month or year, for local days in
    [start, end): Σ energy × kgce per unit × sign / 1000."""
    unit = {"day": "day", "month": "month", "year": "year"}[period]
    meters = _site_meters(conn, site_id)
    rows = conn.execute(
        f"SELECT date_trunc('{unit}', (e.bucket AT TIME ZONE '{LOCAL_TZ}'))::date AS p,"
        f" CASE WHEN bool_or({_SIGN} <> 0 AND f.kgce_per_unit IS NULL) THEN NULL"
        f" ELSE sum(e.energy * f.kgce_per_unit * {_SIGN}) FILTER (WHERE {_SIGN} <> 0) / 1000.0 END"
        " FROM (" + _FROM_DAILY + _STEPS + ") e"
        f" JOIN meters mt ON mt.id = e.meter_id JOIN {FACTORS} ON f.meter_id = mt.id"
        " GROUP BY 1 ORDER BY 1",
        {"meters": meters, "start": _local_midnight(start), "end": _local_midnight(end),
         **conversion_params(conn, [site_id])}).fetchall()
    return [PeriodEnergy(p, None if t is None else float(t)) for p, t in rows]


def _site_meters(conn: psycopg.Connection[Any], site_id: int) -> list[int]:
    return [int(r[0]) for r in conn.execute("SELECT id FROM meters WHERE site_id = %s ORDER BY id",
                                            (site_id,)).fetchall()]


@dataclass(frozen=True, slots=True)
class PuePoint:
    bucket: datetime
    facility_kwh: float
    it_kwh: float
    pue: float | None  # None when the IT energy is 0


def pue_series(conn: psycopg.Connection[Any], site_id: int, start: datetime, end: datetime,
               grain: Grain = "1h") -> list[PuePoint]:
    """PUE = total facility energy / IT energy per bucket (GB 40879-2021 电能比 over the bucket;
    only a full year is the standard's RM2 -- shorter buckets are indicative)."""
    meters = _site_meters(conn, site_id)
    rows = conn.execute(
        "SELECT e.bucket, sum(e.energy * f.kwh_per_unit) FILTER (WHERE mt.role = 'total_facility'),"
        " sum(e.energy * f.kwh_per_unit) FILTER (WHERE mt.role = 'it_load')"
        f" FROM ({_energy_sql(conn, grain)}) e JOIN meters mt ON mt.id = e.meter_id"
        f" JOIN {FACTORS} ON f.meter_id = mt.id"
        " WHERE mt.role IN ('total_facility', 'it_load') GROUP BY 1 ORDER BY 1",
        {"meters": meters, "start": start, "end": end, **conversion_params(conn, [site_id])}).fetchall()
    out = []
    for b, fac, it in rows:
        f, i = float(fac or 0.0), float(it or 0.0)
        out.append(PuePoint(b, f, i, f / i if i > 0 else None))
    return out


@dataclass(frozen=True, slots=True)
class UnitProductPoint:
    period: date
    product: str
    energy_kgce: float | None  # the site's comprehensive energy in the period; None if a meter has no conversion
    output: float  # product output, tonnes
    kgce_per_unit: float | None  # energy / output; None without output


def unit_product_series(conn: psycopg.Connection[Any], site_id: int, start: date, end: date,
                        period: Literal["day", "month"] = "day") -> list[UnitProductPoint]:
    """Unit-product comprehensive energy consumption per local day or month: the site's
    energy (kgce) / output of each product. A site making several products gets the whole
    energy against each (apportioning between products is not metered)."""
    meters = _site_meters(conn, site_id)
    params = {"meters": meters, "start": _local_midnight(start), "end": _local_midnight(end),
              **conversion_params(conn, [site_id])}
    rows = conn.execute(
        f"SELECT date_trunc('{period}', (e.bucket AT TIME ZONE '{LOCAL_TZ}'))::date AS p,"
        f" CASE WHEN bool_or({_SIGN} <> 0 AND f.kgce_per_unit IS NULL) THEN NULL"
        f" ELSE coalesce(sum(e.energy * f.kgce_per_unit * {_SIGN}) FILTER (WHERE {_SIGN} <> 0), 0) END"
        " FROM (" + _FROM_DAILY + _STEPS + ") e"
        f" JOIN meters mt ON mt.id = e.meter_id JOIN {FACTORS} ON f.meter_id = mt.id"
        " GROUP BY 1 ORDER BY 1", params).fetchall()
    energy = {p: None if kg is None else float(kg) for p, kg in rows}
    outs = conn.execute(
        f"SELECT date_trunc('{period}', (e.bucket AT TIME ZONE '{LOCAL_TZ}'))::date AS p, mt.product,"
        " sum(e.energy * f.t_per_unit)"
        " FROM (" + _FROM_DAILY + _STEPS + ") e JOIN meters mt ON mt.id = e.meter_id"
        f" JOIN {FACTORS} ON f.meter_id = mt.id"
        " WHERE mt.role = 'product_output' GROUP BY 1, 2 ORDER BY 1, 2", params).fetchall()
    result = []
    for p, product, out in outs:
        kg = energy.get(p, 0.0)
        o = float(out or 0.0)
        result.append(UnitProductPoint(p, str(product), kg, o, kg / o if kg is not None and o > 0 else None))
    return result


# --------------------------------------------------------------------------- alerts

Status = Literal["active", "cleared", "acknowledged", "unacknowledged"]


@dataclass(frozen=True, slots=True)
class AlertRow:
    id: int
    alert_key: str
    source_kind: str
    source_id: int
    enterprise_id: str
    enterprise_name: str
    city: str
    industry: str
    rule: str
    severity: str
    started_at: datetime
    updated_at: datetime
    value: float | None
    threshold: float | None
    details: dict[str, Any]
    acked_at: datetime | None
    acked_by: str | None
    cleared_at: datetime | None


def alerts(conn: psycopg.Connection[Any], *, city: str | None = None, industry: str | None = None,
           severity: str | None = None, status: Status | None = None, enterprise_id: str | None = None,
           since: datetime | None = None, limit: int = 500) -> list[AlertRow]:
    """Alerts visible to the session, newest first, filtered by the given criteria. Status
    is two independent flags (cleared, acknowledged), filtered one at a time."""
    where = ["true"]
    params: dict[str, Any] = {"limit": limit}
    for col, val in (("e.city", city), ("e.industry", industry), ("a.severity", severity),
                     ("a.enterprise_id", enterprise_id)):
        if val is not None:
            key = col.replace(".", "_")
            where.append(f"{col} = %({key})s")
            params[key] = val
    if since is not None:
        where.append("a.started_at >= %(since)s")
        params["since"] = since
    if status is not None:
        where.append({"active": "a.cleared_at IS NULL", "cleared": "a.cleared_at IS NOT NULL",
                      "acknowledged": "a.acked_at IS NOT NULL", "unacknowledged": "a.acked_at IS NULL"}[status])
    rows = conn.execute(
        "SELECT a.id, a.alert_key, a.source_kind, a.source_id, a.enterprise_id, e.name, e.city, e.industry,"
        " a.rule, a.severity, a.started_at, a.updated_at, a.value, a.threshold, a.details, a.acked_at,"
        " a.acked_by, a.cleared_at FROM alerts a JOIN enterprises e ON e.id = a.enterprise_id"
        f" WHERE {' AND '.join(where)} ORDER BY a.started_at DESC, a.id DESC LIMIT %(limit)s", params).fetchall()
    return [AlertRow(*r) for r in rows]


def ack_alert(conn: psycopg.Connection[Any], alert_id: int, by: str, at: datetime) -> bool:
    """Acknowledge an alert the session can see (portal, inside ``tenant_transaction``);
    records an ``acknowledged`` transition. False when invisible or already acknowledged."""
    row = conn.execute(
        "UPDATE alerts SET acked_at = %s, acked_by = %s WHERE id = %s AND acked_at IS NULL"
        " RETURNING alert_key, enterprise_id, source_kind, source_id, rule, severity, value, threshold",
        (at, by, alert_id)).fetchone()
    if row is None:
        return False
    key, ent, sk, sid, rule, sev, value, threshold = row
    conn.execute(
        "INSERT INTO alert_transitions (alert_key, kind, at, enterprise_id, source_kind, source_id, rule,"
        " severity, value, threshold, details) VALUES (%s, 'acknowledged', %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (alert_key, kind, at) DO NOTHING",
        (key, at, ent, sk, sid, rule, sev, value, threshold, json.dumps({"by": by}, ensure_ascii=False)))
    return True
