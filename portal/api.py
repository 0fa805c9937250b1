"""The JSON API (``/api/v1``): same queries and the same authorisation as the pages.

Authorisation is layered: (1) the role checks here (who may call what), (2) an enterprise
user naming another enterprise in a parameter gets 403 at once, and (3) every read runs in a
transaction bound to the principal's tenant, so row-level security in PostgreSQL hides other
enterprises' rows -- an id that belongs to someone else is simply 404.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response

from analytics.coefficients import ElectricityValue
from portal import auth, emissions, figures, roles, security, views
from portal.auth import Principal
from portal.db import Database
from portal.emissions import EmissionFactors
from storage.errors import Conflict
from storage.read import alerts as read_alerts
from storage.read import energy as read_energy
from storage.read import readings as read_readings
from storage.read import registry as read_registry
from storage.read.alerts import AlertFilter
from portal.schemas import (
    MAX_RANGE_DAYS, AckRequest, AlertDetailOut, AlertId, AlertOut, City, End, EnergyOut,
    EnterpriseFilter, EnterpriseOut, ErrorOut, Indicator, Industry, NO_NUL, MeOut, MeterFilter, MeterId, MeterOut, OverviewOut,
    Period, Product, PueOut, ReadingsOut, Rule, SeverityFilter, SiteFilter, SiteId, SiteOut, Start,
    StatusFilter, TokenOut, TokenRequest, TransitionOut, UnitProductOut, UserCreate, UserOut,
)
from portal.users import UserError, create_user, list_users


_FINE_LIMITS: Final = ", ".join(f"{k} at most {v} days" for k, v in read_energy.MAX_DAYS.items())


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorOut, "description": description}


#: The error responses of every API route (``{"error": {"code", "message"}}``, JSON).
ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    400: _error(f"a request the parameters' schema cannot express as wrong: start after end, a range over"
                f" {MAX_RANGE_DAYS} days, an export without the parameter its table needs, a user that cannot"
                f" be created as asked"),
    401: _error("no valid session cookie or bearer token"),
    403: _error("the caller's role may not do this (portal.roles), another enterprise named by an enterprise"
                " user, a cross-site request, or a cookie request without its CSRF token"),
    404: _error("no such object, or one the caller may not see (the same answer)"),
    422: _error(f"a parameter or body outside its declared schema, or a fine energy period over its longest"
                f" range ({_FINE_LIMITS})"),
}
#: Routes that take a body also answer 413 (``NXEM_PORTAL_MAX_BODY_BYTES``).
TOO_LARGE: Final[dict[int | str, dict[str, Any]]] = {413: _error("request body over NXEM_PORTAL_MAX_BODY_BYTES")}
router = APIRouter(prefix="/api/v1", responses=ERRORS)

#: Every route takes its principal from here: signed in, and allowed by ``portal.roles.ROUTES``.
ALLOWED = auth.API_ACCESS

Db = Annotated[Database, Depends(auth.get_db)]


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
             responses={**TOO_LARGE, 401: _error("unknown user or wrong password"),
                        429: _error("too many failed logins (per user at an address, per address, per user);"
                                    " Retry-After says when to try again")})
def token(body: TokenRequest, request: Request, db: Db) -> TokenOut:
    """Exchange username and password for a bearer token (rate limited per user and address)."""
    p = auth.login(db, body.username, body.password, auth.client_ip(request), "bearer", request.app.state.policy)
    return TokenOut(access_token=p.token, expires_at=p.expires_at, role=p.user.role,
                    enterprise_id=p.user.enterprise_id)


@router.post("/auth/logout", status_code=204, tags=["auth"])
def api_logout(db: Db, p: Principal = ALLOWED) -> Response:
    """End this session or token."""
    auth.logout(db, p.token)
    return Response(status_code=204)


@router.get("/me", response_model=MeOut, tags=["auth"])
def me(request: Request, p: Principal = ALLOWED) -> MeOut:
    csrf = security.csrf_token(request.app.state.secret, p.token) if p.via == "cookie" else None
    return MeOut(username=p.user.username, role=p.user.role, enterprise_id=p.user.enterprise_id, csrf_token=csrf)


# ----------------------------------------------------------------- registry

@router.get("/enterprises", response_model=list[EnterpriseOut], tags=["registry"])
def enterprises(db: Db, p: Principal = ALLOWED) -> list[dict[str, Any]]:
    with db.tenant(p.user) as conn:
        return read_registry.list_enterprises(conn)


@router.get("/sites", response_model=list[SiteOut], tags=["registry"])
def sites(db: Db, p: Principal = ALLOWED, enterprise_id: EnterpriseFilter = None, city: City = None,
          industry: Industry = None) -> list[dict[str, Any]]:
    with db.tenant(p.user) as conn:
        return read_registry.list_sites(conn, own_enterprise(p, enterprise_id or None), city or None, industry or None)


def _site(conn: Any, site_id: int) -> dict[str, Any]:
    site = read_registry.get_site(conn, site_id)
    if site is None:
        raise HTTPException(404, f"no site {site_id}")
    return site


@router.get("/sites/{site_id}", response_model=SiteOut, tags=["registry"])
def site(site_id: SiteId, db: Db, p: Principal = ALLOWED) -> dict[str, Any]:
    with db.tenant(p.user) as conn:
        return _site(conn, site_id)


@router.get("/meters", response_model=list[MeterOut], tags=["registry"])
def meters(db: Db, p: Principal = ALLOWED, site_id: SiteFilter = None) -> list[dict[str, Any]]:
    with db.tenant(p.user) as conn:
        if site_id is not None:
            _site(conn, site_id)
        return read_registry.list_meters(conn, site_id)


# ----------------------------------------------------------------- series

def readings_data(db: Database, p: Principal, meter_id: int, start: date | None, end: date | None,
                  points: int) -> tuple[dict[str, Any], int, list[dict[str, Any]]]:
    d0, d1 = views.date_range(start, end)
    with db.tenant(p.user) as conn:
        meter = read_registry.get_meter(conn, meter_id)
        if meter is None:
            raise HTTPException(404, f"no meter {meter_id}")
        t0, t1 = views.utc_bounds(d0, d1)
        bucket_s, rows = read_readings.readings(conn, meter_id, t0, t1, points)
    return meter, bucket_s, rows


@router.get("/meters/{meter_id}/readings", response_model=ReadingsOut, tags=["series"])
def readings(meter_id: MeterId, db: Db, start: Start = None, end: End = None, p: Principal = ALLOWED,
             points: Annotated[int, Query(ge=10, le=5000, description="at most this many buckets")] = 500,
             ) -> ReadingsOut:
    """Readings of one meter, downsampled to at most ``points`` time buckets (avg/min/max)."""
    meter, bucket_s, rows = readings_data(db, p, meter_id, start, end, points)
    return ReadingsOut.model_validate({"meter_id": meter_id, "unit": meter["unit"], "bucket_s": bucket_s,
                                       "points": rows})


def check_energy_range(period: str, d0: date, d1: date) -> None:
    """422 when a fine period is asked for more local days than ``read_energy.MAX_DAYS`` allows."""
    limit = read_energy.MAX_DAYS.get(period)
    days = (d1 - d0).days + 1
    if limit is not None and days > limit:
        raise HTTPException(422, f"period={period} covers at most {limit} local days per request"
                                 f" ({days} asked for: {d0} to {d1}); narrow start/end or use a longer period")


def electricity(request: Request) -> ElectricityValue:
    """How electricity is valued in kgce (NXEM_ELECTRICITY_BASIS, read once at start-up)."""
    value: ElectricityValue = request.app.state.electricity
    return value


def energy_data(conn: Any, factors: EmissionFactors | None, site_id: int, period: str, d0: date,
                d1: date, value: ElectricityValue) -> dict[str, Any]:
    """The site's tce series with tCO₂ beside each period (``EnergyOut``-shaped): tCO₂ from the
    per-meter quantities the tce is summed from, when emission factors are configured; the
    electricity basis the tce uses. Quarter-hour and hour starts are given in local time (+08:00)."""
    check_energy_range(period, d0, d1)
    rows = read_energy.energy(conn, site_id, period, d0, d1, electricity=value)
    qty = read_energy.energy_by_meter(conn, site_id, period, d0, d1) if factors is not None and rows else []
    meters = read_energy.tce_meters(conn, site_id) if factors is not None else []
    em = emissions.beside_tce([r["period_start"] for r in rows], meters, qty, factors)
    points = [{**r, "period_start": _local(r["period_start"]),
               "tco2": em.tco2.get(r["period_start"]) if em.tco2 is not None else None, "tco2_note": em.note}
              for r in rows]
    return {"site_id": site_id, "period": period, "points": points, "tco2_note": em.note,
            "emission_factors": list(em.used), "electricity": value.label}


def _local(v: date) -> date:
    return v.astimezone(views.LOCAL) if isinstance(v, datetime) else v


PeriodParam = Annotated[Period, Query(description=f"the grain of the series ({_FINE_LIMITS}: 422 beyond)")]


@router.get("/sites/{site_id}/energy", response_model=EnergyOut, tags=["series"])
def energy(site_id: SiteId, request: Request, db: Db, start: Start = None, end: End = None,
           period: PeriodParam = "day", p: Principal = ALLOWED) -> EnergyOut:
    """Comprehensive energy consumption in tce per quarter-hour (``15min``, at most 31 days),
    hour (``hour``, at most 366 days), local day, month or year, or (``rolling12``) over the
    365 local days ending at each day of the range (the data-centre 10 000 tce rule's window);
    with tCO₂ beside it from the configured emission factors (null, with ``tco2_note``, when
    it cannot be given). A longer range than a fine period allows is refused with 422."""
    d0, d1 = views.date_range(start, end)
    check_energy_range(period, d0, d1)
    with db.tenant(p.user) as conn:
        _site(conn, site_id)
        data = energy_data(conn, request.app.state.emission_factors, site_id, period, d0, d1, electricity(request))
    return EnergyOut.model_validate(data)


@router.get("/sites/{site_id}/pue", response_model=PueOut, tags=["series"])
def pue(site_id: SiteId, db: Db, start: Start = None, end: End = None, p: Principal = ALLOWED) -> PueOut:
    """Daily PUE of a data centre (indicative; GB 40879-2021 grades use full-year totals)."""
    d0, d1 = views.date_range(start, end)
    with db.tenant(p.user) as conn:
        s = _site(conn, site_id)
        rows = read_energy.pue(conn, site_id, d0, d1)
    return PueOut.model_validate({"site_id": site_id, "pue_limit": s.get("pue_limit"), "points": rows})


@router.get("/sites/{site_id}/unit-product", response_model=UnitProductOut, tags=["series"])
def unit_product(site_id: SiteId, product: Product, request: Request, db: Db, start: Start = None,
                 end: End = None, indicator: Indicator = None, p: Principal = ALLOWED) -> UnitProductOut:
    """Daily unit-product consumption of one product's quota indicator (the first the site
    declares unless ``indicator`` names one) in the indicator's unit (kgce/t, kWh/t, …) against
    its levels: the product's own energy (its tagged meters, its declared shares, or the whole
    site's when it makes one product) over its output, as the quota rule computes it. A site
    whose allocation is ambiguous gets no figure and the reason (``not_judged``)."""
    d0, d1 = views.date_range(start, end)
    with db.tenant(p.user) as conn:
        _site(conn, site_id)
        found = figures.unit_product(conn, site_id, product, d0, d1, electricity=electricity(request))
    chosen = next((f for f in found if indicator in (None, f["indicator"])), None)
    base: dict[str, Any] = {"site_id": site_id, "product": product, "electricity": electricity(request).label,
                            "indicators": [f["indicator"] for f in found]}
    if chosen is None:
        what = f"indicator {indicator!r} of {product}" if indicator else f"quota indicator for {product}"
        return UnitProductOut.model_validate({**base, "points": [],
                                              "not_judged": f"site {site_id} declares no {what}"})
    return UnitProductOut.model_validate({**base, **chosen})


# ----------------------------------------------------------------- alerts

@router.get("/alerts", response_model=list[AlertOut], tags=["alerts"])
def alerts(db: Db, p: Principal = ALLOWED, city: City = None, industry: Industry = None, rule: Rule = None,
           severity: SeverityFilter = None, status: StatusFilter = None, enterprise_id: EnterpriseFilter = None,
           site_id: SiteFilter = None, limit: Annotated[int, Query(ge=1, le=5000)] = 500) -> list[dict[str, Any]]:
    """Alerts, newest update first, filtered by city, industry, rule, severity and status."""
    f = alert_filter(p, city, industry, rule, severity, status, enterprise_id, site_id)
    with db.tenant(p.user) as conn:
        return read_alerts.list_alerts(conn, f, limit)


@router.get("/alerts/{alert_id}", response_model=AlertDetailOut, tags=["alerts"])
def alert(alert_id: AlertId, db: Db, p: Principal = ALLOWED) -> AlertDetailOut:
    """One alert with its evidence (``details``) and its transitions."""
    with db.tenant(p.user) as conn:
        a = read_alerts.get_alert(conn, alert_id)
        if a is None:
            raise HTTPException(404, f"no alert {alert_id}")
        tr = read_alerts.alert_transitions(conn, alert_id)
    return AlertDetailOut(alert=AlertOut.model_validate(a), transitions=[TransitionOut.model_validate(t) for t in tr])


def do_acknowledge(db: Database, p: Principal, alert_id: int, note: str) -> dict[str, Any]:
    with db.tenant(p.user) as conn:
        a = read_alerts.get_alert(conn, alert_id)
        if a is None:
            raise HTTPException(404, f"no alert {alert_id}")
        if a["acknowledged"]:
            raise HTTPException(409, f"alert {alert_id} is already acknowledged")
        try:
            return read_alerts.acknowledge(conn, a, p.user.username, note.strip())
        except Conflict as err:  # acknowledged by another request meanwhile
            raise HTTPException(409, str(err)) from err


@router.post("/alerts/{alert_id}/acknowledge", response_model=TransitionOut, tags=["alerts"],
             responses={**TOO_LARGE, 409: _error("already acknowledged")})
def acknowledge(alert_id: AlertId, body: AckRequest, db: Db, p: Principal = ALLOWED) -> dict[str, Any]:
    """Acknowledge an alert with a note (inspectors and admins; never operators); records an
    ``acknowledged`` transition."""
    return do_acknowledge(db, p, alert_id, body.note)


# ----------------------------------------------------------------- region

@router.get("/overview", response_model=OverviewOut, tags=["region"])
def overview(request: Request, db: Db, p: Principal = ALLOWED,
             year: Annotated[int | None, Query(ge=2000, le=2100)] = None) -> dict[str, Any]:
    """Key energy users by city and industry with annual tce, data centres by PUE grade,
    plants by quota status (every role but enterprise users)."""
    with db.tenant(p.user) as conn:
        return figures.overview(conn, year or views.today_local().year, electricity=electricity(request))


# ----------------------------------------------------------------- users

@router.get("/users", response_model=list[UserOut], tags=["users"])
def users(db: Db, p: Principal = ALLOWED) -> list[Any]:
    """Every portal user (admins only)."""
    with db.system() as conn:
        return list_users(conn)


@router.post("/users", response_model=UserOut, status_code=201, tags=["users"], responses=TOO_LARGE)
def new_user(body: UserCreate, db: Db, p: Principal = ALLOWED) -> Any:
    """Create a portal user (admins only), with at most the admin's own role: an unknown
    enterprise, a wrong binding or an existing username is 400."""
    if not roles.can_grant(p.user.role, body.role):
        raise HTTPException(403, f"a {p.user.role} cannot grant the role {body.role}")
    try:
        with db.system() as conn:
            return create_user(conn, body.username, body.password, body.role, body.enterprise_id)
    except UserError as err:
        raise HTTPException(400, str(err)) from err


# ----------------------------------------------------------------- CSV export

ExportTable = Literal["enterprises", "sites", "meters", "readings", "energy", "pue", "unit-product",
                      "alerts", "overview"]
_CSV: Final[dict[int | str, dict[str, Any]]] = {
    200: {"description": "the table as CSV (UTF-8, a header row, CRLF line ends), as an attachment",
          "content": {"text/csv": {"schema": {"type": "string"}}}}}


@router.get("/export/{table}.csv", response_class=Response, tags=["export"], responses=_CSV)
def export(table: Annotated[ExportTable, Path(description="what to export")], request: Request, db: Db,
           p: Principal = ALLOWED, start: Start = None, end: End = None, site_id: SiteFilter = None,
           meter_id: MeterFilter = None, enterprise_id: EnterpriseFilter = None,
           product: Annotated[str | None, Query(min_length=1, max_length=64, pattern=NO_NUL,
                                                description="unit-product: the product (needed, else 400)")] = None,
           period: PeriodParam = "day", city: City = None, industry: Industry = None, rule: Rule = None,
           severity: SeverityFilter = None, status: StatusFilter = None) -> Response:
    """CSV of any table the caller sees, through the same queries (and RLS) as the JSON API.
    ``readings`` needs ``meter_id``; ``energy``, ``pue`` and ``unit-product`` need ``site_id``
    (and ``product``): 400 without. ``overview`` is for the roles that see the region (403)."""
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
            rows = unit_product(site_id, product, request, db, start, end, None, p).model_dump()["points"]
            cols = ["period_start", "value", "energy", "output", "coverage"]
    elif table == "alerts":
        rows = alerts(db, p, city, industry, rule, severity, status, enterprise_id, site_id, 5000)
        cols = ["id", "alert_key", "enterprise_id", "site_id", "rule", "severity", "started_at", "updated_at",
                "acknowledged", "acknowledged_at", "cleared", "cleared_at", "value", "threshold", "details"]
    else:
        if not roles.has(p.user.role, "region"):
            raise HTTPException(403, f"the region overview needs the role {' or '.join(roles.holders('region'))}")
        rows = overview(request, db, p)["groups"]
        cols = ["city", "industry", "enterprises", "sites", "annual_tce"]
    name = f"nxem-{table}.csv"
    return Response(views.to_csv(rows, cols), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
