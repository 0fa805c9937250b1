"""The portal's PostgreSQL adapter: a connection pool as the ``nxem_portal`` role, and the one
place where a request's principal is bound to the database tenant.

Enterprise data is protected by row-level security in the database (``storage``'s policies
on ``app.*`` settings, bound per transaction by ``storage.tenant_transaction``); the portal
never connects as a role that bypasses it. The auth tables (``portal_*``) carry no enterprise
data and are read in an unbound transaction (``system``) to find out who is asking.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from nxem.errors import BackendUnavailable
from portal.users import User
from storage.rls import tenant_transaction

log = logging.getLogger(__name__)


def tenant_of(user: User) -> tuple[str | None, bool]:
    """(enterprise_id, inspector) for ``storage.tenant_transaction``: the only mapping of roles
    to database visibility. Inspectors and operators read every enterprise; an enterprise
    user only its own."""
    if user.role == "enterprise":
        return user.enterprise_id, False
    return None, True


class Database:
    """A small pool of connections as the portal role (``dsn``)."""

    def __init__(self, dsn: str, max_size: int = 10) -> None:
        self._pool = ConnectionPool(dsn, min_size=1, max_size=max_size, open=False,
                                    kwargs={"application_name": "nxem-portal", "connect_timeout": 10},
                                    name="nxem-portal")

    def open(self) -> None:
        self._pool.open(wait=False)

    def close(self) -> None:
        self._pool.close()

    @contextmanager
    def _conn(self) -> Iterator[psycopg.Connection[Any]]:
        try:
            with self._pool.connection(timeout=10) as conn:
                yield conn
        except PoolTimeout as err:
            raise BackendUnavailable(f"PostgreSQL pool: {err}") from err
        except psycopg.OperationalError as err:
            raise BackendUnavailable(f"PostgreSQL: {err}") from err

    @contextmanager
    def system(self) -> Iterator[psycopg.Connection[Any]]:
        """A transaction with no tenant bound: only for the portal's own auth tables."""
        with self._conn() as conn, conn.transaction():
            yield conn

    @contextmanager
    def tenant(self, user: User) -> Iterator[psycopg.Connection[Any]]:
        """A transaction bound to what ``user`` may see (RLS does the filtering)."""
        enterprise_id, inspector = tenant_of(user)
        with self._conn() as conn, tenant_transaction(conn, enterprise_id, inspector):
            yield conn
