"""One definition of energy (``analytics.energy_definition``): the same rows through the rules'
Python (``analytics.site_energy`` as the worker feeds it, and ``analytics.day_totals`` as a
worker rebuilds from the daily rollup) and through the read API's SQL (``storage.read``) give
the same numbers, and both give the hand-computed ones below.

One plant, three Asia/Shanghai days D1 = 2026-03-01, D2, D3; every meter consumed electricity
in kWh (0.1229 kgce/kWh, GB/T 2589-2020 当量值) unless said otherwise. A reading closes the
interval before it.

* A, register (wraps at 10⁶): D1 10:00 999 900, 10:15 999 950, 10:30 100, 10:45 400
    quarters [10:00, 10:15) 50; [10:15, 10:30) 10⁶ − 999 950 + 100 = 150 (a wrap: 150 ≤ 10 % of
    10⁶); [10:30, 10:45) 300.  D1 = 500 kWh
* B, register (wraps at 10⁶): D1 10:00 1 000, 10:15 1 100, 10:30 5, 10:45 55
    1 100 -> 5 would be a wrap of 10⁶ − 1 100 + 5 = 998 905 > 10⁵: a reset, not summed.
    D1 = 100 + 0 + 50 = 150 kWh
* C, register with a gap of more than a day: D1 12:00 100, D1 18:00 130, D3 06:00 490, D3 12:00 550
    130 -> 490 = 360 kWh over the 36 h (D1 18:00, D3 06:00]: 10 kWh/h, D1 6 h = 60, D2 24 h = 240,
    D3 6 h = 60.  D1 = 30 + 60 = 90; D2 = 240; D3 = 60 + 60 = 120 kWh.
    A quarter of the gap holds 2.5 kWh; a quarter of D1 12:00-18:00 30 / 24 = 1.25 kWh
* D, interval, 15 min: D2 00:00 8, 00:15 10, 00:30 20 (arrives last: a late reading), 00:45 30,
  01:00 40.  The 00:00 reading closes D1's last quarter: D1 = 8; D2 = 10 + 20 + 30 + 40 = 100 kWh
* E, exported heat, interval GJ (34.12 kgce/GJ = 0.03412 kgce/MJ × 1 000): D1 12:15 2, 12:30 3
    D1 exports 5 GJ = 170.6 kgce
* F, register in MWh, multiplier 2 (wraps at 10⁵): D1 08:00 10.0, 09:00 10.5
    (10.5 − 10.0) × 2 = 1 MWh = 1 000 kWh, 0.25 MWh in each quarter of 08:00-09:00
* G, interval, hourly (interval 1h): D3 00:00 24, 01:00 40, 02:00 80
    00:00 closes D2 23:00-24:00: D2 = 24; D3 = 40 + 80 = 120 kWh, 10 in each quarter of
    00:00-01:00 and 20 in each of 01:00-02:00

Electricity per day: D1 500 + 150 + 90 + 8 + 1 000 = 1 748 kWh; D2 240 + 100 + 24 = 364 kWh;
D3 120 + 120 = 240 kWh. Comprehensive energy (GB/T 2589: consumed − exported):
D1 1 748 × 0.1229 − 170.6 = 214.8292 − 170.6 = 44.2292 kgce = 0.0442292 tce;
D2 364 × 0.1229 = 44.7356 kgce; D3 240 × 0.1229 = 29.496 kgce.
At 等价值 0.3 kgce/kWh (a configured rate, not a published one): D1 1 748 × 0.3 − 170.6 = 353.8
kgce; D2 364 × 0.3 = 109.2 kgce; D3 240 × 0.3 = 72 kgce.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest

from analytics import quotas, site_energy
from analytics.coefficients import ElectricityValue
from analytics.day_totals import seed_from_rollups
from analytics.energy_definition import COUNTED_ROLES, ROLLOVER_PLAUSIBLE_SHARE, TCE_SIGN, wrap_quantity
from analytics.site_energy import MeterSpec, SiteEnergyState, apply_readings, initial_state, window_energy
from ops.services import ServiceSettings, admin_dsn
from storage.ingest import write_batch
from storage.migrate import migrate
from storage.read import energy as read_energy
from storage.read import energy_sql
from storage.read.registry import meter_spec
from storage.registry import load_meters, upsert_registry
from storage.registry_format import parse_registry
from storage.roles import dsn_for
from storage.rule_history import day_rollups
from tests.integration.test_storage.conftest import create_db, drop_db

pytestmark = pytest.mark.integration

ENT = "91640181MA76L8XK30"
D1 = date(2026, 3, 1)
T0 = datetime(2026, 2, 28, 16, tzinfo=UTC)  # D1 00:00 Asia/Shanghai
DAYS = (D1, D1 + timedelta(days=1), D1 + timedelta(days=2))
Q = timedelta(minutes=15)
H = timedelta(hours=1)
KGCE_PER_KWH = 0.1229  # GB/T 2589-2020, electricity 当量值


def _m(code: str, **kw: Any) -> dict[str, Any]:
    return {"code": code, "carrier": "electricity", "unit": "kWh", "role": "consumed", "kind": "register",
            "coefficient": "electricity_calorific", **kw}


DOC = {"enterprises": [{"id": ENT, "name": "宁东参照化工有限公司", "city": "宁东", "industry": "other", "sites": [
    {"code": "ref-plant", "name": "参照厂", "kind": "plant", "gateways": [{"id": "gw-ref", "meters": [
        _m("a", rollover=1_000_000), _m("b", rollover=1_000_000), _m("c", rollover=1_000_000),
        _m("d", kind="interval"),
        {"code": "e", "carrier": "heat", "unit": "GJ", "role": "exported", "kind": "interval", "coefficient": "heat"},
        _m("f", unit="MWh", multiplier=2, rollover=100_000),
        _m("g", kind="interval", interval="1h"),
    ]}]}]}]}


def at(day: int, hh: int, mm: int = 0) -> datetime:
    """Local D<day> hh:mm as a UTC instant (D1 = 2026-03-01)."""
    return T0 + timedelta(days=day - 1, hours=hh, minutes=mm)


def rows(ids: dict[str, int]) -> tuple[list[tuple[int, datetime, float]], list[tuple[int, datetime, float]]]:
    """(readings in time order as polled, the late reading that arrives after them)."""
    a, b, c, d, e, f, g = (ids[k] for k in "abcdefg")
    on_time = [
        (a, at(1, 10), 999_900.0), (a, at(1, 10, 15), 999_950.0), (a, at(1, 10, 30), 100.0), (a, at(1, 10, 45), 400.0),
        (b, at(1, 10), 1_000.0), (b, at(1, 10, 15), 1_100.0), (b, at(1, 10, 30), 5.0), (b, at(1, 10, 45), 55.0),
        (c, at(1, 12), 100.0), (c, at(1, 18), 130.0), (c, at(3, 6), 490.0), (c, at(3, 12), 550.0),
        (d, at(2, 0), 8.0), (d, at(2, 0, 15), 10.0), (d, at(2, 0, 45), 30.0), (d, at(2, 1), 40.0),
        (e, at(1, 12, 15), 2.0), (e, at(1, 12, 30), 3.0),
        (f, at(1, 8), 10.0), (f, at(1, 9), 10.5),
        (g, at(3, 0), 24.0), (g, at(3, 1), 40.0), (g, at(3, 2), 80.0),
    ]
    return sorted(on_time, key=lambda r: (r[1], r[0])), [(d, at(2, 0, 30), 20.0)]


@dataclass(frozen=True)
class World:
    dsn: str
    site: int
    ids: dict[str, int]
    specs: dict[int, MeterSpec]
    live: SiteEnergyState  # fed reading by reading, the late one last
    rebuilt: SiteEnergyState  # from the daily rollup, as a restarted worker


@pytest.fixture(scope="module")
def world(services: ServiceSettings) -> Iterator[World]:
    name = create_db(services)
    try:
        admin = admin_dsn(services, dbname=name)
        migrate(admin, backend=services.db_backend, secrets_dir=services.resolved_data_dir() / "secrets")
        with psycopg.connect(admin) as conn:
            upsert_registry(conn, parse_registry(DOC, "energy-definition"))
        dsn = dsn_for("nxem_ingest", services, dbname=name)
        with psycopg.connect(dsn) as conn:
            meters = load_meters(conn)
            ids = {m.code: m.id for m in meters.values()}
            on_time, late = rows(ids)
            write_batch(conn, on_time, [], [])
            write_batch(conn, late, [], [])  # stored after the others, as it arrived
            conn.commit()
            specs = {mid: meter_spec(m) for mid, m in meters.items()}
            live, events = apply_readings(initial_state(timedelta(days=40), timedelta(days=40)), specs, on_time)
            live, late_events = apply_readings(live, specs, late)
            rebuilt = seed_from_rollups(initial_state(timedelta(days=40), timedelta(days=40)), specs,
                                        day_rollups(conn, sorted(ids.values()), T0 - timedelta(days=1),
                                                    T0 + timedelta(days=4)))
            site = conn.execute("SELECT id FROM sites WHERE code = 'ref-plant'").fetchone()
        assert site is not None
        # the stream saw one wrap and one reset, and took the late reading without a flag
        assert sorted(e.kind for e in events) == ["counter_backwards", "rollover"] and late_events == []
        yield World(dsn, int(site[0]), ids, specs, live, rebuilt)
    finally:
        drop_db(services, name)


def _python(state: SiteEnergyState, specs: dict[int, MeterSpec], width: timedelta) -> dict[tuple[int, datetime], float]:
    """Per meter and bucket of ``width`` over D1..D3: the quantity the rules' windows sum."""
    out: dict[tuple[int, datetime], float] = {}
    t = T0
    while t < T0 + timedelta(days=3):
        w = window_energy(state, specs, t, t + width)
        for mid, q in w.quantity_by_meter.items():
            if q:
                out[(mid, t)] = q
        t += width
    return out


