"""Stored alerts: the board's list and filters, one alert with its transitions, the stream's
cursor, an inspector's acknowledgement (the one write here, an ``acknowledged`` transition
beside it), and the active alerts a worker restores its rule state from.

Every function runs in the caller's tenant transaction: row-level security leaves an
enterprise its own alerts; the WHERE clauses filter by what is asked, never by who asks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Final

import psycopg
from psycopg.types.json import Jsonb

from nxem.contract import AlertEvent
from storage.errors import Conflict
from storage.read.rows import fetch_all as _all, fetch_one as _one




@dataclass(frozen=True, slots=True)
class AlertFilter:
    city: str | None = None
    industry: str | None = None
    rule: str | None = None
    severity: str | None = None
    status: str | None = None  # active | cleared | unacknowledged | acknowledged
    enterprise_id: str | None = None
    site_id: int | None = None
    ids: tuple[int, ...] | None = None

    def with_ids(self, ids: Sequence[int]) -> AlertFilter:
        return replace(self, ids=tuple(ids))


_ALERT_SQL = """
SELECT a.id, a.alert_key, a.source_kind, a.source_id, a.enterprise_id, e.name AS enterprise_name,
       st.id AS site_id, st.name AS site_name, e.city, e.industry, a.rule, a.severity, a.started_at,
       a.updated_at, a.acked_at IS NOT NULL AS acknowledged, a.acked_at AS acknowledged_at, a.acked_by,
       a.cleared_at IS NOT NULL AS cleared, a.cleared_at, a.value, a.threshold, a.details
FROM alerts a
JOIN enterprises e ON e.id = a.enterprise_id
LEFT JOIN meters mt ON a.source_kind = 'meter' AND mt.id = a.source_id
LEFT JOIN sites st ON st.id = CASE a.source_kind WHEN 'site' THEN a.source_id WHEN 'meter' THEN mt.site_id END
"""

_STATUS_SQL: Final = {"active": "a.cleared_at IS NULL", "cleared": "a.cleared_at IS NOT NULL",
                      "unacknowledged": "a.acked_at IS NULL", "acknowledged": "a.acked_at IS NOT NULL"}


def list_alerts(conn: psycopg.Connection[Any], f: AlertFilter, limit: int) -> list[dict[str, Any]]:
    """Alerts the session sees matching ``f``: active first, then by last update, newest first."""
    where = ["(%(city)s::text IS NULL OR e.city = %(city)s)",
             "(%(industry)s::text IS NULL OR e.industry = %(industry)s)",
             "(%(rule)s::text IS NULL OR a.rule = %(rule)s)",
             "(%(severity)s::text IS NULL OR a.severity = %(severity)s)",
             "(%(ent)s::text IS NULL OR a.enterprise_id = %(ent)s)",
             "(%(site)s::int IS NULL OR st.id = %(site)s)"]
    if f.status:
        where.append(_STATUS_SQL.get(f.status, "false"))
    if f.ids is not None:
        where.append("a.id = ANY(%(ids)s)")
    return _all(conn, _ALERT_SQL + " WHERE " + " AND ".join(where) +
                " ORDER BY a.cleared_at IS NOT NULL, a.updated_at DESC, a.id DESC LIMIT %(limit)s",
                {"city": f.city, "industry": f.industry, "rule": f.rule, "severity": f.severity,
                 "ent": f.enterprise_id, "site": f.site_id, "ids": list(f.ids or ()), "limit": limit})


def get_alert(conn: psycopg.Connection[Any], alert_id: int) -> dict[str, Any] | None:
    return _one(conn, _ALERT_SQL + " WHERE a.id = %s", (alert_id,))


def alert_filter_choices(conn: psycopg.Connection[Any]) -> dict[str, list[str]]:
    row = _one(conn, "SELECT array(SELECT DISTINCT city FROM enterprises ORDER BY 1) AS cities,"
                     " array(SELECT DISTINCT industry FROM enterprises ORDER BY 1) AS industries,"
                     " array(SELECT DISTINCT rule FROM alerts ORDER BY 1) AS rules")
    return {k: list(v) for k, v in row.items()} if row else {"cities": [], "industries": [], "rules": []}


# Transitions belong to the alert instance of their key that was open at their time; an
# acknowledgement names its alert id (``details.alert_id``), as it may follow the clear.
_OWNER_SQL = """
coalesce((t.details->>'alert_id')::bigint,
         (SELECT a.id FROM alerts a WHERE a.alert_key = t.alert_key AND a.started_at <= t.at
          ORDER BY a.started_at DESC LIMIT 1))
