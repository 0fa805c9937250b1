"""Versioned SQL migrations: ``migrate(admin_dsn) -> list of applied names``.

* Files ``storage/migrations/NNNN_name.sql``, applied in order, each in ONE transaction
  together with its row in ``schema_migrations`` (so a failure leaves nothing half-applied).
* Safe to run twice and concurrently: an advisory lock serialises runners and an applied
  version is skipped. A fresh database and an old one end at the same schema.
* The backend is chosen once, at the first run, by the caller's ``backend`` (the setting
  ``NXEM_DB_BACKEND``: ``auto`` | ``native`` | ``timescale``; this module reads no environment).
  ``auto`` takes TimescaleDB when the server can load it (listed in ``pg_available_extensions``
  and preloaded), native partitioning otherwise; ``timescale`` without the extension is an
  error naming the setting. ``sql_timescale/NNNN_name.sql`` then replaces the native file of
  the same name. The choice is recorded per migration and never changes (asking for the other
  backend on a migrated database is an error; ``auto`` follows the record).
* The schema owner keeps LOGIN with no password (0013, storage/roles.py): re-asserted inside
  every migration transaction, because the applied 0001 says NOLOGIN each time it runs.
* A migration file changed after it was applied is an error (its sha256 is recorded).
* Every run then (re)sets the LOGIN roles' passwords from their files (generated when absent,
  see storage/roles.py) as SCRAM verifiers computed client-side, so the clear text never
  reaches the server or its logs; and re-applies the TimescaleDB policies.
* Every run finally writes the reference rows (``coefficients``, ``quotas``) from analytics
  (``storage.registry.sync_reference``): migrations hold no copy of those numbers.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import psycopg
from psycopg import sql

from storage import roles, timescale
from storage.errors import StorageError, TimescaleError
from storage.registry import sync_reference

log = logging.getLogger(__name__)

MIGRATIONS_DIR: Final = Path(__file__).with_name("migrations")
Backend = Literal["native", "timescale"]
#: The setting ``NXEM_DB_BACKEND`` (ops.services.settings.ServiceSettings.db_backend).
BackendChoice = Literal["auto", "native", "timescale"]
SETTING: Final = "NXEM_DB_BACKEND"
_LOCK_KEY: Final = 0x6E78656D  # "nxem": one migration runner per database at a time


@dataclass(frozen=True, slots=True)
class Migration:
    version: str  # "0003"
    name: str  # "0003_readings.sql"
    path: Path

    def sql_for(self, backend: Backend) -> tuple[Path, str]:
        path = (timescale.override(self.name) if backend == "timescale" else None) or self.path
        return path, path.read_text(encoding="utf-8")


def migrations() -> list[Migration]:
    """The migration files, in version order (a duplicate version is an error)."""
    out: list[Migration] = []
    for path in sorted(MIGRATIONS_DIR.glob("[0-9][0-9][0-9][0-9]_*.sql")):
        version = path.name[:4]
        if out and out[-1].version == version:
            raise StorageError(f"two migrations with version {version}: {out[-1].name}, {path.name}")
        out.append(Migration(version, path.name, path))
    return out


_BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS schema_migrations (
  version     text PRIMARY KEY,
  name        text NOT NULL,
  backend     text NOT NULL CHECK (backend IN ('native', 'timescale')),
  sha256      text NOT NULL,
  applied_at  timestamptz NOT NULL DEFAULT now()
)"""


def _backend(conn: psycopg.Connection[Any], choice: BackendChoice) -> Backend:
    row = conn.execute("SELECT backend FROM schema_migrations ORDER BY version LIMIT 1").fetchone()
    if row is not None:
        recorded: Backend = row[0]
        if choice != "auto" and choice != recorded:
            raise StorageError(f"{SETTING}={choice}, but this database was migrated for {recorded} "
                               f"and cannot switch; set {SETTING}={recorded} or auto, or use a new database")
        return recorded
    if choice == "native":
        return "native"
    missing = timescale.unavailable_reason(conn)
    if choice == "timescale" and missing is not None:
        raise StorageError(f"{SETTING}=timescale, but {missing}; install TimescaleDB 2.28 "
                           f"(../shared/tools/timescaledb/install.sh for the local runner) "
                           f"or set {SETTING}=native")
    return "timescale" if missing is None else "native"


def backend_of(conn: psycopg.Connection[Any]) -> Backend:
    """The storage path a migrated database uses."""
    return "timescale" if timescale.installed(conn) else "native"


def _apply(conn: psycopg.Connection[Any], m: Migration, backend: Backend) -> bool:
    path, text = m.sql_for(backend)
    digest = hashlib.sha256(text.encode()).hexdigest()
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        row = conn.execute("SELECT sha256, backend FROM schema_migrations WHERE version = %s",
                           (m.version,)).fetchone()
        if row is not None:
            if row[0] != digest:
                raise StorageError(f"migration {path} changed after it was applied "
                                   f"(recorded sha256 {row[0][:12]}…, file {digest[:12]}…): "
                                   "add a new migration instead of editing an applied one")
            return False
        try:
            conn.execute(text.encode())
        except psycopg.Error as err:
            if backend == "timescale" and path.parent == timescale.SQL_DIR:
                raise TimescaleError(f"migration {path.name}: {err}") from err
            raise StorageError(f"migration {path.name} failed: {err}") from err
        conn.execute("RESET ROLE")
        roles.ensure_owner_login(conn)
        conn.execute("INSERT INTO schema_migrations (version, name, backend, sha256) VALUES (%s, %s, %s, %s)",
                     (m.version, m.name, backend, digest))
    log.info("applied migration name=%s backend=%s", m.name, backend)
    return True


def set_role_passwords(conn: psycopg.Connection[Any], secrets_dir: Path) -> None:
    """ALTER ROLE … PASSWORD with a SCRAM verifier computed here (clear text never sent)."""
    for role in roles.LOGIN_ROLES:
        password = roles.ensure_password(role, secrets_dir)
        verifier = conn.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256")
        conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(
            sql.Identifier(role), sql.Literal(verifier.decode())))


def migrate(
    admin_dsn: str,
    *,
    backend: BackendChoice,
    secrets_dir: Path,
    policies: timescale.Policies | None = None,
) -> list[str]:
    """Apply the pending migrations as the superuser; return the names applied (may be []).
    ``backend`` is the caller's ``NXEM_DB_BACKEND`` (see the module doc)."""
    try:
        conn = psycopg.connect(admin_dsn, autocommit=True, application_name="nxem-migrate")
    except psycopg.Error as err:
        raise StorageError(f"migrate: cannot connect to {roles.mask(admin_dsn)}: {err}") from err
    with conn:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            conn.execute(_BOOKKEEPING)
        chosen = _backend(conn, backend)
        applied = [m.name for m in migrations() if _apply(conn, m, chosen)]
        with conn.transaction():
            roles.ensure_owner_login(conn)
            set_role_passwords(conn, secrets_dir)
            if chosen == "timescale":
                timescale.apply_policies(conn, policies or timescale.Policies())
        sync_reference(conn)  # coefficients and quotas from analytics, the one source (issue 14)
        for line in roles.owner_hba_warnings(conn):
            log.warning("%s could admit the schema owner %s without a password; put these first in "
                        "pg_hba.conf (deploy/README.md): %s", line, roles.OWNER, " | ".join(roles.OWNER_HBA_LINES))
    return applied