def _sql(world: World, grain: energy_sql.Grain) -> dict[tuple[int, datetime], float]:
    with psycopg.connect(world.dsn) as conn:
        got = read_energy.meter_energy(conn, sorted(world.ids.values()), T0, T0 + timedelta(days=3), grain)
    return {(e.meter_id, e.bucket): e.energy for e in got if e.energy}


def _close(a: dict[tuple[int, datetime], float], b: dict[tuple[int, datetime], float]) -> None:
    assert sorted(a) == sorted(b)
    for k, v in a.items():
        assert b[k] == pytest.approx(v, rel=1e-9, abs=1e-9), k


def test_the_definition_is_what_both_sides_use() -> None:
    # the rules' wrap rule and the roles they sum are the definition's
    assert site_energy._wrap is wrap_quantity
    assert quotas.ENERGY_ROLES == COUNTED_ROLES == {"consumed", "total_facility", "exported"}
    # the SQL's expressions are rendered from the same constants
    assert f"* {ROLLOVER_PLAUSIBLE_SHARE!r})" in energy_sql.step_sql("p", "v")
    assert energy_sql.sign_sql("r") == "CASE r WHEN 'consumed' THEN 1 WHEN 'total_facility' THEN 1 WHEN 'exported' THEN -1 ELSE 0 END"
    assert TCE_SIGN["it_load"] == TCE_SIGN["product_output"] == 0


