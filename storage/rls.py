"""Binding a transaction to a tenant for row-level security (the portal's sessions).

Every tenant table's policy and every tenant view calls ``nxem_visible(enterprise_id)``
(migration 0001), which reads two transaction-local settings:

* ``app.enterprise_id = '<uscc>'`` -- the transaction sees that enterprise only;
* ``app.role = 'inspector'`` -- the transaction sees every enterprise.

Neither set -> the ``nxem_portal`` role sees nothing. ``tenant_transaction`` always sets both
(one to the empty string) with ``set_config(..., is_local => true)``, so a value set earlier
on the session cannot leak into the transaction and nothing outlives it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import pq

from storage import uscc
from storage.errors import StorageError


@contextmanager
def tenant_transaction(
    conn: psycopg.Connection[Any], enterprise_id: str | None, inspector: bool = False
) -> Iterator[psycopg.Connection[Any]]:
    """A transaction in which ``conn`` sees one enterprise (``enterprise_id``), every enterprise
    (``inspector=True``), or nothing (neither). Must not be nested in another transaction: the
    binding would outlive this block until the outer transaction ends."""
    if inspector and enterprise_id is not None:
        raise ValueError("bind an enterprise or the inspector role, not both")
    if enterprise_id is not None and not uscc.is_valid(enterprise_id):
        raise ValueError(f"not a unified social credit code: {enterprise_id!r}")
    if conn.info.transaction_status != pq.TransactionStatus.IDLE:
        raise StorageError("tenant_transaction needs an idle connection (no open transaction)")
    with conn.transaction():
        conn.execute("SELECT set_config('app.enterprise_id', %s, true), set_config('app.role', %s, true)",
                     (enterprise_id or "", "inspector" if inspector else ""))
        yield conn
