"""Storage benchmark: write_batch throughput and read latency. Prints figures; never pass/fail.

    .venv/bin/python -m bench.storage_ingest [--rows 100000] [--meters 1000] [--repeat 3]

Uses the running PostgreSQL (``nxem services up``), creates a throwaway database, migrates it,
and drops it at the end. Measured as the worker runs: one ``write_batch`` per poll, connected
as ``nxem_ingest``, each in its own transaction.

* fast path: a batch of new rows (binary COPY straight into readings, + rollups on plain PG);
* duplicate path: the same batch again (unique violation -> staged ON CONFLICT, 0 inserted);
* half new: 50 % of the rows already stored;
* reads: a year of 15-minute data for one site (4 meters × 35 040 readings) -- energy per
  local month in tce, daily PUE, daily downsampled readings, one month of 15-minute energy.
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg

from ops.services import ServiceSettings, admin_dsn
from storage import roles
from storage.ingest import WriteResult, write_batch
from storage.migrate import backend_of, migrate
from storage.read import energy as read_energy
from storage.read import readings as read_readings
from storage.registry import upsert_registry
from storage.registry_format import parse_registry
from storage.uscc import check_character

Row = tuple[int, datetime, float]


def _registry(n_meters: int) -> dict[str, Any]:
    """One data-centre enterprise; 4 meters per site (IT and facility registers, two interval)."""
    ent = "91640500MA76L8XK3"
    sites = []
    for s in range(n_meters // 4):
        meters = [{"code": c, "carrier": "electricity", "unit": "kWh", "role": r, "kind": k,
                   "coefficient": "electricity_calorific", "digits": 9}
                  for c, r, k in (("it", "it_load", "register"), ("fac", "total_facility", "register"),
                                  ("cool", "consumed", "interval"), ("light", "consumed", "interval"))]
        sites.append({"code": f"bench-{s}", "name": f"bench {s}", "kind": "data_centre",
                      "gateways": [{"id": f"gw-bench-{s}", "meters": meters}]})
    return {"enterprises": [{"id": ent + check_character(ent), "name": "bench", "city": "中卫",
                             "industry": "data_centre", "sites": sites}]}


def _rows(meter_ids: list[int], start: datetime, n: int) -> list[Row]:
    per_meter = max(1, n // len(meter_ids))
    q = timedelta(minutes=15)
    return [(m, start + k * q, 1000.0 + 250.0 * k) for k in range(per_meter) for m in meter_ids][:n]


def _timed(conn: psycopg.Connection[Any], rows: list[Row]) -> tuple[float, WriteResult]:
    t0 = time.perf_counter()
    result = write_batch(conn, rows, [], [])
    conn.commit()
    return time.perf_counter() - t0, result


def _best_ms(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--meters", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    settings = ServiceSettings()
    db = f"nxem_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_dsn(settings), autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{db}"')
    try:
        migrate(admin_dsn(settings, dbname=db), backend=settings.db_backend, secrets_dir=settings.resolved_data_dir() / "secrets")
        with psycopg.connect(admin_dsn(settings, dbname=db)) as c:
            upsert_registry(c, parse_registry(_registry(args.meters), "bench"))
            ids = [r[0] for r in c.execute("SELECT id FROM meters ORDER BY id").fetchall()]
            backend = backend_of(c)
        print(f"backend={backend} rows/batch={args.rows} meters={len(ids)} (best of {args.repeat})")
        dsn = roles.dsn_for("nxem_ingest", settings, dbname=db)
        # each batch spans rows/meters quarter-hours (25 h by default): batches start 2 days apart
        base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=60)
        with psycopg.connect(dsn) as conn:
            fast, dup, half = [], [], []
            for i in range(args.repeat):
                rows = _rows(ids, base + timedelta(days=2 * i), args.rows)
                t, r = _timed(conn, rows)
                assert r.inserted == len(rows) and not r.staged, (r.inserted, r.staged)
                fast.append(t)
                t, r = _timed(conn, rows)
                assert r.inserted == 0 and r.staged and not r.conflicts, (r.inserted, r.staged)
                dup.append(t)
                mixed = rows[len(rows) // 2:] + _rows(ids, base + timedelta(days=2 * i + 20), len(rows) // 2)
                t, r = _timed(conn, mixed)
                assert r.inserted == len(rows) // 2, (r.inserted, r.staged)
                half.append(t)
        for name, times in (("fast path (all new)", fast), ("duplicate path (replay)", dup),
                            ("half new (staged)", half)):
            best = min(times)
            print(f"write_batch {name:26s} {args.rows / best:>10,.0f} rows/s  ({best * 1000:.0f} ms)")
        _read_bench(settings, db, dsn, args.repeat)
    finally:
        with psycopg.connect(admin_dsn(settings), autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def _read_bench(settings: ServiceSettings, db: str, dsn: str, repeat: int) -> None:
    year = date(2025, 1, 1)
    start = datetime(2024, 12, 31, 16, tzinfo=UTC)  # 2025-01-01 00:00 Asia/Shanghai
    with psycopg.connect(admin_dsn(settings, dbname=db)) as c:
        site, ent = c.execute("SELECT id, enterprise_id FROM sites ORDER BY id LIMIT 1").fetchone() or (0, "")
        meters = [r[0] for r in c.execute("SELECT id FROM meters WHERE site_id = %s ORDER BY id", (site,))]
    q = timedelta(minutes=15)
    t0 = time.perf_counter()
    with psycopg.connect(dsn) as conn:
        for day in range(365):  # one poll per day of data, like a backfill
            rows = [(m, start + (day * 96 + k) * q, 1000.0 + 250.0 * (day * 96 + k)) for m in meters for k in range(96)]
            write_batch(conn, rows, [], [])
            conn.commit()
    print(f"loaded a year of 15-minute data for one site: {365 * 96 * len(meters):,} readings "
          f"in {time.perf_counter() - t0:.1f} s (365 polls)")
    end = start + timedelta(days=365)
    with psycopg.connect(roles.dsn_for("nxem_portal", settings, dbname=db)) as conn:
        from storage.rls import tenant_transaction

        def run(fn: Callable[[], object]) -> Callable[[], object]:
            def inner() -> object:
                with tenant_transaction(conn, ent):
                    return fn()
            return inner

        last = date(2025, 12, 31)
        cases: list[tuple[str, Callable[[], object]]] = [
            ("site energy per month, 1 year (tce)", lambda: read_energy.energy(conn, site, "month", year, last)),
            ("site energy per day, 1 year (tce)", lambda: read_energy.energy(conn, site, "day", year, last)),
            ("PUE per day, 1 year", lambda: read_energy.pue(conn, site, year, last)),
            ("PUE per hour, 1 month", lambda: read_energy.pue(conn, site, year, date(2025, 1, 31), "hour")),
            ("readings 1 meter, 1 year -> 500 points", lambda: read_readings.readings(conn, meters[0], start, end, 500)),
            ("readings 1 meter, 1 year, raw (35 040 rows)",
             lambda: read_readings.readings_since(conn, [meters[0]], start)),
            ("15-min energy, site, 1 year",
             lambda: read_energy.meter_energy(conn, meters, start, end, "15min")),
        ]
        for name, fn in cases:
            print(f"read (enterprise session) {name:44s} {_best_ms(run(fn), repeat + 2):8.1f} ms")


if __name__ == "__main__":
    main()
