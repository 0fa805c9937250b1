"""Energy of meters and sites over time: quantities per meter, a site's comprehensive energy
consumption (tce) per period, its PUE, and per-site year totals -- all from the one SQL
implementation of ``analytics.energy_definition`` (``storage.read.energy_sql``).

Periods are Asia/Shanghai quarter-hours, hours, days, months and calendar years, or
``rolling12``: the ``ROLLING_DAYS`` local days ending at each day (the window of the
data-centre 10 000 tce rule's early warning, ``alerts.rules.annual``). Dates are local and
inclusive; quarter-hours and hours are given by their start (UTC-aware).

A site's tce = Σ quantity × kgce per unit × the role's sign (``TCE_SIGN``) / 1000; a bucket
in which a counted meter has no conversion is unknown (``None``), never a smaller number.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Final, Literal

import psycopg

from alerts.rules.annual import AnnualTceRule
from analytics.coefficients import CALORIFIC_VALUE, ElectricityValue
from analytics.energy_definition import COUNTED_ROLES
from analytics.periods import CST
from storage.read.energy_sql import FACTORS, Grain, conversion_params, quantities_sql, sign_sql
from storage.read.rows import fetch_all as _all

Period = Literal["15min", "hour", "day", "month", "year", "rolling12"]

#: The grain each period is summed from and the expression of its start (``rolling12``: days).
PERIOD_GRAIN: Final[dict[str, Grain]] = {"15min": "15min", "hour": "hour", "day": "day", "month": "day",
                                         "year": "day"}
_PERIOD_START: Final = {"15min": "bucket", "hour": "bucket", "day": "day",
                        "month": "date_trunc('month', day)::date", "year": "date_trunc('year', day)::date"}

#: Longest range (local days) a fine period may be asked for: 31 × 96 = 2 976 quarter-hours,
#: 366 × 24 = 8 784 hours.
MAX_DAYS: Final[dict[str, int]] = {"15min": 31, "hour": 366}

#: The rolling 12 months of the data-centre 10 000 tce rule (``AnnualTceRule.period`` = 365
#: days, summed over [end − period, end) with ``end`` the local midnight closing the day just
#: completed): the 365 local days up to and including that day, over the data held (a lower
#: bound while less than that is held). The same number here.
ROLLING_DAYS: Final = AnnualTceRule().period.days



def local_midnight(d: date) -> datetime:
    """00:00 Asia/Shanghai of ``d`` (aware)."""
    return datetime.combine(d, time(0), tzinfo=CST)


def _site_meters(conn: psycopg.Connection[Any], site_ids: Sequence[int]) -> list[int]:
    return [int(r[0]) for r in conn.execute("SELECT id FROM meters WHERE site_id = ANY(%s) ORDER BY id",
                                            (list(site_ids),)).fetchall()]


def _totals_sql(grain: Grain) -> str:
    """``quantities_sql`` plus ``e`` (per meter and bucket, with its site, role, sign and
    factors) and ``totals`` (per site and bucket: kgce, facility kWh, IT kWh)."""
    return quantities_sql(grain) + f""",
e AS (
  SELECT q.meter_id, q.k, q.bucket, q.day, q.qty, q.covered_s, mt.site_id, mt.role, {sign_sql("mt.role")} AS tce_sign,
         f.kgce_per_unit, f.kwh_per_unit, f.t_per_unit
  FROM qty q JOIN meters mt ON mt.id = q.meter_id LEFT JOIN {FACTORS} ON f.meter_id = q.meter_id
), totals AS (
  SELECT site_id, k, bucket, day,
         -- a counted meter without a conversion makes the bucket unknown, never a smaller number
         CASE WHEN bool_or(tce_sign <> 0 AND kgce_per_unit IS NULL) THEN NULL
              ELSE sum(CASE WHEN tce_sign <> 0 THEN tce_sign * qty * kgce_per_unit ELSE 0 END) END AS kgce,
         sum(qty * kwh_per_unit) FILTER (WHERE role = 'total_facility') AS facility_kwh,
         sum(qty * kwh_per_unit) FILTER (WHERE role = 'it_load') AS it_kwh
  FROM e GROUP BY site_id, k, bucket, day
)
"""


def _params(conn: psycopg.Connection[Any], site_ids: Sequence[int], d0: date, d1: date,
            electricity: ElectricityValue = CALORIFIC_VALUE) -> dict[str, Any]:
    """The window [d0 00:00, d1 + 1 day 00:00) local, the sites' meters and their factors."""
    return {"meters": _site_meters(conn, site_ids), "lo": local_midnight(d0),
            "hi": local_midnight(d1 + timedelta(days=1)),
            **conversion_params(conn, list(site_ids), electricity)}


