"""Registry upsert, routing and the read API of collector and worker, on a real database."""

from __future__ import annotations

import copy
from pathlib import Path

import psycopg
import pytest

from ops.services import ServiceSettings, admin_dsn
from storage import roles
from storage.errors import StorageError
from storage.migrate import migrate
from storage.roles import LOGIN_ROLES
from storage.registry import (
    GatewayRoute,
    MeterRoute,
    RegistryError,
    load_meters,
    load_registry_file,
    load_routing,
    load_sites,
    upsert_registry,
)
from storage.registry_format import parse_registry
from tests.integration.test_storage.conftest import (
    DC_ENT,
    PLANT_ENT,
    Db,
    create_db,
    demo_document,
    drop_db,
    load_demo,
)

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]


def test_upsert_twice_keeps_ids_and_changes_nothing(db: Db) -> None:
    first = load_demo(db)
    assert (first.enterprises, first.sites, first.gateways, first.meters) == (3, 3, 3, 8)
    before = db.sql("SELECT id, gateway_id, code, updated_at FROM meters ORDER BY id")
    load_demo(db)
    after = db.sql("SELECT id, gateway_id, code, updated_at FROM meters ORDER BY id")
    assert [r[:3] for r in after] == [r[:3] for r in before]


def test_an_edited_file_updates_rows_in_place(db: Db) -> None:
    load_demo(db)
    ids = db.sql("SELECT id FROM sites WHERE code = 'zw-dc-01'")
    doc = copy.deepcopy(demo_document())
    site = doc["enterprises"][0]["sites"][0]
    site["pue_limit"] = 1.25
    site["gateways"][0]["meters"][0]["multiplier"] = 10
    with db.connect() as conn:
        upsert_registry(conn, parse_registry(doc))
    assert db.sql("SELECT id, pue_limit FROM sites WHERE code = 'zw-dc-01'") == [(ids[0][0], 1.25)]
    assert db.sql("SELECT multiplier FROM meters WHERE gateway_id = 'gw-zw-a' AND code = 'it-main'") == [(10.0,)]


def test_routing_as_the_ingest_role(db: Db) -> None:
    load_demo(db)
    site_id = db.sql("SELECT id FROM sites WHERE code = 'zw-dc-01'")[0][0]
    meter_id = db.sql("SELECT id FROM meters WHERE gateway_id = 'gw-zw-a' AND code = 'it-main'")[0][0]
    with db.connect("nxem_ingest") as conn:
        r = load_routing(conn)
    assert r.gateways["gw-zw-a"] == GatewayRoute("gw-zw-a", DC_ENT, site_id)
    assert r.meters[("gw-zw-a", "it-main")] == MeterRoute(meter_id, site_id, DC_ENT, "kWh", "register", "it_load")
    assert len(r.gateways) == 3 and len(r.meters) == 8


def test_sites_and_meters_carry_every_column(db: Db) -> None:
    load_demo(db)
    with db.connect("nxem_ingest") as conn:
        sites = {s.code: s for s in load_sites(conn).values()}
        meters = {(m.gateway_id, m.code): m for m in load_meters(conn).values()}
    dc, plant = sites["zw-dc-01"], sites["nd-cc-01"]
    # defaults: not new-built, size not given -> the GB 40879-2021 limit value 1.50 (the Ningxia
    # 1.2 is for new large centres), a 7-day operational window, meters every 15 minutes
    assert (dc.enterprise_id, dc.kind, dc.pue_limit, dc.pue_window_hours, dc.new_build) == (
        DC_ENT, "data_centre", 1.5, 168, False)
    assert dc.pue_limit_source is not None and dc.pue_limit_source.startswith("GB 40879-2021")
    assert {m.interval_s for m in meters.values()} == {900}
    assert (dc.city, dc.industry) == ("中卫", "data_centre")
    assert plant.enterprise_id == PLANT_ENT and [p.product for p in plant.products] == ["calcium_carbide"]
    coke = meters[("gw-nd-a", "coke")]
    assert (coke.unit, coke.kind, coke.role, coke.kgce_per_unit) == ("t", "interval", "consumed", 971.4)
    out = meters[("gw-nd-a", "output")]
    assert (out.product, out.coefficient, out.kgce_per_unit) == ("calcium_carbide", None, None)
    assert meters[("gw-zw-a", "it-main")].rollover == 1_000_000