"""


def alert_transitions(conn: psycopg.Connection[Any], alert_id: int) -> list[dict[str, Any]]:
    rows = _all(conn, f"SELECT t.id, {_OWNER_SQL} AS alert_id, t.kind, t.at, t.severity, t.value, t.threshold,"
                " t.details->>'note' AS note, t.details->>'acknowledged_by' AS actor"
                " FROM alert_transitions t JOIN alerts x ON x.alert_key = t.alert_key AND x.id = %s"
                " ORDER BY t.at, t.id", (alert_id,))
    return [r for r in rows if r["alert_id"] == alert_id]


def max_transition_id(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT coalesce(max(id), 0) FROM alert_transitions").fetchone()
    return int(row[0]) if row else 0


def transitions_after(conn: psycopg.Connection[Any], after_id: int, limit: int,
                      lookback_s: float = 30.0) -> list[tuple[int, int]]:
    """[(transition id, alert id)] with id > ``after_id``, plus those recorded in the last
    ``lookback_s`` seconds: ids come from a sequence at insert time, so a transaction that
    commits after a later one can land *below* a cursor; the caller dedupes by id."""
    rows = conn.execute(f"SELECT t.id, {_OWNER_SQL} FROM alert_transitions t"
                        " WHERE t.id > %s OR t.recorded_at > now() - %s ORDER BY t.id LIMIT %s",
                        (after_id, timedelta(seconds=lookback_s), limit)).fetchall()
    return [(int(r[0]), int(r[1])) for r in rows if r[1] is not None]


def acknowledge(conn: psycopg.Connection[Any], alert: dict[str, Any], username: str, note: str,
                at: datetime | None = None) -> dict[str, Any]:
    """Mark the alert acknowledged and record an ``acknowledged`` transition (AlertEvent-shaped:
    its details are the alert's, plus who, the note and the alert id). RLS applies to both.
    ``Conflict`` when it is already acknowledged (or invisible to the session)."""
    at = at or datetime.now(timezone.utc)
    cur = conn.execute("UPDATE alerts SET acked_at = %s, acked_by = %s WHERE id = %s AND acked_at IS NULL",
                       (at, username, alert["id"]))
    if cur.rowcount != 1:
        raise Conflict(f"alert {alert['id']} is already acknowledged")
    # "acknowledged_by" as alerts.lifecycle writes it, "by" as storage.ingest reads it
    details = {**alert["details"], "acknowledged_by": username, "by": username, "note": note,
               "alert_id": alert["id"]}
    row = _one(conn, "INSERT INTO alert_transitions (alert_key, kind, at, enterprise_id, source_kind, source_id,"
                     " rule, severity, value, threshold, details) VALUES (%s, 'acknowledged', %s, %s, %s, %s, %s,"
                     " %s, %s, %s, %s) RETURNING id, kind, at, severity, value, threshold",
               (alert["alert_key"], at, alert["enterprise_id"], alert["source_kind"], alert["source_id"],
                alert["rule"], alert["severity"], alert["value"], alert["threshold"], Jsonb(details)))
    if row is None:  # RETURNING of an INSERT always gives its row
        raise Conflict(f"alert {alert['id']}: the acknowledgement was not recorded")
    return {**row, "alert_id": alert["id"], "note": note, "actor": username}


def active_alert_events(conn: psycopg.Connection[Any], site_id: int) -> list[AlertEvent]:
    """The active (not cleared) alerts of a site and of its meters, as the ``opened`` event
    that started each (``at`` = started_at), carrying the latest severity, value, threshold
    and details. A worker restores its rule state from these after a restart."""
    rows = conn.execute(
        "SELECT a.alert_key, a.source_kind, a.source_id, a.enterprise_id, a.rule, a.severity, a.started_at,"
        " a.value, a.threshold, a.details"
        " FROM alerts a WHERE a.cleared_at IS NULL AND ("
        "  (a.source_kind = 'site' AND a.source_id = %s)"
        "  OR (a.source_kind = 'meter' AND a.source_id IN (SELECT id FROM meters WHERE site_id = %s)))"
        " ORDER BY a.started_at, a.alert_key",
        (site_id, site_id)).fetchall()
    return [
        AlertEvent(alert_key=k, source_kind=sk, source_id=int(sid), enterprise_id=e, rule=r, kind="opened",
                   severity=sev, at=at, value=v, threshold=th, details=dict(d or {}))
        for k, sk, sid, e, r, sev, at, v, th, d in rows
    ]
