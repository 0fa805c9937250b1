"""Idempotent ingest of one Kafka poll: readings, alert transitions and dead letters in ONE
transaction (the worker commits its Kafka offsets after it).

Readings (shared/notes/stack-facts.md has the measurements behind this):
* the batch is sorted by (meter_id, ts) (stable: for a repeated key the first sent stays first);
* **fast path**: a plain binary COPY straight into ``readings``, inside a savepoint;
* on a unique violation (a replay, a redelivery, an overlap) the savepoint is rolled back and
  the batch is redone through the **staged path**: binary COPY into a temporary table
  (``ON COMMIT DELETE ROWS``, created once per connection), then
  ``INSERT … SELECT … ON CONFLICT (meter_id, ts) DO NOTHING``. Replaying a topic from offset
  0 therefore inserts nothing and changes nothing.
* **Correction rule**: the first value stored for a (meter, ts) is kept. A later reading with
  the same key and a *different* value is not written; it is counted in
  ``WriteResult.duplicates`` and returned in ``WriteResult.conflicts`` (stored and refused
  value) so the worker can dead-letter it (reason code ``conflicting_duplicate``). The same
  applies to two different values for one key inside a batch. A correction is an operator
  action (delete the row, then replay), never a silent overwrite.
* native path only: the day partitions are created before the COPY (storage/partitions.py)
  and the rows actually inserted are merged into the daily rollup (storage/rollups.py). With TimescaleDB, chunks and
  continuous aggregates do both.

Alert transitions go to ``alert_transitions`` (unique on (alert_key, kind, at), so a replay
adds nothing) and, when new, update ``alerts`` (at most one active row per alert_key).
Dead letters are stored once each (sha256 fingerprint over all their fields).
"""

from __future__ import annotations

import hashlib
import json
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from operator import itemgetter
from typing import Any, Final

import psycopg
from psycopg import errors as pg_errors

from nxem.contract import AlertEvent, DeadLetter
from storage import partitions, rollups, timescale

Row = tuple[int, datetime, float]
_TYPES: Final = ["int4", "timestamptz", "float8"]
_STAGE: Final = "nxem_stage_readings"


@dataclass(frozen=True, slots=True)
class Conflict:
    """A reading refused because its key holds a different value (first value kept)."""

    meter_id: int
    ts: datetime
    stored_value: float
    refused_value: float


@dataclass(frozen=True, slots=True)
class WriteResult:
    inserted: int  # readings newly stored
    duplicates: int  # readings not stored because their key exists (includes conflicts)
    conflicts: tuple[Conflict, ...] = ()  # duplicates whose value differs from the stored one
    alert_transitions: int = 0  # transitions newly recorded (replays count 0)
    dead_letters: int = 0  # dead letters newly stored
    staged: bool = False  # True when the batch went through the ON CONFLICT path


@dataclass(slots=True)
class _ConnState:
    backend: str
    days: set[date] = field(default_factory=set)


_STATE: weakref.WeakKeyDictionary[psycopg.Connection[Any], _ConnState] = weakref.WeakKeyDictionary()


def _state(conn: psycopg.Connection[Any]) -> _ConnState:
    st = _STATE.get(conn)
    if st is None:
        st = _ConnState("timescale" if timescale.installed(conn) else "native")
        _STATE[conn] = st
    return st