def test_an_unknown_coefficient_is_refused_with_its_path(db: Db) -> None:
    doc = demo_document()
    doc["enterprises"][0]["sites"][0]["gateways"][0]["meters"][1]["coefficient"] = "unicorn_dust"
    with db.connect() as conn, pytest.raises(RegistryError) as exc:
        upsert_registry(conn, parse_registry(doc))
    assert exc.value.path == "enterprises[0].sites[0].gateways[0].meters[1].coefficient"
    assert db.sql("SELECT count(*) FROM enterprises")[0][0] == 0  # nothing half-loaded


@pytest.mark.parametrize("name", ["examples/registry/demo.yaml", "examples/scenarios/demo-fleet.yaml"])
def test_example_files_load(db: Db, name: str) -> None:
    path = REPO / name
    if not path.exists():
        pytest.fail(f"{name} is missing")
    reg = load_registry_file(path)
    with db.connect() as conn:
        upsert_registry(conn, reg)
        upsert_registry(conn, reg)
    n_meters = sum(len(g.meters) for e in reg.enterprises for s in e.sites for g in s.gateways)
    assert db.sql("SELECT count(*) FROM meters")[0][0] == n_meters


def test_ingest_role_cannot_edit_the_registry(db: Db) -> None:
    load_demo(db)
    with db.connect("nxem_ingest") as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("UPDATE sites SET pue_limit = 9")


def test_migrate_on_a_fresh_database_twice(services: ServiceSettings) -> None:
    name = create_db(services)
    try:
        dsn = admin_dsn(services, dbname=name)
        secrets = services.resolved_data_dir() / "secrets"
        first = migrate(dsn, backend=services.db_backend, secrets_dir=secrets)
        assert first[:6] == ["0001_roles.sql", "0002_registry.sql", "0003_readings.sql", "0004_rollups.sql",
                             "0005_alerts.sql", "0006_tenant_views.sql"]
        assert migrate(dsn, backend=services.db_backend, secrets_dir=secrets) == []
        for role in LOGIN_ROLES:
            assert (secrets / f"{role}.password").stat().st_mode & 0o777 == 0o600
        with psycopg.connect(dsn) as conn:
            owners = conn.execute(
                "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class WHERE relnamespace = 'public'::regnamespace"
                " AND relname IN ('readings', 'meters', 'alerts', 'v_readings', 'rollup_15m')").fetchall()
            forced = conn.execute("SELECT bool_and(relforcerowsecurity) FROM pg_class WHERE relname IN "
                                  "('enterprises', 'sites', 'gateways', 'meters', 'alerts', 'alert_transitions',"
                                  " 'dead_letters')").fetchone()
        assert owners == [("nxem_owner",)] and forced == (True,)
    finally:
        drop_db(services, name)


def test_an_edited_applied_migration_is_refused(services: ServiceSettings) -> None:
    name = create_db(services)
    try:
        dsn = admin_dsn(services, dbname=name)
        migrate(dsn, backend=services.db_backend, secrets_dir=services.resolved_data_dir() / "secrets")
        with psycopg.connect(dsn) as conn:
            conn.execute("UPDATE schema_migrations SET sha256 = 'x' WHERE version = '0002'")
        with pytest.raises(StorageError, match="0002_registry.sql changed after it was applied"):
            migrate(dsn, backend=services.db_backend, secrets_dir=services.resolved_data_dir() / "secrets")
    finally:
        drop_db(services, name)


def test_role_dsns_are_masked_for_logs(services: ServiceSettings) -> None:
    masked = roles.masked_dsn("nxem_portal", services)
    assert "***" in masked and roles.read_password("nxem_portal", services.resolved_data_dir() / "secrets") not in masked
    assert "***" in roles.mask(admin_dsn(services))


def test_the_registry_version_moves_once_per_transaction(db: Db) -> None:
    from storage.registry import registry_version

    with db.connect() as conn:
        v0 = registry_version(conn)
    load_demo(db)  # one transaction of many statements (3 enterprises, 3 sites, 3 gateways, 8 meters)
    with db.connect() as conn:
        v1 = registry_version(conn)
        conn.execute("UPDATE sites SET pue_limit = 1.25 WHERE code = 'zw-dc-01'")
        conn.execute("UPDATE sites SET pue_limit = 1.3 WHERE code = 'zw-dc-01'")
        conn.commit()
        v2 = registry_version(conn)
        conn.execute("UPDATE sites SET pue_limit = 1.2 WHERE code = 'zw-dc-01'")
        conn.rollback()
        v3 = registry_version(conn)
        conn.execute("UPDATE sites SET pue_limit = 1.2 WHERE code = 'zw-dc-01'")
        conn.commit()
        v4 = registry_version(conn)
    # +1 per committed transaction, whatever its number of statements; nothing for a rollback
    assert (v1 - v0, v2 - v1, v3 - v2, v4 - v3) == (1, 1, 0, 1)
