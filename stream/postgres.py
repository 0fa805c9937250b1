"""PostgreSQL adapter of the worker: one connection, one transaction per poll, errors as ours.

The SQL lives in ``storage``; this module owns the connection's life (connect, reconnect
after a failure) and sorts psycopg's errors into ours, which the loop treats differently:
* ``BackendUnavailable`` -- the server cannot be used now (connection lost, shut down, out of
  resources, a deadlock or serialization failure: ``psycopg.OperationalError``): back off and
  retry the same records;
* ``DataRefused`` -- the server (or psycopg, before sending) refused the data itself: a data
  exception, a constraint, a value a column cannot hold. Retrying the same records fails the
  same way, so the loop isolates the record(s) responsible and quarantines them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import psycopg

from nxem.contract import AlertEvent, DeadLetter
from nxem.errors import BackendUnavailable, DataRefused
from analytics.day_totals import DayRollup
from storage import ingest, rollups, rule_history
from storage.read import alerts as read_alerts
from storage.read import readings as read_readings
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

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _fail(self, what: str, err: psycopg.Error) -> BackendUnavailable:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None
        return BackendUnavailable(f"PostgreSQL {what}: {err}")

    def _refused(self, what: str, err: Exception) -> DataRefused:
        # the transaction was rolled back; a connection psycopg gave up on is replaced
        if self._conn is not None and self._conn.closed:
            self._conn = None
        return DataRefused(f"PostgreSQL {what}: {type(err).__name__}: {err}")

    def write(
        self, rows: list[tuple[int, datetime, float]], alerts: list[AlertEvent], dead: list[DeadLetter],
        relay: Sequence[AlertEvent] = (),
    ) -> ingest.WriteResult:
        conn = self._connection()
        try:
            with conn.transaction():
                result = ingest.write_batch(conn, rows, alerts, dead, relay)
        except psycopg.OperationalError as err:
            raise self._fail("write", err) from err
        except psycopg.Error as err:  # DataError, IntegrityError, ProgrammingError, InternalError, ...
            raise self._refused("write", err) from err
        except (ValueError, OverflowError, TypeError) as err:  # refused by psycopg's dumpers before sending
            raise self._refused("write", err) from err
        m.DUPLICATES.inc(result.duplicates)
        return result

    def quarantine(self, items: list[ingest.Quarantined]) -> int:
        """Store records that cannot be stored otherwise; if even this is refused the database
        is not usable for the worker: ``BackendUnavailable`` (retried, nothing committed)."""
        conn = self._connection()
        try:
            return ingest.write_quarantine(conn, items)
        except psycopg.OperationalError as err:
            raise self._fail("quarantine", err) from err
        except (psycopg.Error, ValueError, OverflowError, TypeError) as err:
            raise BackendUnavailable(f"PostgreSQL refused the quarantine itself: {type(err).__name__}: {err}") from err

    def history(self, site_id: int, meter_ids: Iterable[int], since: datetime) -> list[tuple[int, datetime, float]]:
        ids = list(meter_ids)
        if not ids:
            return []
        conn = self._connection()
        try:
            with conn.transaction():
                return read_readings.readings_since(conn, ids, since)
        except psycopg.Error as err:  # a read has no record's data to refuse: the backend's, retried
            raise self._fail("history", err) from err

    def day_rollups(self, site_id: int, meter_ids: Iterable[int], since: datetime,
                    until: datetime) -> list[DayRollup]:
        """Daily rollup rows of the site's meters for the local days in [since, until)."""
        ids = list(meter_ids)
        if not ids:
            return []
        conn = self._connection()
        try:
            with conn.transaction():
                return rule_history.day_rollups(conn, ids, since, until)
        except psycopg.OperationalError as err:
            raise self._fail("daily rollups", err) from err

    def active_alerts(self, site_id: int) -> list[AlertEvent]:
        conn = self._connection()
        try:
            with conn.transaction():
                return read_alerts.active_alert_events(conn, site_id)
        except psycopg.Error as err:  # a read has no record's data to refuse: the backend's, retried
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
