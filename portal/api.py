"""The JSON API (``/api/v1``): same queries and the same authorisation as the pages.

Authorisation is layered: (1) the role checks here (who may call what), (2) an enterprise
user naming another enterprise in a parameter gets 403 at once, and (3) every read runs in a
transaction bound to the principal's tenant, so row-level security in PostgreSQL hides other
enterprises' rows -- an id that belongs to someone else is simply 404.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import PlainTextResponse

from portal import auth, emissions, queries, security, views
from portal.auth import Principal
from portal.db import Database
from portal.emissions import EmissionFactors
from portal.queries import AlertFilter
from portal.schemas import (
    AckRequest, AlertDetailOut, AlertOut, EnergyOut, EnterpriseOut, ErrorOut, MeOut, MeterOut, OverviewOut,
    Period, PueOut, ReadingsOut, SiteOut, TokenOut, TokenRequest, TransitionOut, UnitProductOut, UserCreate,
    UserOut,
)
from portal.users import UserError, create_user, list_users

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut}, 401: {"model": ErrorOut}, 403: {"model": ErrorOut},
    404: {"model": ErrorOut}, 422: {"model": ErrorOut}}
router = APIRouter(prefix="/api/v1", responses=_ERRORS)

ANY_ROLE = auth.require("inspector", "operator", "enterprise")
REGION = auth.require("inspector", "operator")
INSPECTOR = auth.require("inspector")
OPERATOR = auth.require("operator")

Db = Annotated[Database, Depends(auth.get_db)]
Start = Annotated[date | None, Query(description="first local (Asia/Shanghai) day, default: a week ago")]
End = Annotated[date | None, Query(description="last local day, inclusive; default: today")]


def own_enterprise(p: Principal, enterprise_id: str | None) -> str | None:
    """An enterprise user may name only its own enterprise (RLS would return nothing anyway;
    this makes the refusal explicit). Returns the enterprise to filter by."""
    if p.user.role == "enterprise":
        if enterprise_id is not None and enterprise_id != p.user.enterprise_id:
            raise HTTPException(403, "an enterprise user can only see its own enterprise")
        return p.user.enterprise_id
    return enterprise_id


def alert_filter(p: Principal, city: str | None = None, industry: str | None = None, rule: str | None = None,
                 severity: str | None = None, status: str | None = None, enterprise_id: str | None = None,
                 site_id: int | None = None) -> AlertFilter:
    return AlertFilter(city=city or None, industry=industry or None, rule=rule or None, severity=severity or None,
                       status=status or None, enterprise_id=own_enterprise(p, enterprise_id or None),
                       site_id=site_id)


# ----------------------------------------------------------------- auth

@router.post("/auth/token", response_model=TokenOut, tags=["auth"],
             responses={429: {"model": ErrorOut, "description": "too many failed logins"}})
def token(body: TokenRequest, request: Request, db: Db) -> TokenOut:
    """Exchange username and password for a bearer token (rate limited per user and IP)."""
    p = auth.login(db, body.username, body.password, auth.client_ip(request), "bearer", request.app.state.policy)
    return TokenOut(access_token=p.token, expires_at=p.expires_at, role=p.user.role,
                    enterprise_id=p.user.enterprise_id)


@router.post("/auth/logout", status_code=204, tags=["auth"])
def api_logout(db: Db, p: Principal = ANY_ROLE) -> Response:
    """End this session or token."""
    auth.logout(db, p.token)
    return Response(status_code=204)


@router.get("/me", response_model=MeOut, tags=["auth"])
def me(request: Request, p: Principal = ANY_ROLE) -> MeOut:
    csrf = security.csrf_token(request.app.state.secret, p.token) if p.via == "cookie" else None
    return MeOut(username=p.user.username, role=p.user.role, enterprise_id=p.user.enterprise_id, csrf_token=csrf)


# ----------------------------------------------------------------- registry

@router.get("/enterprises", response_model=list[EnterpriseOut], tags=["registry"])
def enterprises(db: Db, p: Principal = ANY_ROLE) -> list[dict[str, Any]]:
    with db.tenant(p.user) as conn:
        return queries.list_enterprises(conn)


@router.get("/sites", response_model=list[SiteOut], tags=["registry"])
def sites(db: Db, p: Principal = ANY_ROLE, enterprise_id: str | None = None, city: str | None = None,
          industry: str | None = None) -> list[dict[str, Any]]:
    with db.tenant(p.user) as conn:
        return queries.list_sites(conn, own_enterprise(p, enterprise_id), city, industry)


def _site(conn: Any, site_id: int) -> dict[str, Any]:
    site = queries.get_site(conn, site_id)
    if site is None:
        raise HTTPException(404, f"no site {site_id}")
    return site


@router.get("/sites/{site_id}", response_model=SiteOut, tags=["registry"])
def site(site_id: int, db: Db, p: Principal = ANY_ROLE) -> dict[str, Any]:
    with db.tenant(p.user) as conn:
        return _site(conn, site_id)


@router.get("/meters", response_model=list[MeterOut], tags=["registry"])
def meters(db: Db, p: Principal = ANY_ROLE, site_id: int | None = None) -> list[dict[str, Any]]:
    with db.tenant(p.user) as conn:
        if site_id is not None:
            _site(conn, site_id)
        return queries.list_meters(conn, site_id)


# ----------------------------------------------------------------- series

def readings_data(db: Database, p: Principal, meter_id: int, start: date | None, end: date | None,
                  points: int) -> tuple[dict[str, Any], int, list[dict[str, Any]]]:
    d0, d1 = views.date_range(start, end)
    with db.tenant(p.user) as conn:
        meter = queries.get_meter(conn, meter_id)
        if meter is None:
            raise HTTPException(404, f"no meter {meter_id}")
        t0, t1 = views.utc_bounds(d0, d1)
        bucket_s, rows = queries.readings(conn, meter_id, t0, t1, points)
    return meter, bucket_s, rows


@router.get("/meters/{meter_id}/readings", response_model=ReadingsOut, tags=["series"])
def readings(meter_id: int, db: Db, start: Start = None, end: End = None, p: Principal = ANY_ROLE,
             points: Annotated[int, Query(ge=10, le=5000, description="at most this many buckets")] = 500,
             ) -> ReadingsOut:
    """Readings of one meter, downsampled to at most ``points`` time buckets (avg/min/max)."""
    meter, bucket_s, rows = readings_data(db, p, meter_id, start, end, points)
    return ReadingsOut.model_validate({"meter_id": meter_id, "unit": meter["unit"], "bucket_s": bucket_s,
                                       "points": rows})


def check_energy_range(period: str, d0: date, d1: date) -> None:
    """422 when a fine period is asked for more local days than ``queries.MAX_DAYS`` allows."""
    limit = queries.MAX_DAYS.get(period)
    days = (d1 - d0).days + 1
    if limit is not None and days > limit:
        raise HTTPException(422, f"period={period} covers at most {limit} local days per request"
                                 f" ({days} asked for: {d0} to {d1}); narrow start/end or use a longer period")


def energy_data(conn: Any, factors: EmissionFactors | None, site_id: int, period: str, d0: date,
                d1: date) -> dict[str, Any]:
    """The site's tce series with tCO₂ beside each period (``EnergyOut``-shaped): tCO₂ from the
    per-meter quantities the tce is summed from, when emission factors are configured.
    Quarter-hour and hour starts are given in local time (+08:00)."""
    check_energy_range(period, d0, d1)
    rows = queries.energy(conn, site_id, period, d0, d1)
    qty = queries.energy_by_meter(conn, site_id, period, d0, d1) if factors is not None and rows else []
    meters = queries.tce_meters(conn, site_id) if factors is not None else []
    em = emissions.beside_tce([r["period_start"] for r in rows], meters, qty, factors)
    points = [{**r, "period_start": _local(r["period_start"]),
               "tco2": em.tco2.get(r["period_start"]) if em.tco2 is not None else None, "tco2_note": em.note}
              for r in rows]
    return {"site_id": site_id, "period": period, "points": points, "tco2_note": em.note,
            "emission_factors": list(em.used)}


def _local(v: date) -> date:
    return v.astimezone(views.LOCAL) if isinstance(v, datetime) else v


@router.get("/sites/{site_id}/energy", response_model=EnergyOut, tags=["series"])
def energy(site_id: int, request: Request, db: Db, start: Start = None, end: End = None, period: Period = "day",
           p: Principal = ANY_ROLE) -> EnergyOut:
    """Comprehensive energy consumption in tce per quarter-hour (``15min``, at most 31 days),
    hour (``hour``, at most 366 days), local day, month or year, or (``rolling12``) over the
    365 local days ending at each day of the range (the data-centre 10 000 tce rule's window);
    with tCO₂ beside it from the configured emission factors (null, with ``tco2_note``, when
    it cannot be given). A longer range than a fine period allows is refused with 422."""
    d0, d1 = views.date_range(start, end)
    check_energy_range(period, d0, d1)
    with db.tenant(p.user) as conn:
        _site(conn, site_id)
        data = energy_data(conn, request.app.state.emission_factors, site_id, period, d0, d1)
    return EnergyOut.model_validate(data)


@router.get("/sites/{site_id}/pue", response_model=PueOut, tags=["series"])
def pue(site_id: int, db: Db, start: Start = None, end: End = None, p: Principal = ANY_ROLE) -> PueOut:
    """Daily PUE of a data centre (indicative; GB 40879-2021 grades use full-year totals)."""
    d0, d1 = views.date_range(start, end)
    with db.tenant(p.user) as conn:
        s = _site(conn, site_id)
        rows = queries.pue(conn, site_id, d0, d1)
    return PueOut.model_validate({"site_id": site_id, "pue_limit": s.get("pue_limit"), "points": rows})


@router.get("/sites/{site_id}/unit-product", response_model=UnitProductOut, tags=["series"])
def unit_product(site_id: int, product: str, db: Db, start: Start = None, end: End = None,
                 p: Principal = ANY_ROLE) -> UnitProductOut:
    """Daily unit-product energy consumption (kgce/t) against the quota levels."""
    d0, d1 = views.date_range(start, end)
    with db.tenant(p.user) as conn:
        _site(conn, site_id)
        levels, rows = queries.unit_product(conn, site_id, product, d0, d1)
    return UnitProductOut.model_validate({"site_id": site_id, "product": product,
                                          "quota_levels_kgce_per_t": levels, "points": rows})


# ----------------------------------------------------------------- alerts

@router.get("/alerts", response_model=list[AlertOut], tags=["alerts"])
def alerts(db: Db, p: Principal = ANY_ROLE, city: str | None = None, industry: str | None = None,
           rule: str | None = None, severity: str | None = None,
           status: Annotated[str | None, Query(pattern="^(active|cleared|unacknowledged|acknowledged)?$")] = None,
           enterprise_id: str | None = None, site_id: int | None = None,
           limit: Annotated[int, Query(ge=1, le=5000)] = 500) -> list[dict[str, Any]]:
    """Alerts, newest update first, filtered by city, industry, rule, severity and status."""
    f = alert_filter(p, city, industry, rule, severity, status, enterprise_id, site_id)
    with db.tenant(p.user) as conn:
        return queries.list_alerts(conn, f, limit)


@router.get("/alerts/{alert_id}", response_model=AlertDetailOut, tags=["alerts"])
def alert(alert_id: int, db: Db, p: Principal = ANY_ROLE) -> AlertDetailOut:
    """One alert with its evidence (``details``) and its transitions."""
    with db.tenant(p.user) as conn:
        a = queries.get_alert(conn, alert_id)
        if a is None:
            raise HTTPException(404, f"no alert {alert_id}")
        tr = queries.alert_transitions(conn, alert_id)
    return AlertDetailOut(alert=AlertOut.model_validate(a), transitions=[TransitionOut.model_validate(t) for t in tr])


def do_acknowledge(db: Database, p: Principal, alert_id: int, note: str) -> dict[str, Any]:
    with db.tenant(p.user) as conn:
        a = queries.get_alert(conn, alert_id)
        if a is None:
            raise HTTPException(404, f"no alert {alert_id}")
        if a["acknowledged"]:
            raise HTTPException(409, f"alert {alert_id} is already acknowledged")
        return queries.acknowledge(conn, a, p.user.username, note.strip())


@router.post("/alerts/{alert_id}/acknowledge", response_model=TransitionOut, tags=["alerts"],
             responses={409: {"model": ErrorOut, "description": "already acknowledged"}})
def acknowledge(alert_id: int, body: AckRequest, db: Db, p: Principal = INSPECTOR) -> dict[str, Any]:
    """Acknowledge an alert with a note (inspectors only); records an ``acknowledged`` transition."""
    if not body.note.strip():
        raise HTTPException(422, "the note must not be blank")
    return do_acknowledge(db, p, alert_id, body.note)


# ----------------------------------------------------------------- region

@router.get("/overview", response_model=OverviewOut, tags=["region"])
def overview(db: Db, p: Principal = REGION,
             year: Annotated[int | None, Query(ge=2000, le=2100)] = None) -> dict[str, Any]:
    """Key energy users by city and industry with annual tce, data centres by PUE grade,
    plants by quota status (inspectors and operators)."""
    with db.tenant(p.user) as conn:
        return queries.overview(conn, year or views.today_local().year)


# ----------------------------------------------------------------- users

@router.get("/users", response_model=list[UserOut], tags=["users"])
def users(db: Db, p: Principal = OPERATOR) -> list[Any]:
    with db.system() as conn:
        return list_users(conn)


@router.post("/users", response_model=UserOut, status_code=201, tags=["users"])
def new_user(body: UserCreate, db: Db, p: Principal = OPERATOR) -> Any:
    """Create a portal user (operators only)."""
    try:
        with db.system() as conn:
            return create_user(conn, body.username, body.password, body.role, body.enterprise_id)
    except UserError as err:
        raise HTTPException(400, str(err)) from err


# ----------------------------------------------------------------- CSV export

ExportTable = Literal["enterprises", "sites", "meters", "readings", "energy", "pue", "unit-product",
                      "alerts", "overview"]


@router.get("/export/{table}.csv", response_class=PlainTextResponse, tags=["export"],
            responses={200: {"content": {"text/csv": {}}}})
def export(table: ExportTable, request: Request, db: Db, p: Principal = ANY_ROLE, start: Start = None, end: End = None,
           site_id: int | None = None, meter_id: int | None = None, enterprise_id: str | None = None,
           product: str | None = None, period: Period = "day", city: str | None = None,
           industry: str | None = None, rule: str | None = None, severity: str | None = None,
           status: str | None = None) -> Response:
    """CSV of any table the caller sees, through the same queries (and RLS) as the JSON API."""
    rows: list[dict[str, Any]]
    cols: list[str]
    if table == "enterprises":
        rows, cols = enterprises(db, p), ["id", "name", "city", "industry"]
    elif table == "sites":
        rows = sites(db, p, enterprise_id, city, industry)
        cols = ["id", "enterprise_id", "code", "name", "kind", "city", "industry", "pue_limit"]
    elif table == "meters":
        rows, cols = meters(db, p, site_id), ["id", "site_id", "code", "carrier", "unit", "role", "kind"]
    elif table == "readings":
        if meter_id is None:
            raise HTTPException(400, "readings export needs meter_id")
        _, _, rows = readings_data(db, p, meter_id, start, end, 5000)
        cols = ["ts", "avg", "min", "max", "n"]
    elif table in ("energy", "pue", "unit-product"):
        if site_id is None:
            raise HTTPException(400, f"{table} export needs site_id")
        if table == "energy":
            rows = energy(site_id, request, db, start, end, period, p).model_dump()["points"]
            cols = ["period_start", "tce", "tco2", "tco2_note"]
            if period == "rolling12":
                cols += ["window_start", "data_from"]
        elif table == "pue":
            rows, cols = pue(site_id, db, start, end, p).model_dump()["points"], ["period_start", "pue"]
        else:
            if product is None:
                raise HTTPException(400, "unit-product export needs product")
            rows = unit_product(site_id, product, db, start, end, p).model_dump()["points"]
            cols = ["period_start", "kgce_per_t", "output_t"]
    elif table == "alerts":
        rows = alerts(db, p, city, industry, rule, severity, status, enterprise_id, site_id, 5000)
        cols = ["id", "alert_key", "enterprise_id", "site_id", "rule", "severity", "started_at", "updated_at",
                "acknowledged", "acknowledged_at", "cleared", "cleared_at", "value", "threshold", "details"]
    else:
        if p.user.role not in ("inspector", "operator"):
            raise HTTPException(403, "the region overview is for inspectors and operators")
        rows = overview(db, p)["groups"]
        cols = ["city", "industry", "enterprises", "sites", "annual_tce"]
    name = f"nxem-{table}.csv"
    return Response(views.to_csv(rows, cols), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
