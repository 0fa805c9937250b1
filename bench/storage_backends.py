"""Storage backends side by side: plain PostgreSQL partitions vs TimescaleDB, in one run.

    .venv/bin/python -m bench.storage_backends [--sites 100] [--meters-per-site 2] [--days 365]
                                               [--repeat 5] [--e2e-seconds 0]

Two throwaway databases in the running cluster (``nxem services up``), one migrated with
``backend="native"``, one with ``backend="timescale"``, each loaded with the same fleet: ``--sites``
data centres (10 per enterprise, 5 cities) with an IT and a facility register per site (plus
interval meters beyond 2 per site), a reading every 15 minutes for ``--days`` days ending last
local midnight. Prints figures, never pass/fail:

* ingest: the year written as the worker writes (``write_batch`` as ``nxem_ingest``, one poll =
  one day of the whole fleet, each its own transaction), rows/s; then each backend's upkeep --
  native: closing the daily rollup (``rollups.maintain``), TimescaleDB: materialising the
  continuous aggregates and compressing chunks older than 7 days (its policies, run now) -- and
  a replayed poll (all duplicates) and a late poll (new keys 60 days back, into compressed chunks
  on TimescaleDB);
* query latency, best of ``--repeat``, as the portal runs them (``storage.read``, ``portal.figures``, role
  ``nxem_portal`` bound to the site's enterprise, the overview as an inspector): energy series
  per day (1 year), per hour (31 days), per quarter-hour (7 days), per month (1 year); the rolling
  12 months ending at each of 30 days; the region overview of the current year; a meter's
  readings over a year downsampled to 500 points;
* sizes of the raw readings (TimescaleDB after compression);
* with ``--e2e-seconds N``: ``bench.pipeline`` at ``--e2e-rate`` for N seconds on each backend
  (MQTT -> collector -> Kafka -> worker -> database), its stored readings/s and latency lines.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import psycopg

from nxem.localtime import LOCAL_TZ
from ops.services import ServiceSettings, admin_dsn, ensure_up
from portal import figures
from storage import roles, rollups, timescale
from storage.ingest import write_batch
from storage.migrate import migrate
from storage.read import energy as read_energy
from storage.read import readings as read_readings
from storage.registry import upsert_registry
from storage.registry_format import parse_registry
from storage.rls import tenant_transaction
from storage.uscc import check_character

Backend = Literal["native", "timescale"]
BACKENDS: tuple[Backend, ...] = ("native", "timescale")
LOCAL = LOCAL_TZ
Q = timedelta(minutes=15)
CITIES = (("0100", "银川"), ("0200", "石嘴山"), ("0300", "吴忠"), ("0400", "固原"), ("0500", "中卫"))


def fleet(sites: int, meters_per_site: int) -> dict[str, Any]:
    """``sites`` data centres, 10 per enterprise, enterprises spread over the five cities."""
    kinds = [("it", "it_load", "register"), ("fac", "total_facility", "register")]
    kinds += [(f"aux{k}", "consumed", "interval") for k in range(max(0, meters_per_site - 2))]
    ents = []
    for e in range((sites + 9) // 10):
        code, city = CITIES[e % len(CITIES)]
        base = f"9164{code}MA76L8X{e:02d}"
        ent_sites = [{"code": f"bench-{e}-{s}", "name": f"bench {e}-{s}", "kind": "data_centre",
                      "gateways": [{"id": f"gw-bench-{e}-{s}", "meters": [
                          {"code": c, "carrier": "electricity", "unit": "kWh", "role": r, "kind": k,
                           "coefficient": "electricity_calorific", "digits": 12}
                          for c, r, k in kinds[:max(2, meters_per_site)]]}]}
                     for s in range(min(10, sites - 10 * e))]
        ents.append({"id": base + check_character(base), "name": f"bench {e}", "city": city,
                     "industry": "data_centre", "sites": ent_sites})
    return {"enterprises": ents}


def day_rows(meters: list[tuple[int, str]], start: datetime, day: int) -> list[tuple[int, datetime, float]]:
    """One local day of the fleet: registers climb 100 kWh (IT) / 130 kWh (facility: PUE 1.3)
    a quarter-hour, interval meters read 10 kWh."""
    step = {"it_load": 100.0, "total_facility": 130.0}
    rows = []
    for k in range(96):
        t = start + (day * 96 + k) * Q
        n = day * 96 + k
        for mid, role in meters:
            rows.append((mid, t, step[role] * n if role in step else 10.0))
    return rows


def best_ms(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best * 1000


@dataclass
class Result:
    figures: dict[str, float] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)


@contextmanager
def database(settings: ServiceSettings, backend: Backend) -> Iterator[str]:
    name = f"nxem_bench_{backend}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(admin_dsn(settings), autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    try:
        migrate(admin_dsn(settings, dbname=name), backend=backend, secrets_dir=settings.resolved_data_dir() / "secrets")
        yield name
    finally:
        with psycopg.connect(admin_dsn(settings), autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def raw_size(conn: psycopg.Connection[Any], backend: Backend) -> int:
    if backend == "timescale":
        row = conn.execute("SELECT hypertable_size('readings')").fetchone()
    else:
        row = conn.execute("SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits"
                           " WHERE inhparent = 'readings'::regclass").fetchone()
    return int(row[0] or 0) if row else 0


def bench_backend(settings: ServiceSettings, backend: Backend, args: argparse.Namespace) -> Result:
    res = Result()
    today = datetime.now(LOCAL).date()
    first = today - timedelta(days=args.days)
    start = datetime.combine(first, datetime.min.time(), LOCAL).astimezone(UTC)
    with database(settings, backend) as db:
        admin = admin_dsn(settings, dbname=db)
        with psycopg.connect(admin) as c:
            upsert_registry(c, parse_registry(fleet(args.sites, args.meters_per_site), "bench"))
            meters = [(int(m), str(r)) for m, r in c.execute("SELECT id, role FROM meters ORDER BY id").fetchall()]
            sites = c.execute("SELECT s.id, s.enterprise_id FROM sites s ORDER BY s.id").fetchall()
            if backend == "timescale":  # the policies run below, when this script says so
                for job in timescale.job_ids(c).values():
                    c.execute("SELECT alter_job(%s, scheduled => false)", (job,))
        ingest = roles.dsn_for("nxem_ingest", settings, dbname=db)
        n_rows = 0
        busy = 0.0
        t0 = time.perf_counter()
        with psycopg.connect(ingest) as conn:
            for day in range(args.days):
                rows = day_rows(meters, start, day)
                t1 = time.perf_counter()
                write_batch(conn, rows, [], [])
                conn.commit()
                busy += time.perf_counter() - t1
                n_rows += len(rows)
        wall = time.perf_counter() - t0
        res.figures["ingest rows/s (write_batch, 1 poll = 1 fleet-day)"] = n_rows / busy
        res.notes["rows"] = f"{n_rows:,} readings, {len(meters)} meters, {len(sites)} sites, " \
                            f"{len(meters) * 96:,} rows a poll; {wall:.0f} s wall incl. generating rows"
        t0 = time.perf_counter()
        with psycopg.connect(admin, autocommit=backend == "timescale") as c:
            if backend == "native":
                c.autocommit = False
                rollups.maintain(c, datetime.now(UTC), max_days=args.days + 2)
                c.commit()
                res.figures["upkeep s (close the daily rollup)"] = time.perf_counter() - t0
            else:
                timescale.refresh_rollups(c, None, None)
                res.figures["upkeep s (refresh aggregates)"] = time.perf_counter() - t0
                before = raw_size(c, backend)
                t1 = time.perf_counter()
                timescale.run_job(c, timescale.job_ids(c)[("policy_compression", "readings")])
                res.figures["upkeep s (compress > 7 days)"] = time.perf_counter() - t1
                res.notes["compression"] = f"{before / max(1, raw_size(c, backend)):.1f}x"
            res.figures["raw readings MiB"] = raw_size(c, backend) / 2**20
        with psycopg.connect(ingest) as conn:
            replay = day_rows(meters, start, args.days // 2)
            t1 = time.perf_counter()
            r = write_batch(conn, replay, [], [])
            conn.commit()
            res.figures["replayed poll rows/s (all duplicates)"] = len(replay) / (time.perf_counter() - t1)
            assert r.inserted == 0, r.inserted
            late_day = max(0, args.days - 60)
            late = [(m, t - timedelta(minutes=7), v) for m, t, v in day_rows(meters, start, late_day)]
            t1 = time.perf_counter()
            r = write_batch(conn, late, [], [])
            conn.commit()
            res.figures["late poll rows/s (new keys 60 days back)"] = len(late) / (time.perf_counter() - t1)
            assert r.inserted == len(late), r.inserted
        if backend == "native":  # the late day is dirty now: as the worker's maintain would
            with psycopg.connect(admin) as c:
                rollups.maintain(c, datetime.now(UTC))
        else:
            with psycopg.connect(admin, autocommit=True) as c:
                timescale.refresh_rollups(c, None, None)

        site, ent = sites[0]
        it = next(m for m, role in meters if role == "it_load")
        last = today - timedelta(days=1)
        year_ago = last - timedelta(days=364)
        t_year0 = datetime.combine(year_ago, datetime.min.time(), LOCAL).astimezone(UTC)
        t_year1 = datetime.combine(today, datetime.min.time(), LOCAL).astimezone(UTC)
        with psycopg.connect(roles.dsn_for("nxem_portal", settings, dbname=db)) as conn:
            def tenant(fn: Callable[[], object], inspector: bool = False) -> Callable[[], object]:
                def inner() -> object:
                    with tenant_transaction(conn, None if inspector else ent, inspector=inspector):
                        return fn()
                return inner

            cases: list[tuple[str, Callable[[], object]]] = [
                ("energy per day, 1 year", tenant(lambda: read_energy.energy(conn, site, "day", year_ago, last))),
                ("energy per hour, 31 days", tenant(lambda: read_energy.energy(conn, site, "hour", last - timedelta(days=30), last))),
                ("energy per 15 min, 7 days", tenant(lambda: read_energy.energy(conn, site, "15min", last - timedelta(days=6), last))),
                ("energy per month, 1 year", tenant(lambda: read_energy.energy(conn, site, "month", year_ago, last))),
                ("rolling 12 months at each of 30 days",
                 tenant(lambda: read_energy.energy(conn, site, "rolling12", last - timedelta(days=29), last))),
                (f"region overview {today.year} ({len(sites)} sites, inspector)",
                 tenant(lambda: figures.overview(conn, today.year), inspector=True)),
                ("readings 1 meter, 1 year -> 500 points", tenant(lambda: read_readings.readings(conn, it, t_year0, t_year1, 500))),
            ]
            for name, fn in cases:
                fn()  # warm the cache: every figure is a warm one
                res.figures[f"query ms: {name}"] = best_ms(fn, args.repeat)
    return res


def e2e(backend: Backend, args: argparse.Namespace) -> list[str]:
    """bench.pipeline on ``backend``: its throughput and latency lines."""
    env = {**os.environ, "NXEM_DB_BACKEND": backend}
    cmd = [sys.executable, "-m", "bench.pipeline", "--rate", str(args.e2e_rate), "--duration", str(args.e2e_seconds),
           "--warmup", "5", "--no-raw", "--no-alert-probe"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False, timeout=1800)
    keep = ("pipeline stored", "latency reading->stored", "load published")
    lines = [line for line in done.stdout.splitlines() if line.startswith(keep)]
    return lines if done.returncode == 0 else lines + [f"bench.pipeline exited {done.returncode}: {done.stderr[-500:]}"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sites", type=int, default=100)
    ap.add_argument("--meters-per-site", type=int, default=2)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--e2e-seconds", type=float, default=0, help="also run bench.pipeline this long per backend")
    ap.add_argument("--e2e-rate", type=float, default=50_000)
    args = ap.parse_args()
    settings = ServiceSettings()
    ensure_up(settings)
    print(f"# bench.storage_backends sites={args.sites} meters/site={args.meters_per_site} days={args.days} "
          f"repeat={args.repeat} cores={os.cpu_count()}")
    results: dict[Backend, Result] = {}
    for backend in BACKENDS:
        t0 = time.perf_counter()
        results[backend] = bench_backend(settings, backend, args)
        print(f"{backend}: done in {time.perf_counter() - t0:.0f} s ({results[backend].notes['rows']})")
    print(f"{'measure':62s} {'native':>12s} {'timescale':>12s}  faster")
    names = list(dict.fromkeys([*results["native"].figures, *results["timescale"].figures]))
    for name in names:
        a, b = results["native"].figures.get(name), results["timescale"].figures.get(name)
        cells = [f"{v:12,.1f}" if v is not None else f"{'-':>12s}" for v in (a, b)]
        verdict = ""
        if a is not None and b is not None and name != "raw readings MiB":
            higher_better = "rows/s" in name
            ratio = (b / a if higher_better else a / b) if a and b else 0.0
            verdict = f"timescale {ratio:.2f}x" if ratio >= 1 else f"native {1 / ratio:.2f}x" if ratio else ""
        elif name == "raw readings MiB" and a and b:
            verdict = f"timescale {a / b:.1f}x smaller" if b < a else f"native {b / a:.1f}x smaller"
        print(f"{name:62s} {cells[0]} {cells[1]}  {verdict}")
    if "compression" in results["timescale"].notes:
        print(f"timescale compression of the chunks older than 7 days: {results['timescale'].notes['compression']}")
    if args.e2e_seconds > 0:
        for backend in BACKENDS:
            print(f"end to end, {backend} (bench.pipeline --rate {args.e2e_rate:,.0f} --duration {args.e2e_seconds:g}):")
            for line in e2e(backend, args):
                print(f"  {line}")


if __name__ == "__main__":
    main()
