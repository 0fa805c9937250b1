"""Every TimescaleDB-only statement of the project (plus the SQL in ``sql_timescale/``).

Written for TimescaleDB 2.28.3 on PostgreSQL 15 (the last line supporting 15). Nothing here
runs on plain PostgreSQL, and nothing here falls back: when the extension is available but a
statement fails, ``TimescaleError`` is raised (see storage/errors.py).

* Detection: ``available(conn)`` -- ``pg_available_extensions`` lists ``timescaledb``.
* Schema: ``sql_timescale/NNNN_*.sql`` replace the native migrations of the same name.
* Policies: compression after a configurable age, optional raw retention, and refresh
  policies of the continuous aggregates, re-applied on every migrate (``apply_policies``).
* ``refresh_rollups``: materialise a range now (late data older than the policies' window,
  tests). Needs an autocommit connection: TimescaleDB refuses it in a transaction block.
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


def refresh_rollups(conn: psycopg.Connection[Any], start: datetime | None, end: datetime | None) -> None:
    """Materialise the continuous aggregates over [start, end) now (autocommit connection)."""
    if not conn.autocommit:
        raise TimescaleError("refresh_continuous_aggregate needs an autocommit connection")
    for cagg in CAGGS:
        _run(conn, f"refresh_continuous_aggregate({cagg})",
             "CALL refresh_continuous_aggregate(%s::regclass, %s::timestamptz, %s::timestamptz)",
             (cagg, start, end))


def bucket_sql(width_param: str, column: str, origin_sql: str) -> str:
    """``time_bucket`` over ``column`` with an explicit origin (same buckets as the native
    path's ``date_bin`` with that origin). ``width_param`` is a placeholder such as ``%(w)s``."""
    return f"time_bucket({width_param}::interval, {column}, origin => {origin_sql})"