def _copy(cur: psycopg.Cursor[Any], table: str, rows: Sequence[Row]) -> None:
    with cur.copy(f"COPY {table} (meter_id, ts, value) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(_TYPES)
        for row in rows:
            copy.write_row(row)


def _ensure_partitions(conn: psycopg.Connection[Any], st: _ConnState, rows: Sequence[Row],
                       lo: datetime, hi: datetime, force: bool = False) -> None:
    for first, last in partitions.days_needed(rows, lo, hi):
        span = {date.fromordinal(o) for o in range(first.toordinal(), last.toordinal() + 1)}
        if force or not span <= st.days:
            partitions.ensure_partitions(conn, first, last)
            st.days |= span


def _dedupe(rows: list[Row]) -> tuple[list[Row], list[Conflict]]:
    """Drop repeated keys inside a sorted batch, keeping the first; report differing values."""
    out: list[Row] = []
    conflicts: list[Conflict] = []
    prev: Row | None = None
    for row in rows:
        if prev is not None and row[0] == prev[0] and row[1] == prev[1]:
            if row[2] != prev[2]:
                conflicts.append(Conflict(row[0], row[1], prev[2], row[2]))
            continue
        out.append(row)
        prev = row
    return out, conflicts


# One statement, one snapshot: ``conf`` sees readings as they were before ``ins``, i.e. the
# stored value of every refused key. 'i' rows are the inserted readings (the native path
# merges them into the daily rollup), 'c' rows the conflicts, 'n' the inserted count.
_STAGED_INSERT = f"""
WITH ins AS (
  INSERT INTO readings (meter_id, ts, value)
  SELECT meter_id, ts, value FROM {_STAGE}
  ON CONFLICT (meter_id, ts) DO NOTHING
  RETURNING meter_id, ts, value
), conf AS (
  SELECT s.meter_id, s.ts, r.value AS stored_value, s.value AS refused_value
  FROM {_STAGE} s JOIN readings r ON r.meter_id = s.meter_id AND r.ts = s.ts
  WHERE r.value IS DISTINCT FROM s.value
)
SELECT 'c', meter_id, ts, stored_value, refused_value FROM conf
UNION ALL
"""
_RETURN_INSERTED = "SELECT 'i', meter_id, ts, value, NULL::float8 FROM ins"
_RETURN_COUNT = "SELECT 'n', NULL::integer, NULL::timestamptz, count(*)::float8, NULL::float8 FROM ins"


def _staged(conn: psycopg.Connection[Any], rows: list[Row], want_rows: bool) -> tuple[int, list[Conflict], list[Row]]:
    """(inserted count, conflicts, inserted rows if ``want_rows``) through the temp table and
    ON CONFLICT."""
    unique, conflicts = _dedupe(rows)
    with conn.cursor() as cur:
        cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} "
                    "(meter_id integer, ts timestamptz, value double precision) ON COMMIT DELETE ROWS")
        cur.execute(f"TRUNCATE {_STAGE}")  # a second batch in the same transaction
        _copy(cur, _STAGE, unique)
        result = cur.execute(_STAGED_INSERT + (_RETURN_INSERTED if want_rows else _RETURN_COUNT)).fetchall()
    inserted_rows: list[Row] = []
    count = 0
    for tag, m, t, a, b in result:
        if tag == "c":
            conflicts.append(Conflict(m, t, a, b))
        elif tag == "i":
            inserted_rows.append((m, t, a))
        else:
            count = int(a)
    if want_rows:
        inserted_rows.sort(key=itemgetter(0, 1))
        count = len(inserted_rows)
    return count, conflicts, inserted_rows


def _write_readings(conn: psycopg.Connection[Any], batch: Sequence[Row], retry: bool = True) -> WriteResult:
    if not batch:
        return WriteResult(0, 0)
    st = _state(conn)
    rows = sorted(batch, key=itemgetter(0, 1))
    native = st.backend == "native"
    ranges = rollups.touched_ranges(rows) if native else None
    if ranges is not None:
        _ensure_partitions(conn, st, rows, min(ranges[1]), max(ranges[2]))
    try:
        with conn.transaction(), conn.cursor() as cur:  # savepoint: a failure leaves the poll's transaction usable
            _copy(cur, "readings", rows)
        inserted, staged, new_rows = len(rows), False, rows
        conflicts: list[Conflict] = []
    except pg_errors.UniqueViolation:
        inserted, conflicts, new_rows = _staged(conn, rows, want_rows=native)
        staged = True
    except pg_errors.CheckViolation:
        # "no partition of relation readings found for row": a partition this connection
        # created earlier was rolled back with its transaction. Forget, recreate, retry.
        if ranges is None or not retry:
            raise
        st.days.clear()
        _ensure_partitions(conn, st, rows, min(ranges[1]), max(ranges[2]), force=True)
        return _write_readings(conn, batch, retry=False)
    if native:
        rollups.merge(conn, new_rows)
    conflicts.sort(key=lambda c: (c.meter_id, c.ts))
    return WriteResult(inserted, len(rows) - inserted, tuple(conflicts), staged=staged)


