"""Portal API tests against the real PostgreSQL: one fresh migrated database per session."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from httpx2 import Response

from ops.services import ServiceSettings, ensure_up
from portal.app import create_app
from portal.settings import PortalSettings
from portal.users import create_user
from portal.views import LOCAL
from storage.roles import dsn_for

from .fixtures import PASSWORD, World, create_database, drop_database, populate, secret_file


@pytest.fixture(scope="session")
def services() -> Iterator[ServiceSettings]:
    settings = ServiceSettings()
    ensure_up(settings)
    yield settings


@pytest.fixture(scope="session")
def world(services: ServiceSettings) -> Iterator[World]:
    dbname, dsn = create_database(services)
    try:
        yield populate(dbname, dsn, datetime.now(timezone.utc).astimezone(LOCAL).date())
    finally:
        drop_database(services, dbname)


@pytest.fixture(scope="session")
def portal_settings(world: World, services: ServiceSettings, tmp_path_factory: pytest.TempPathFactory) -> PortalSettings:
    tmp: Path = tmp_path_factory.mktemp("portal")
    # plain http (the TestClient): the session cookie must not be Secure, as in the local demo
    return PortalSettings(data_dir=services.data_dir, pg_host=services.pg_host, pg_port=services.pg_port,
                          pg_db=world.dbname, portal_secret_file=secret_file(tmp), portal_sse_poll_s=0.2,
                          portal_cookie_secure=False)


@pytest.fixture(scope="session")
def client(portal_settings: PortalSettings) -> Iterator[TestClient]:
    app = create_app(portal_settings, dsn_for("nxem_portal", portal_settings))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="session")
def admin_user(world: World) -> str:
    """An administrator (the populated world has none): the only role that creates users."""
    with psycopg.connect(world.admin_dsn) as conn:
        create_user(conn, "admin", PASSWORD, "admin", None)
    return "admin"


def form_login(c: TestClient, username: str, password: str, next: str = "") -> Response:
    """Sign in through the login form as a browser does: the page first (its CSRF field and
    nonce cookie), then the post."""
    page = c.get("/login")
    assert page.status_code == 200, page.text
    found = re.search(r'name="csrf" value="([0-9a-f]{64})"', page.text)
    assert found is not None, "the sign-in form carries a CSRF token"
    return c.post("/login", data={"username": username, "password": password, "next": next, "csrf": found[1]},
                  follow_redirects=False)


def token_for(client: TestClient, username: str) -> dict[str, str]:
    r = client.post("/api/v1/auth/token", json={"username": username, "password": PASSWORD},
                    headers={"X-Forwarded-For": "ignored"})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture(scope="session")
def insp(client: TestClient) -> dict[str, str]:
    return token_for(client, "insp")


@pytest.fixture(scope="session")
def oper(client: TestClient) -> dict[str, str]:
    return token_for(client, "oper")


@pytest.fixture(scope="session")
def ent_a(client: TestClient) -> dict[str, str]:
    return token_for(client, "ent-a")


@pytest.fixture(scope="session")
def admin(client: TestClient, admin_user: str) -> dict[str, str]:
    return token_for(client, admin_user)


@pytest.fixture(scope="session")
def ent_b(client: TestClient) -> dict[str, str]:
    return token_for(client, "ent-b")
