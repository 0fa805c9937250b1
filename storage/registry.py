"""Registry in the database: load a file, upsert it, and the read API of collector and worker.

* ``load_registry_file(path) -> Registry``: parse and validate a YAML file (format in
  docs/registry.md; pure parsing lives in ``storage.registry_format``).
* ``upsert_registry(conn, registry)``: idempotent insert-or-update keyed by enterprise id,
  site code, gateway id and (gateway, meter code); ids of existing rows never change.
  Entries missing from the file are kept (removal is a deliberate operator action).
* ``load_routing`` (collector), ``load_sites`` / ``load_meters`` (worker): plain frozen
  dataclasses, read as ``nxem_ingest``.
* ``sync_reference(conn)``: writes the ``coefficients`` and ``quotas`` tables from analytics
  (``analytics.coefficients``, ``analytics/data/quotas.csv``), the only source of those rows;
  ``upsert_registry`` calls it first, in its transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import psycopg
import yaml
from psycopg.types.json import Jsonb

from analytics.coefficients import COEFFICIENTS, ConversionError, resolve
from analytics.pue import site_limit, size_class
from analytics.quotas import ROWS as QUOTA_ROWS
from storage.errors import StorageError
from storage.registry_format import (
    DEFAULT_PUE_LIMIT,
    EnterpriseSpec,
    GatewaySpec,
    MeterSpec,
    ProductSpec,
    Registry,
    RegistryError,
    SiteSpec,
    parse_registry,
)

__all__ = [
    "EnterpriseSpec", "GatewayRoute", "GatewaySpec", "MeterRoute", "MeterRow", "MeterSpec",
    "ProductSpec", "Registry", "RegistryError", "Routing", "SiteRow", "SiteSpec", "UpsertResult",
    "load_meters", "load_registry_file", "load_routing", "load_sites", "sync_reference", "upsert_registry",
]


K = TypeVar("K")
T = TypeVar("T")

@dataclass(frozen=True, slots=True)
class GatewayRoute:
    gateway_id: str
    enterprise_id: str
    site_id: int


@dataclass(frozen=True, slots=True)
class MeterRoute:
    meter_id: int
    site_id: int
    enterprise_id: str
    unit: str
    kind: str  # register | interval
    role: str  # consumed | exported | product_output | it_load | total_facility


@dataclass(frozen=True, slots=True)
class Routing:
    gateways: dict[str, GatewayRoute]
    meters: dict[tuple[str, str], MeterRoute]  # (gateway_id, meter_code) -> route


@dataclass(frozen=True, slots=True)
class SiteRow:
    id: int
    code: str
    enterprise_id: str
    kind: str  # data_centre | plant
    name: str
    new_build: bool
    pue_limit: float
    pue_window_hours: int
    energy_budget_tce: float | None
    products: tuple[ProductSpec, ...]
    city: str  # of the enterprise
    industry: str  # of the enterprise
    altitude_m: float | None = None  # GB 16780-2021 altitude correction
    atmospheric_pressure_pa: float | None = None
    #: data centres: where ``pue_limit`` comes from (the site's own, or by new-build flag and
    #: size class: analytics.pue.site_limit at registry load); None for rows loaded before 0017
    pue_limit_source: str | None = None
    standard_racks: int | None = None
    it_capacity_kw: float | None = None


@dataclass(frozen=True, slots=True)
class MeterRow:
    id: int
    gateway_id: str
    code: str
    site_id: int
    enterprise_id: str
    carrier: str
    unit: str
    role: str
    kind: str
    multiplier: float
    rollover: float | None
    coefficient: str | None
    product: str | None
    #: kgce per meter unit (GB/T 2589 via analytics.coefficients.resolve, 当量值), None when the
    #: meter is no energy input (product_output) or cannot be converted
    kgce_per_unit: float | None
    shares: tuple[tuple[str, float], ...] = ()  # product -> share of this meter's energy
    feedstock: bool = False  # 原料用能
    interval_s: int = 900  # reading interval, seconds (divides a day)


@dataclass(frozen=True, slots=True)
class UpsertResult:
    enterprises: int
    sites: int
    gateways: int
    meters: int


def load_registry_file(path: str | Path) -> Registry:
    """Read and validate a registry (or scenario) YAML file; ``RegistryError`` names the field."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as err:
        raise RegistryError(str(p), "$", f"cannot read: {err.strerror}") from err
    try:
        # libyaml's safe loader when PyYAML has it: same safe subset, ~10x faster on a fleet file
        doc = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506
    except yaml.YAMLError as err:
        raise RegistryError(str(p), "$", f"not valid YAML: {err}") from err
    return parse_registry(doc, str(p))


