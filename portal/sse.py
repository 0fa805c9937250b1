"""Server-sent events of alert transitions for the live board (``/api/v1/alerts/stream``).

Fed by polling ``alert_transitions`` by id rather than by a Kafka consumer of
``nxem.alerts.v1``: the table is what the worker commits (the transitions exist there once
the database has them, the same moment the board's page query can see them); each poll
runs in a transaction bound to the subscriber's tenant, so row-level security filters the
stream exactly as it filters the page; the transition id is a natural SSE event id, so a
reconnecting ``EventSource`` resumes with ``Last-Event-ID`` and misses nothing; and no
consumer group per browser tab is needed. The cost is one indexed query per subscriber per
``portal_sse_poll_s``. The stream ends after ``timeout_s`` (the browser reconnects and the
session is checked again) or at once when the session is revoked.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from portal import auth, roles
from portal.api import ERRORS, alert_filter
from portal.auth import Principal
from portal.db import Database
from portal.schemas import INT8_MAX, City, EnterpriseFilter, Industry, Rule, SeverityFilter, SiteFilter, StatusFilter
from storage.read import alerts as read_alerts
from storage.read.alerts import AlertFilter

router = APIRouter()

HEARTBEAT_S = 15.0
RECHECK_S = 30.0
SEEN_S = 120.0  # remember sent transition ids longer than the lookback of transitions_after


def render_row(request: Request, p: Principal, alert: dict[str, Any]) -> str:
    tpl = request.app.state.templates.get_template("_alert_row.html")
    html: str = tpl.render(a=alert, can_ack=roles.has(p.user.role, "acknowledge"))
    return html


def _poll(db: Database, p: Principal, cursor: int, seen: dict[int, float],
          f: AlertFilter) -> tuple[int, list[dict[str, Any]], set[int]]:
    """(new cursor, changed alerts that match the filter, changed alert ids that no longer do)."""
    with db.tenant(p.user) as conn:
        fresh = [(t, a) for t, a in read_alerts.transitions_after(conn, cursor, 500) if t not in seen]
        if not fresh:
            return cursor, [], set()
        changed = sorted({a for _, a in fresh})
        shown = read_alerts.list_alerts(conn, f.with_ids(changed), len(changed))
    now = time.monotonic()
    for t, _ in fresh:
        seen[t] = now
    for t in [t for t, at in seen.items() if now - at > SEEN_S]:
        del seen[t]
    return max(cursor, max(t for t, _ in fresh)), shown, set(changed) - {a["id"] for a in shown}


def _start(db: Database, p: Principal, after: int | None) -> tuple[int, dict[int, float]]:
    """The cursor to start from and the recent transitions the page already shows."""
    with db.tenant(p.user) as conn:
        cursor = read_alerts.max_transition_id(conn) if after is None else after
        recent = read_alerts.transitions_after(conn, cursor, 500)
    now = time.monotonic()
    return cursor, {t: now for t, _ in recent if t <= cursor}


def _event(event_id: int, data: dict[str, Any]) -> str:
    return f"id: {event_id}\nevent: alert\ndata: {json.dumps(data, ensure_ascii=False, default=str)}\n\n"


@router.get("/api/v1/alerts/stream", tags=["alerts"], response_class=StreamingResponse,
            responses={**ERRORS, 200: {"content": {"text/event-stream": {}},
                                       "description": "`alert` events: {id, alert, html} or {id, removed: true}"}})
async def stream(request: Request, p: Principal = auth.API_ACCESS,
                 db: Database = Depends(auth.get_db),
                 city: City = None, industry: Industry = None, rule: Rule = None,
                 severity: SeverityFilter = None, status: StatusFilter = None, enterprise_id: EnterpriseFilter = None,
                 site_id: SiteFilter = None,
                 after: Annotated[int | None, Query(ge=0, le=INT8_MAX,
                                                    description="resume after this transition id")] = None,
                 timeout_s: Annotated[float, Query(gt=0, le=3600)] = 300.0,
                 last_event_id: Annotated[str | None, Header()] = None) -> StreamingResponse:
    """Live alert changes matching the filters (an alert that stops matching is sent as removed)."""
    f = alert_filter(p, city, industry, rule, severity, status, enterprise_id, site_id)
    poll_s: float = request.app.state.settings.portal_sse_poll_s
    if last_event_id and last_event_id.isascii() and last_event_id.isdigit() and int(last_event_id) <= INT8_MAX:
        after = int(last_event_id)
    start_cursor, start_seen = await run_in_threadpool(_start, db, p, after)

    async def events() -> AsyncIterator[str]:
        cursor, seen = start_cursor, start_seen
        deadline = time.monotonic() + timeout_s
        last_beat = last_check = time.monotonic()
        yield f"retry: 2000\nid: {cursor}\n\n"
        while time.monotonic() < deadline and not await request.is_disconnected():
            now = time.monotonic()
            if now - last_check >= RECHECK_S:
                last_check = now
                if await run_in_threadpool(auth.lookup, db, p.token, p.via) is None:
                    yield "event: end\ndata: {\"reason\": \"session ended\"}\n\n"
                    return
            cursor_new, shown, removed = await run_in_threadpool(_poll, db, p, cursor, seen, f)
            for a in shown:
                yield _event(cursor_new, {"id": a["id"], "alert": a, "html": render_row(request, p, a)})
            for alert_id in sorted(removed):
                yield _event(cursor_new, {"id": alert_id, "removed": True})
            if shown or removed:
                cursor = cursor_new
                last_beat = now
            elif now - last_beat >= HEARTBEAT_S:
                last_beat = now
                yield ": keep-alive\n\n"
            await asyncio.sleep(poll_s)

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