# ------------------------------------------------------------------------------ per meter


@dataclass(frozen=True, slots=True)
class MeterEnergy:
    meter_id: int
    bucket: datetime  # start of the quarter-hour, hour or local day
    energy: float  # meter unit × multiplier (kWh, t, GJ, …)
    covered_s: float  # seconds of the bucket with data


def meter_energy(conn: psycopg.Connection[Any], meter_ids: Sequence[int], start: datetime, end: datetime,
                 grain: Grain = "15min") -> list[MeterEnergy]:
    """Quantity per meter per bucket in [start, end) (give bucket edges: local midnights for
    ``day``), ordered by meter and bucket."""
    rows = conn.execute(quantities_sql(grain) + " SELECT meter_id, bucket, qty, covered_s FROM qty ORDER BY 1, 2",
                        {"meters": list(meter_ids), "lo": start, "hi": end}).fetchall()
    return [MeterEnergy(int(m), t, float(q), float(c)) for m, t, q, c in rows]


def meter_days(conn: psycopg.Connection[Any], site_id: int, d0: date, d1: date) -> list[dict[str, Any]]:
    """[{meter_id, day, qty, covered_s}]: every meter of the site per local day in [d0, d1]."""
    return _all(conn, quantities_sql("day") + " SELECT meter_id, day, qty, covered_s FROM qty ORDER BY 1, 2",
                {"meters": _site_meters(conn, [site_id]), "lo": local_midnight(d0),
                 "hi": local_midnight(d1 + timedelta(days=1))})


# ------------------------------------------------------------------------------ per site


def energy(conn: psycopg.Connection[Any], site_id: int, period: Period | str, d0: date, d1: date, *,
           electricity: ElectricityValue = CALORIFIC_VALUE) -> list[dict[str, Any]]:
    """Comprehensive energy consumption [{period_start, tce}] per quarter-hour, hour, local
    day, month or year in [d0, d1], or (``rolling12``) over the ``ROLLING_DAYS`` local days
    ending at each day of [d0, d1] that has data in its window, with the window's first day
    (``window_start``) and its first day with data (``data_from``)."""
    if period == "rolling12":
        back = ROLLING_DAYS - 1
        return _all(conn, _totals_sql("day") + "SELECT g.day AS period_start,"
                    " CASE WHEN bool_and(t.kgce IS NOT NULL) THEN sum(t.kgce) / 1000.0 END AS tce,"
                    " g.day - %(back)s::int AS window_start, min(t.day) AS data_from"
                    " FROM generate_series(0, %(n_days)s::int) AS i(k)"
                    " CROSS JOIN LATERAL (SELECT %(d0)s::date + i.k AS day) g"
                    " JOIN totals t ON t.day BETWEEN g.day - %(back)s::int AND g.day GROUP BY g.day ORDER BY 1",
                    {**_params(conn, [site_id], d0 - timedelta(days=back), d1, electricity),
                     "d0": d0, "n_days": (d1 - d0).days, "back": back})
    start = _PERIOD_START[period]
    return _all(conn, _totals_sql(PERIOD_GRAIN[period]) + f"SELECT {start} AS period_start,"
                " CASE WHEN bool_and(kgce IS NOT NULL) THEN sum(kgce) / 1000.0 END AS tce FROM totals"
                " GROUP BY 1 ORDER BY 1", _params(conn, [site_id], d0, d1, electricity))


