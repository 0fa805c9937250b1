"""Daily range partitions of ``readings`` on the native PostgreSQL path.

Choice for late and backfilled data: **create before COPY**. ``write_batch`` works out the
UTC days its rows cover and calls ``ensure_partitions`` (a SECURITY DEFINER function, see
migration 0003, serialised by an advisory lock) for any day this connection has not seen yet,
so an insert never meets a missing partition. No DEFAULT partition: a row parked there would
block creating its day's partition until moved. Partitions 7 days back and ahead are made by
the migration; ``maintain`` keeps creating them ahead and drops expired ones.

Creating a partition takes a short exclusive lock on ``readings``; it happens once per day
ahead of time and, for backfills, once per missing day.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

import psycopg
from psycopg import sql

#: A batch spanning more days than this is checked day by day instead of as one range.
MAX_RANGE_DAYS: Final = 31
_NAME_RE: Final = re.compile(r"^readings_(\d{8})$")


def utc_day(ts: datetime) -> date:
    return ts.astimezone(UTC).date()


def ensure_partitions(conn: psycopg.Connection[Any], start: date, end: date) -> int:
    """Create the missing daily partitions for UTC days ``start`` .. ``end`` (inclusive)."""
    row = conn.execute("SELECT nxem_ensure_reading_partitions(%s, %s)", (start, end)).fetchone()
    return int(row[0]) if row else 0


def days_needed(rows: Sequence[tuple[Any, datetime, Any]], lo: datetime, hi: datetime) -> list[tuple[date, date]]:
    """Ranges of UTC days to ensure for rows whose timestamps lie in [lo, hi]: one range when
    it is short, else the distinct days only (a year-old reading next to today's must not
    create a year of partitions)."""
    first, last = utc_day(lo), utc_day(hi)
    if (last - first).days <= MAX_RANGE_DAYS:
        return [(first, last)]
    return [(d, d) for d in sorted({utc_day(r[1]) for r in rows})]


def existing_days(conn: psycopg.Connection[Any]) -> list[date]:
    """UTC days that have a partition, in order."""
    rows = conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'public.readings'::regclass").fetchall()
    out = []
    for (name,) in rows:
        m = _NAME_RE.match(name)
        if m:
            out.append(datetime.strptime(m.group(1), "%Y%m%d").date())
    return sorted(out)


def maintain(conn: psycopg.Connection[Any], today: date, ahead_days: int = 7,
             retain_days: int | None = None) -> tuple[int, int]:
    """Create partitions up to ``today + ahead_days``; drop whole days older than
    ``today - retain_days`` (None keeps everything). Runs as the owner or a superuser
    (``nxem db maintain``). Returns (created, dropped). Rollup rows are kept: they are the
    record once the raw readings are gone."""
    created = ensure_partitions(conn, today, today + timedelta(days=ahead_days))
    dropped = 0
    if retain_days is not None:
        cutoff = today - timedelta(days=retain_days)
        for day in existing_days(conn):
            if day < cutoff:
                conn.execute(sql.SQL("DROP TABLE {}").format(
                    sql.Identifier("public", f"readings_{day:%Y%m%d}")))
                dropped += 1
    return created, dropped
