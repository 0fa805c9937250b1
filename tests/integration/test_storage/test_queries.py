"""The read API (``storage.read``, and the portal's unit-product figure over it) with
hand-computed numbers. Written once, true on both paths: plain PostgreSQL (CI) and TimescaleDB
(continuous aggregates with real-time aggregation).

Energy follows ``analytics.energy_definition``: a register's first reading is its baseline,
each step is shared by time over the interval it closes (a reading at 00:00 closes the day
before), a plausible wrap counts, a reset does not.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest

from nxem.contract import AlertEvent, alert_key
from portal import figures
from storage import rollups
from storage.ingest import write_batch
from storage.read import alerts as read_alerts
from storage.read import energy as read_energy
from storage.read import readings as read_readings
from storage.registry import upsert_registry
from storage.registry_format import parse_registry
from tests.integration.test_storage.conftest import DC_ENT, OTHER_ENT, PLANT_ENT, Db, load_demo, meter_ids, utc

pytestmark = pytest.mark.integration

Q = timedelta(minutes=15)
D1 = utc(2026, 2, 28, 16)  # 2026-03-01 00:00 Asia/Shanghai
D2 = D1 + timedelta(days=1)  # 2026-03-02 00:00 local
DAY1, DAY2 = date(2026, 3, 1), date(2026, 3, 2)


def _dc_readings(it: int, fac: int, skip: set[int] | None = None) -> list[tuple[int, datetime, float]]:
    """Two local days of 15-minute registers, k = 0..191: IT 1000 + 250 k kWh (1 MW),
    facility 5000 + 300 k kWh (PUE 1.2)."""
    rows = []
    for k in range(192):
        if skip and k in skip:
            continue
        rows.append((it, D1 + k * Q, 1000.0 + 250.0 * k))
        rows.append((fac, D1 + k * Q, 5000.0 + 300.0 * k))
    return rows


@pytest.fixture()
def dc(db: Db) -> tuple[Db, int, int, int]:
    load_demo(db)
    m = meter_ids(db)
    it, fac = m["gw-zw-a/it-main"], m["gw-zw-a/facility-main"]
    site = db.sql("SELECT id FROM sites WHERE code = 'zw-dc-01'")[0][0]
    with db.connect("nxem_ingest") as conn:
        write_batch(conn, _dc_readings(it, fac), [], [])
    return db, site, it, fac


def test_daily_meter_energy(dc: tuple[Db, int, int, int]) -> None:
    db, _, it, fac = dc
    with db.connect("nxem_ingest") as conn:
        got = {(e.meter_id, e.bucket): e.energy
               for e in read_energy.meter_energy(conn, [it, fac], D1, D2 + timedelta(days=1), "day")}
    # k = 0 is the baseline; day 1 holds the steps into k = 1..96 (k = 96 at 00:00 of day 2 closes
    # day 1): 96 × 250 = 24 000 kWh; day 2 those into k = 97..191: 95 × 250 = 23 750 kWh.
    # Facility: 96 × 300 = 28 800; 95 × 300 = 28 500.
    assert got == {(it, D1): 24_000.0, (it, D2): 23_750.0, (fac, D1): 28_800.0, (fac, D2): 28_500.0}


def test_hourly_energy_from_quarter_hours(dc: tuple[Db, int, int, int]) -> None:
    db, _, it, _ = dc
    with db.connect("nxem_ingest") as conn:
        got = read_energy.meter_energy(conn, [it], D1, D1 + timedelta(hours=2), "hour")
    # hour 1: the steps into k = 1..4 (k = 4 at 01:00 closes it) = 4 × 250 = 1 000; hour 2: k = 5..8
    assert [(e.bucket, e.energy) for e in got] == [(D1, 1000.0), (D1 + timedelta(hours=1), 1000.0)]


def test_a_range_starting_mid_history_takes_the_step_from_before_it(dc: tuple[Db, int, int, int]) -> None:
    db, _, it, _ = dc
    with db.connect("nxem_ingest") as conn:
        got = read_energy.meter_energy(conn, [it], D1 + timedelta(hours=1), D1 + timedelta(hours=2), "15min")
    # quarters 4..7, closed by k = 5..8, each R(k) − R(k−1) = 250: k = 5 steps from k = 4, before
    # the range; k = 8 lies after it
    assert [e.energy for e in got] == [250.0] * 4


def test_site_energy_in_tce_per_local_day_and_month(dc: tuple[Db, int, int, int]) -> None:
    db, site, _, _ = dc
    with db.connect("nxem_ingest") as conn:
        days = read_energy.energy(conn, site, "day", DAY1, DAY2)
        month = read_energy.energy(conn, site, "month", DAY1, date(2026, 3, 31))
    # total_facility only (it_load is part of it): 28 800 kWh × 0.1229 kgce/kWh / 1000 = 3.53952 tce;
    # 28 500 × 0.1229 / 1000 = 3.50265 tce; March = 7.04217 tce
    assert [d["period_start"] for d in days] == [DAY1, DAY2]
    assert [d["tce"] for d in days] == pytest.approx([3.53952, 3.50265], rel=1e-12)
    assert [m["period_start"] for m in month] == [DAY1]
    assert month[0]["tce"] == pytest.approx(7.04217, rel=1e-12)


def test_pue(dc: tuple[Db, int, int, int]) -> None:
    db, site, _, _ = dc
    with db.connect("nxem_ingest") as conn:
        daily = read_energy.pue(conn, site, DAY1, DAY2)
        hourly = read_energy.pue(conn, site, DAY2, DAY2, "hour")
    # day 1: 28 800 / 24 000 = 1.2; day 2: 28 500 / 23 750 = 1.2
    assert [p["period_start"] for p in daily] == [DAY1, DAY2]
    assert [p["pue"] for p in daily] == pytest.approx([1.2, 1.2])
    # day 2's first hour, closed by k = 97..100: 4 × 300 = 1 200 kWh facility, 4 × 250 = 1 000 kWh IT
    assert (hourly[0]["period_start"], hourly[0]["facility_kwh"], hourly[0]["it_kwh"]) == (D2, 1200.0, 1000.0)
    assert hourly[0]["pue"] == pytest.approx(1.2)
    # 23:00-24:00 holds the steps into k = 189..191 only (k = 192 would close its last quarter)
    assert len(hourly) == 24 and (hourly[-1]["facility_kwh"], hourly[-1]["it_kwh"]) == (900.0, 750.0)


def test_downsampled_readings(dc: tuple[Db, int, int, int]) -> None:
    db, _, it, _ = dc
    with db.connect("nxem_ingest") as conn:
        raw_s, raw = read_readings.readings(conn, it, D1, D1 + timedelta(hours=1), 500)
        day_s, daily = read_readings.readings(conn, it, D1, D2 + timedelta(days=1), 2)
        since = read_readings.readings_since(conn, [it], D2 + timedelta(hours=23, minutes=30))
    assert raw_s == 60 and [r["avg"] for r in raw] == [1000.0, 1250.0, 1500.0, 1750.0]
    # two days in at most 2 buckets: whole days; day 1: k = 0..95 -> values 1000 .. 24 750, mean
    # 1000 + 250 × 47.5 = 12 875; day 2 mean 36 875
    assert day_s == 86_400
    assert [(d["ts"], d["n"], d["avg"], d["min"], d["max"]) for d in daily] == [
        (D1, 96, 12_875.0, 1000.0, 24_750.0), (D2, 96, 36_875.0, 25_000.0, 48_750.0)]
    assert since == [(it, D1 + 190 * Q, 48_500.0), (it, D1 + 191 * Q, 48_750.0)]


def test_late_and_out_of_order_readings_reaggregate_their_buckets(db: Db) -> None:
    load_demo(db)
    m = meter_ids(db)
    it, fac = m["gw-zw-a/it-main"], m["gw-zw-a/facility-main"]
    site = db.sql("SELECT id FROM sites WHERE code = 'zw-dc-01'")[0][0]
    late = {10, 11, 95, 96, 150}  # inside day 1, both sides of midnight, inside day 2
    with db.connect("nxem_ingest") as conn:
        write_batch(conn, _dc_readings(it, fac, skip=late), [], [])
        before = read_energy.energy(conn, site, "day", DAY1, DAY2)
        quarters_before = read_energy.meter_energy(conn, [fac], D1 + 94 * Q, D1 + 97 * Q, "15min")
        write_batch(conn, [r for r in _dc_readings(it, fac) if r[1] in {D1 + k * Q for k in late}][::-1], [], [])
        after = read_energy.energy(conn, site, "day", DAY1, DAY2)
        quarters_after = read_energy.meter_energy(conn, [fac], D1 + 94 * Q, D1 + 97 * Q, "15min")
    # Without k = 95 and 96 the facility register steps 94 -> 97 (900 kWh) over the three
    # quarters 94, 95 (day 1) and 96 (day 2): 300 each, as its readings would have given; so the
    # days are 28 800 and 28 500 kWh before and after the late readings arrive (see above).
    assert [e.energy for e in quarters_before] == [e.energy for e in quarters_after] == [300.0] * 3
    assert [d["tce"] for d in before] == pytest.approx([3.53952, 3.50265], rel=1e-12)
    assert [d["tce"] for d in after] == pytest.approx([3.53952, 3.50265], rel=1e-12)
    if not db.timescale:  # the incrementally merged daily rollup equals a rebuild from raw
        cols = "meter_id, bucket, n, sum_value, min_value, max_value, first_ts, first_value, last_ts, last_value"
        merged = db.sql(f"SELECT {cols} FROM rollup_1d ORDER BY 1, 2")
        with db.connect() as conn:
            rollups.rebuild(conn, D1 - timedelta(days=1), D2 + timedelta(days=2))
        assert db.sql(f"SELECT {cols} FROM rollup_1d ORDER BY 1, 2") == merged
        assert len(merged) == 4  # 2 meters × 2 days


def test_register_rollover_and_reset(db: Db) -> None:
    load_demo(db)
    it = meter_ids(db)["gw-zw-a/it-main"]  # wraps at 1 000 000
    with db.connect("nxem_ingest") as conn:
        write_batch(conn, [(it, D1, 999_900.0), (it, D1 + Q, 100.0), (it, D1 + 2 * Q, 400.0),
                           (it, D1 + 3 * Q, 50.0), (it, D1 + 4 * Q, 80.0)], [], [])
        got = read_energy.meter_energy(conn, [it], D1, D1 + timedelta(hours=1), "15min")
        day = read_energy.meter_energy(conn, [it], D1, D2, "day")
    # quarter 0: 100 − 999 900 + 1 000 000 = 200 (a wrap: 200 ≤ 10 % of 10⁶); quarter 1: 400 − 100
    # = 300; quarter 2: 400 -> 50 would wrap 999 650 > 10⁵: a reset, not summed (no row);
    # quarter 3 (closed by the reading at 01:00): 80 − 50 = 30
    assert [(e.bucket, e.energy) for e in got] == [(D1, 200.0), (D1 + Q, 300.0), (D1 + 3 * Q, 30.0)]
    # the day from its rollup (first 999 900, last 80, min 50, max 999 900): a wrap from the
    # maximum to the minimum would be 10⁶ − 999 900 + 50 = 150, plausible, so the day infers one
    # wrap and no reset: (999 900 − 999 900) + 150 + (80 − 50) = 180 -- the residual of one
    # bucket's inference the definition documents (the readings give 200 + 300 + 30 = 530)
    assert [e.energy for e in day] == [180.0]


def test_site_energy_scales_the_meter_unit_and_is_unknown_without_a_conversion(dc: tuple[Db, int, int, int]) -> None:
    db, site, _, fac = dc
    db.sql("UPDATE meters SET unit = 'MWh' WHERE id = %s RETURNING id", (fac,))
    with db.connect("nxem_ingest") as conn:
        mwh = read_energy.energy(conn, site, "day", DAY1, DAY1)
    # the same register read as MWh: 28 800 MWh × 1 000 kWh/MWh × 0.1229 kgce/kWh / 1000 = 3 539.52 tce
    assert [d["tce"] for d in mwh] == [pytest.approx(3539.52, rel=1e-12)]
    db.sql("UPDATE meters SET unit = 'm3' WHERE id = %s RETURNING id", (fac,))  # electricity in m3: none
    with db.connect("nxem_ingest") as conn:
        unknown = read_energy.energy(conn, site, "day", DAY1, DAY1)
    assert [d["tce"] for d in unknown] == [None]  # unknown, not 0 and not the other meters' sum


def test_unit_product_of_a_one_product_plant(db: Db) -> None:
    load_demo(db)
    m = meter_ids(db)
    site = db.sql("SELECT id FROM sites WHERE code = 'nd-cc-01'")[0][0]
    rows = []
    for h in range(4):  # four interval readings on 2026-03-01 local, 02:00 .. 05:00
        ts = D1 + timedelta(hours=2 + h)
        rows += [(m["gw-nd-a/power"], ts, 10_000.0), (m["gw-nd-a/coke"], ts, 2.0),
                 (m["gw-nd-a/steam-out"], ts, 50.0), (m["gw-nd-a/output"], ts, 10.0)]
    with db.connect("nxem_ingest") as conn:
        write_batch(conn, rows, [], [])
        up = figures.unit_product(conn, site, "calcium_carbide", DAY1, DAY1)
        tce = read_energy.energy(conn, site, "day", DAY1, DAY1)
    # one product: every energy meter is its own. 40 000 kWh × 0.1229 + 8 t coke × 971.4 − 200 GJ
    # steam exported × 34.12 = 4 916 + 7 771.2 − 6 824 = 5 863.2 kgce; output 4 × 10 = 40 t
    # -> 146.58 kgce/t
    assert [u["indicator"] for u in up] == ["kgce_per_t"]
    (p,) = up[0]["points"]
    assert (up[0]["unit"], up[0]["not_judged"], p["period_start"], p["output"]) == ("kgce/t", None, DAY1, 40.0)
    assert p["energy"] == pytest.approx(5863.2, rel=1e-12)
    assert p["value"] == pytest.approx(146.58, rel=1e-12)
    assert up[0]["quota_levels"] == {"level1": 805.0, "level2": 823.0, "level3": 940.0}  # GB 21343-2023 表1
    assert [t["tce"] for t in tce] == [pytest.approx(5.8632, rel=1e-12)]


ENT2 = "91640181MA76L8XK30"  # 宁东 (the demo's plant enterprise: same tenant)


def _plant(code: str, meters: list[dict[str, Any]], products: list[dict[str, Any]]) -> dict[str, Any]:
    return {"code": code, "name": code, "kind": "plant", "products": products,
            "gateways": [{"id": f"gw-{code}", "meters": meters}]}


def _el(code: str, **kw: Any) -> dict[str, Any]:
    return {"code": code, "carrier": "electricity", "unit": "kWh", "role": "consumed", "kind": "interval",
            "coefficient": "electricity_calorific", **kw}


def _out(code: str, product: str) -> dict[str, Any]:
    return {"code": code, "carrier": "product", "unit": "t", "role": "product_output", "kind": "interval",
            "product": product}


TWO = [{"product": "calcium_carbide", "indicator": "kgce_per_t"},
       {"product": "calcium_carbide", "indicator": "kwh_per_t"}, {"product": "methanol", "indicator": "kgce_per_t"}]


def test_unit_product_charges_each_product_its_own_energy(db: Db) -> None:
    load_demo(db)
    doc = {"enterprises": [{"id": ENT2, "name": "宁东电石有限公司", "city": "宁东", "industry": "calcium_carbide",
                            "sites": [
        _plant("nd-two", [_el("el-cc", product="calcium_carbide"),
                          _el("el-shared", shares={"calcium_carbide": 0.25, "methanol": 0.75}),
                          _out("out-cc", "calcium_carbide"), _out("out-me", "methanol")], TWO),
        _plant("nd-amb", [_el("el-x"), _out("out-cc", "calcium_carbide"), _out("out-me", "methanol")], TWO[::2]),
    ]}]}
    with db.connect() as conn:
        upsert_registry(conn, parse_registry(doc, "two-products"))
    m = meter_ids(db)
    sites = dict(db.sql("SELECT code, id FROM sites"))
    rows = []
    for h in range(4):  # hourly on 2026-03-01 local, 01:00 .. 04:00
        ts = D1 + timedelta(hours=1 + h)
        rows += [(m["gw-nd-two/el-cc"], ts, 1_000.0), (m["gw-nd-two/el-shared"], ts, 2_000.0),
                 (m["gw-nd-two/out-cc"], ts, 5.0), (m["gw-nd-two/out-me"], ts, 10.0),
                 (m["gw-nd-amb/el-x"], ts, 3_000.0), (m["gw-nd-amb/out-cc"], ts, 5.0)]
    with db.connect("nxem_ingest") as conn:
        write_batch(conn, rows, [], [])
        cc = {u["indicator"]: u for u in figures.unit_product(conn, sites["nd-two"], "calcium_carbide", DAY1, DAY1)}
        me = figures.unit_product(conn, sites["nd-two"], "methanol", DAY1, DAY1)
        amb = figures.unit_product(conn, sites["nd-amb"], "calcium_carbide", DAY1, DAY1)
    # carbide: its tagged meter 4 × 1 000 = 4 000 kWh + a quarter of the shared 4 × 2 000 = 8 000:
    # 6 000 kWh × 0.1229 = 737.4 kgce over 4 × 5 = 20 t = 36.87 kgce/t; 电炉电耗 6 000 / 20 = 300 kWh/t
    # (the whole site, 12 000 kWh, against each product would have said 73.74 kgce/t)
    assert cc["kgce_per_t"]["numerator_meters"] == {"el-cc": 1.0, "el-shared": 0.25}
    assert cc["kgce_per_t"]["points"][0]["value"] == pytest.approx(36.87, rel=1e-12)
    assert (cc["kwh_per_t"]["unit"], cc["kwh_per_t"]["points"][0]["value"]) == ("kWh/t", pytest.approx(300.0))
    # methanol: three quarters of the shared meter, 6 000 kWh = 737.4 kgce over 40 t = 18.435 kgce/t
    assert [(u["unit"], u["points"][0]["value"]) for u in me] == [("kgce/t", pytest.approx(18.435, rel=1e-12))]
    # two products, an untagged energy meter: no figure, and why
    assert [u["points"] for u in amb] == [[]]
    assert "el-x" in amb[0]["not_judged"] and "calcium_carbide, methanol" in amb[0]["not_judged"]


def _alert(ent: str, site: int, rule: str, severity: str, minute: int) -> AlertEvent:
    return AlertEvent(alert_key=alert_key("site", site, rule), source_kind="site", source_id=site,
                      enterprise_id=ent, rule=rule, kind="opened", severity=severity,  # type: ignore[arg-type]
                      at=D1 + timedelta(minutes=minute), value=1.0, threshold=0.5)


def test_alerts_by_city_industry_severity_and_status(db: Db) -> None:
    load_demo(db)
    sites = dict(db.sql("SELECT code, id FROM sites"))
    events = [_alert(DC_ENT, sites["zw-dc-01"], "pue_above_limit", "major", 0),
              _alert(OTHER_ENT, sites["yc-dc-01"], "pue_above_limit", "minor", 1),
              _alert(PLANT_ENT, sites["nd-cc-01"], "unit_product_above_quota", "critical", 2)]
    cleared = AlertEvent(alert_key=events[1].alert_key, source_kind="site", source_id=sites["yc-dc-01"],
                         enterprise_id=OTHER_ENT, rule="pue_above_limit", kind="cleared", severity="minor",
                         at=D1 + timedelta(minutes=30))

    def cities(**kw: Any) -> list[str]:
        return [a["city"] for a in read_alerts.list_alerts(conn, read_alerts.AlertFilter(**kw), 50)]

    with db.connect("nxem_ingest") as conn:
        write_batch(conn, [], [*events, cleared], [])
        assert cities() == ["宁东", "中卫", "银川"]  # active first, newest update first
        assert cities(city="中卫") == ["中卫"]
        assert cities(industry="calcium_carbide") == ["宁东"]
        assert cities(severity="minor") == ["银川"]
        assert cities(status="active") == ["宁东", "中卫"]
        assert cities(status="cleared") == ["银川"]
        restored = read_alerts.active_alert_events(conn, sites["zw-dc-01"])
    assert [(e.alert_key, e.kind, e.at) for e in restored] == [(events[0].alert_key, "opened", D1)]