_INSERT_TRANSITION = """
INSERT INTO alert_transitions (alert_key, kind, at, enterprise_id, source_kind, source_id, rule,
                               severity, value, threshold, details)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (alert_key, kind, at) DO NOTHING
RETURNING id
"""

_UPSERT_ACTIVE = """
INSERT INTO alerts AS a (alert_key, source_kind, source_id, enterprise_id, rule, severity,
                         started_at, updated_at, value, threshold, details)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (alert_key) WHERE cleared_at IS NULL DO UPDATE SET
  severity = EXCLUDED.severity, updated_at = EXCLUDED.updated_at, value = EXCLUDED.value,
  threshold = EXCLUDED.threshold, details = EXCLUDED.details
WHERE a.updated_at <= EXCLUDED.updated_at
"""


def _write_alert(conn: psycopg.Connection[Any], e: AlertEvent) -> bool:
    details = json.dumps(e.details, ensure_ascii=False, default=str)
    new = conn.execute(_INSERT_TRANSITION, (
        e.alert_key, e.kind, e.at, e.enterprise_id, e.source_kind, e.source_id, e.rule, e.severity,
        e.value, e.threshold, details)).fetchone()
    if new is None:
        return False  # replayed: already applied
    if e.kind in ("opened", "updated"):
        conn.execute(_UPSERT_ACTIVE, (e.alert_key, e.source_kind, e.source_id, e.enterprise_id, e.rule,
                                      e.severity, e.at, e.at, e.value, e.threshold, details))
    elif e.kind == "cleared":
        conn.execute("UPDATE alerts SET cleared_at = %s, updated_at = greatest(updated_at, %s) "
                     "WHERE alert_key = %s AND cleared_at IS NULL AND started_at <= %s",
                     (e.at, e.at, e.alert_key, e.at))
    else:  # acknowledged
        by = e.details.get("by")
        conn.execute("UPDATE alerts SET acked_at = %s, acked_by = %s "
                     "WHERE alert_key = %s AND cleared_at IS NULL AND acked_at IS NULL",
                     (e.at, None if by is None else str(by), e.alert_key))
    return True


def fingerprint(d: DeadLetter) -> bytes:
    """Identity of a dead letter: sha256 over all its fields."""
    h = hashlib.sha256()
    for part in (d.stage, d.reason_code, d.reason, d.received_at.isoformat(), d.source,
                 d.enterprise_id or "", d.gateway_id or ""):
        h.update(part.encode())
        h.update(b"\x00")
    h.update(d.original)
    return h.digest()


def _write_dead_letters(conn: psycopg.Connection[Any], dead: Sequence[DeadLetter]) -> int:
    if not dead:
        return 0
    stored = 0
    with conn.cursor() as cur:
        for d in dead:
            cur.execute(
                "INSERT INTO dead_letters (stage, reason_code, reason, received_at, source, original,"
                " enterprise_id, gateway_id, fingerprint) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (fingerprint) DO NOTHING",
                (d.stage, d.reason_code, d.reason, d.received_at, d.source, d.original,
                 d.enterprise_id, d.gateway_id, fingerprint(d)))
            stored += cur.rowcount
    return stored


def write_batch(
    conn: psycopg.Connection[Any],
    rows: Sequence[Row],
    alerts: Sequence[AlertEvent],
    dead_letters: Sequence[DeadLetter],
) -> WriteResult:
    """Store one poll's readings, alert transitions and dead letters in one transaction.

    Inside the caller's transaction when there is one (``with conn.transaction():``), else in
    a transaction of its own. Connect as ``nxem_ingest``. psycopg errors other than the
    handled unique violation propagate (the caller maps them to ``BackendUnavailable``).
    """
    with conn.transaction():
        result = _write_readings(conn, rows)
        transitions = sum(_write_alert(conn, e) for e in sorted(alerts, key=lambda a: a.at))
        stored_dead = _write_dead_letters(conn, dead_letters)
    return WriteResult(result.inserted, result.duplicates, result.conflicts, transitions, stored_dead,
                       result.staged)
