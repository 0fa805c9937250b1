"""Series values against hand-computed figures, the overview, pages, and error bodies."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from portal import auth

from .fixtures import World

pytestmark = pytest.mark.integration


def _range(world: World) -> dict[str, str]:
    return {"start": world.first_day.isoformat(), "end": world.last_day.isoformat()}


def test_daily_energy_pue_and_unit_product(client: TestClient, ent_a: dict[str, str], ent_b: dict[str, str],
                                           world: World) -> None:
    e = client.get(f"/api/v1/sites/{world.site_a}/energy", headers=ent_a, params=_range(world)).json()
    # 96 x 650 kWh x 0.1229 kgce/kWh = 7 669.0 kgce per local day
    assert [p["tce"] for p in e["points"]] == pytest.approx([7.66896] * 3)
    m = client.get(f"/api/v1/sites/{world.site_a}/energy", headers=ent_a,
                   params={**_range(world), "period": "month"}).json()
    assert sum(p["tce"] for p in m["points"]) == pytest.approx(3 * 7.66896)
    p = client.get(f"/api/v1/sites/{world.site_a}/pue", headers=ent_a, params=_range(world)).json()
    assert p["pue_limit"] == 1.2 and [x["pue"] for x in p["points"]] == pytest.approx([1.3] * 3)
    u = client.get(f"/api/v1/sites/{world.site_b}/unit-product", headers=ent_b,
                   params={**_range(world), "product": "calcium_carbide"}).json()
    assert (u["indicator"], u["unit"]) == ("kgce_per_t", "kgce/t")
    assert u["quota_levels"] == {"level1": 805.0, "level2": 823.0, "level3": 940.0}
    # 768 000 kWh x 0.1229 / 96 t = 983.2 kgce/t
    assert [x["value"] for x in u["points"]] == pytest.approx([983.2] * 3)


def test_readings_are_downsampled(client: TestClient, ent_a: dict[str, str], world: World) -> None:
    r = client.get(f"/api/v1/meters/{world.meters_a[1]}/readings", headers=ent_a,
                   params={**_range(world), "points": 10}).json()
    assert r["bucket_s"] == 43200 and len(r["points"]) == 6
    # readings at 00:15 .. 24:00 of each day: the first 12 hours hold 47 (00:15 .. 11:45), and the
    # reading at 24:00 of the last day lies after the range
    assert [x["n"] for x in r["points"]] == [47, 48, 48, 48, 48, 48]
    assert all(x["avg"] == 650.0 for x in r["points"])


def test_overview(client: TestClient, insp: dict[str, str], world: World) -> None:
    o = client.get("/api/v1/overview", headers=insp).json()
    groups = {(g["city"], g["industry"]): g for g in o["groups"]}
    assert groups[("中卫", "data_centre")]["sites"] == 1
    if world.first_day.year == world.last_day.year == o["year"]:
        assert groups[("中卫", "data_centre")]["annual_tce"] == pytest.approx(23.007, abs=1e-3)
        assert o["pue_grades"] == [{"grade": "2级", "sites": 1}]
        assert o["quota_status"] == [{"status": "exceeds limit", "sites": 1}]
    page = client.get("/overview", headers=insp)
    assert page.status_code == 200 and "Data centres by PUE grade" in page.text


def test_site_page_has_its_charts(client: TestClient, ent_b: dict[str, str], world: World) -> None:
    r = client.get(f"/sites/{world.site_b}", headers=ent_b, params=_range(world))
    assert r.status_code == 200
    assert r.text.count("<svg") == 3  # readings, daily tce, unit product (no PUE for a plant)
    assert "L3 limit 940" in r.text and "Daily comprehensive energy consumption" in r.text


@pytest.mark.parametrize(("path", "status", "code"), [
    ("/api/v1/sites/not-a-number", 422, "invalid_request"),
    ("/api/v1/sites/1/energy?start=2026-02-01&end=2026-01-01", 400, "bad_request"),
    ("/api/v1/sites/1/energy?period=week", 422, "invalid_request"),
    ("/api/v1/alerts?status=sleeping", 422, "invalid_request"),
    ("/api/v1/export/passwords.csv", 422, "invalid_request"),
    ("/api/v1/export/readings.csv", 400, "bad_request"),
    ("/api/v1/nothing-here", 404, "not_found"),
])
def test_clear_4xx_errors(client: TestClient, insp: dict[str, str], path: str, status: int, code: str) -> None:
    r = client.get(path, headers=insp)
    assert r.status_code == status and r.json()["error"]["code"] == code
    assert "Traceback" not in r.text and "File \"" not in r.text


def test_invalid_json_body_is_422(client: TestClient, insp: dict[str, str], world: World) -> None:
    r = client.post(f"/api/v1/alerts/{world.alert_b}/acknowledge", headers={**insp, "Content-Type": "application/json"},
                    content=b"{not json")
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"


class _Broken:
    def system(self) -> Iterator[None]:
        raise RuntimeError("secret internals: password=hunter2")


def test_unexpected_errors_hide_their_details(client: TestClient, insp: dict[str, str]) -> None:
    client.app.dependency_overrides[auth.get_db] = lambda: _Broken()  # type: ignore[attr-defined]
    try:
        r = client.get("/api/v1/me", headers=insp)
    finally:
        client.app.dependency_overrides.clear()  # type: ignore[attr-defined]
    assert r.status_code == 500
    assert r.json()["error"]["code"] == "internal_error" and "hunter2" not in r.text and "secret" not in r.text


def test_openapi_documents_the_api(client: TestClient) -> None:
    spec = client.get("/api/v1/openapi.json").json()
    for path in ("/api/v1/auth/token", "/api/v1/alerts", "/api/v1/alerts/{alert_id}/acknowledge",
                 "/api/v1/alerts/stream", "/api/v1/sites/{site_id}/pue", "/api/v1/export/{table}.csv"):
        assert path in spec["paths"], path
    assert not any(p.startswith("/board") or p.startswith("/login") for p in spec["paths"])