def _check_coefficients(conn: psycopg.Connection[Any], registry: Registry) -> None:
    known = {r[0] for r in conn.execute("SELECT id FROM coefficients").fetchall()}
    for i, e in enumerate(registry.enterprises):
        for j, s in enumerate(e.sites):
            for k, g in enumerate(s.gateways):
                for m_i, m in enumerate(g.meters):
                    if m.coefficient is not None and m.coefficient not in known:
                        raise RegistryError(
                            "<database>", f"enterprises[{i}].sites[{j}].gateways[{k}].meters[{m_i}].coefficient",
                            f"{m.coefficient!r} is not in the coefficients table ({', '.join(sorted(known))})")


_ENTERPRISE = """
INSERT INTO enterprises (id, name, city, industry) VALUES (%s, %s, %s, %s)
ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, city = EXCLUDED.city, industry = EXCLUDED.industry,
  updated_at = now()
WHERE (enterprises.name, enterprises.city, enterprises.industry)
      IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.city, EXCLUDED.industry)
"""
_SITE = """
INSERT INTO sites AS s (code, enterprise_id, kind, name, new_build, pue_limit, pue_window_hours,
                        energy_budget_tce, products, altitude_m, atmospheric_pressure_pa,
                        pue_limit_source, standard_racks, it_capacity_kw)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (code) DO UPDATE SET enterprise_id = EXCLUDED.enterprise_id, kind = EXCLUDED.kind,
  name = EXCLUDED.name, new_build = EXCLUDED.new_build, pue_limit = EXCLUDED.pue_limit,
  pue_window_hours = EXCLUDED.pue_window_hours, energy_budget_tce = EXCLUDED.energy_budget_tce,
  products = EXCLUDED.products, altitude_m = EXCLUDED.altitude_m,
  atmospheric_pressure_pa = EXCLUDED.atmospheric_pressure_pa, pue_limit_source = EXCLUDED.pue_limit_source,
  standard_racks = EXCLUDED.standard_racks, it_capacity_kw = EXCLUDED.it_capacity_kw, updated_at = now()
RETURNING id
"""
_GATEWAY = """
INSERT INTO gateways (id, enterprise_id, site_id) VALUES (%s, %s, %s)
ON CONFLICT (id) DO UPDATE SET enterprise_id = EXCLUDED.enterprise_id, site_id = EXCLUDED.site_id,
  updated_at = now()
WHERE (gateways.enterprise_id, gateways.site_id) IS DISTINCT FROM (EXCLUDED.enterprise_id, EXCLUDED.site_id)
"""
_METER = """
INSERT INTO meters (gateway_id, code, site_id, enterprise_id, carrier, unit, role, kind, multiplier,
                    rollover, coefficient, product, shares, feedstock, interval_s)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (gateway_id, code) DO UPDATE SET site_id = EXCLUDED.site_id,
  enterprise_id = EXCLUDED.enterprise_id, carrier = EXCLUDED.carrier, unit = EXCLUDED.unit,
  role = EXCLUDED.role, kind = EXCLUDED.kind, multiplier = EXCLUDED.multiplier,
  rollover = EXCLUDED.rollover, coefficient = EXCLUDED.coefficient, product = EXCLUDED.product,
  shares = EXCLUDED.shares, feedstock = EXCLUDED.feedstock, interval_s = EXCLUDED.interval_s,
  updated_at = now()
"""

# The reference tables, written from analytics (one source): only rows that changed are touched.
_COEFFICIENT = """
INSERT INTO coefficients (id, carrier, unit, kgce_per_unit, standard, confidence, basis)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (id) DO UPDATE SET carrier = EXCLUDED.carrier, unit = EXCLUDED.unit,
  kgce_per_unit = EXCLUDED.kgce_per_unit, standard = EXCLUDED.standard, confidence = EXCLUDED.confidence,
  basis = EXCLUDED.basis
WHERE (coefficients.carrier, coefficients.unit, coefficients.kgce_per_unit, coefficients.standard,
       coefficients.confidence, coefficients.basis)
      IS DISTINCT FROM (EXCLUDED.carrier, EXCLUDED.unit, EXCLUDED.kgce_per_unit, EXCLUDED.standard,
                        EXCLUDED.confidence, EXCLUDED.basis)
"""
_QUOTA_COLUMNS = ("product", "indicator", "unit", "level1_advanced", "level2_new_build", "level3_limit", "standard",
                  "confidence", "product_cn", "indicator_cn", "table_ref", "numerator", "output_product", "decimals",
                  "correction", "source")