def energy_by_meter(conn: psycopg.Connection[Any], site_id: int, period: Period | str, d0: date,
                    d1: date) -> list[dict[str, Any]]:
    """[{period_start, meter_id, qty}]: the quantities (meter unit × multiplier) of the meters
    the tce of ``energy`` counts, per the same periods (the tCO₂ beside it)."""
    if period == "rolling12":
        back = ROLLING_DAYS - 1
        return _all(conn, _totals_sql("day") + "SELECT g.day AS period_start, e.meter_id, sum(e.qty) AS qty"
                    " FROM generate_series(0, %(n_days)s::int) AS i(k)"
                    " CROSS JOIN LATERAL (SELECT %(d0)s::date + i.k AS day) g"
                    " JOIN e ON e.day BETWEEN g.day - %(back)s::int AND g.day"
                    " WHERE e.tce_sign <> 0 GROUP BY 1, 2 ORDER BY 1, 2",
                    {**_params(conn, [site_id], d0 - timedelta(days=back), d1), "d0": d0,
                     "n_days": (d1 - d0).days, "back": back})
    start = _PERIOD_START[period]
    return _all(conn, _totals_sql(PERIOD_GRAIN[period]) + f"SELECT {start} AS period_start, meter_id,"
                " sum(qty) AS qty FROM e WHERE tce_sign <> 0 GROUP BY 1, 2 ORDER BY 1, 2",
                _params(conn, [site_id], d0, d1))


def tce_meters(conn: psycopg.Connection[Any], site_id: int) -> list[dict[str, Any]]:
    """The site's meters its tce counts (``COUNTED_ROLES``), with what a ``MeterSpec`` needs."""
    return _all(conn, "SELECT id, site_id, code, carrier, unit, role, kind, multiplier, coefficient, product"
                " FROM meters WHERE site_id = %s AND role = ANY(%s) ORDER BY code",
                (site_id, sorted(COUNTED_ROLES)))


PueGrain = Literal["15min", "hour", "day"]


def pue(conn: psycopg.Connection[Any], site_id: int, d0: date, d1: date,
        grain: PueGrain = "day") -> list[dict[str, Any]]:
    """[{period_start, facility_kwh, it_kwh, pue}] per local day (or quarter-hour, hour) in
    [d0, d1]: PUE = facility kWh / IT kWh, GB 40879-2021 电能比 over the bucket (only a full
    year is the standard's figure; shorter buckets are indicative); no value without IT energy."""
    start = _PERIOD_START[grain]
    return _all(conn, _totals_sql(grain) + f"SELECT {start} AS period_start, sum(facility_kwh) AS facility_kwh,"
                " sum(it_kwh) AS it_kwh, CASE WHEN sum(it_kwh) > 0 THEN sum(facility_kwh) / sum(it_kwh) END AS pue"
                " FROM totals GROUP BY 1 ORDER BY 1", _params(conn, [site_id], d0, d1))


def site_totals(conn: psycopg.Connection[Any], site_ids: Sequence[int], d0: date, d1: date, *,
                electricity: ElectricityValue = CALORIFIC_VALUE) -> dict[int, dict[str, Any]]:
    """Per site: {tce, facility_kwh, it_kwh} over the local days [d0, d1] (tce ``None`` when a
    counted meter has no conversion)."""
    if not site_ids:
        return {}
    rows = _all(conn, _totals_sql("day") + "SELECT site_id,"
                " CASE WHEN bool_and(kgce IS NOT NULL) THEN sum(kgce) / 1000.0 END AS tce,"
                " sum(facility_kwh) AS facility_kwh, sum(it_kwh) AS it_kwh FROM totals GROUP BY site_id",
                _params(conn, site_ids, d0, d1, electricity))
    return {int(r["site_id"]): r for r in rows}
