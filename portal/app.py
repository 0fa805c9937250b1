"""The portal's FastAPI application: ``create_app(settings)`` wires the database pool, the
templates, the routers (JSON API under ``/api/v1``, HTML pages, the alert stream) and the
exception handlers. Nothing here reads the environment: settings come in built.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from analytics.coefficients import ElectricityValue
from portal import api, errors, health, pages, sse, views
from portal import hardening
from portal.auth import LoginPolicy
from portal.db import Database
from portal.emissions import load_factors
from portal.settings import PortalSettings

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent

DESCRIPTION = """
JSON API of the Ningxia key energy-using units monitoring portal.

Authenticate with `POST /api/v1/auth/token` (JSON username/password) and send
`Authorization: Bearer <token>`; browsers use the session cookie of the login form (unsafe
requests with the cookie need the `X-CSRF-Token` header from `GET /api/v1/me`).
Admins, inspectors and operators read every enterprise; an enterprise user reads only its own
enterprise -- enforced by row-level security in PostgreSQL, with API checks on top. Inspectors
and admins acknowledge alerts; only admins manage users (roles: `portal/roles.py`).
Errors are `{"error": {"code", "message"}}` with a 4xx/5xx status. Unsafe requests from
another origin are refused (403); request bodies are capped (413).
"""


def _portal_dsn(settings: PortalSettings) -> str:
    from storage.roles import dsn_for

    dsn: str = dsn_for("nxem_portal", settings)
    return dsn


def create_app(settings: PortalSettings, dsn: str | None = None,
               db_factory: Callable[[str, int], Database] = Database) -> FastAPI:
    """The portal application. ``dsn`` overrides the ``nxem_portal`` role DSN (tests)."""
    dsn = dsn or _portal_dsn(settings)
    db = db_factory(dsn, settings.portal_pool_max)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db.open()
        app.state.health, stop_pinger = health.start(dsn)
        try:
            yield
        finally:
            stop_pinger.set()
            db.close()

    app = FastAPI(title="NXEM portal", version="1.0", description=DESCRIPTION, lifespan=lifespan,
                  openapi_url="/api/v1/openapi.json", docs_url=None, redoc_url=None)  # /docs: pages
    app.state.settings = settings
    app.state.db = db
    app.state.secret = settings.load_secret()
    # read once at start-up: a bad file fails here with its name and line, before serving
    app.state.emission_factors = (load_factors(settings.emission_factors_file)
                                  if settings.emission_factors_file is not None else None)
    # NXEM_ELECTRICITY_BASIS: how electricity is valued in every kgce and tce figure shown
    app.state.electricity = ElectricityValue(settings.electricity_basis, settings.electricity_equivalent_kgce_per_kwh)
    app.state.policy = LoginPolicy(settings.portal_login_max_failures, settings.portal_login_window_s,
                                   settings.portal_session_ttl_s, settings.portal_login_max_failures_per_address,
                                   settings.portal_login_max_failures_per_user)
    templates = Jinja2Templates(directory=HERE / "templates")
    views.install_filters(templates)
    app.state.templates = templates
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    errors.install(app)
    app.add_middleware(health.RequestMetrics)
    app.include_router(health.router)  # /healthz, /readyz, /metrics
    app.include_router(sse.router)  # before api: /alerts/stream must not match /alerts/{alert_id}
    app.include_router(api.router)
    app.include_router(pages.router)
    _harden(app, settings)
    return app


def _harden(app: FastAPI, settings: PortalSettings) -> None:
    """Middleware around every route (``portal.hardening``), innermost first: the body cap, the
    same-origin check of unsafe requests, the forwarded client address and scheme (believed
    only from the configured trusted proxies), and the security headers (outermost, so every
    response carries them, the refusals of the others included)."""
    app.add_middleware(hardening.BodyLimit, max_bytes=settings.portal_max_body_bytes)
    app.add_middleware(hardening.SameOrigin)
    if settings.trusted_proxies():
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies())
    app.add_middleware(hardening.SecurityHeaders)
