"""tCO₂ beside tce on the energy API, its CSV and the site page, against hand-computed figures.

A database of its own (the shared one's enterprise lists are asserted elsewhere) with one plant
and one electricity meter (coefficient electricity_calorific) metering 4 x 250 kWh = 1 000 kWh
per local day. Per day, by hand:
  tce  = 1 000 kWh x 0.1229 kgce/kWh = 122.9 kgce = 0.1229 tce   (GB/T 2589-2020, calorific)
  tCO₂ = 1 000 kWh x 0.0005 tCO₂/kWh = 0.5 tCO₂                  (the test's factor file)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from ops.services import ServiceSettings
from portal.app import create_app
from portal.settings import PortalSettings
from portal.users import create_user
from portal.views import LOCAL
from storage.ingest import write_batch
from storage.roles import dsn_for

from .conftest import token_for
from .fixtures import PASSWORD, _site, _uscc, create_database, drop_database

pytestmark = pytest.mark.integration

ENT_C = _uscc("91640200MA7EMC003")
DAYS = 3
TCE_PER_DAY = 0.1229  # 1 000 kWh x 0.1229 kgce/kWh / 1 000
TCO2_PER_DAY = 0.5  # 1 000 kWh x 0.0005 tCO2/kWh


@dataclass(frozen=True)
class Plant:
    dbname: str
    site_id: int
    first_day: date
    last_day: date

    @property
    def range(self) -> dict[str, str]:
        return {"start": self.first_day.isoformat(), "end": self.last_day.isoformat()}


@pytest.fixture(scope="module")
def plant(services: ServiceSettings) -> Iterator[Plant]:
    dbname, dsn = create_database(services)
    try:
        last = datetime.now(timezone.utc).astimezone(LOCAL).date() - timedelta(days=1)
        first = last - timedelta(days=DAYS - 1)
        with psycopg.connect(dsn) as conn:
            site_id, (el,) = _site(conn, ENT_C, "石嘴山铁合金", "石嘴山", "ferroalloy", "plant",
                                   [("el", "electricity", "kWh", "consumed", "electricity_calorific", None)])
            conn.commit()
            t0 = datetime.combine(first, time(), LOCAL).astimezone(timezone.utc)
            # 250 kWh each 6 h, stamped a second before the end of its interval: 1 000 kWh per local day
            rows = [(el, t0 + timedelta(hours=6 * (k + 1)) - timedelta(seconds=1), 250.0) for k in range(DAYS * 4)]
            write_batch(conn, rows, [], [])
            conn.commit()
            create_user(conn, "insp", PASSWORD, "inspector", None)
        yield Plant(dbname, site_id, first, last)
    finally:
        drop_database(services, dbname)


def _client(portal_settings: PortalSettings, plant: Plant, factors: Path | None) -> TestClient:
    settings = portal_settings.model_copy(update={"pg_db": plant.dbname, "emission_factors_file": factors})
    return TestClient(create_app(settings, dsn_for("nxem_portal", settings)), raise_server_exceptions=False)


def _factors(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "factors.csv"
    path.write_text("key,tco2_per_unit,unit,source\n" + body, encoding="utf-8")
    return path


def test_tco2_beside_tce_with_a_factor(portal_settings: PortalSettings, plant: Plant, tmp_path: Path) -> None:
    # keyed by carrier: the meter's coefficient id (electricity_calorific) has no factor of its own
    path = _factors(tmp_path, "electricity,0.0005,kWh,test factor (not a published value)\n")
    with _client(portal_settings, plant, path) as client:
        insp = token_for(client, "insp")
        e = client.get(f"/api/v1/sites/{plant.site_id}/energy", headers=insp, params=plant.range).json()
        assert [p["tce"] for p in e["points"]] == pytest.approx([TCE_PER_DAY] * DAYS)
        assert [p["tco2"] for p in e["points"]] == pytest.approx([TCO2_PER_DAY] * DAYS)
        assert e["tco2_note"] is None and all(p["tco2_note"] is None for p in e["points"])
        used = [(f["meter_code"], f["key"], f["tco2_per_unit"], f["unit"], f["source"]) for f in e["emission_factors"]]
        assert used == [("el", "electricity", 0.0005, "kWh", "test factor (not a published value)")]
        m = client.get(f"/api/v1/sites/{plant.site_id}/energy", headers=insp,
                       params={**plant.range, "period": "month"}).json()
        assert sum(p["tco2"] for p in m["points"]) == pytest.approx(DAYS * TCO2_PER_DAY)
        assert sum(p["tce"] for p in m["points"]) == pytest.approx(DAYS * TCE_PER_DAY)
        csv = client.get("/api/v1/export/energy.csv", headers=insp, params={**plant.range, "site_id": plant.site_id})
        assert csv.text.splitlines()[0] == "period_start,tce,tco2,tco2_note"
        day, tce, tco2, note = csv.text.splitlines()[1].split(",")
        assert (day, note) == (plant.first_day.isoformat(), "")
        assert float(tce) == pytest.approx(TCE_PER_DAY) and float(tco2) == pytest.approx(TCO2_PER_DAY)
        page = client.get(f"/sites/{plant.site_id}", headers=insp, params=plant.range)
        assert page.status_code == 200
        assert page.text.count('<td class="num">0.1229</td><td class="num tco2">0.5</td>') == DAYS
        assert "test factor (not a published value)" in page.text


def test_tco2_is_null_when_not_configured(portal_settings: PortalSettings, plant: Plant) -> None:
    with _client(portal_settings, plant, None) as client:
        insp = token_for(client, "insp")
        e = client.get(f"/api/v1/sites/{plant.site_id}/energy", headers=insp, params=plant.range).json()
        assert [p["tce"] for p in e["points"]] == pytest.approx([TCE_PER_DAY] * DAYS)
        assert [p["tco2"] for p in e["points"]] == [None] * DAYS
        assert e["tco2_note"] == "no emission factors configured" and e["emission_factors"] == []
        page = client.get(f"/sites/{plant.site_id}", headers=insp, params=plant.range)
        assert "no emission factors configured" in page.text
        assert page.text.count('<td class="num tco2">—</td>') == DAYS


def test_tco2_is_null_with_the_reason_when_a_meter_has_no_factor(portal_settings: PortalSettings, plant: Plant,
                                                                  tmp_path: Path) -> None:
    path = _factors(tmp_path, "natural_gas_gasfield,0.002,m3,test factor (not a published value)\n")
    with _client(portal_settings, plant, path) as client:
        insp = token_for(client, "insp")
        e = client.get(f"/api/v1/sites/{plant.site_id}/energy", headers=insp, params=plant.range).json()
        reason = "no emission factor for meter el (electricity_calorific, kWh) in factors.csv"
        assert [p["tco2"] for p in e["points"]] == [None] * DAYS
        assert e["tco2_note"] == reason and all(p["tco2_note"] == reason for p in e["points"])
        page = client.get(f"/sites/{plant.site_id}", headers=insp, params=plant.range)
        assert reason in page.text


def test_a_bad_factors_file_stops_start_up(portal_settings: PortalSettings, plant: Plant, tmp_path: Path) -> None:
    from nxem.errors import ConfigError

    path = _factors(tmp_path, "electricity,0.0005,m3,test\n")
    with pytest.raises(ConfigError, match=r"NXEM_EMISSION_FACTORS_FILE: factors.csv:2: unit 'm3'"):
        _client(portal_settings, plant, path)


def test_tce_scales_the_meters_unit_and_is_unknown_when_a_meter_cannot_be_converted(
    services: ServiceSettings, portal_settings: PortalSettings, plant: Plant,
) -> None:
    from ops.services import admin_dsn

    t0 = datetime.combine(plant.first_day, time(), LOCAL).astimezone(timezone.utc)
    with psycopg.connect(admin_dsn(services, dbname=plant.dbname)) as conn:
        mwh_site, (mwh,) = _site(conn, _uscc("91640200MA7EMD004"), "石嘴山电石", "石嘴山", "calcium_carbide", "plant",
                                 [("el-mwh", "electricity", "MWh", "consumed", "electricity_calorific", None)])
        bad_site, (kwh, heat) = _site(conn, _uscc("91640200MA7EME005"), "石嘴山焦化", "石嘴山", "coke", "plant",
                                      [("el", "electricity", "kWh", "consumed", "electricity_calorific", None),
                                       ("heat-kwh", "heat", "kWh", "consumed", "heat", None)])  # heat is per GJ
        conn.commit()
        six_h = [t0 + timedelta(hours=6 * (k + 1)) - timedelta(seconds=1) for k in range(DAYS * 4)]
        write_batch(conn, [(mwh, t, 0.25) for t in six_h] + [(kwh, t, 250.0) for t in six_h]
                    + [(heat, t, 1.0) for t in six_h], [], [])
        conn.commit()
    with _client(portal_settings, plant, None) as client:
        insp = token_for(client, "insp")
        e = client.get(f"/api/v1/sites/{mwh_site}/energy", headers=insp, params=plant.range).json()
        # 4 × 0.25 MWh = 1 MWh = 1 000 kWh a day × 0.1229 kgce/kWh = 122.9 kgce = 0.1229 tce
        assert [p["tce"] for p in e["points"]] == pytest.approx([TCE_PER_DAY] * DAYS)
        e = client.get(f"/api/v1/sites/{bad_site}/energy", headers=insp, params=plant.range).json()
        # the heat meter in kWh has no GB/T 2589 conversion: the day's tce is unknown, not 0.1229
        assert [p["tce"] for p in e["points"]] == [None] * DAYS
