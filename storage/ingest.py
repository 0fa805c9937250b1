"""Idempotent ingest of one Kafka poll: readings, alert transitions and dead letters in ONE
transaction (the worker commits its Kafka offsets after it).

Readings (shared/notes/stack-facts.md has the measurements behind this):
* **fast path**: the batch is binary-COPYed straight into ``readings`` (the only per-row
  Python work), inside a savepoint; COPY is the cheapest way in (no staging table, no
  ``INSERT … SELECT``: bench.storage_ingest), and a unique index refuses any duplicate;
* on a unique violation (a replay, a redelivery, an overlap) the savepoint is rolled back and
  the batch, with in-batch repeats dropped (the first sent stays), is binary-COPYed into this
  session's staging table (a temporary table ``ON COMMIT DELETE ROWS``) and redone through the
  **staged path**: ``INSERT … SELECT … ON CONFLICT (meter_id, ts) DO NOTHING``. Replaying a
  topic from offset 0 therefore inserts nothing and changes nothing.
* a meter id beyond the ``integer`` column goes the staged path too, where the server refuses
  it (``integer out of range``); the binary int4 COPY would wrap it onto another meter's id.
* **Correction rule**: the first value stored for a (meter, ts) is kept. A later reading with
  the same key and a *different* value is not written; it is counted in
  ``WriteResult.duplicates`` and returned in ``WriteResult.conflicts`` (stored and refused
  value) so the worker can dead-letter it (reason code ``conflicting_duplicate``). The same
  applies to two different values for one key inside a batch. A correction is an operator
  action (delete the row, then replay), never a silent overwrite.
* native path only: the day partitions are created before the insert (storage/partitions.py)
  and inserted rows that fall into an already closed day mark it for recomputation
  (storage/rollups.py; migration 0007). With TimescaleDB, chunks and continuous aggregates do
  both.

Alert transitions go to ``alert_transitions`` (unique on (alert_key, kind, at), so a replay
adds nothing) and, when new, update ``alerts`` (at most one active row per alert_key).
Dead letters are stored once each: their fingerprint (SQL ``nxem_dead_letter_fingerprint``,
migration 0014) covers what they say and where they came from, not when they were received,
so a replayed topic that re-creates a dead letter adds nothing.

What PostgreSQL cannot hold is never sent as is (a refusal would stop the worker on one
record): text loses NUL (and lone surrogates) for U+FFFD -- the bytes as received stay whole
in the ``original`` bytea; JSON details lose non-finite numbers for their names. A meter id
the ``integer`` column cannot hold is refused by the server (the staging column is
``bigint``; psycopg's binary int4 dumper would wrap it silently onto another meter's id).
Records refused anyway go to ``quarantine`` (``write_quarantine``).
"""

from __future__ import annotations

import json
import math
import re
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
# meter_id is staged as int8: an id beyond the readings column's int4 is then refused by the
# server's assignment cast ("integer out of range"), never wrapped by the binary dumper
_TYPES: Final = ["int8", "timestamptz", "float8"]
_DIRECT_TYPES: Final = ["int4", "timestamptz", "float8"]  # the readings columns themselves
_INT4_MIN, _INT4_MAX = -(2**31), 2**31 - 1
_METER, _TS = itemgetter(0), itemgetter(1)
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


def backend(conn: psycopg.Connection[Any]) -> str:
    """"native" or "timescale" for this connection's database (cached per connection)."""
    return _state(conn).backend


def _copy(cur: psycopg.Cursor[Any], table: str, rows: Sequence[Row], types: list[str] = _TYPES) -> None:
    with cur.copy(f"COPY {table} (meter_id, ts, value) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(types)
        for row in rows:
            copy.write_row(row)


def _ensure_partitions(conn: psycopg.Connection[Any], st: _ConnState, rows: Sequence[Row],
                       lo: datetime, hi: datetime, force: bool = False) -> None:
    for first, last in partitions.days_needed(rows, lo, hi):
        span = {date.fromordinal(o) for o in range(first.toordinal(), last.toordinal() + 1)}
        if force or not span <= st.days:
            partitions.ensure_partitions(conn, first, last)
            st.days |= span


def _dedupe(rows: list[Row]) -> tuple[list[Row], list[Row]]:
    """(first row of each key, the later repeats) of a batch sorted by key."""
    out: list[Row] = []
    repeats: list[Row] = []
    for row in rows:
        if out and row[0] == out[-1][0] and row[1] == out[-1][1]:
            repeats.append(row)
        else:
            out.append(row)
    return out, repeats


_CREATE_STAGE: Final = (f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} "
                        "(meter_id bigint, ts timestamptz, value double precision) ON COMMIT DELETE ROWS")

