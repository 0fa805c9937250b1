"""Portal API tests against the real PostgreSQL: one fresh migrated database per session."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from nxem.services import ServiceSettings, ensure_up
from portal.app import create_app
from portal.settings import PortalSettings
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
    return PortalSettings(data_dir=services.data_dir, pg_host=services.pg_host, pg_port=services.pg_port,
                          pg_db=world.dbname, portal_secret_file=secret_file(tmp), portal_sse_poll_s=0.2)


@pytest.fixture(scope="session")
def client(portal_settings: PortalSettings) -> Iterator[TestClient]:
    app = create_app(portal_settings, dsn_for("nxem_portal", portal_settings))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


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
def ent_b(client: TestClient) -> dict[str, str]:
    return token_for(client, "ent-b")
