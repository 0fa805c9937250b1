"""An enterprise user sees only its own enterprise: by id, by query parameter, by export, in
the live stream -- and row-level security, not only the API, is what hides the rest."""

from __future__ import annotations

import psycopg
import pytest
from fastapi.testclient import TestClient

from portal.db import Database
from portal.settings import PortalSettings
from portal.users import User
from storage.roles import dsn_for

from .fixtures import World

pytestmark = pytest.mark.integration


def test_own_data_is_visible(client: TestClient, ent_a: dict[str, str], world: World) -> None:
    assert [e["id"] for e in client.get("/api/v1/enterprises", headers=ent_a).json()] == [world.ent_a]
    assert [s["id"] for s in client.get("/api/v1/sites", headers=ent_a).json()] == [world.site_a]
    assert {m["id"] for m in client.get("/api/v1/meters", headers=ent_a).json()} == set(world.meters_a)
    alerts = client.get("/api/v1/alerts", headers=ent_a).json()
    assert world.alert_a in [a["id"] for a in alerts] and {a["enterprise_id"] for a in alerts} == {world.ent_a}
    r = client.get(f"/api/v1/meters/{world.meters_a[0]}/readings", headers=ent_a,
                   params={"start": world.first_day.isoformat(), "end": world.last_day.isoformat()})
    # readings at 00:15 .. 24:00 of each day (fixtures): the last one, at 24:00, is after the range
    assert r.status_code == 200 and sum(p["n"] for p in r.json()["points"]) == 3 * 96 - 1


@pytest.mark.parametrize("path", [
    "/api/v1/sites/{site_b}", "/api/v1/sites/{site_b}/energy", "/api/v1/sites/{site_b}/pue",
    "/api/v1/sites/{site_b}/unit-product?product=calcium_carbide", "/api/v1/meters/{meter_b}/readings",
    "/api/v1/meters?site_id={site_b}", "/api/v1/alerts/{alert_b}", "/sites/{site_b}", "/alerts/{alert_b}",
    "/api/v1/export/readings.csv?meter_id={meter_b}", "/api/v1/export/energy.csv?site_id={site_b}",
    "/api/v1/export/pue.csv?site_id={site_b}", "/api/v1/export/meters.csv?site_id={site_b}",
    "/api/v1/export/unit-product.csv?site_id={site_b}&product=calcium_carbide",
])
def test_other_enterprise_by_id_is_404(client: TestClient, ent_a: dict[str, str], world: World, path: str) -> None:
    url = path.format(site_b=world.site_b, meter_b=world.meters_b[0], alert_b=world.alert_b)
    r = client.get(url, headers=ent_a)
    assert r.status_code == 404, r.text
    assert world.ent_b not in r.text and "宁东" not in r.text


@pytest.mark.parametrize("path", [
    "/api/v1/sites?enterprise_id={ent_b}", "/api/v1/alerts?enterprise_id={ent_b}",
    "/api/v1/export/sites.csv?enterprise_id={ent_b}", "/api/v1/export/alerts.csv?enterprise_id={ent_b}",
    "/api/v1/alerts/stream?enterprise_id={ent_b}&timeout_s=1",
])
def test_other_enterprise_by_parameter_is_403(client: TestClient, ent_a: dict[str, str], world: World,
                                              path: str) -> None:
    r = client.get(path.format(ent_b=world.ent_b), headers=ent_a)
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize("path", ["/api/v1/sites?city=宁东", "/api/v1/alerts?city=宁东",
                                  "/api/v1/alerts?industry=calcium_carbide", "/api/v1/alerts?rule=quota_exceeded"])
def test_filters_cannot_widen_the_view(client: TestClient, ent_a: dict[str, str], path: str) -> None:
    r = client.get(path, headers=ent_a)
    assert r.status_code == 200 and r.json() == []


@pytest.mark.parametrize("table", ["enterprises", "sites", "meters", "alerts"])
def test_exports_hold_only_own_rows(client: TestClient, ent_a: dict[str, str], world: World, table: str) -> None:
    r = client.get(f"/api/v1/export/{table}.csv", headers=ent_a)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    lines = r.text.strip().splitlines()
    assert len(lines) >= 2
    assert world.ent_b not in r.text and str(world.ent_a) in r.text or table == "meters"


def test_inspector_sees_both(client: TestClient, insp: dict[str, str], world: World) -> None:
    assert {e["id"] for e in client.get("/api/v1/enterprises", headers=insp).json()} == {world.ent_a, world.ent_b}
    assert client.get(f"/api/v1/sites/{world.site_b}", headers=insp).status_code == 200


def _db_for(portal_settings: PortalSettings) -> Database:
    db = Database(dsn_for("nxem_portal", portal_settings), 2)
    db.open()
    return db


def test_rls_underneath_hides_other_tenants_without_any_api_filter(portal_settings: PortalSettings,
                                                                    world: World) -> None:
    """Unfiltered SELECTs in a transaction bound to enterprise A return A's rows only."""
    db = _db_for(portal_settings)
    try:
        user_a = User(0, "x", "enterprise", world.ent_a, False)
        with db.tenant(user_a) as conn:
            tables = ["enterprises", "sites", "meters", "alerts", "alert_transitions", "v_readings", "v_rollup_1d"]
            ents = {t: {r[0] for r in conn.execute(
                f"SELECT DISTINCT {'id' if t == 'enterprises' else 'enterprise_id'} FROM {t}")}
                for t in tables[:5]}
            assert all(v == {world.ent_a} for v in ents.values()), ents
            for view in tables[5:]:
                meters = {r[0] for r in conn.execute(f"SELECT DISTINCT meter_id FROM {view}")}
                assert meters == set(world.meters_a), view
        with db.system() as conn:  # no tenant bound: nothing at all
            assert conn.execute("SELECT count(*) FROM sites").fetchone() == (0,)
            assert conn.execute("SELECT count(*) FROM alerts").fetchone() == (0,)
    finally:
        db.close()


def test_portal_role_cannot_read_raw_readings_or_write_registry(portal_settings: PortalSettings, world: World) -> None:
    with psycopg.connect(dsn_for("nxem_portal", portal_settings)) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT count(*) FROM readings")
        conn.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE sites SET name = 'x'")
