"""Read queries: one API over the native and the TimescaleDB path.

Everything reads the tenant views (``v_readings``, ``v_rollup_15m``, ``v_rollup_1d``) or
tables with row-level security, so the same call is safe for the worker (``nxem_ingest``),
an enterprise session and an inspector session (``storage.rls.tenant_transaction``).

Energy rules (units: the meter's unit × multiplier; tce = kgce / 1000):
* interval meter: energy in a bucket = sum of its values × multiplier;
* register meter: energy in a bucket = (last value − last value of the previous bucket with
  data) × multiplier; a negative step adds ``rollover`` when the meter has one, otherwise it
  is a meter reset and counts 0; the meter's first bucket counts last − first.
* site comprehensive energy (综合能耗) = Σ consumed + Σ total_facility − Σ exported, each
  × its GB/T 2589 coefficient (kgce per unit); it_load and product_output are not energy
  inputs (it_load is part of total_facility). Meters without a coefficient are left out.
* days, months and years are Asia/Shanghai calendar periods.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from nxem.contract import AlertEvent


def readings_since(conn: psycopg.Connection[Any], meter_ids: list[int], since: datetime) -> list[tuple[int, datetime, float]]:
    """Raw readings of ``meter_ids`` at or after ``since``, ordered by (ts, meter_id)
    (the worker rebuilds a site's rule state from these)."""
    rows = conn.execute(
        "SELECT meter_id, ts, value FROM v_readings WHERE meter_id = ANY(%s) AND ts >= %s ORDER BY ts, meter_id",
        (meter_ids, since)).fetchall()
    return [(int(m), t, float(v)) for m, t, v in rows]


def active_alert_events(conn: psycopg.Connection[Any], site_id: int) -> list[AlertEvent]:
    """The active (not cleared) alerts of a site and of its meters, as the ``opened`` event
    that started each (``at`` = started_at), carrying the latest severity, value, threshold
    and details. Used to restore rule state after a restart."""
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