# Staged path, one statement and one snapshot: ``conf`` sees readings as they were before
# ``ins``, i.e. the stored value of every refused key; on the native path the inserted rows
# (and only they) mark the closed days they fall into, in the same statement.
_STAGED_HEAD: Final = f"""
WITH ins AS (
  INSERT INTO readings (meter_id, ts, value)
  SELECT meter_id, ts, value FROM {_STAGE} ORDER BY meter_id, ts
  ON CONFLICT (meter_id, ts) DO NOTHING
  RETURNING meter_id, ts, value
), conf AS (
  SELECT s.meter_id, s.ts, r.value AS stored_value, s.value AS refused_value
  FROM {_STAGE} s JOIN readings r ON r.meter_id = s.meter_id AND r.ts = s.ts
  WHERE r.value IS DISTINCT FROM s.value AND r.ts >= %(lo)s AND r.ts <= %(hi)s
)"""
_STAGED_TAIL: Final = """
SELECT 'c', meter_id, ts, stored_value, refused_value FROM conf
UNION ALL
SELECT 'n', NULL::integer, NULL::timestamptz, count(*)::float8, NULL::float8 FROM ins"""


def _stage(conn: psycopg.Connection[Any], rows: Sequence[Row]) -> None:
    """Binary COPY of the batch into this session's staging table (the staged path's start)."""
    with conn.cursor() as cur:
        cur.execute(_CREATE_STAGE)
        cur.execute(f"TRUNCATE {_STAGE}")  # a second batch in the same transaction
        _copy(cur, _STAGE, rows)


def _staged(conn: psycopg.Connection[Any], rows: Sequence[Row], native: bool) -> tuple[int, list[Conflict]]:
    """(inserted count, conflicts) through ON CONFLICT, after dropping in-batch repeats."""
    unique, repeats = _dedupe(sorted(rows, key=itemgetter(0, 1)))
    _stage(conn, unique)
    merge = f", dirty AS ({rollups.mark_dirty_sql('ins')})" if native else ""
    # The batch's time range bounds the lookup of stored values: without it the planner (no
    # statistics on the staging table) merge-joined the whole history, and a replayed poll
    # slowed from ~49 000 rows/s at 60 days of data to 4 300-6 900 at a year.
    bounds = {"lo": min(r[1] for r in unique), "hi": max(r[1] for r in unique)}
    result = conn.execute(_STAGED_HEAD + merge + _STAGED_TAIL, bounds).fetchall()
    count = 0
    conflicts: list[Conflict] = []
    for tag, m, t, a, b in result:
        if tag == "c":
            conflicts.append(Conflict(m, t, a, b))
        else:
            count = int(a)
    # A repeat inside the batch is judged against the value that is now stored: the earlier
    # value of the database, else the batch's first row of that key.
    kept = {(r[0], r[1]): r[2] for r in unique}
    kept.update({(c.meter_id, c.ts): c.stored_value for c in conflicts})
    conflicts += [Conflict(m, t, kept[(m, t)], v) for m, t, v in repeats if v != kept[(m, t)]]
    return count, conflicts