_QUOTA = (
    f"INSERT INTO quotas ({', '.join(_QUOTA_COLUMNS)}) VALUES ({', '.join(['%s'] * len(_QUOTA_COLUMNS))})"
    " ON CONFLICT (product, indicator) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in _QUOTA_COLUMNS[2:])
    + f" WHERE ({', '.join(f'quotas.{c}' for c in _QUOTA_COLUMNS[2:])})"
    f" IS DISTINCT FROM ({', '.join(f'EXCLUDED.{c}' for c in _QUOTA_COLUMNS[2:])})"
)


def sync_reference(conn: psycopg.Connection[Any]) -> tuple[int, int]:
    """Write every coefficient of ``analytics.coefficients`` and every row of
    ``analytics/data/quotas.csv`` into the database (insert or update; quota rows no longer in
    the CSV are deleted; a coefficient is never deleted, meters refer to it). Returns the
    numbers of rows in each source. Needs a role that owns the tables (admin or owner)."""
    coefficients = [(c.key, c.carrier, c.base_unit, c.kgce_per_unit, c.source, c.confidence, c.basis)
                    for c in COEFFICIENTS.values()]
    quotas = [(q.product, q.indicator, q.unit, q.level1, q.level2, q.level3, q.standard, q.confidence,
               q.product_cn, q.indicator_cn, q.table, q.numerator, q.output_product, q.decimals,
               f"{q.correction.kind}({', '.join(f'{k}={v:g}' for k, v in q.correction.args)})" if q.correction else None,
               "analytics/data/quotas.csv (shared/reference/quotas.csv)") for q in QUOTA_ROWS]
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(_COEFFICIENT, coefficients)
        cur.executemany(_QUOTA, quotas)
        cur.execute("DELETE FROM quotas q WHERE NOT EXISTS (SELECT 1 FROM unnest(%s::text[], %s::text[]) AS k(p, i)"
                    " WHERE k.p = q.product AND k.i = q.indicator)",
                    ([q[0] for q in quotas], [q[1] for q in quotas]))
    return len(coefficients), len(quotas)


def upsert_registry(conn: psycopg.Connection[Any], registry: Registry) -> UpsertResult:
    """Insert or update every entry of ``registry`` in one transaction (as an admin/owner)."""
    sites = gateways = meters = 0
    try:
        with conn.transaction():
            sync_reference(conn)
            _check_coefficients(conn, registry)
            with conn.cursor() as cur:
                for e in registry.enterprises:
                    cur.execute(_ENTERPRISE, (e.id, e.name, e.city, e.industry))
                    for s in e.sites:
                        products = json.dumps([_product_json(p) for p in s.products], ensure_ascii=False)
                        limit, source = _pue_limit(s)
                        row = cur.execute(_SITE, (s.code, e.id, s.kind, s.name, s.new_build, limit,
                                                  s.pue_window_hours, s.energy_budget_tce, products, s.altitude_m,
                                                  s.atmospheric_pressure_pa, source, s.standard_racks,
                                                  s.it_capacity_kw)).fetchone()
                        assert row is not None
                        site_id = int(row[0])
                        sites += 1
                        for g in s.gateways:
                            cur.execute(_GATEWAY, (g.id, e.id, site_id))
                            gateways += 1
                            cur.executemany(_METER, [
                                (g.id, m.code, site_id, e.id, m.carrier, m.unit, m.role, m.kind, m.multiplier,
                                 m.rollover, m.coefficient, m.product, Jsonb(dict(m.shares)), m.feedstock,
                                 m.interval_s)
                                for m in g.meters])
                            meters += len(g.meters)
    except psycopg.errors.IntegrityError as err:
        raise StorageError(f"registry upsert refused by the database: {err}") from err
    return UpsertResult(len(registry.enterprises), sites, gateways, meters)


def _pue_limit(s: SiteSpec) -> tuple[float, str | None]:
    """(PUE limit stored, its source): a data centre's own ``pue_limit``, else 1.2 for a new large
    or very large centre, else the GB 40879-2021 limit value (analytics.pue.site_limit); a plant
    keeps the column's value unused."""
    if s.kind != "data_centre":
        return (s.pue_limit if s.pue_limit is not None else DEFAULT_PUE_LIMIT), None
    return site_limit(s.pue_limit, s.new_build, size_class(s.standard_racks, s.it_capacity_kw))


def _product_json(p: ProductSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"product": p.product, "indicator": p.indicator}
    if p.meters:
        out["meters"] = list(p.meters)
    if p.parameters:
        out["parameters"] = dict(p.parameters)
    return out


def _product_spec(p: Any) -> ProductSpec:
    params = p.get("parameters") or {}
    return ProductSpec(str(p["product"]), str(p["indicator"]), tuple(str(m) for m in p.get("meters") or ()),
                       tuple(sorted((str(k), v) for k, v in params.items())))


