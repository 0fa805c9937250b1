"""A fresh, migrated database per test (``nxem_test_<random>``), dropped afterwards.

Created through the admin DSN of the PostgreSQL cluster the session started; the LOGIN roles'
passwords come from the session's secrets folder (storage/roles.py). ``db`` is migrated for
the session's ``NXEM_DB_BACKEND``; ``tsdb`` always for TimescaleDB (the ``timescale`` tests):
where the server cannot load it they skip, and fail under ``CI=true`` (CI installs it);
``nativedb`` always for plain PostgreSQL (native-only parts), so nothing skips in either run.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from ops.services import ServiceSettings, admin_dsn
from storage import roles, timescale
from storage.migrate import backend_of, migrate
from storage.registry import Registry, UpsertResult, upsert_registry
from storage.registry_format import parse_registry

DC_ENT = "91640500MA76L8XK3A"  # 中卫 data centre; check character computed by storage.uscc
PLANT_ENT = "91640181MA76L8XK30"  # 宁东 calcium carbide plant
OTHER_ENT = "91640100MA76L8XK3M"  # 银川, a second data centre (the "other tenant")


@dataclass(frozen=True)
class Db:
    settings: ServiceSettings
    name: str

    @property
    def admin(self) -> str:
        return admin_dsn(self.settings, dbname=self.name)

    def dsn(self, role: roles.LoginRole) -> str:
        return roles.dsn_for(role, self.settings, dbname=self.name)

    def connect(self, role: roles.LoginRole | None = None, **kw: Any) -> psycopg.Connection[Any]:
        return psycopg.connect(self.admin if role is None else self.dsn(role), **kw)

    def sql(self, query: str, params: Any = None) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.admin) as conn:
            return conn.execute(query, params).fetchall()

    @property
    def timescale(self) -> bool:
        with psycopg.connect(self.admin) as conn:
            return backend_of(conn) == "timescale"


def create_db(settings: ServiceSettings) -> str:
    name = f"nxem_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_dsn(settings), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def drop_db(settings: ServiceSettings, name: str) -> None:
    with psycopg.connect(admin_dsn(settings), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _close_template(conn: psycopg.Connection[Any], name: str) -> None:
    """No session may use a template while it is copied; TimescaleDB's job scheduler connects
    to every database with the extension. Refuse new connections, end the ones there."""
    conn.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
    conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))


def copy_template(settings: ServiceSettings, template: str, name: str) -> None:
    """CREATE DATABASE … TEMPLATE, retried while a terminated session is still leaving."""
    with psycopg.connect(admin_dsn(settings), autocommit=True) as conn:
        for attempt in range(50):
            _close_template(conn, template)
            try:
                conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
                return
            except psycopg.errors.ObjectInUse:
                if attempt == 49:
                    raise
                time.sleep(0.1)


@pytest.fixture(scope="session")
def migrated_template(services: ServiceSettings) -> Iterator[str]:
    """One migrated database per session, copied for each test (CREATE DATABASE … TEMPLATE)."""
    name = create_db(services)
    try:
        migrate(admin_dsn(services, dbname=name), backend=services.db_backend,
                secrets_dir=services.resolved_data_dir() / "secrets")
        yield name
    finally:
        drop_db(services, name)


@pytest.fixture()
def db(services: ServiceSettings, migrated_template: str) -> Iterator[Db]:
    name = f"nxem_test_{uuid.uuid4().hex[:10]}"
    copy_template(services, migrated_template, name)
    try:
        yield Db(services, name)
    finally:
        drop_db(services, name)


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def timescale_template(services: ServiceSettings, request: pytest.FixtureRequest) -> Iterator[str]:
    """A database migrated for TimescaleDB whatever ``NXEM_DB_BACKEND`` says (the session's
    template when that already is one)."""
    with psycopg.connect(admin_dsn(services), autocommit=True) as conn:
        missing = timescale.unavailable_reason(conn)
    if missing is not None:
        reason = f"TimescaleDB tests: {missing}"
        if in_ci():  # CI installs it (.ci/run): a missing extension there is a broken CI, not a skip
            pytest.fail(f"{reason}; CI=true requires it (../shared/tools/timescaledb/install.sh)")
        pytest.skip(reason)
    if services.db_backend != "native":  # auto or timescale on this server: the same path
        yield request.getfixturevalue("migrated_template")
        return
    name = create_db(services)
    try:
        migrate(admin_dsn(services, dbname=name), backend="timescale",
                secrets_dir=services.resolved_data_dir() / "secrets")
        yield name
    finally:
        drop_db(services, name)


@pytest.fixture()
def tsdb(services: ServiceSettings, timescale_template: str) -> Iterator[Db]:
    """A fresh copy of the TimescaleDB template."""
    name = f"nxem_test_{uuid.uuid4().hex[:10]}"
    copy_template(services, timescale_template, name)
    try:
        yield Db(services, name)
    finally:
        drop_db(services, name)


@pytest.fixture(scope="session")
def native_template(services: ServiceSettings, request: pytest.FixtureRequest) -> Iterator[str]:
    """A database migrated for plain PostgreSQL whatever ``NXEM_DB_BACKEND`` says."""
    if services.db_backend == "native":
        yield request.getfixturevalue("migrated_template")
        return
    name = create_db(services)
    try:
        migrate(admin_dsn(services, dbname=name), backend="native",
                secrets_dir=services.resolved_data_dir() / "secrets")
        yield name
    finally:
        drop_db(services, name)


@pytest.fixture()
def nativedb(services: ServiceSettings, native_template: str) -> Iterator[Db]:
    """A fresh copy of the native template (the tests of native-only parts: partitions, merge)."""
    name = f"nxem_test_{uuid.uuid4().hex[:10]}"
    copy_template(services, native_template, name)
    try:
        yield Db(services, name)
    finally:
        drop_db(services, name)


def _meter(code: str, role: str, kind: str = "register", unit: str = "kWh", carrier: str = "electricity",
           coefficient: str | None = "electricity_calorific", **extra: Any) -> dict[str, Any]:
    return {"code": code, "carrier": carrier, "unit": unit, "role": role, "kind": kind, "multiplier": 1,
            "rollover": 1_000_000, "coefficient": coefficient, "product": None, **extra}


def demo_document() -> dict[str, Any]:
    """Two data centres of two enterprises and one calcium-carbide plant."""
    return {"enterprises": [
        {"id": DC_ENT, "name": "中卫云数据有限公司", "city": "中卫", "industry": "data_centre", "sites": [
            {"code": "zw-dc-01", "name": "一号数据中心", "kind": "data_centre", "new_build": False,
             "sim": {"pue": 1.3},  # a scenario block: ignored by storage
             "gateways": [{"id": "gw-zw-a", "meters": [_meter("it-main", "it_load"),
                                                        _meter("facility-main", "total_facility")]}]}]},
        {"id": OTHER_ENT, "name": "银川算力有限公司", "city": "银川", "industry": "data_centre", "sites": [
            {"code": "yc-dc-01", "name": "银川数据中心", "kind": "data_centre",
             "gateways": [{"id": "gw-yc-a", "meters": [_meter("it-main", "it_load"),
                                                        _meter("facility-main", "total_facility")]}]}]},
        {"id": PLANT_ENT, "name": "宁东电石有限公司", "city": "宁东", "industry": "calcium_carbide", "sites": [
            {"code": "nd-cc-01", "name": "电石一厂", "kind": "plant",
             "products": [{"product": "calcium_carbide", "indicator": "kgce_per_t"}],
             "gateways": [{"id": "gw-nd-a", "meters": [
                 _meter("power", "consumed", kind="interval"),
                 _meter("coke", "consumed", kind="interval", unit="t", carrier="coke", coefficient="coke"),
                 _meter("steam-out", "exported", kind="interval", unit="GJ", carrier="heat", coefficient="heat"),
                 _meter("output", "product_output", kind="interval", unit="t", carrier="product",
                        coefficient=None, product="calcium_carbide"),
             ]}]}]},
    ]}


def demo_registry() -> Registry:
    return parse_registry(demo_document(), "demo")


def load_demo(db: Db) -> UpsertResult:
    with db.connect() as conn:
        return upsert_registry(conn, demo_registry())


def meter_ids(db: Db) -> dict[str, int]:
    """'<gateway>/<code>' -> meter id."""
    return {f"{g}/{c}": i for g, c, i in db.sql("SELECT gateway_id, code, id FROM meters")}


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)
