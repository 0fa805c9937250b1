"""The role table's own rules (no I/O): a chain of roles each holding everything the one below
holds, granting bounded by the grantor's own role, and every route's permission known."""

from __future__ import annotations

import pytest

from portal import roles


def test_each_role_holds_everything_below_it() -> None:
    for lower, higher in zip(roles.ROLES, roles.ROLES[1:]):
        assert roles.PERMISSIONS[lower] < roles.PERMISSIONS[higher], (lower, higher)


@pytest.mark.parametrize(("role", "permission", "held"), [
    ("enterprise", "read", True), ("enterprise", "region", False),
    ("operator", "region", True), ("operator", "acknowledge", False), ("operator", "manage_users", False),
    ("inspector", "acknowledge", True), ("inspector", "manage_users", False),
    ("admin", "manage_users", True), ("admin", "acknowledge", True),
    ("king", "read", False), ("", "read", False),
])
def test_what_each_role_holds(role: str, permission: roles.Permission, held: bool) -> None:
    assert roles.has(role, permission) is held


@pytest.mark.parametrize("grantor", ["enterprise", "operator", "inspector", "admin", "king"])
@pytest.mark.parametrize("role", ["enterprise", "operator", "inspector", "admin", "king"])
def test_only_admins_grant_and_never_above_their_own(grantor: str, role: str) -> None:
    expected = grantor == "admin" and role in ("enterprise", "operator", "inspector", "admin")
    assert roles.can_grant(grantor, role) is expected


def test_holders_are_listed_from_the_least() -> None:
    assert roles.holders("acknowledge") == ("inspector", "admin")
    assert roles.holders("read") == ("enterprise", "operator", "inspector", "admin")


def test_a_route_without_a_rule_is_refused_and_head_is_get() -> None:
    with pytest.raises(roles.NoRule):
        roles.route_permission("GET", "/api/v1/not-in-the-table")
    with pytest.raises(roles.NoRule):
        roles.route_permission("DELETE", "/api/v1/users")
    assert roles.route_permission("HEAD", "/api/v1/me") == "read"
    assert roles.route_permission("POST", "/api/v1/users") == "manage_users"
    assert roles.route_permission("POST", "/login") is None
