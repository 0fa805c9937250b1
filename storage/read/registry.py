"""The registry as the portal and reports read it: enterprises, sites, meters, and one site's
registry rows in the shape the rule configuration is built from (``storage.registry.SiteRow`` /
``MeterRow``), with ``meter_spec``, the rules' spec of a meter row -- so a view can use the
rules' own allocation and arithmetic.
"""

from __future__ import annotations

from typing import Any, Final

import psycopg

from analytics.coefficients import CALORIFIC_VALUE, ElectricityValue
from analytics.site_energy import MeterSpec
from storage.registry import MeterRow, ProductSpec, SiteRow, meter_row
from storage.read.rows import fetch_all as _all, fetch_one as _one




def first_enterprise_ids(conn: psycopg.Connection[Any], n: int) -> list[str]:
    return [r["id"] for r in _all(conn, "SELECT id FROM enterprises ORDER BY id LIMIT %s", (n,))]


def list_enterprises(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    return _all(conn, "SELECT id, name, city, industry FROM enterprises ORDER BY city, name")


_SITE_COLS: Final = ("SELECT s.id, s.enterprise_id, s.code, s.name, s.kind, e.city, e.industry, s.pue_limit,"
                     " s.products FROM sites s JOIN enterprises e ON e.id = s.enterprise_id")


def _site_row(r: dict[str, Any]) -> dict[str, Any]:
    if r["kind"] != "data_centre":
        r["pue_limit"] = None
    return r


def list_sites(conn: psycopg.Connection[Any], enterprise_id: str | None = None, city: str | None = None,
               industry: str | None = None) -> list[dict[str, Any]]:
    rows = _all(conn, _SITE_COLS + " WHERE (%(e)s::text IS NULL OR s.enterprise_id = %(e)s)"
                " AND (%(c)s::text IS NULL OR e.city = %(c)s) AND (%(i)s::text IS NULL OR e.industry = %(i)s)"
                " ORDER BY e.city, s.name", {"e": enterprise_id, "c": city, "i": industry})
    return [_site_row(r) for r in rows]


def get_site(conn: psycopg.Connection[Any], site_id: int) -> dict[str, Any] | None:
    row = _one(conn, _SITE_COLS + " WHERE s.id = %s", (site_id,))
    return _site_row(row) if row else None


def site_products(conn: psycopg.Connection[Any], site_id: int) -> list[str]:
    """The products a site declares (registry ``products``), else those with an output meter."""
    row = _one(conn, "SELECT products FROM sites WHERE id = %s", (site_id,))
    declared = [str(p["product"]) for p in (row["products"] if row else []) if isinstance(p, dict) and "product" in p]
    if declared:
        return list(dict.fromkeys(declared))
    return [r["product"] for r in _all(conn, "SELECT DISTINCT product FROM meters WHERE site_id = %s"
                                             " AND role = 'product_output' ORDER BY product", (site_id,))]


_METER_COLS: Final = "SELECT id, site_id, code, carrier, unit, role, kind FROM meters"


def list_meters(conn: psycopg.Connection[Any], site_id: int | None = None) -> list[dict[str, Any]]:
    return _all(conn, _METER_COLS + " WHERE (%(s)s::int IS NULL OR site_id = %(s)s) ORDER BY site_id, code",
                {"s": site_id})


def get_meter(conn: psycopg.Connection[Any], meter_id: int) -> dict[str, Any] | None:
    return _one(conn, _METER_COLS + " WHERE id = %s", (meter_id,))


def site_registry(conn: psycopg.Connection[Any], site_id: int) -> tuple[SiteRow, list[MeterRow]] | None:
    """One site and its meters as the worker loads them (``storage.registry.load_sites`` /
    ``load_meters``), or ``None`` when the session cannot see the site."""
    r = conn.execute(
        "SELECT s.id, s.code, s.enterprise_id, s.kind, s.name, s.new_build, s.pue_limit, s.pue_window_hours,"
        " s.energy_budget_tce, s.products, e.city, e.industry, s.altitude_m, s.atmospheric_pressure_pa,"
        " s.pue_limit_source, s.standard_racks, s.it_capacity_kw"
        " FROM sites s JOIN enterprises e ON e.id = s.enterprise_id WHERE s.id = %s", (site_id,)).fetchone()
    if r is None:
        return None
    products = tuple(ProductSpec(str(p["product"]), str(p.get("indicator") or "kgce_per_t"),
                                 tuple(str(m) for m in p.get("meters") or ()),
                                 tuple(sorted((str(k), v) for k, v in (p.get("parameters") or {}).items())))
                     for p in r[9] or ())
    site = SiteRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], products, r[10], r[11], altitude_m=r[12],
                   atmospheric_pressure_pa=r[13], pue_limit_source=r[14], standard_racks=r[15], it_capacity_kw=r[16])
    meters = [meter_row(m) for m in conn.execute(
        "SELECT m.id, m.gateway_id, m.code, m.site_id, m.enterprise_id, m.carrier, m.unit, m.role, m.kind,"
        " m.multiplier, m.rollover, m.coefficient, m.product, m.shares, m.feedstock, m.interval_s"
        " FROM meters m WHERE m.site_id = %s ORDER BY m.id", (site_id,)).fetchall()]
    return site, meters


def meter_spec(m: Any, electricity: ElectricityValue = CALORIFIC_VALUE) -> MeterSpec:
    """The rules' spec of a meter row (``storage.registry.MeterRow`` or alike: id, site_id,
    carrier, unit, role, kind, multiplier, rollover, coefficient, product, interval_s), with
    electricity valued as the deployment says (NXEM_ELECTRICITY_BASIS)."""
    return MeterSpec(
        meter_id=m.id, site_id=m.site_id, carrier=m.carrier, unit=m.unit,
        role=m.role, kind=m.kind,  # validated by the registry loader
        multiplier=m.multiplier, rollover=m.rollover, coefficient=m.coefficient, product=m.product,
        interval_s=float(getattr(m, "interval_s", 900)),  # the registry's reading interval
        electricity=electricity,
    )
