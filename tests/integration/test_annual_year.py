"""A whole simulated year through the real pipeline (gateway -> Mosquitto -> collector -> Kafka ->
worker -> PostgreSQL), with the worker's shipped horizons and a worker restart in October.

Ground truth from the scenarios' own parameters (GB/T 2589-2020 当量值 0.1229 kgce/kWh):
* "over": 8 MW IT at PUE 1.25 through 2025: 8 MW × 8 760 h × 1.25 = 87 600 MWh × 0.1229 =
  10 766.04 tce ≥ 10 000: designated on the calendar year (major), value 10 766.04. A new-built
  centre of 4 000 standard racks (large): its PUE limit is 1.2, and its annual PUE 1.25 is the
  compliance alert;
* "under": 7 MW IT at PUE 1.25: 7 MW × 8 760 h × 1.25 = 76 650 MWh = 9 420.285 tce: never
  reaches the designation, nor an early warning (9 420 < 10 000 at any rate seen). Not new-built:
  its limit is GB 40879's 1.50, and 1.25 is compliant;
* an hourly-metered calcium-carbide plant at 960 kgce/t: 4.5 t an hour, all of it electricity,
  4.5 × 960 / 0.1229 = 35 150.53 kWh an hour; 960 > 940 (GB 21343-2023 表1 3级): the quota
  alert, and 24 of 24 readings a day: no completeness alert.

The data centres read once a day (registry ``interval: 1d``), which keeps a year fast. The
worker is stopped after 1 October 2025 and a new one started before the rest of the year is
published: it rebuilds the year from the daily rollups (its fine horizon is 10 days), and the
designation figure must still be the whole calendar year.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest

from tests.harness import Pipeline, pipeline, wait_for
from ops.services import ServiceSettings
from simulators.run import run_scenario
from simulators.scenario import data_centre_document, parse_scenario
from simulators.settings import SimulatorSettings

pytestmark = pytest.mark.integration

CST = timezone(timedelta(hours=8))
OVER_ENT, UNDER_ENT, PLANT_ENT = "91640500MA76L8XK3A", "91640500MA76L8XL15", "91640181MA3C12EP8N"
START = datetime(2024, 12, 31, tzinfo=CST)  # the first reading, 1 Jan 2025 00:00, is the registers' baseline
SPLIT_DAYS = 274  # readings through 1 Oct 2025 00:00 (closing 30 September), then a new worker
YEAR_DAYS = 366  # through 1 Jan 2026 00:00 (closing 31 December)
KGCE_PER_KWH = 0.1229  # GB/T 2589-2020 electricity, 当量值


def _dc(ent: str, code: str, it_kw: float, days_from: int, days_to: int, **site: Any) -> dict[str, Any]:
    """Daily register readings of one data centre for the ticks ``days_from``+1 .. ``days_to``
    after START (the registers continue from where ``days_from`` left them)."""
    start = START + timedelta(days=days_from)
    doc = data_centre_document(ent, code, f"gw-{code}", pue=1.25, it_kw=it_kw, start=start,
                               hours=24 * (days_to - days_from), interval_minutes=24 * 60)
    s = doc["enterprises"][0]["sites"][0]
    s.update(site)
    s.pop("pue_limit")  # derived from the new-build flag and the size
    s["pue_window_hours"] = 168
    for m, factor in zip(s["gateways"][0]["meters"], (1.0, 1.25), strict=True):
        m["interval"] = "1d"
        m["sim"] = {"initial": it_kw * 24 * days_from * factor}  # kWh so far
    return doc


def _plant(start: datetime, days: int) -> dict[str, Any]:
    meters = [
        {"code": "furnace", "carrier": "electricity", "unit": "kWh", "role": "consumed", "kind": "interval",
         "interval": "1h", "coefficient": "electricity_calorific"},
        {"code": "output", "carrier": "product", "unit": "t", "role": "product_output", "kind": "interval",
         "interval": "1h", "product": "calcium_carbide"},
    ]
    return {
        "name": "carbide-hourly",
        "simulation": {"start": start.isoformat(), "duration": f"{days}d", "interval": "1h", "mode": "backfill"},
        "enterprises": [{"id": PLANT_ENT, "name": "宁东星海电石化工有限公司", "city": "宁东", "industry": "calcium_carbide",
                         "sites": [{"code": "nd-cc-hourly", "name": "电石装置", "kind": "plant",
                                    "products": [{"product": "calcium_carbide", "indicator": "kgce_per_t"}],
                                    "sim": {"product": "calcium_carbide", "output_t_per_h": 4.5,
                                            "specific_kgce_per_t": 960.0,
                                            "carrier_shares": {"electricity_calorific": 1.0},
                                            "export_kgce_per_t": 0.0},
                                    "gateways": [{"id": "gw-nd-cc-hourly", "meters": meters}]}]}],
    }


def _publish(doc: dict[str, Any]) -> int:
    sc = parse_scenario(doc, now=datetime.now(CST), name=str(doc["name"]))
    return run_scenario(sc, SimulatorSettings(), mode="backfill").readings


def _stored(p: Pipeline) -> int:
    return int(p.sql("SELECT count(*) FROM readings")[0][0])


@pytest.fixture(scope="module")
def year(services: ServiceSettings) -> Iterator[tuple[Pipeline, str]]:
    over = dict(new_build=True, standard_racks=4000)  # large (3 000–10 000 racks): limit 1.2
    with pipeline(services) as p:
        p.register(_dc(OVER_ENT, "dc-over", 8000.0, 0, YEAR_DAYS, **over), _dc(UNDER_ENT, "dc-under", 7000.0, 0, YEAR_DAYS))
        plant_start = datetime.now(CST).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=3)
        p.register(_plant(plant_start, 3))
        p.start_collector(NXEM_COLLECTOR_MAX_AGE_DAYS="800")  # 2025 is older than the default 400 days
        env = {"NXEM_WORKER_DAILY_CHECKS": "false"}  # no anomaly training per backfilled day
        worker = p.start_worker(**env)
        published = sum(_publish(d) for d in (_dc(OVER_ENT, "dc-over", 8000.0, 0, SPLIT_DAYS, **over),
                                               _dc(UNDER_ENT, "dc-under", 7000.0, 0, SPLIT_DAYS),
                                               _plant(plant_start, 3)))
        wait_for(lambda: _stored(p) >= published, 240, f"{published} readings stored")
        worker.kill()  # stored and evaluated in the same transactions: nothing in flight
        logged = worker.log.stat().st_size
        worker = p.start_worker(**env)  # same id: takes the partitions over
        published += sum(_publish(d) for d in (_dc(OVER_ENT, "dc-over", 8000.0, SPLIT_DAYS, YEAR_DAYS, **over),
                                                _dc(UNDER_ENT, "dc-under", 7000.0, SPLIT_DAYS, YEAR_DAYS)))
        wait_for(lambda: _stored(p) >= published, 240, f"{published} readings stored")
        # 366 daily readings × 2 meters × 2 centres + 72 hourly × 2 plant meters
        assert published == 366 * 2 * 2 + 72 * 2
        with worker.log.open("rb") as fh:
            fh.seek(logged)
            yield p, fh.read().decode(errors="replace")


def _alerts(p: Pipeline, code: str, rule: str) -> list[tuple[Any, ...]]:
    return p.sql("SELECT t.kind, t.severity, t.value, t.threshold, t.details FROM alert_transitions t"
                 " JOIN sites s ON s.id = t.source_id WHERE t.source_kind = 'site' AND s.code = %s AND t.rule = %s"
                 " ORDER BY t.at, t.id", (code, rule))


def test_over_10000_tce_is_designated_on_its_whole_calendar_year_after_a_restart(year: tuple[Pipeline, str]) -> None:
    p, log = year
    expected = 8000 * 8760 * 1.25 * KGCE_PER_KWH / 1000  # 10 766.04 tce
    assert expected == pytest.approx(10_766.04)
    ev = _alerts(p, "dc-over", "dc_annual_tce")
    assert ev and ev[0][:2] == ("opened", "warning")  # the early warning first (a projected crossing)
    kind, severity, value, threshold, details = ev[-1]
    assert (severity, threshold, details["as_of_local_date"]) == ("major", 10_000.0, "2025-12-31")
    assert value == pytest.approx(expected, abs=0.001)
    assert details["designation_year"] == 2025 and details["year_complete"] is True
    assert details["basis"] == "designation: calendar year"
    # the restarted worker held the year from the daily rollups, not a year of raw readings
    site = p.sql("SELECT id FROM sites WHERE code = 'dc-over'")[0][0]
    rebuilt = [int(n) for n in re.findall(rf"site state rebuilt site_id={site} readings=\d+ day_rollups=(\d+)", log)]
    assert rebuilt and all(n > 0 for n in rebuilt)
    active = p.sql("SELECT severity, value FROM alerts a JOIN sites s ON s.id = a.source_id"
                   " WHERE a.source_kind = 'site' AND s.code = 'dc-over' AND a.rule = 'dc_annual_tce'"
                   " AND a.cleared_at IS NULL")
    assert active == [("major", pytest.approx(expected, abs=0.001))]  # the shown value is current


def test_under_10000_tce_never_reaches_the_designation(year: tuple[Pipeline, str]) -> None:
    p, _ = year
    assert 7000 * 8760 * 1.25 * KGCE_PER_KWH / 1000 == pytest.approx(9420.285)
    assert _alerts(p, "dc-under", "dc_annual_tce") == []


def test_annual_pue_against_each_centres_limit(year: tuple[Pipeline, str]) -> None:
    p, _ = year
    # new large centre: limit 1.2; a year at 1.25 -> the compliance alert (major), GB 40879 2级
    ev = _alerts(p, "dc-over", "pue_annual_above_limit")
    assert ev and ev[-1][1:4] == ("major", pytest.approx(1.25, abs=1e-6), 1.2)
    assert ev[-1][4]["gb40879_grade"] == "2级" and ev[-1][4]["limit_source"].startswith("Ningxia plan")
    # and the 7-day operational warning, of lower severity
    assert {e[1] for e in _alerts(p, "dc-over", "pue_above_limit")} == {"warning"}
    # existing centre: GB 40879-2021 limit value 1.50; 1.25 is compliant
    assert _alerts(p, "dc-under", "pue_annual_above_limit") == [] == _alerts(p, "dc-under", "pue_above_limit")


def test_hourly_carbide_plant_over_its_quota_is_judged_and_complete(year: tuple[Pipeline, str]) -> None:
    p, _ = year
    quota = [e for e in p.sql(
        "SELECT t.rule, t.kind, t.value, t.threshold FROM alert_transitions t JOIN sites s ON s.id = t.source_id"
        " WHERE t.source_kind = 'site' AND s.code = 'nd-cc-hourly' AND t.rule LIKE 'quota_exceeded.%%'")
        if e[0].startswith("quota_exceeded.calcium_carbide.kgce_per_t")]
    # 35 150.53 kWh × 0.1229 / 4.5 t = 960.000 kgce/t (readings to 0.01) > 940, for the day,
    # the month and the year to date
    assert quota and all(v == pytest.approx(960.0, abs=0.001) and th == 940.0 for _r, _k, v, th in quota)
    incomplete = p.sql("SELECT count(*) FROM alert_transitions t JOIN meters m ON m.id = t.source_id"
                       " JOIN sites s ON s.id = m.site_id WHERE t.source_kind = 'meter'"
                       " AND s.code = 'nd-cc-hourly' AND t.rule = 'completeness_low'")[0][0]
    assert incomplete == 0  # 24 of its 24 hourly readings a day


def test_the_portal_chart_plots_the_rolling_12_months_to_the_designation(year: tuple[Pipeline, str]) -> None:
    from portal import figures, views
    from storage.read.alerts import AlertFilter, list_alerts

    p, _ = year
    with psycopg.connect(p.admin_dsn) as conn:
        alert = list_alerts(conn, AlertFilter(rule="dc_annual_tce", status="active"), 10)
        assert [a["site_name"] for a in alert] == ["数据中心 dc-over"]
        label, points = figures.alert_series(conn, alert[0])
    assert label == "rolling 12-month tce"
    # a point a day over the year to 31 December; the last is the whole of 2025
    assert points[-1][0].date().isoformat() == "2025-12-31"
    # The portal's rolling figure reads the one definition of energy (analytics.energy_definition):
    # the reading of 1 Jan 2026 00:00 closes 31 December there as in the engine, so the last
    # point is the whole year, 8 MW × 8 760 h × 1.25 × 0.1229 kgce/kWh / 1000.
    expected = 8000 * 8760 * 1.25 * KGCE_PER_KWH / 1000
    last = points[-1][1]
    assert last is not None and abs(last - expected) <= 0.01
    svg = views.alert_chart(alert[0], points, label)
    assert "Rolling 12-month" in svg and "projection at the recent rate" in svg and "10,000" in svg
