"""HTML pages: login/logout, the inspectors' alert board, an alert's evidence page with the
acknowledge form, the region overview, the site pages with charts, and the API description.

Pages call the same functions as the JSON API (``portal.api``), so they share its
authorisation (``portal.roles``) and the tenant-bound reads, and take the same validated
parameter types (``portal.schemas``). Every form that changes something carries a CSRF token
-- the sign-in form too (an HMAC of a nonce in a cookie of its own) -- and is refused without
it; a post from another origin is refused before it reaches a page (``portal.hardening``).
No page has inline script or style (the Content-Security-Policy forbids both).
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from portal import api, auth, figures, roles, security, views
from portal.auth import BadCredentials, Principal, RateLimited
from portal.db import Database
from portal.hardening import SWAGGER_CDN
from portal.schemas import (
    NO_NUL, AlertId, City, End, Industry, MeterFilter, Period, Rule, SeverityFilter, SiteId, Start, StatusFilter,
)
from storage.read import alerts as read_alerts
from storage.read import energy as read_energy
from storage.read import readings as read_readings
from storage.read import registry as read_registry

router = APIRouter(include_in_schema=False)

ALLOWED = auth.PAGE_ACCESS

#: The energy table's period selector (``portal.schemas.Period``), in display order.
PERIOD_LABELS: dict[str, str] = {"15min": "quarter-hour", "hour": "hour", "day": "local day",
                                 "month": "local month", "year": "calendar year",
                                 "rolling12": "rolling 12 months (365 local days ending that day)"}

#: Swagger UI from the CDN FastAPI's own docs page uses (pinned major version).
SWAGGER_UI = f"{SWAGGER_CDN}/npm/swagger-ui-dist@5"


def _render(request: Request, name: str, p: Principal | None, status: int = 200, **ctx: Any) -> HTMLResponse:
    csrf = ctx.pop("csrf", None)
    if csrf is None:
        csrf = security.csrf_token(request.app.state.secret, p.token) if p is not None and p.via == "cookie" else ""
    role = p.user.role if p is not None else ""
    resp: HTMLResponse = request.app.state.templates.TemplateResponse(
        request, name, {"user": p.user if p else None, "csrf": csrf, "region": roles.has(role, "region"), **ctx},
        status_code=status)
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _check_form(request: Request, p: Principal, csrf: str) -> None:
    """A form post of a signed-in user: its session is a cookie and the form carries its token
    (the Origin was checked by ``portal.hardening.SameOrigin``)."""
    if p.via != "cookie" or not security.csrf_ok(request.app.state.secret, p.token, csrf):
        raise HTTPException(403, "the form has expired; reload the page and try again")


def _safe_next(target: str | None, role: str) -> str:
    """A local path to go to after signing in, never another site (``//host``, ``/\\host``)."""
    if (target and target.startswith("/") and not target.startswith("//") and "\\" not in target
            and target.isprintable() and not target.startswith("/login")):
        return target
    return "/board" if roles.has(role, "region") else "/sites"


Next = Annotated[str, Form(max_length=512, pattern=NO_NUL)]


@router.get("/login")
def login_page(request: Request, next: Annotated[str, Query(max_length=512, pattern=NO_NUL)] = "",
               p: Principal | None = Depends(auth.optional_principal)) -> Response:
    if p is not None:
        return RedirectResponse(_safe_next(next, p.user.role), status_code=303)
    return _login_form(request, next)


def _login_form(request: Request, next: str, status: int = 200, **ctx: Any) -> HTMLResponse:
    """The sign-in page with a CSRF field bound to the browser's login nonce (set here if new)."""
    nonce = request.cookies.get(auth.LOGIN_COOKIE_NAME)
    fresh = nonce is None or len(nonce) != 43 or not nonce.replace("-", "").replace("_", "").isalnum()
    if fresh:
        nonce = secrets.token_urlsafe(32)
    assert nonce is not None
    resp = _render(request, "login.html", None, status, next=next,
                   csrf=security.login_csrf_token(request.app.state.secret, nonce), **ctx)
    if fresh:
        resp.set_cookie(auth.LOGIN_COOKIE_NAME, nonce, max_age=24 * 3600, httponly=True, samesite="strict",
                        secure=request.app.state.settings.portal_cookie_secure, path="/login")
    return resp


@router.post("/login")
def login_form(request: Request, username: Annotated[str, Form(max_length=63, pattern=NO_NUL)],
               password: Annotated[str, Form(max_length=1024, pattern=NO_NUL)], next: Next = "",
               csrf: Annotated[str, Form(max_length=128)] = "", db: Database = Depends(auth.get_db)) -> Response:
    if not security.login_csrf_ok(request.app.state.secret, request.cookies.get(auth.LOGIN_COOKIE_NAME), csrf):
        return _login_form(request, next, 403, username=username,
                           error="The sign-in form had expired; please sign in again.")
    try:
        p = auth.login(db, username, password, auth.client_ip(request), "cookie", request.app.state.policy)
    except BadCredentials:
        return _login_form(request, next, 401, username=username, error="Unknown user or wrong password.")
    except RateLimited as err:
        resp = _login_form(request, next, 429, username=username,
                           error=f"Too many failed sign-ins. Try again in {err.retry_after_s} s.")
        resp.headers["Retry-After"] = str(err.retry_after_s)
        return resp
    redirect = RedirectResponse(_safe_next(next, p.user.role), status_code=303)
    settings = request.app.state.settings
    redirect.set_cookie(auth.COOKIE_NAME, p.token, max_age=settings.portal_session_ttl_s, httponly=True,
                        samesite="lax", secure=settings.portal_cookie_secure, path="/")
    return redirect


@router.post("/logout")
def logout_form(request: Request, csrf: Annotated[str, Form(max_length=128)] = "",
                db: Database = Depends(auth.get_db), p: Principal = ALLOWED) -> Response:
    _check_form(request, p, csrf)
    auth.logout(db, p.token)
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(auth.COOKIE_NAME, path="/")
    return resp


@router.get("/docs")
def docs(request: Request) -> HTMLResponse:
    """Swagger UI of ``/api/v1/openapi.json``: its script and styles from the CDN, started by
    ``/static/docs.js`` (no inline script: the page's CSP names the CDN and nothing inline)."""
    return _render(request, "docs.html", None, swagger=SWAGGER_UI)


@router.get("/")
def home(p: Principal = ALLOWED) -> Response:
    return RedirectResponse(_safe_next(None, p.user.role), status_code=303)


def _board(request: Request, db: Database, p: Principal, action: str, city: str | None, industry: str | None,
           rule: str | None, severity: str | None, status: str | None) -> HTMLResponse:
    f = api.alert_filter(p, city, industry, rule, severity, status)
    with db.tenant(p.user) as conn:
        rows = read_alerts.list_alerts(conn, f, 500)
        choices = read_alerts.alert_filter_choices(conn)
    chosen = {k: v for k, v in (("city", city), ("industry", industry), ("rule", rule), ("severity", severity),
                                ("status", status)) if v}
    query = ("?" + urlencode(chosen)) if chosen else ""
    filter_choices = [("city", "City", choices["cities"]), ("industry", "Industry", choices["industries"]),
                      ("rule", "Rule", choices["rules"]), ("severity", "Severity", ["critical", "major", "minor", "warning"]),
                      ("status", "Status", ["active", "cleared", "unacknowledged", "acknowledged"])]
    return _render(request, "board.html", p, alerts=rows, filters={k: chosen.get(k, "") for k, *_ in filter_choices},
                   filter_choices=filter_choices, action=action, stream_url="/api/v1/alerts/stream" + query,
                   export_query=query, can_ack=roles.has(p.user.role, "acknowledge"))


@router.get("/board")
def board(request: Request, db: Database = Depends(auth.get_db), p: Principal = ALLOWED, city: City = None,
          industry: Industry = None, rule: Rule = None, severity: SeverityFilter = None,
          status: StatusFilter = None) -> HTMLResponse:
    return _board(request, db, p, "/board", city, industry, rule, severity, status)


@router.get("/alerts")
def my_alerts(request: Request, db: Database = Depends(auth.get_db), p: Principal = ALLOWED, city: City = None,
              industry: Industry = None, rule: Rule = None, severity: SeverityFilter = None,
              status: StatusFilter = None) -> HTMLResponse:
    return _board(request, db, p, "/alerts", city, industry, rule, severity, status)


@router.get("/alerts/{alert_id}")
def alert_page(alert_id: AlertId, request: Request, db: Database = Depends(auth.get_db),
               p: Principal = ALLOWED) -> HTMLResponse:
    with db.tenant(p.user) as conn:
        a = read_alerts.get_alert(conn, alert_id)
        if a is None:
            raise HTTPException(404, f"no alert {alert_id}")
        transitions = read_alerts.alert_transitions(conn, alert_id)
        label, points = figures.alert_series(conn, a, electricity=api.electricity(request))
    chart = views.alert_chart(a, points, label)
    return _render(request, "alert.html", p, a=a, transitions=transitions, chart=chart,
                   evidence_keys=views.EVIDENCE_KEYS, can_ack=roles.has(p.user.role, "acknowledge"))


@router.post("/alerts/{alert_id}/acknowledge")
def acknowledge_form(alert_id: AlertId, request: Request,
                     note: Annotated[str, Form(max_length=2000, pattern=NO_NUL)] = "",
                     csrf: Annotated[str, Form(max_length=128)] = "", db: Database = Depends(auth.get_db),
                     p: Principal = ALLOWED) -> Response:
    _check_form(request, p, csrf)
    if not note.strip():
        raise HTTPException(422, "an acknowledgement needs a note")
    api.do_acknowledge(db, p, alert_id, note)
    return RedirectResponse(f"/alerts/{alert_id}", status_code=303)


@router.get("/overview")
def overview_page(request: Request, db: Database = Depends(auth.get_db), p: Principal = ALLOWED) -> HTMLResponse:
    with db.tenant(p.user) as conn:
        o = figures.overview(conn, views.today_local().year, electricity=api.electricity(request))
    return _render(request, "overview.html", p, o=o)


@router.get("/sites")
def sites_page(request: Request, db: Database = Depends(auth.get_db), p: Principal = ALLOWED) -> HTMLResponse:
    with db.tenant(p.user) as conn:
        rows = read_registry.list_sites(conn, api.own_enterprise(p, None), None, None)
    return _render(request, "sites.html", p, sites=rows)


@router.get("/sites/{site_id}")
def site_page(site_id: SiteId, request: Request, db: Database = Depends(auth.get_db), p: Principal = ALLOWED,
              start: Start = None, end: End = None, meter_id: MeterFilter = None,
              period: Period = "day") -> HTMLResponse:
    d0, d1 = views.date_range(start, end)
    t0, t1 = views.utc_bounds(d0, d1)
    with db.tenant(p.user) as conn:
        site = read_registry.get_site(conn, site_id)
        if site is None:
            raise HTTPException(404, f"no site {site_id}")
        meters = read_registry.list_meters(conn, site_id)
        meter = next((m for m in meters if m["id"] == meter_id), meters[0] if meters else None)
        if meter_id is not None and meter is not None and meter["id"] != meter_id:
            raise HTTPException(404, f"no meter {meter_id} at this site")
        bucket_s, points = read_readings.readings(conn, meter["id"], t0, t1, 400) if meter else (900, [])
        factors = request.app.state.emission_factors
        value = api.electricity(request)
        energy = api.energy_data(conn, factors, site_id, "day", d0, d1, value)
        table, table_error = energy, None
        if period != "day":
            try:
                table = api.energy_data(conn, factors, site_id, period, d0, d1, value)
            except HTTPException as err:  # a range too long for the period: say so, keep the page
                table, table_error = {**energy, "points": []}, str(err.detail)
        pue_rows = read_energy.pue(conn, site_id, d0, d1) if site["kind"] == "data_centre" else None
        products = read_registry.site_products(conn, site_id)
        unit_rows = [ind for prod in products for ind in figures.unit_product(conn, site_id, prod, d0, d1,
                                                                               electricity=value)]
        site_alerts = read_alerts.list_alerts(conn, api.alert_filter(p, site_id=site_id), 50)
    charts = {
        "readings": views.readings_chart(meter, points, bucket_s),
        "energy": views.energy_chart(energy["points"]),
        "pue": views.pue_chart(pue_rows, site.get("pue_limit")) if pue_rows is not None else None,
        "unit_product": [views.unit_product_chart(ind) for ind in unit_rows],
    }
    return _render(request, "site.html", p, site=site, meters=meters, meter_id=meter["id"] if meter else None,
                   charts=charts, alerts=site_alerts, start=d0.isoformat(), end=d1.isoformat(), products=products,
                   energy=table, period=period, periods=PERIOD_LABELS, energy_error=table_error,
                   electricity=value.label, unit_product=unit_rows)
