"""Publishes the alert transitions the workers did not publish themselves (an inspector's
acknowledgement, written by the portal) to the alerts topic: a transactional outbox.

One round: lock a batch of unpublished transitions (``FOR UPDATE SKIP LOCKED``, so several
workers never publish the same rows at once), publish them and wait for Kafka's acks, then
mark them published in the same transaction. A failure anywhere rolls the marks back and the
next round publishes them again: at least once, and a consumer dedupes on
``(alert_key, kind, at)`` as it does for the workers' own replays.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import psycopg

from nxem.contract import AlertEvent
from nxem.errors import BackendUnavailable

log = logging.getLogger(__name__)

Publish = Callable[[list[AlertEvent]], None]  # returns once Kafka acknowledged every event

_PENDING = """
SELECT id, alert_key, kind, at, enterprise_id, source_kind, source_id, rule, severity, value, threshold, details
FROM alert_transitions WHERE NOT published ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED
"""


def relay(conn: psycopg.Connection[Any], publish: Publish, batch: int = 500) -> int:
    """Publish up to ``batch`` unpublished transitions; how many were published."""
    try:
        with conn.transaction():
            rows = conn.execute(_PENDING, (batch,)).fetchall()
            if not rows:
                return 0
            publish([
                AlertEvent(alert_key=k, kind=kind, at=at, enterprise_id=e, source_kind=sk, source_id=int(sid),
                           rule=r, severity=sev, value=v, threshold=th, details=dict(d or {}))
                for _id, k, kind, at, e, sk, sid, r, sev, v, th, d in rows
            ])
            conn.execute("UPDATE alert_transitions SET published = true WHERE id = ANY(%s)",
                         ([row[0] for row in rows],))
    except psycopg.OperationalError as err:
        raise BackendUnavailable(f"PostgreSQL outbox: {err}") from err
    log.info("outbox published transitions=%d", len(rows))
    return len(rows)