class RowCache(Generic[K, T]):
    """Builds objects from database rows, reusing the object of a row that did not change:
    a registry reload then costs a fetch and a tuple comparison per row, not an object per
    row (with 100 000 meters a full rebuild starved the pipeline for about a second)."""

    def __init__(self, make: Callable[[tuple[Any, ...]], T], key: Callable[[tuple[Any, ...]], K]) -> None:
        self._make, self._key = make, key
        self._rows: dict[K, tuple[tuple[Any, ...], T]] = {}

    def build(self, rows: Iterable[tuple[Any, ...]]) -> dict[K, T]:
        old, new, out = self._rows, {}, {}
        make, key = self._make, self._key
        for r in rows:
            k = key(r)
            hit = old.get(k)
            obj = hit[1] if hit is not None and hit[0] == r else make(r)
            new[k] = (r, obj)
            out[k] = obj
        self._rows = new
        return out


def route_of(r: tuple[Any, ...]) -> MeterRoute:
    return MeterRoute(r[2], r[3], r[4], r[5], r[6], r[7])


def load_routing(conn: psycopg.Connection[Any], cache: RowCache[tuple[str, str], MeterRoute] | None = None) -> Routing:
    """Gateways and meters as the collector routes them (one snapshot)."""
    with conn.transaction():
        gws = conn.execute("SELECT id, enterprise_id, site_id FROM gateways").fetchall()
        ms = conn.execute("SELECT gateway_id, code, id, site_id, enterprise_id, unit, kind, role FROM meters").fetchall()
    meters = (cache or RowCache(route_of, lambda r: (r[0], r[1]))).build(ms)
    return Routing(gateways={g: GatewayRoute(g, e, s) for g, e, s in gws}, meters=meters)


def load_sites(conn: psycopg.Connection[Any]) -> dict[int, SiteRow]:
    """Every site visible to the session, by id."""
    rows = conn.execute(
        "SELECT s.id, s.code, s.enterprise_id, s.kind, s.name, s.new_build, s.pue_limit, s.pue_window_hours,"
        " s.energy_budget_tce, s.products, e.city, e.industry, s.altitude_m, s.atmospheric_pressure_pa,"
        " s.pue_limit_source, s.standard_racks, s.it_capacity_kw"
        " FROM sites s JOIN enterprises e ON e.id = s.enterprise_id").fetchall()
    return {
        r[0]: SiteRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8],
                      tuple(_product_spec(p) for p in r[9]), r[10], r[11], altitude_m=r[12],
                      atmospheric_pressure_pa=r[13], pue_limit_source=r[14], standard_racks=r[15],
                      it_capacity_kw=r[16])
        for r in rows
    }


def _kgce_per_unit(role: str, carrier: str, unit: str, coefficient: str | None) -> float | None:
    if role == "product_output":
        return None
    try:
        return resolve(carrier, unit, coefficient)[0]
    except ConversionError:
        return None


def meter_row(r: tuple[Any, ...]) -> MeterRow:
    """A ``load_meters`` row (id, gateway, code, site, enterprise, carrier, unit, role, kind,
    multiplier, rollover, coefficient, product, shares, feedstock, interval_s) as a ``MeterRow``."""
    mid, gw, code, site, ent, carrier, unit, role, kind, mult, roll, coef, product, shares, feedstock, ival = r
    return MeterRow(mid, gw, code, site, ent, carrier, unit, role, kind, mult, roll, coef, product,
                    _kgce_per_unit(role, carrier, unit, coef),
                    tuple(sorted((str(k), float(v)) for k, v in (shares or {}).items())), bool(feedstock),
                    int(ival))


def load_meters(conn: psycopg.Connection[Any], cache: RowCache[int, MeterRow] | None = None) -> dict[int, MeterRow]:
    """Every meter visible to the session, by id, with its kgce per meter unit (pass the same
    ``cache`` on every reload to reuse unchanged rows' objects)."""
    rows = conn.execute(
        "SELECT m.id, m.gateway_id, m.code, m.site_id, m.enterprise_id, m.carrier, m.unit, m.role, m.kind,"
        " m.multiplier, m.rollover, m.coefficient, m.product, m.shares, m.feedstock, m.interval_s"
        " FROM meters m").fetchall()
    return (cache or RowCache(meter_row, lambda r: r[0])).build(rows)


def registry_version(conn: psycopg.Connection[Any]) -> int:
    """The registry's version (migration 0008): changes whenever any registry table changes."""
    row = conn.execute("SELECT version FROM registry_version").fetchone()
    return int(row[0]) if row else 0
