"""PostgreSQL adapter of the worker: one connection, one transaction per poll, errors as ours.

The SQL lives in ``storage``; this module owns the connection's life (connect, reconnect
after a failure) and turns psycopg errors into ``BackendUnavailable`` so the loop backs off.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import psycopg

from nxem.contract import AlertEvent, DeadLetter
from nxem.errors import BackendUnavailable
from storage import ingest, queries, rollups
from stream import metrics as m

log = logging.getLogger(__name__)


class PgStore:
    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._conn: psycopg.Connection[Any] | None = None

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            try:
                self._conn = psycopg.connect(self._dsn, connect_timeout=10, application_name="nxem-worker")
            except psycopg.Error as err:
                raise BackendUnavailable(f"PostgreSQL connect: {err}") from err
        return self._conn

    def _fail(self, what: str, err: psycopg.Error) -> BackendUnavailable:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None
        return BackendUnavailable(f"PostgreSQL {what}: {err}")

    def write(
        self, rows: list[tuple[int, datetime, float]], alerts: list[AlertEvent], dead: list[DeadLetter]
    ) -> ingest.WriteResult:
        conn = self._connection()
        try:
            with conn.transaction():
                result = ingest.write_batch(conn, rows, alerts, dead)
        except psycopg.OperationalError as err:
            raise self._fail("write", err) from err
        m.DUPLICATES.inc(result.duplicates)
        return result

    def history(self, site_id: int, meter_ids: Iterable[int], since: datetime) -> list[tuple[int, datetime, float]]:
        ids = list(meter_ids)
        if not ids:
            return []
        conn = self._connection()
        try:
            with conn.transaction():
                return queries.readings_since(conn, ids, since)
        except psycopg.OperationalError as err:
            raise self._fail("history", err) from err

    def active_alerts(self, site_id: int) -> list[AlertEvent]:
        conn = self._connection()
        try:
            with conn.transaction():
                return queries.active_alert_events(conn, site_id)
        except psycopg.OperationalError as err:
            raise self._fail("active alerts", err) from err


_MAINTAIN_LOCK = 0x6E78726F  # "nxro": one rollup maintainer per database at a time


def maintain_rollups(dsn: str, now: datetime) -> rollups.MaintainResult | None:
    """Close ended days and recompute dirty ones (native path); None when another worker
    holds the job or the database is TimescaleDB (continuous aggregates do it there)."""
    try:
        with psycopg.connect(dsn, connect_timeout=10, application_name="nxem-rollups") as conn:
            if ingest.backend(conn) != "native":
                return None
            with conn.transaction():
                got = conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (_MAINTAIN_LOCK,)).fetchone()
                if not got or not got[0]:
                    return None
                return rollups.maintain(conn, now)
    except psycopg.OperationalError as err:
        raise BackendUnavailable(f"PostgreSQL rollup maintenance: {err}") from err
