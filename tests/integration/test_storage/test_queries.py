"""Reads over the rollups with hand-computed numbers. Written once, true on both paths: plain
PostgreSQL (CI) and TimescaleDB (continuous aggregates with real-time aggregation)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from nxem.contract import AlertEvent, alert_key
from storage import queries, rollups
from storage.ingest import write_batch
from tests.integration.test_storage.conftest import DC_ENT, OTHER_ENT, PLANT_ENT, Db, load_demo, meter_ids, utc

pytestmark = pytest.mark.integration

Q = timedelta(minutes=15)
D1 = utc(2026, 2, 28, 16)  # 2026-03-01 00:00 Asia/Shanghai
D2 = D1 + timedelta(days=1)  # 2026-03-02 00:00 local


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
        got = {(e.meter_id, e.bucket): e.energy for e in queries.meter_energy(conn, [it, fac], D1, D2 + timedelta(days=1), "1d")}
    # Buckets hold readings with D <= ts < D + 1 day (k = 0..95 on day 1, 96..191 on day 2).
    # Day 1 is the meter's first bucket: last - first = R(95) - R(0) = 95 × 250 = 23 750 kWh.
    # Day 2: R(191) - R(95) = 96 × 250 = 24 000 kWh. Facility: 95 × 300 = 28 500; 96 × 300 = 28 800.
    assert got == {(it, D1): 23_750.0, (it, D2): 24_000.0, (fac, D1): 28_500.0, (fac, D2): 28_800.0}


def test_hourly_energy_from_quarter_hours(dc: tuple[Db, int, int, int]) -> None:
    db, _, it, _ = dc
    with db.connect("nxem_ingest") as conn:
        got = queries.meter_energy(conn, [it], D1, D1 + timedelta(hours=2), "1h")
    # hour 1: k = 0..3 -> 0 (first reading) + 3 × 250 = 750; hour 2: k = 4..7 -> 4 × 250 = 1 000
    assert [(e.bucket, e.energy) for e in got] == [(D1, 750.0), (D1 + timedelta(hours=1), 1000.0)]


def test_a_range_starting_mid_history_takes_the_step_from_before_it(dc: tuple[Db, int, int, int]) -> None:
    db, _, it, _ = dc
    with db.connect("nxem_ingest") as conn:
        got = queries.meter_energy(conn, [it], D1 + timedelta(hours=1), D1 + timedelta(hours=2), "15m")
    # k = 4..7, each R(k) - R(k-1) = 250, including k = 4 whose previous bucket is outside the range
    assert [e.energy for e in got] == [250.0] * 4


def test_site_energy_in_tce_per_local_day_and_month(dc: tuple[Db, int, int, int]) -> None:
    db, site, _, _ = dc
    with db.connect("nxem_ingest") as conn:
        days = queries.site_energy_tce(conn, site, date(2026, 3, 1), date(2026, 3, 3), "day")
        month = queries.site_energy_tce(conn, site, date(2026, 3, 1), date(2026, 4, 1), "month")
    # total_facility only (it_load is part of it): 28 500 kWh × 0.1229 kgce/kWh / 1000 = 3.50265 tce;
    # 28 800 × 0.1229 / 1000 = 3.53952 tce; March = 7.04217 tce
    assert [d.period for d in days] == [date(2026, 3, 1), date(2026, 3, 2)]
    assert [d.tce for d in days] == pytest.approx([3.50265, 3.53952], rel=1e-12)
    assert [m.period for m in month] == [date(2026, 3, 1)]
    assert month[0].tce == pytest.approx(7.04217, rel=1e-12)


def test_pue_series(dc: tuple[Db, int, int, int]) -> None:
    db, site, _, _ = dc
    with db.connect("nxem_ingest") as conn:
        daily = queries.pue_series(conn, site, D1, D2 + timedelta(days=1), "1d")
        hourly = queries.pue_series(conn, site, D2, D2 + timedelta(hours=1), "1h")
    # day 2: 28 800 / 24 000 = 1.2; day 1: 28 500 / 23 750 = 1.2
    assert [p.bucket for p in daily] == [D1, D2]
    assert [p.pue for p in daily] == pytest.approx([1.2, 1.2])
    # one hour: 4 × 300 = 1 200 kWh facility, 4 × 250 = 1 000 kWh IT
    assert [(p.facility_kwh, p.it_kwh) for p in hourly] == [(1200.0, 1000.0)]
    assert hourly[0].pue == pytest.approx(1.2)


def test_downsampled_readings(dc: tuple[Db, int, int, int]) -> None:
    db, _, it, _ = dc
    with db.connect("nxem_ingest") as conn:
        raw = queries.readings(conn, it, D1, D1 + timedelta(hours=1))
        hourly = queries.readings(conn, it, D1, D1 + timedelta(hours=2), bucket=timedelta(hours=1))
    assert [r.last for r in raw] == [1000.0, 1250.0, 1500.0, 1750.0]
    # hour 1: 1000, 1250, 1500, 1750 -> mean 1375; hour 2: 2000 .. 2750 -> mean 2375
    first, second = hourly
    assert (first.bucket, first.n, first.mean, first.min, first.max, first.last) == (D1, 4, 1375.0, 1000.0, 1750.0, 1750.0)
    assert (second.n, second.mean, second.last) == (4, 2375.0, 2750.0)


def test_late_and_out_of_order_readings_reaggregate_their_buckets(db: Db) -> None:
    load_demo(db)
    m = meter_ids(db)
    it, fac = m["gw-zw-a/it-main"], m["gw-zw-a/facility-main"]
    site = db.sql("SELECT id FROM sites WHERE code = 'zw-dc-01'")[0][0]
    late = {10, 11, 95, 96, 150}  # inside day 1, both sides of midnight, inside day 2
    with db.connect("nxem_ingest") as conn:
        write_batch(conn, _dc_readings(it, fac, skip=late), [], [])
        before = queries.site_energy_tce(conn, site, date(2026, 3, 1), date(2026, 3, 3))
        write_batch(conn, [r for r in _dc_readings(it, fac) if r[1] in {D1 + k * Q for k in late}][::-1], [], [])
        after = queries.site_energy_tce(conn, site, date(2026, 3, 1), date(2026, 3, 3))
    # Without k = 95 and 96 the day-1 register ends at k = 94: day 1 = 94 × 300 = 28 200 kWh and
    # day 2 = R(191) − R(94) = 97 × 300 = 29 100 kWh. With them: 28 500 and 28 800 (see above).
    assert [d.tce for d in before] == pytest.approx([28_200 * 0.1229 / 1000, 29_100 * 0.1229 / 1000], rel=1e-12)
    assert [d.tce for d in after] == pytest.approx([3.50265, 3.53952], rel=1e-12)
    if not db.timescale:  # the incrementally merged daily rollup equals a rebuild from raw
        cols = "meter_id, bucket, n, sum_value, min_value, max_value, first_ts, first_value, last_ts, last_value"
        merged = db.sql(f"SELECT {cols} FROM rollup_1d ORDER BY 1, 2")
        with db.connect() as conn:
            rollups.rebuild(conn, D1 - timedelta(days=1), D2 + timedelta(days=2))
        assert db.sql(f"SELECT {cols} FROM rollup_1d ORDER BY 1, 2") == merged
        assert len(merged) == 4  # 2 meters × 2 days


def test_register_rollover(db: Db) -> None:
    load_demo(db)
    it = meter_ids(db)["gw-zw-a/it-main"]  # rollover 1 000 000
    with db.connect("nxem_ingest") as conn:
        write_batch(conn, [(it, D1, 999_900.0), (it, D1 + Q, 100.0), (it, D1 + 2 * Q, 400.0)], [], [])
        got = queries.meter_energy(conn, [it], D1, D1 + timedelta(hours=1))
    # 100 − 999 900 = −999 800, + rollover 1 000 000 = 200; then 400 − 100 = 300
    assert [e.energy for e in got] == [0.0, 200.0, 300.0]


def test_site_energy_scales_the_meter_unit_and_is_unknown_without_a_conversion(dc: tuple[Db, int, int, int]) -> None:
    db, site, _, fac = dc
    db.sql("UPDATE meters SET unit = 'MWh' WHERE id = %s RETURNING id", (fac,))
    with db.connect("nxem_ingest") as conn:
        mwh = queries.site_energy_tce(conn, site, date(2026, 3, 1), date(2026, 3, 2))
    # the same register read as MWh: 28 500 MWh × 1 000 kWh/MWh × 0.1229 kgce/kWh / 1000 = 3 502.65 tce
    assert [d.tce for d in mwh] == [pytest.approx(3502.65, rel=1e-12)]
    db.sql("UPDATE meters SET unit = 'm3' WHERE id = %s RETURNING id", (fac,))  # electricity in m3: none
    with db.connect("nxem_ingest") as conn:
        unknown = queries.site_energy_tce(conn, site, date(2026, 3, 1), date(2026, 3, 2))
    assert [d.tce for d in unknown] == [None]  # unknown, not 0 and not the other meters' sum


def test_unit_product_consumption_of_a_plant(db: Db) -> None:
    load_demo(db)
    m = meter_ids(db)
    site = db.sql("SELECT id FROM sites WHERE code = 'nd-cc-01'")[0][0]
    rows = []
    for h in range(4):  # four hourly interval readings on 2026-03-01 local
        ts = D1 + timedelta(hours=2 + h)
        rows += [(m["gw-nd-a/power"], ts, 10_000.0), (m["gw-nd-a/coke"], ts, 2.0),
                 (m["gw-nd-a/steam-out"], ts, 50.0), (m["gw-nd-a/output"], ts, 10.0)]
    with db.connect("nxem_ingest") as conn:
        write_batch(conn, rows, [], [])
        up = queries.unit_product_series(conn, site, date(2026, 3, 1), date(2026, 3, 2))
        tce = queries.site_energy_tce(conn, site, date(2026, 3, 1), date(2026, 3, 2))
    # 40 000 kWh × 0.1229 + 8 t coke × 971.4 − 200 GJ steam exported × 34.12
    #   = 4 916 + 7 771.2 − 6 824 = 5 863.2 kgce; output 4 × 10 = 40 t -> 146.58 kgce/t
    assert len(up) == 1
    p = up[0]
    assert (p.period, p.product, p.output) == (date(2026, 3, 1), "calcium_carbide", 40.0)
    assert p.energy_kgce == pytest.approx(5863.2, rel=1e-12)
    assert p.kgce_per_unit == pytest.approx(146.58, rel=1e-12)
    assert [t.tce for t in tce] == [pytest.approx(5.8632, rel=1e-12)]


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
    with db.connect("nxem_ingest") as conn:
        write_batch(conn, [], [*events, cleared], [])
        assert [a.city for a in queries.alerts(conn)] == ["宁东", "银川", "中卫"]  # newest first
        assert [a.enterprise_id for a in queries.alerts(conn, city="中卫")] == [DC_ENT]
        assert [a.rule for a in queries.alerts(conn, industry="calcium_carbide")] == ["unit_product_above_quota"]
        assert [a.severity for a in queries.alerts(conn, severity="minor")] == ["minor"]
        assert [a.city for a in queries.alerts(conn, status="active")] == ["宁东", "中卫"]
        assert [a.city for a in queries.alerts(conn, status="cleared")] == ["银川"]
        restored = queries.active_alert_events(conn, sites["zw-dc-01"])
    assert [(e.alert_key, e.kind, e.at) for e in restored] == [(events[0].alert_key, "opened", D1)]


def test_daily_downsampling_reads_the_daily_rollup_with_the_same_numbers(dc: tuple[Db, int, int, int]) -> None:
    db, _, it, _ = dc
    with db.connect("nxem_ingest") as conn:
        daily = queries.readings(conn, it, D1, D2 + timedelta(days=1), bucket=timedelta(days=1))
        raw = queries.readings(conn, it, D1, D2 + timedelta(days=1))
    # day 1: k = 0..95 -> values 1000 .. 24 750, mean 1000 + 250 × 47.5 = 12 875; day 2 mean 36 875
    assert [(d.bucket, d.n, d.mean, d.min, d.max, d.last) for d in daily] == [
        (D1, 96, 12_875.0, 1000.0, 24_750.0, 24_750.0), (D2, 96, 36_875.0, 24_000.0 + 1000.0, 48_750.0, 48_750.0)]
    assert sum(d.n for d in daily) == len(raw) == 192
