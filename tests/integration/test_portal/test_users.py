"""Users created from code (CLI) and the demo users with generated passwords."""

from __future__ import annotations

import stat
from pathlib import Path

import psycopg
import pytest

from portal import security
from portal.users import UserError, create_user, ensure_demo_users, get_user

from .fixtures import PASSWORD, World

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(("username", "password", "role", "ent"), [
    ("u1", PASSWORD, "king", None),
    ("u2", PASSWORD, "enterprise", None),
    ("u3", PASSWORD, "inspector", "91640500MA7DCA001E"),
    ("u4", "short", "inspector", None),
    ("Upper", PASSWORD, "inspector", None),
])
def test_create_user_refuses_bad_input(world: World, username: str, password: str, role: str,
                                       ent: str | None) -> None:
    with psycopg.connect(world.admin_dsn) as conn, pytest.raises(UserError):
        create_user(conn, username, password, role, ent)


def test_unknown_enterprise_is_a_user_error(world: World) -> None:
    """The registry's foreign key refuses it; the caller gets the error of bad input (the API
    answers 400 with it), not the database's."""
    with psycopg.connect(world.admin_dsn) as conn, pytest.raises(UserError, match="no enterprise"):
        create_user(conn, "ghost-ent", PASSWORD, "enterprise", "91640100MA7PLB00ZZ")


def test_demo_users_are_stable_and_secret(world: World, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "secrets" / "demo-users.txt"
    with psycopg.connect(world.admin_dsn) as conn:
        first = ensure_demo_users(conn, secrets_file=path)
        second = ensure_demo_users(conn, secrets_file=path)
        roles = {u: r for u, _, r in first}
        assert roles == {"demo-admin": "admin", "demo-inspector": "inspector", "demo-operator": "operator",
                         "demo-enterprise": "enterprise", "demo-enterprise2": "enterprise"}
        assert first == second, "passwords are reused while they verify"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        for username, password, _ in first:
            found = get_user(conn, username)
            assert found is not None and security.verify_password(found[1], password)
            assert password in path.read_text()
            assert password not in caplog.text
        ent = get_user(conn, "demo-enterprise")
        assert ent is not None and ent[0].enterprise_id == world.ent_b  # first by id
        path.unlink()  # lost file: passwords are regenerated, old ones stop working
        third = ensure_demo_users(conn, secrets_file=path)
        assert {p for _, p, _ in third}.isdisjoint({p for _, p, _ in first})