def test_days_by_hand_by_the_stream_by_the_rebuild_and_by_sql(world: World) -> None:
    i = world.ids
    expected = {  # the module docstring's arithmetic, meter unit × multiplier
        (i["a"], DAYS[0]): 500.0, (i["b"], DAYS[0]): 150.0,
        (i["c"], DAYS[0]): 90.0, (i["c"], DAYS[1]): 240.0, (i["c"], DAYS[2]): 120.0,
        (i["d"], DAYS[0]): 8.0, (i["d"], DAYS[1]): 100.0, (i["e"], DAYS[0]): 5.0, (i["f"], DAYS[0]): 1.0,
        (i["g"], DAYS[1]): 24.0, (i["g"], DAYS[2]): 120.0,
    }
    midnight = {d: T0 + timedelta(days=n) for n, d in enumerate(DAYS)}
    want = {(m, midnight[d]): q for (m, d), q in expected.items()}
    _close(want, _python(world.live, world.specs, timedelta(days=1)))
    _close(want, _python(world.rebuilt, world.specs, timedelta(days=1)))
    _close(want, _sql(world, "day"))


def test_quarter_hours_and_hours_agree_with_the_stream(world: World) -> None:
    i = world.ids
    for grain, width in (("15min", Q), ("hour", H)):
        sql = _sql(world, grain)  # type: ignore[arg-type]
        _close(_python(world.live, world.specs, width), sql)
        # in meter units: A 500 + B 150 + C 450 + D 108 + G 144 = 1 352 kWh, E 5 GJ, F 1 MWh -> 1 358
        assert sum(sql.values()) == pytest.approx(1_358.0)
    q = _sql(world, "15min")
    # by hand: the wrap lands in its quarter; a gap quarter holds 2.5 kWh; the hourly meter 10 and 20
    assert q[(i["a"], at(1, 10, 15))] == pytest.approx(150.0)
    assert (i["b"], at(1, 10, 15)) not in q and q[(i["b"], at(1, 10, 30))] == pytest.approx(50.0)  # the reset: 0
    assert q[(i["c"], at(2, 7, 45))] == pytest.approx(2.5) and q[(i["c"], at(1, 12, 15))] == pytest.approx(1.25)
    assert [q[(i["g"], at(3, 0) + k * Q)] for k in range(8)] == pytest.approx([10.0] * 4 + [20.0] * 4)
    assert [q[(i["f"], at(1, 8) + k * Q)] for k in range(4)] == pytest.approx([0.25] * 4)  # (10.5 − 10) × 2 / 4 MWh
    assert q[(i["d"], at(1, 23, 45))] == pytest.approx(8.0) and q[(i["d"], at(2, 0, 15))] == pytest.approx(20.0)