def _write_readings(conn: psycopg.Connection[Any], rows: Sequence[Row], retry: bool = True) -> WriteResult:
    if not rows:
        return WriteResult(0, 0)
    st = _state(conn)
    native = st.backend == "native"
    if native:  # the time bounds serve the day partitions and the closed days: native only
        times = list(map(_TS, rows))  # C loops: this is per reading
        lo, hi = min(times), max(times)
        _ensure_partitions(conn, st, rows, lo, hi)
    ids = list(map(_METER, rows))
    if not _INT4_MIN <= min(ids) <= max(ids) <= _INT4_MAX:
        inserted, refused = _staged(conn, rows, native)  # the server refuses the id there
        return WriteResult(inserted, len(rows) - inserted, tuple(refused), staged=True)
    conflicts: list[Conflict] = []
    try:
        with conn.transaction():  # savepoint: a failure leaves the poll's transaction usable
            with conn.cursor() as cur:
                _copy(cur, "readings", rows, _DIRECT_TYPES)
            if native:
                rollups.mark_dirty_rows(conn, rows, lo)
        inserted, staged = len(rows), False
    except pg_errors.UniqueViolation:
        inserted, conflicts = _staged(conn, rows, native)
        staged = True
    except pg_errors.CheckViolation:
        # "no partition of relation readings found for row": a partition this connection
        # created earlier was rolled back with its transaction. Forget, recreate, retry.
        if not native or not retry:
            raise
        st.days.clear()
        _ensure_partitions(conn, st, rows, lo, hi, force=True)
        return _write_readings(conn, rows, retry=False)
    conflicts.sort(key=lambda c: (c.meter_id, c.ts))
    return WriteResult(inserted, len(rows) - inserted, tuple(conflicts), staged=staged)


_INSERT_TRANSITION = """
INSERT INTO alert_transitions (alert_key, kind, at, enterprise_id, source_kind, source_id, rule,
                               severity, value, threshold, details, published)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)  -- published: the writer published it first
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


_UNSTORABLE_TEXT: Final = re.compile("[\x00\ud800-\udfff]")


def clean_text(s: str) -> str:
    """``s`` as PostgreSQL text can hold it: NUL (refused by text columns) and lone surrogates
    (not encodable as UTF-8) become U+FFFD. Cheap for the usual ASCII text without NUL."""
    if s.isascii() and "\x00" not in s:
        return s
    return _UNSTORABLE_TEXT.sub("\ufffd", s)


def _opt_text(s: str | None) -> str | None:
    return None if s is None else clean_text(s)


def _json_safe(x: Any) -> Any:
    """A JSON value jsonb accepts: strings (keys too) cleaned as ``clean_text`` (jsonb refuses
    the escape \\u0000 as well), non-finite floats as their names (JSON has no NaN)."""
    if isinstance(x, str):
        return clean_text(x)
    if isinstance(x, float):
        return x if math.isfinite(x) else str(x)
    if isinstance(x, dict):
        return {(clean_text(k) if isinstance(k, str) else k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    return x


def _write_alert(conn: psycopg.Connection[Any], e: AlertEvent, published: bool = True) -> bool:
    details = json.dumps(_json_safe(e.details), ensure_ascii=False, default=str)
    key, ent, rule = clean_text(e.alert_key), clean_text(e.enterprise_id), clean_text(e.rule)
    new = conn.execute(_INSERT_TRANSITION, (
        key, e.kind, e.at, ent, e.source_kind, e.source_id, rule, e.severity,
        e.value, e.threshold, details, published)).fetchone()
    if new is None:
        return False  # replayed: already applied
    if e.kind in ("opened", "updated"):
        conn.execute(_UPSERT_ACTIVE, (key, e.source_kind, e.source_id, ent, rule,
                                      e.severity, e.at, e.at, e.value, e.threshold, details))
    elif e.kind == "cleared":
        conn.execute("UPDATE alerts SET cleared_at = %s, updated_at = greatest(updated_at, %s) "
                     "WHERE alert_key = %s AND cleared_at IS NULL AND started_at <= %s",
                     (e.at, e.at, key, e.at))
    else:  # acknowledged
        by = e.details.get("by")
        conn.execute("UPDATE alerts SET acked_at = %s, acked_by = %s "
                     "WHERE alert_key = %s AND cleared_at IS NULL AND acked_at IS NULL",
                     (e.at, None if by is None else clean_text(str(by)), key))
    return True


# The fingerprint is computed by the server (nxem_dead_letter_fingerprint, migration 0014):
# one definition, shared with the migration that gave existing rows the same identity.
_INSERT_DEAD_LETTER: Final = """
INSERT INTO dead_letters (stage, reason_code, reason, received_at, source, original, enterprise_id, gateway_id,
                          fingerprint)
