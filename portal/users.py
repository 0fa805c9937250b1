"""Portal users: create, look up, demo accounts. CLI-friendly (plain psycopg connection in).

Roles (closed set, and what each may do): ``portal.roles``. The command line
(``nxem portal-user``, as the database superuser) creates any role; through the
API only an ``admin`` creates users (``portal.roles.can_grant``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from nxem.errors import NxemError
from portal import security
from portal.roles import ROLES, Role

DEMO_FILE_NAME = "demo-users.txt"


class UserError(NxemError):
    """A user could not be created as asked (bad role/binding/username, duplicate)."""


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    role: Role
    enterprise_id: str | None
    disabled: bool


def _check(username: str, password: str, role: str, enterprise_id: str | None) -> None:
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if (role == "enterprise") != (enterprise_id is not None):
        raise UserError("an enterprise user needs exactly one enterprise_id; other roles none")
    if enterprise_id is not None and (len(enterprise_id) != 18 or not enterprise_id.isalnum()):
        raise UserError("enterprise_id must be an 18-character unified social credit code")
    if len(password) < 12:
        raise UserError("password must have at least 12 characters")
    if not username or username != username.lower() or len(username) > 63:
        raise UserError("username must be lower-case, 2..63 characters")


def create_user(conn: psycopg.Connection[Any], username: str, password: str, role: str,
                enterprise_id: str | None) -> User:
    """Insert a user with an argon2id hash of ``password``; raises ``UserError`` on bad input."""
    _check(username, password, role, enterprise_id)
    try:
        with conn.transaction():
            row = conn.execute(
                "INSERT INTO portal_users (username, password_hash, role, enterprise_id)"
                " VALUES (%s, %s, %s, %s) RETURNING id",
                (username, security.hash_password(password), role, enterprise_id),
            ).fetchone()
    except psycopg.errors.UniqueViolation as err:
        raise UserError(f"user {username!r} exists") from err
    except psycopg.errors.ForeignKeyViolation as err:
        raise UserError(f"no enterprise {enterprise_id!r} in the registry") from err
    except psycopg.errors.CheckViolation as err:
        raise UserError(f"user {username!r} refused by the database: {err.diag.constraint_name}") from err
    assert row is not None
    return User(int(row[0]), username, role, enterprise_id, False)  # type: ignore[arg-type]


def set_password(conn: psycopg.Connection[Any], username: str, password: str) -> None:
    if len(password) < 12:
        raise UserError("password must have at least 12 characters")
    with conn.transaction():
        cur = conn.execute("UPDATE portal_users SET password_hash = %s WHERE username = %s",
                           (security.hash_password(password), username))
        if cur.rowcount != 1:
            raise UserError(f"no user {username!r}")
        # a changed password ends every session of that user
        conn.execute("DELETE FROM portal_sessions WHERE user_id = (SELECT id FROM portal_users"
                     " WHERE username = %s)", (username,))


def get_user(conn: psycopg.Connection[Any], username: str) -> tuple[User, str] | None:
    """The user and its password hash, or None."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute("SELECT id, username, role, enterprise_id, disabled, password_hash"
                          " FROM portal_users WHERE username = %s", (username,)).fetchone()
    if row is None:
        return None
    return User(row["id"], row["username"], row["role"], row["enterprise_id"], row["disabled"]), row["password_hash"]


def list_users(conn: psycopg.Connection[Any]) -> list[User]:
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute("SELECT id, username, role, enterprise_id, disabled FROM portal_users"
                           " ORDER BY username").fetchall()
    return [User(r["id"], r["username"], r["role"], r["enterprise_id"], r["disabled"]) for r in rows]


def _default_demo_file() -> Path:
    # Imported here: the CLI passes no settings, and the data folder is an NXEM_ setting.
    from portal.settings import PortalSettings

    return PortalSettings().secrets_dir / DEMO_FILE_NAME


def _read_demo_file(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line and not line.startswith("#"):
                parts = line.split("\t")
                if len(parts) >= 2:
                    out[parts[0]] = parts[1]
    return out


def _write_demo_file(path: Path, rows: list[tuple[str, str, str, str | None]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("# NXEM portal demo users (generated; do not commit)\n")
        fh.write("# username\tpassword\trole\tenterprise_id\n")
        for username, password, role, eid in rows:
            fh.write(f"{username}\t{password}\t{role}\t{eid or ''}\n")
    os.chmod(tmp, 0o600)
    tmp.replace(path)


def ensure_demo_users(conn: psycopg.Connection[Any], enterprise_ids: list[str] | None = None,
                      secrets_file: Path | None = None) -> list[tuple[str, str, str]]:
    """Create (or repair) the demo users and return ``[(username, password, role)]``.

    Users: ``demo-inspector``, ``demo-operator`` and ``demo-enterprise`` (+ ``demo-enterprise2``)
    bound to the first two enterprises (``enterprise_ids``, or the registry's first two by id).
    Passwords are generated, kept in ``$NXEM_DATA_DIR/secrets/demo-users.txt`` (0600) and
    reused while they still verify; they are never logged.
    """
    path = secrets_file or _default_demo_file()
    if enterprise_ids is None:
        from storage.read import registry  # late: needs the storage schema

        enterprise_ids = registry.first_enterprise_ids(conn, 2)
    wanted: list[tuple[str, Role, str | None]] = [("demo-admin", "admin", None), ("demo-inspector", "inspector", None),
                                                  ("demo-operator", "operator", None)]
    for i, ent in enumerate(enterprise_ids[:2]):
        wanted.append(("demo-enterprise" if i == 0 else f"demo-enterprise{i + 1}", "enterprise", ent))
    known = _read_demo_file(path)
    rows: list[tuple[str, str, str, str | None]] = []
    for username, role, eid in wanted:
        found = get_user(conn, username)
        old = known.get(username)
        if found is not None and found[0].role == role and found[0].enterprise_id == eid \
                and old is not None and security.verify_password(found[1], old):
            rows.append((username, old, role, eid))
            continue
        password = security.new_password()
        if found is None:
            create_user(conn, username, password, role, eid)
        else:
            with conn.transaction():
                conn.execute("UPDATE portal_users SET role = %s, enterprise_id = %s, disabled = false"
                             " WHERE username = %s", (role, eid, username))
            set_password(conn, username, password)
        rows.append((username, password, role, eid))
    _write_demo_file(path, rows)
    return [(u, p, r) for u, p, r, _ in rows]