def test_site_tce_per_day_by_hand_by_the_stream_and_by_sql(world: World) -> None:
    with psycopg.connect(world.dsn) as conn:
        days = read_energy.energy(conn, world.site, "day", DAYS[0], DAYS[2])
        alone = read_energy.energy(conn, world.site, "day", DAYS[1], DAYS[1])
        months = read_energy.energy(conn, world.site, "month", DAYS[0], DAYS[2])
    by_hand = [44.2292 / 1000, 44.7356 / 1000, 29.496 / 1000]  # module docstring
    assert [d["period_start"] for d in days] == list(DAYS)
    assert [d["tce"] for d in days] == pytest.approx(by_hand, rel=1e-9)
    stream = [window_energy(world.live, world.specs, T0 + timedelta(days=n), T0 + timedelta(days=n + 1)).net_kgce / 1000
              for n in range(3)]
    assert stream == pytest.approx(by_hand, rel=1e-9)
    # D2 asked for alone: the gap's share and the late reading still count (the rows either side)
    assert [d["tce"] for d in alone] == pytest.approx([44.7356 / 1000], rel=1e-9)
    assert [(m["period_start"], m["tce"]) for m in months] == [(date(2026, 3, 1), pytest.approx(sum(by_hand)))]


def test_the_electricity_basis_is_a_setting_of_the_reads_and_of_the_rules(world: World) -> None:
    equivalent = ElectricityValue("equivalent_value", 0.3)  # a configured rate, not a published one
    with psycopg.connect(world.dsn) as conn:
        days = read_energy.energy(conn, world.site, "day", DAYS[0], DAYS[2], electricity=equivalent)
    by_hand = [353.8 / 1000, 109.2 / 1000, 72.0 / 1000]  # module docstring
    assert [d["tce"] for d in days] == pytest.approx(by_hand, rel=1e-9)
    # the worker builds every spec with the deployment's basis (stream.registry.SpecCache)
    specs = {m: replace(s, electricity=equivalent) for m, s in world.specs.items()}
    stream = [window_energy(world.live, specs, T0 + timedelta(days=n), T0 + timedelta(days=n + 1)).net_kgce / 1000
              for n in range(3)]
    assert stream == pytest.approx(by_hand, rel=1e-9)