SELECT v.stage, v.reason_code, v.reason, v.received_at, v.source, v.original, v.enterprise_id, v.gateway_id,
       nxem_dead_letter_fingerprint(v.stage, v.reason_code, v.reason, v.source, v.enterprise_id, v.gateway_id,
                                    v.original)
FROM (VALUES (%s::text, %s::text, %s::text, %s::timestamptz, %s::text, %s::bytea, %s::text, %s::text))
     AS v (stage, reason_code, reason, received_at, source, original, enterprise_id, gateway_id)
ON CONFLICT (fingerprint) DO NOTHING
"""


def _write_dead_letters(conn: psycopg.Connection[Any], dead: Sequence[DeadLetter]) -> int:
    if not dead:
        return 0
    stored = 0
    with conn.cursor() as cur:
        for d in dead:
            cur.execute(_INSERT_DEAD_LETTER, (
                clean_text(d.stage), clean_text(d.reason_code), clean_text(d.reason), d.received_at,
                clean_text(d.source), d.original, _opt_text(d.enterprise_id), _opt_text(d.gateway_id)))
            stored += cur.rowcount
    return stored


@dataclass(frozen=True, slots=True)
class Quarantined:
    """A record the worker could not store, not even as a dead letter, and where it came from.
    ``partition``/``offset`` are None for something the worker computed (an alert transition)."""

    topic: str
    partition: int | None
    offset: int | None
    reason_code: str
    reason: str
    original: bytes


_INSERT_QUARANTINE: Final = """
INSERT INTO quarantine (topic, kafka_partition, kafka_offset, reason_code, reason, original, fingerprint)
SELECT v.topic, v.p, v.o, v.reason_code, v.reason, v.original,
       nxem_quarantine_fingerprint(v.topic, v.p, v.o, v.original)
FROM (VALUES (%s::text, %s::integer, %s::bigint, %s::text, %s::text, %s::bytea))
     AS v (topic, p, o, reason_code, reason, original)
ON CONFLICT (fingerprint) DO NOTHING
"""


def write_quarantine(conn: psycopg.Connection[Any], items: Sequence[Quarantined]) -> int:
    """Store quarantined records once each (a replay that quarantines the same Kafka record
    again adds nothing); returns how many are new. In one transaction."""
    stored = 0
    with conn.transaction(), conn.cursor() as cur:
        for q in items:
            cur.execute(_INSERT_QUARANTINE, (clean_text(q.topic), q.partition, q.offset, clean_text(q.reason_code),
                                             clean_text(q.reason), q.original))
            stored += cur.rowcount
    return stored


def write_batch(
    conn: psycopg.Connection[Any],
    rows: Sequence[Row],
    alerts: Sequence[AlertEvent],
    dead_letters: Sequence[DeadLetter],
    relay: Sequence[AlertEvent] = (),
) -> WriteResult:
    """Store one poll's readings, alert transitions and dead letters in one transaction.

    ``alerts`` were published by the writer before this transaction; ``relay`` were not (they
    are stored unpublished and the outbox relay, ``stream/outbox.py``, publishes them once the
    transaction committed). Inside the caller's transaction when there is one (``with conn.transaction():``), else in
    a transaction of its own. Connect as ``nxem_ingest``. psycopg errors other than the
    handled unique violation propagate (the caller maps them to ``BackendUnavailable``).
    """
    with conn.transaction():
        result = _write_readings(conn, rows)
        ordered = sorted([(a, True) for a in alerts] + [(a, False) for a in relay], key=lambda x: x[0].at)
        transitions = sum(_write_alert(conn, e, published) for e, published in ordered)
        stored_dead = _write_dead_letters(conn, dead_letters)
    return WriteResult(result.inserted, result.duplicates, result.conflicts, transitions, stored_dead,
                       result.staged)
