"""The coefficient and quota tables are written from analytics (one source), and a plant's
product boundary (tags, shares, feedstock, an indicator's meters, correction parameters)
survives the database round trip into the worker's rules, on a real database."""

from __future__ import annotations

from typing import Any

import pytest

from analytics.coefficients import COEFFICIENTS
from analytics.quotas import ROWS
from storage.registry import load_meters, load_sites, sync_reference, upsert_registry
from storage.registry_format import parse_registry
from stream.registry import build_registry
from tests.integration.test_storage.conftest import PLANT_ENT, Db, load_demo

pytestmark = pytest.mark.integration


def test_the_database_holds_every_coefficient_and_quota_row_of_analytics(db: Db) -> None:
    load_demo(db)
    coefficients = {r[0]: r[1:] for r in db.sql("SELECT id, carrier, unit, kgce_per_unit, confidence, basis"
                                                 " FROM coefficients")}
    # all 26 (0002 seeded 6), per analytics base unit: coke 0.9714 kgce/kg, heat 0.03412 kgce/MJ
    assert coefficients == {c.key: (c.carrier, c.base_unit, c.kgce_per_unit, c.confidence, c.basis)
                            for c in COEFFICIENTS.values()}
    assert len(coefficients) == 26 and coefficients["steam_3.5MPa"][2] == 0.125714
    quotas = {(r[0], r[1]): r[2:] for r in db.sql(
        "SELECT product, indicator, unit, level1_advanced, level2_new_build, level3_limit, standard, indicator_cn,"
        " numerator, decimals FROM quotas")}
    assert len(quotas) == len(ROWS) == 79
    # GB 21346-2022 表1 铝液交流电耗 12 950 / 13 000 / 13 350 kWh/t
    assert quotas[("aluminium", "kwh_per_t")] == ("kWh/t", 12950, 13000, 13350, "GB 21346-2022", "铝液交流电耗",
                                                  "electricity", 0)
    # the portal's lookup of a carbide plant's kgce/t levels is unchanged (GB 21343-2023 表1)
    assert quotas[("calcium_carbide", "kgce_per_t")][1:4] == (805, 823, 940)


def test_a_migrated_database_holds_them_before_any_registry_load(db: Db) -> None:
    assert db.sql("SELECT count(*) FROM coefficients") == [(26,)]
    assert db.sql("SELECT count(*) FROM quotas") == [(79,)]
    assert db.sql("SELECT unit, kgce_per_unit FROM coefficients WHERE id = 'raw_coal'") == [("kg", 0.7143)]


def test_sync_touches_nothing_when_nothing_changed_and_drops_stale_quota_rows(db: Db) -> None:
    load_demo(db)
    before = db.sql("SELECT id, xmin::text FROM coefficients ORDER BY id")
    with db.connect() as conn:
        conn.execute("INSERT INTO quotas (product, indicator, unit, level1_advanced, level2_new_build, level3_limit,"
                     " standard, confidence) VALUES ('steel', 'kgce_per_t', 'kgce/t', 1, 2, 3, 'x', 'x')")
        assert sync_reference(conn) == (26, 79)
        conn.commit()
    assert db.sql("SELECT id, xmin::text FROM coefficients ORDER BY id") == before  # no row rewritten
    assert db.sql("SELECT count(*) FROM quotas WHERE product = 'steel'") == [(0,)]


def _plant() -> dict[str, Any]:
    def m(code: str, carrier: str = "electricity", unit: str = "kWh", role: str = "consumed", **kw: Any) -> dict[str, Any]:
        return {"code": code, "carrier": carrier, "unit": unit, "role": role, "kind": "interval", **kw}

    return {"enterprises": [{
        "id": PLANT_ENT, "name": "宁东化工", "city": "宁东", "industry": "other", "sites": [{
            "code": "nd-chem-01", "name": "一厂", "kind": "plant", "altitude_m": 1150, "atmospheric_pressure_pa": 88_600,
            "products": [
                {"product": "calcium_carbide", "indicator": "kgce_per_t"},
                {"product": "calcium_carbide", "indicator": "kwh_per_t", "meters": ["furnace"]},
                {"product": "methanol", "indicator": "kgce_per_t"},
                {"product": "silicomanganese", "indicator": "kwh_per_t", "parameters": {"ore_grade_pct": 38}}],
            "gateways": [{"id": "gw-nd-chem", "meters": [
                m("furnace", product="calcium_carbide"),
                m("utility", shares={"calcium_carbide": 0.25, "methanol": 0.75}),
                m("coal", "raw_coal", "t", product="methanol", feedstock=True),
                m("gas", "natural_gas", "m3", coefficient="natural_gas_oilfield", product="methanol"),
                m("steam", "steam", "t", coefficient="steam_3.5MPa", product="methanol"),
                m("smelter", product="silicomanganese"),
                m("carbide-out", "product", "t", "product_output", product="calcium_carbide"),
                m("meoh-out", "product", "t", "product_output", product="methanol"),
                m("simn-out", "product", "t", "product_output", product="silicomanganese"),
                {**m("main-incomer", kind="register"), "register_max": 99_999_999, "product": "methanol"},
            ]}]}]}]}


def test_a_plants_boundary_reaches_the_workers_rules(db: Db) -> None:
    with db.connect() as conn:
        upsert_registry(conn, parse_registry(_plant()))
    with db.connect("nxem_ingest") as conn:
        sites, meters = load_sites(conn), load_meters(conn)
    site = next(iter(sites.values()))
    assert (site.altitude_m, site.atmospheric_pressure_pa) == (1150.0, 88_600.0)
    assert site.products[1].meters == ("gw-nd-chem/furnace",)
    assert site.products[3].parameters == (("ore_grade_pct", 38.0),)
    by_code = {m.code: m for m in meters.values()}
    assert by_code["utility"].shares == (("calcium_carbide", 0.25), ("methanol", 0.75))
    assert by_code["coal"].feedstock and not by_code["utility"].feedstock
    # 1 m3 oil-field gas = 1.33 kgce; the 8-digit register wraps at 10⁸ (99 999 999 + 1)
    assert by_code["gas"].kgce_per_unit == 1.33 and by_code["main-incomer"].rollover == 100_000_000
    # steam by mass names its pressure row: 1 t at 3.5 MPa = 1 000 × 0.125714 = 125.714 kgce
    assert by_code["steam"].coefficient == "steam_3.5MPa" and by_code["steam"].kgce_per_unit == 125.714
    reg = build_registry(sites, meters)
    rules = {(r.quota.product, r.quota.indicator): r for r in reg.sites[site.id].quotas}
    alloc = rules[("methanol", "kgce_per_t")].allocation
    assert alloc is not None and alloc.untagged == () and alloc.site == "nd-chem-01"
    ids = {m.code: m.id for m in meters.values()}
    assert dict(alloc.weights["methanol"]) == {ids["utility"]: 0.75, ids["coal"]: 1.0, ids["gas"]: 1.0,
                                               ids["steam"]: 1.0, ids["main-incomer"]: 1.0}
    assert rules[("calcium_carbide", "kwh_per_t")].meters == frozenset({ids["furnace"]})
    # GB 21341-2022 锰硅合金 冶炼电耗: 4 250 − 100 × (38 − 36) = 4 050 kWh/t
    assert rules[("silicomanganese", "kwh_per_t")].threshold == 4050.0
