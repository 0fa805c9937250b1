"""Every TimescaleDB-only statement of the project (plus the SQL in ``sql_timescale/``).

Written for TimescaleDB 2.28.3 on PostgreSQL 15 (the last line supporting 15). Nothing here
runs on plain PostgreSQL, and nothing here falls back: when the extension is available but a
statement fails, ``TimescaleError`` is raised (see storage/errors.py).

* Detection: ``available(conn)`` -- ``pg_available_extensions`` lists ``timescaledb``.
* Schema: ``sql_timescale/NNNN_*.sql`` replace the native migrations of the same name.
* Policies: compression after a configurable age, optional raw retention, and refresh
  policies of the continuous aggregates, re-applied on every migrate (``apply_policies``).
* ``refresh_rollups``: materialise a range now (late data older than the policies' window,
  tests). Needs an autocommit connection: TimescaleDB refuses it in a transaction block. It
  never reaches back before the oldest raw chunk: refreshing a range whose raw chunks the
  retention dropped would delete those days from the aggregates.
* ``job_ids`` / ``run_job``: the policies' jobs, and running one now in this session.

Roles: the jobs run as the hypertables' owner ``nxem_owner``, which TimescaleDB requires to
have LOGIN (storage/roles.py, migration 0013).

Known upstream problem (TimescaleDB 2.28.3 on PostgreSQL 15.20, seen here): a job started by
TimescaleDB's scheduler does its work and commits, then records ``Failed`` with ``cannot drop
portal "" while it is being set up`` (its bare portal trips a check newer than the 15.18 that
2.28 was tested with), and the scheduler backs off to at most 5 × the job's interval. ``run_job``
from a session does not hit it. See the README's storage section.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

import psycopg

from storage.errors import TimescaleError

SQL_DIR: Final = Path(__file__).with_name("sql_timescale")
CAGGS: Final = ("rollup_15m", "rollup_1h", "rollup_1d")


@dataclass(frozen=True, slots=True)
class Policies:
    """TimescaleDB job settings (the native path ignores them)."""

    compress_after: timedelta = timedelta(days=7)
    retain_raw: timedelta | None = None  # None: keep raw readings forever (compressed)
    refresh_every: timedelta = timedelta(minutes=5)
    refresh_end_offset: timedelta = timedelta(minutes=15)  # newest data served in real time

    def refresh_start_offset(self) -> timedelta | None:
        """How far back the refresh policy looks. Inside the raw retention: refreshing a window
        whose raw rows were dropped would delete those days from the aggregates."""
        if self.retain_raw is None:
            return None  # whole history; only invalidated ranges are recomputed
        return self.retain_raw - timedelta(days=1)


def available(conn: psycopg.Connection[Any]) -> bool:
    """True when the server can load TimescaleDB (``pg_available_extensions``)."""
    row = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone()
    return row is not None


def unavailable_reason(conn: psycopg.Connection[Any]) -> str | None:
    """Why this server cannot run TimescaleDB (None when it can): the extension files must be
    installed and the library preloaded (``CREATE EXTENSION`` fails otherwise)."""
    if not available(conn):
        return "the server lists no timescaledb in pg_available_extensions"
    row = conn.execute("SELECT current_setting('shared_preload_libraries')").fetchone()
    preload = [part.strip() for part in str(row[0] if row else "").split(",")]
    if "timescaledb" not in preload:
        return "the server does not preload timescaledb (shared_preload_libraries)"
    return None


def installed(conn: psycopg.Connection[Any]) -> bool:
    """True when the extension is created in this database."""
    row = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
    return row is not None


def override(migration: str) -> Path | None:
    """The Timescale replacement of a native migration file name, if there is one."""
    path = SQL_DIR / migration
    return path if path.exists() else None


def _run(conn: psycopg.Connection[Any], what: str, query: str, params: Any = None) -> None:
    try:
        conn.execute(query, params)
    except psycopg.Error as err:
        raise TimescaleError(f"timescaledb {what} failed: {err}") from err


def apply_policies(conn: psycopg.Connection[Any], policies: Policies) -> None:
    """Replace the compression, retention and refresh policies by ``policies`` (idempotent).
    Runs in the caller's transaction. ``initial_start`` one period ahead: a new policy would
    otherwise start at once, in the middle of a migration."""
    _run(conn, "remove_compression_policy", "SELECT remove_compression_policy('readings', if_exists => true)")
    _run(conn, "add_compression_policy",
         "SELECT add_compression_policy('readings', compress_after => %s::interval,"
         " initial_start => now() + interval '1 hour')", (policies.compress_after,))
    _run(conn, "remove_retention_policy", "SELECT remove_retention_policy('readings', if_exists => true)")
    if policies.retain_raw is not None:
        _run(conn, "add_retention_policy",
             "SELECT add_retention_policy('readings', drop_after => %s::interval,"
             " initial_start => now() + interval '1 hour')", (policies.retain_raw,))
    for cagg in CAGGS:
        _run(conn, f"remove_continuous_aggregate_policy({cagg})",
             "SELECT remove_continuous_aggregate_policy(%s::regclass, if_exists => true)", (cagg,))
        _run(conn, f"add_continuous_aggregate_policy({cagg})",
             "SELECT add_continuous_aggregate_policy(%s::regclass, start_offset => %s::interval,"
             " end_offset => %s::interval, schedule_interval => %s::interval,"
             " initial_start => now() + %s::interval)",
             (cagg, policies.refresh_start_offset(), policies.refresh_end_offset,
              policies.refresh_every, policies.refresh_every))


def oldest_raw(conn: psycopg.Connection[Any]) -> datetime | None:
    """Start of the oldest chunk of ``readings`` (None: no raw data at all)."""
    row = conn.execute("SELECT min(range_start) FROM timescaledb_information.chunks"
                       " WHERE hypertable_schema = 'public' AND hypertable_name = 'readings'").fetchone()
    return None if row is None else row[0]


def refresh_rollups(conn: psycopg.Connection[Any], start: datetime | None, end: datetime | None) -> None:
    """Materialise the continuous aggregates over [start, end) now (autocommit connection),
    from the oldest raw chunk on at most: before it the raw rows were dropped by retention, and
    a refresh there would empty the aggregates' days instead of keeping them."""
    if not conn.autocommit:
        raise TimescaleError("refresh_continuous_aggregate needs an autocommit connection")
    oldest = oldest_raw(conn)
    if oldest is None:
        return  # no raw data: nothing to materialise, and everything materialised is kept
    start = oldest if start is None else max(start, oldest)
    if end is not None and end <= start:
        return
    for cagg in CAGGS:
        _run(conn, f"refresh_continuous_aggregate({cagg})",
             "CALL refresh_continuous_aggregate(%s::regclass, %s::timestamptz, %s::timestamptz)",
             (cagg, start, end))


def job_ids(conn: psycopg.Connection[Any]) -> dict[tuple[str, str], int]:
    """(proc_name, relation) -> job id of the policies: ``("policy_compression", "readings")``,
    ``("policy_retention", "readings")``, ``("policy_refresh_continuous_aggregate", "rollup_1d")``."""
    rows = conn.execute("SELECT proc_name, hypertable_name, job_id FROM timescaledb_information.jobs"
                        " WHERE hypertable_name IS NOT NULL").fetchall()
    return {(str(p), str(h)): int(j) for p, h, j in rows}


def run_job(conn: psycopg.Connection[Any], job_id: int) -> None:
    """Run a job now in this session (``CALL run_job``; autocommit connection)."""
    if not conn.autocommit:
        raise TimescaleError("run_job needs an autocommit connection")
    _run(conn, f"run_job({job_id})", "CALL run_job(%s)", (job_id,))


def bucket_sql(width_param: str, column: str, origin_sql: str) -> str:
    """``time_bucket`` over ``column`` with an explicit origin (same buckets as the native
    path's ``date_bin`` with that origin). ``width_param`` is a placeholder such as ``%(w)s``."""
    return f"time_bucket({width_param}::interval, {column}, origin => {origin_sql})"
