"""The storage backend is chosen by ``NXEM_DB_BACKEND`` (auto | native | timescale), passed to
``migrate``; a migrated database keeps its backend, and asking for the other one is an error
that names the setting."""

from __future__ import annotations

import psycopg
import pytest

from ops.services import ServiceSettings, admin_dsn
from storage import roles
from storage.errors import StorageError
from storage.migrate import backend_of, migrate
from tests.integration.test_storage.conftest import Db, create_db, drop_db

pytestmark = pytest.mark.integration


def test_a_native_database_stays_native(services: ServiceSettings) -> None:
    name = create_db(services)
    try:
        dsn = admin_dsn(services, dbname=name)
        secrets = services.resolved_data_dir() / "secrets"
        assert "0013_owner_login.sql" in migrate(dsn, backend="native", secrets_dir=secrets)
        with pytest.raises(StorageError, match="NXEM_DB_BACKEND=timescale, but this database was migrated for native"):
            migrate(dsn, backend="timescale", secrets_dir=secrets)
        assert migrate(dsn, backend="auto", secrets_dir=secrets) == []  # auto follows the record
        with psycopg.connect(dsn) as conn:
            assert backend_of(conn) == "native"
            assert conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'").fetchone() == (0,)
            assert roles.owner_hba_warnings(conn) == []  # the local runner rejects the owner first
            # a database migrated before 0013 gets it on its next migrate
            conn.execute("DELETE FROM schema_migrations WHERE version = '0013'")
        assert migrate(dsn, backend="native", secrets_dir=secrets) == ["0013_owner_login.sql"]
    finally:
        drop_db(services, name)


@pytest.mark.timescale
def test_a_timescale_database_stays_timescale(tsdb: Db) -> None:
    secrets = tsdb.settings.resolved_data_dir() / "secrets"
    with pytest.raises(StorageError, match="NXEM_DB_BACKEND=native, but this database was migrated for timescale"):
        migrate(tsdb.admin, backend="native", secrets_dir=secrets)
    assert migrate(tsdb.admin, backend="auto", secrets_dir=secrets) == []
    assert tsdb.timescale


def test_the_portal_and_ingest_sessions_run_without_jit(db: Db) -> None:
    """0018: JIT compilation cost the portal 0.4-0.5 s a query on the native rollup views."""
    for role in ("nxem_portal", "nxem_ingest"):
        with db.connect(role) as conn:
            assert conn.execute("SHOW jit").fetchone() == ("off",), role
