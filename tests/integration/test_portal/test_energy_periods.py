"""Quarter-hour, hour and rolling-12-month energy on the API, its CSV and the site page, against
hand-computed figures, and the property that the quarter-hours and hours of a local day sum to
that day's figure.

A database of its own with four plants (one electricity meter each, coefficient
electricity_calorific 0.1229 kgce/kWh, GB/T 2589-2020; tCO₂ from the test's factor file,
0.0005 tCO₂/kWh). D1..D3 are the three local days up to yesterday. A reading closes the
interval before it and a register's step is shared by time over the interval it closes
(analytics.energy_definition, the rules' definition).

* A (interval meter, 15 min): 250 kWh at 06:00, 12:00, 18:00 and 24:00 (the next day's 00:00)
  local, each closing the quarter-hour starting at 05:45, 11:45, 17:45, 23:45 -- of the day
  before for the 24:00 reading -- and the hour starting at 05:00, 11:00, 17:00, 23:00.
    per reading: 250 kWh × 0.1229 = 30.725 kgce = 0.030725 tce;  250 × 0.0005 = 0.125 tCO₂
    per day:     4 × 250 = 1 000 kWh = 0.1229 tce, 0.5 tCO₂
* B (register meter, multiplier 2, wraps at 10 000): raw value (9 800 + 50 k) mod 10 000 every
  3 h from D1 00:00 to the 00:00 after D3 (k = 0..24), so it wraps between D1 09:00 and 12:00
  (9 950 -> 0: 10 000 − 9 950 + 0 = 50).  Each step 50 × 2 = 100 kWh over 3 h: 100 / 12
  = 8.3333 kWh a quarter-hour (0.00102417 tce), the wrap's quarters included.
    D1: k = 0 is the baseline; the steps into k = 1..8 (k = 8 at D2 00:00 closes D1):
        8 × 100 = 800 kWh = 98.32 kgce = 0.09832 tce; D2 (k = 9..16) and D3 (k = 17..24) the same
* G (register, a whole day without readings): 100 at D1 12:00, 130 at D1 18:00; nothing on D2;
  490 at D3 06:00, 550 at D3 12:00.  130 -> 490 = 360 kWh over the 36 h (D1 18:00, D3 06:00]:
  10 kWh an hour, 2.5 a quarter-hour, shared by time:
    D1: 30 + 6 h × 10 = 90 kWh = 0.011061 tce;  D2: 24 h × 10 = 240 kWh = 0.029496 tce;
    D3: 6 h × 10 + 60 = 120 kWh = 0.014748 tce; D3's quarter-hours 00:00 .. 11:45 hold 2.5 kWh
    each = 0.00030725 tce (48 of them)
* C (interval, the rolling window's edge): 100 kWh at noon on D1 − 363, 10 kWh at noon on
  D1 − 362, 1 000 kWh at noon on D3. The rolling 12 months ending at a day are the 365 local
  days up to and including it (alerts.rules.annual: AnnualTceRule.period = 365 days, summed
  over [end − period, end) with end the local midnight after it):
    D1: days D1 − 364 .. D1 hold 100 + 10 = 110 kWh = 13.519 kgce = 0.013519 tce
    D2: days D1 − 363 .. D2: 110 kWh = 0.013519 tce
    D3: days D1 − 362 .. D3: 10 + 1 000 = 1 010 kWh = 124.129 kgce = 0.124129 tce
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

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

EL = ("el", "electricity", "kWh", "consumed", "electricity_calorific", None)
KGCE_PER_KWH = 0.1229  # GB/T 2589-2020, electricity at calorific value
TCO2_PER_KWH = 0.0005  # the test's factor file (not a published value)


def tce(kwh: float) -> float:
    return kwh * KGCE_PER_KWH / 1000.0


@dataclass(frozen=True)
class Plants:
    dbname: str
    a: int  # interval, 4 × 250 kWh a day
    b: int  # register with multiplier 2 and a wrap
    c: int  # interval, at the rolling window's edge
    g: int  # register with a day without readings
    d1: date
    d3: date

    @property
    def d2(self) -> date:
        return self.d1 + timedelta(days=1)


def _at(d: date, hh: int, mm: int = 0, ss: int = 0) -> datetime:
    return datetime.combine(d, time(hh, mm, ss), LOCAL).astimezone(timezone.utc)


@pytest.fixture(scope="module")
def plants(services: ServiceSettings) -> Iterator[Plants]:
    dbname, dsn = create_database(services)
    try:
        d3 = datetime.now(timezone.utc).astimezone(LOCAL).date() - timedelta(days=1)
        d1 = d3 - timedelta(days=2)
        days = [d1, d1 + timedelta(days=1), d3]
        with psycopg.connect(dsn) as conn:
            a, (el_a,) = _site(conn, _uscc("91640200MA7PQA011"), "石嘴山硅铁", "石嘴山", "ferroalloy", "plant", [EL])
            b, (el_b,) = _site(conn, _uscc("91640200MA7PQB012"), "石嘴山电石", "石嘴山", "calcium_carbide", "plant", [EL])
            c, (el_c,) = _site(conn, _uscc("91640200MA7PQC013"), "石嘴山焦化", "石嘴山", "coke", "plant", [EL])
            g, (el_g,) = _site(conn, _uscc("91640200MA7PQD014"), "石嘴山甲醇", "石嘴山", "methanol", "plant", [EL])
            conn.execute("UPDATE meters SET kind = 'register', multiplier = 2, rollover = 10000 WHERE id = %s", (el_b,))
            conn.execute("UPDATE meters SET kind = 'register' WHERE id = %s", (el_g,))
            conn.commit()
            rows: list[tuple[int, datetime, float]] = []
            rows += [(el_a, _at(d, 0) + timedelta(hours=h), 250.0) for d in days for h in (6, 12, 18, 24)]
            rows += [(el_b, _at(d1, 0) + timedelta(hours=3 * k), (9800.0 + 50 * k) % 10000) for k in range(25)]
            rows += [(el_c, _at(d1 - timedelta(days=363), 12), 100.0), (el_c, _at(d1 - timedelta(days=362), 12), 10.0),
                     (el_c, _at(d3, 12), 1000.0)]
            rows += [(el_g, _at(d1, 12), 100.0), (el_g, _at(d1, 18), 130.0), (el_g, _at(d3, 6), 490.0),
                     (el_g, _at(d3, 12), 550.0)]
            write_batch(conn, rows, [], [])
            conn.commit()
            create_user(conn, "insp", PASSWORD, "inspector", None)
        yield Plants(dbname, a, b, c, g, d1, d3)
    finally:
        drop_database(services, dbname)


@pytest.fixture(scope="module")
def client(portal_settings: PortalSettings, plants: Plants,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    factors = tmp_path_factory.mktemp("factors") / "factors.csv"
    factors.write_text("key,tco2_per_unit,unit,source\nelectricity,0.0005,kWh,test factor (not a published value)\n",
                       encoding="utf-8")
    settings = portal_settings.model_copy(update={"pg_db": plants.dbname, "emission_factors_file": factors})
    with TestClient(create_app(settings, dsn_for("nxem_portal", settings)), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def insp(client: TestClient) -> dict[str, str]:
    return token_for(client, "insp")


def _energy(client: TestClient, insp: dict[str, str], site: int, period: str, start: date,
            end: date) -> list[dict[str, Any]]:
    r = client.get(f"/api/v1/sites/{site}/energy", headers=insp,
                   params={"period": period, "start": start.isoformat(), "end": end.isoformat()})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["period"] == period
    points: list[dict[str, Any]] = body["points"]
    return points


def _starts(points: Sequence[dict[str, Any]]) -> list[datetime]:
    return [datetime.fromisoformat(p["period_start"]) for p in points]


# ----------------------------------------------------------------- worked examples

def test_quarter_hours_of_an_interval_meter(client: TestClient, insp: dict[str, str], plants: Plants) -> None:
    pts = _energy(client, insp, plants.a, "15min", plants.d2, plants.d2)
    # one reading per 6 h, each in the quarter-hour its timestamp falls in; given in local time
    assert [p["period_start"] for p in pts] == [f"{plants.d2.isoformat()}T{hm}:00+08:00"
                                                 for hm in ("05:45", "11:45", "17:45", "23:45")]
    assert [p["tce"] for p in pts] == pytest.approx([0.030725] * 4)  # 250 kWh × 0.1229 / 1000
    assert [p["tco2"] for p in pts] == pytest.approx([0.125] * 4)  # 250 kWh × 0.0005
    assert all(p["tco2_note"] is None and p["window_start"] is None for p in pts)


def test_hours_of_an_interval_meter(client: TestClient, insp: dict[str, str], plants: Plants) -> None:
    pts = _energy(client, insp, plants.a, "hour", plants.d1, plants.d3)
    expected = [datetime.combine(d, time(h), LOCAL) for d in (plants.d1, plants.d2, plants.d3) for h in (5, 11, 17, 23)]
    assert _starts(pts) == expected
    assert [p["tce"] for p in pts] == pytest.approx([0.030725] * 12)


def test_quarter_hours_of_a_register_meter(client: TestClient, insp: dict[str, str], plants: Plants) -> None:
    pts = _energy(client, insp, plants.b, "15min", plants.d1, plants.d2)
    d1 = [p for p in pts if p["period_start"].startswith(plants.d1.isoformat())]
    # every quarter-hour of D1 holds 100 / 12 kWh = 8.3333 kWh × 0.1229 / 1000 = 0.00102417 tce,
    # the wrap's (09:00 .. 11:45: 9 950 -> 0 is 50 × 2 = 100 kWh over 3 h) included
    assert _starts(d1) == [datetime.combine(plants.d1, time(0), LOCAL) + timedelta(minutes=15 * q) for q in range(96)]
    assert [p["tce"] for p in d1] == pytest.approx([100 / 12 * 0.1229 / 1000] * 96)
    # asked for D2 alone, its quarter-hours are the same: the step into D2's readings starts
    # from D1's last reading, the one into D2's last quarter ends at D3 00:00
    alone = _energy(client, insp, plants.b, "15min", plants.d2, plants.d2)
    both = [p for p in pts if p["period_start"].startswith(plants.d2.isoformat())]
    assert len(alone) == 96 and [p["tce"] for p in alone] == pytest.approx([p["tce"] for p in both])
    assert alone[0]["tco2"] == pytest.approx(100 / 12 * 0.0005)  # 8.3333 kWh × 0.0005


def test_a_register_across_a_day_without_readings(client: TestClient, insp: dict[str, str],
                                                  plants: Plants) -> None:
    days = _energy(client, insp, plants.g, "day", plants.d1, plants.d3)
    assert [p["period_start"] for p in days] == [d.isoformat() for d in (plants.d1, plants.d2, plants.d3)]
    # D1: 30 + 60; D2: 240; D3: 60 + 60 kWh -- the 360 kWh of the gap shared by time (module doc)
    assert [p["tce"] for p in days] == pytest.approx([tce(90), tce(240), tce(120)])
    quarters = _energy(client, insp, plants.g, "15min", plants.d3, plants.d3)
    assert _starts(quarters) == [datetime.combine(plants.d3, time(0), LOCAL) + timedelta(minutes=15 * q)
                                 for q in range(48)]
    assert [p["tce"] for p in quarters] == pytest.approx([0.00030725] * 48)  # 2.5 kWh each


# ----------------------------------------------------------------- Σ fine periods == day

@pytest.mark.parametrize("period", ["15min", "hour"])
@pytest.mark.parametrize("site", ["a", "b", "g"])
@pytest.mark.parametrize("span", ["all three days", "the last two days"])
def test_fine_periods_sum_to_the_day(client: TestClient, insp: dict[str, str], plants: Plants, period: str,
                                     site: str, span: str) -> None:
    site_id = getattr(plants, site)
    start = plants.d1 if span == "all three days" else plants.d2
    days = _energy(client, insp, site_id, "day", start, plants.d3)
    fine = _energy(client, insp, site_id, period, start, plants.d3)
    tce_sum: dict[str, float] = defaultdict(float)
    tco2_sum: dict[str, float] = defaultdict(float)
    for p in fine:
        day = datetime.fromisoformat(p["period_start"]).astimezone(LOCAL).date().isoformat()
        tce_sum[day] += p["tce"]
        tco2_sum[day] += p["tco2"]
    assert days and sorted(tce_sum) == [p["period_start"] for p in days]
    for p in days:
        assert tce_sum[p["period_start"]] == pytest.approx(p["tce"], rel=1e-9, abs=1e-12)
        assert tco2_sum[p["period_start"]] == pytest.approx(p["tco2"], rel=1e-9, abs=1e-12)


def test_the_day_figures_the_sums_are_checked_against(client: TestClient, insp: dict[str, str],
                                                      plants: Plants) -> None:
    # the property above is only as good as the day figures: pin them by hand too
    a = _energy(client, insp, plants.a, "day", plants.d1, plants.d3)
    assert [p["tce"] for p in a] == pytest.approx([0.1229] * 3)  # 1 000 kWh a day
    b = _energy(client, insp, plants.b, "day", plants.d1, plants.d3)
    assert [p["tce"] for p in b] == pytest.approx([0.09832] * 3)  # 800 kWh a day
    g = _energy(client, insp, plants.g, "day", plants.d1, plants.d3)
    assert [p["tce"] for p in g] == pytest.approx([0.011061, 0.029496, 0.014748])  # 90, 240, 120 kWh


# ----------------------------------------------------------------- rolling 12 months

def test_rolling12_over_three_days_of_data(client: TestClient, insp: dict[str, str], plants: Plants) -> None:
    today = plants.d3 + timedelta(days=1)
    pts = _energy(client, insp, plants.a, "rolling12", plants.d1, today)
    assert [p["period_start"] for p in pts] == [d.isoformat() for d in (plants.d1, plants.d2, plants.d3, today)]
    # D1: day 1; D2: days 1..2; D3: days 1..3; today (no readings yet): still days 1..3
    assert [p["tce"] for p in pts] == pytest.approx([0.1229, 0.2458, 0.3687, 0.3687])
    assert [p["tco2"] for p in pts] == pytest.approx([0.5, 1.0, 1.5, 1.5])
    assert pts[2]["window_start"] == (plants.d3 - timedelta(days=364)).isoformat()
    assert all(p["data_from"] == plants.d1.isoformat() for p in pts)  # less than a year held: a lower bound
    # asked for D3 alone, the days before the range are still in its window
    alone = _energy(client, insp, plants.a, "rolling12", plants.d3, plants.d3)
    assert [p["tce"] for p in alone] == pytest.approx([0.3687])


def test_rolling12_window_is_365_local_days(client: TestClient, insp: dict[str, str], plants: Plants) -> None:
    pts = _energy(client, insp, plants.c, "rolling12", plants.d1, plants.d3)
    # D1, D2: 100 + 10 kWh; D3: the 100 kWh of D1 − 363 = D3 − 365 has left, 10 + 1 000 kWh
    assert [p["tce"] for p in pts] == pytest.approx([0.013519, 0.013519, 0.124129])
    assert [p["data_from"] for p in pts] == [(plants.d1 - timedelta(days=n)).isoformat() for n in (363, 363, 362)]
    assert [p["window_start"] for p in pts] == [(d - timedelta(days=364)).isoformat()
                                                for d in (plants.d1, plants.d2, plants.d3)]
    # the day series agrees: Σ of the days D3 − 364 .. D3
    days = _energy(client, insp, plants.c, "day", plants.d3 - timedelta(days=364), plants.d3)
    assert sum(p["tce"] for p in days) == pytest.approx(pts[-1]["tce"])


def test_rolling12_csv(client: TestClient, insp: dict[str, str], plants: Plants) -> None:
    r = client.get("/api/v1/export/energy.csv", headers=insp,
                   params={"site_id": plants.a, "period": "rolling12", "start": plants.d3.isoformat(),
                           "end": plants.d3.isoformat()})
    assert r.status_code == 200
    lines = r.text.splitlines()
    assert lines[0] == "period_start,tce,tco2,tco2_note,window_start,data_from"
    day, tce_s, tco2_s, note, window_start, data_from = lines[1].split(",")
    assert (day, note, window_start, data_from) == (plants.d3.isoformat(), "",
                                                    (plants.d3 - timedelta(days=364)).isoformat(),
                                                    plants.d1.isoformat())
    assert float(tce_s) == pytest.approx(0.3687) and float(tco2_s) == pytest.approx(1.5)


# ----------------------------------------------------------------- CSV, page, range limits

def test_quarter_hour_csv(client: TestClient, insp: dict[str, str], plants: Plants) -> None:
    r = client.get("/api/v1/export/energy.csv", headers=insp,
                   params={"site_id": plants.a, "period": "15min", "start": plants.d2.isoformat(),
                           "end": plants.d2.isoformat()})
    assert r.status_code == 200
    lines = r.text.splitlines()
    assert lines[0] == "period_start,tce,tco2,tco2_note"
    start, tce_s, tco2_s, note = lines[1].split(",")
    assert (start, note) == (f"{plants.d2.isoformat()}T05:45:00+08:00", "")
    assert float(tce_s) == pytest.approx(0.030725) and float(tco2_s) == pytest.approx(0.125)
    assert len(lines) == 5


def test_site_page_period_selector(client: TestClient, insp: dict[str, str], plants: Plants) -> None:
    page = client.get(f"/sites/{plants.a}", headers=insp,
                      params={"period": "hour", "start": plants.d2.isoformat(), "end": plants.d2.isoformat()})
    assert page.status_code == 200
    assert '<option value="hour" selected>' in page.text
    for hm in ("05:00", "11:00", "17:00", "23:00"):
        assert f"<td>{plants.d2.isoformat()} {hm}</td>" in page.text
    assert page.text.count('<td class="num tco2">0.125</td>') == 4  # 250 kWh × 0.0005 tCO₂/kWh an hour
    assert "period=hour" in page.text  # the CSV link exports what the table shows
    long = client.get(f"/sites/{plants.a}", headers=insp,
                      params={"period": "15min", "start": (plants.d3 - timedelta(days=40)).isoformat(),
                              "end": plants.d3.isoformat()})
    assert long.status_code == 200 and "at most 31 local days" in long.text


@pytest.mark.parametrize(("period", "days", "status"), [
    ("15min", 31, 200), ("15min", 32, 422), ("hour", 366, 200), ("hour", 367, 422), ("rolling12", 367, 200),
])
def test_fine_periods_have_a_range_limit(client: TestClient, insp: dict[str, str], plants: Plants, period: str,
                                         days: int, status: int) -> None:
    params = {"period": period, "start": (plants.d3 - timedelta(days=days - 1)).isoformat(),
              "end": plants.d3.isoformat()}
    r = client.get(f"/api/v1/sites/{plants.a}/energy", headers=insp, params=params)
    assert r.status_code == status, r.text
    csv = client.get("/api/v1/export/energy.csv", headers=insp, params={**params, "site_id": plants.a})
    assert csv.status_code == status
    if status == 422:
        limit = days - 1
        message = r.json()["error"]["message"]
        assert message.startswith(f"period={period} covers at most {limit} local days per request ({days} asked for")
        assert csv.json()["error"]["message"] == message


def test_unknown_period_is_refused(client: TestClient, insp: dict[str, str], plants: Plants) -> None:
    r = client.get(f"/api/v1/sites/{plants.a}/energy", headers=insp, params={"period": "week"})
    assert r.status_code == 422


# ----------------------------------------------------------------- the electricity basis

def test_the_electricity_basis_is_stated_beside_the_tce(client: TestClient, insp: dict[str, str],
                                                        plants: Plants) -> None:
    r = client.get(f"/api/v1/sites/{plants.a}/energy", headers=insp,
                   params={"start": plants.d1.isoformat(), "end": plants.d1.isoformat()})
    assert r.json()["electricity"] == "electricity at 当量值 (calorific value) 0.1229 kgce/kWh"
    page = client.get(f"/sites/{plants.a}", headers=insp)
    assert 'id="electricity-basis"' in page.text and "当量值 (calorific value) 0.1229 kgce/kWh" in page.text


def test_the_electricity_basis_is_a_deployment_setting(portal_settings: PortalSettings, plants: Plants) -> None:
    settings = portal_settings.model_copy(update={"pg_db": plants.dbname, "electricity_basis": "equivalent_value",
                                                  "electricity_equivalent_kgce_per_kwh": 0.3})
    with TestClient(create_app(settings, dsn_for("nxem_portal", settings)), raise_server_exceptions=False) as c:
        body = c.get(f"/api/v1/sites/{plants.a}/energy", headers=token_for(c, "insp"),
                     params={"start": plants.d1.isoformat(), "end": plants.d3.isoformat()}).json()
    # 1 000 kWh a day at a configured 等价值 of 0.3 kgce/kWh (not a published rate) = 0.3 tce
    assert body["electricity"] == "electricity at 等价值 (equivalent value) 0.3 kgce/kWh"
    assert [p["tce"] for p in body["points"]] == pytest.approx([0.3] * 3)
