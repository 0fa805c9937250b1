"""Roles hold: every route × every role (and no sign-in) × an object of the caller's own
enterprise and of another, against the expectations written out here by hand -- independent of
``portal.roles``, which the portal enforces. The routes are enumerated from the application, so
a new route without an entry here (and in ``portal.roles.ROUTES``) fails.

The policy, in words (the issue's): only administrators create users and never with a role
above their own; operators read the region but do not acknowledge alerts; inspectors and
administrators acknowledge; an enterprise user reads its own enterprise only -- another's
object by id is 404, another enterprise named in a parameter is 403.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Final

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from httpx2 import Response
from starlette.routing import Mount

from portal import roles

from .conftest import form_login, token_for
from .fixtures import PASSWORD, World, open_alert

pytestmark = pytest.mark.integration

ENTERPRISE, OPERATOR, INSPECTOR, ADMIN = "enterprise", "operator", "inspector", "admin"
ALL_ROLES: Final = (ENTERPRISE, OPERATOR, INSPECTOR, ADMIN)
#: The user of each role in the test world (the enterprise user is enterprise A's).
USERS: Final = {ENTERPRISE: "ent-a", OPERATOR: "oper", INSPECTOR: "insp", ADMIN: "admin"}

SIGNED_IN: Final = frozenset(ALL_ROLES)
REGION: Final = frozenset({OPERATOR, INSPECTOR, ADMIN})
ACKNOWLEDGE: Final = frozenset({INSPECTOR, ADMIN})
MANAGE_USERS: Final = frozenset({ADMIN})


@dataclass(frozen=True)
class Call:
    """How to use a route: ``url`` with ``{site}``, ``{meter}``, ``{alert}``, ``{ent}`` of the
    tenant under test; ``tenant``: it names that tenant's object, so an enterprise user gets
    ``hidden`` for the other enterprise's; ``ok``: the statuses of a use that is allowed."""

    url: str
    tenant: bool = False
    hidden: int = 404
    ok: frozenset[int] = frozenset({200})
    page: bool = False  # a page: a cookie session, its forms carry the CSRF field


#: Who may use each route (``None``: anyone, signed in or not), and how to call it.
EXPECTED: Final[dict[tuple[str, str], tuple[frozenset[str] | None, Call]]] = {
    ("GET", "/login"): (None, Call("/login", ok=frozenset({200, 303}))),
    ("POST", "/login"): (None, Call("/login", ok=frozenset({303}))),
    ("POST", "/api/v1/auth/token"): (None, Call("/api/v1/auth/token")),
    ("GET", "/api/v1/openapi.json"): (None, Call("/api/v1/openapi.json")),
    ("GET", "/docs"): (None, Call("/docs")),
    ("GET", "/static"): (None, Call("/static/portal.css")),
    ("GET", "/healthz"): (None, Call("/healthz")),
    ("GET", "/readyz"): (None, Call("/readyz", ok=frozenset({200, 503}))),  # 503 until the first ping
    ("GET", "/metrics"): (None, Call("/metrics")),
    ("POST", "/api/v1/auth/logout"): (SIGNED_IN, Call("/api/v1/auth/logout", ok=frozenset({204}))),
    ("GET", "/api/v1/me"): (SIGNED_IN, Call("/api/v1/me")),
    ("GET", "/api/v1/enterprises"): (SIGNED_IN, Call("/api/v1/enterprises")),
    ("GET", "/api/v1/sites"): (SIGNED_IN, Call("/api/v1/sites?enterprise_id={ent}", tenant=True, hidden=403)),
    ("GET", "/api/v1/sites/{site_id}"): (SIGNED_IN, Call("/api/v1/sites/{site}", tenant=True)),
    ("GET", "/api/v1/meters"): (SIGNED_IN, Call("/api/v1/meters?site_id={site}", tenant=True)),
    ("GET", "/api/v1/meters/{meter_id}/readings"): (SIGNED_IN, Call("/api/v1/meters/{meter}/readings", tenant=True)),
    ("GET", "/api/v1/sites/{site_id}/energy"): (SIGNED_IN, Call("/api/v1/sites/{site}/energy", tenant=True)),
    ("GET", "/api/v1/sites/{site_id}/pue"): (SIGNED_IN, Call("/api/v1/sites/{site}/pue", tenant=True)),
    ("GET", "/api/v1/sites/{site_id}/unit-product"): (
        SIGNED_IN, Call("/api/v1/sites/{site}/unit-product?product=calcium_carbide", tenant=True)),
    ("GET", "/api/v1/alerts"): (SIGNED_IN, Call("/api/v1/alerts?enterprise_id={ent}", tenant=True, hidden=403)),
    ("GET", "/api/v1/alerts/stream"): (
        SIGNED_IN, Call("/api/v1/alerts/stream?timeout_s=0.2&enterprise_id={ent}", tenant=True, hidden=403)),
    ("GET", "/api/v1/alerts/{alert_id}"): (SIGNED_IN, Call("/api/v1/alerts/{alert}", tenant=True)),
    ("GET", "/api/v1/export/{table}.csv"): (
        SIGNED_IN, Call("/api/v1/export/sites.csv?enterprise_id={ent}", tenant=True, hidden=403)),
    ("POST", "/logout"): (SIGNED_IN, Call("/logout", ok=frozenset({303}), page=True)),
    ("GET", "/"): (SIGNED_IN, Call("/", ok=frozenset({303}), page=True)),
    ("GET", "/alerts"): (SIGNED_IN, Call("/alerts", page=True)),
    ("GET", "/alerts/{alert_id}"): (SIGNED_IN, Call("/alerts/{alert}", tenant=True, page=True)),
    ("GET", "/sites"): (SIGNED_IN, Call("/sites", page=True)),
    ("GET", "/sites/{site_id}"): (SIGNED_IN, Call("/sites/{site}", tenant=True, page=True)),
    ("GET", "/api/v1/overview"): (REGION, Call("/api/v1/overview")),
    ("GET", "/board"): (REGION, Call("/board", page=True)),
    ("GET", "/overview"): (REGION, Call("/overview", page=True)),
    ("POST", "/api/v1/alerts/{alert_id}/acknowledge"): (
        ACKNOWLEDGE, Call("/api/v1/alerts/{alert}/acknowledge", tenant=True)),
    ("POST", "/alerts/{alert_id}/acknowledge"): (
        ACKNOWLEDGE, Call("/alerts/{alert}/acknowledge", tenant=True, ok=frozenset({303}), page=True)),
    ("GET", "/api/v1/users"): (MANAGE_USERS, Call("/api/v1/users")),
    ("POST", "/api/v1/users"): (MANAGE_USERS, Call("/api/v1/users", ok=frozenset({201}))),
}


def app_routes(client: TestClient) -> set[tuple[str, str]]:
    """(method, path) of every route the application serves (HEAD goes with GET)."""
    found: set[tuple[str, str]] = set()
    for ctx in iter_route_contexts(client.app.routes):  # type: ignore[attr-defined]
        if isinstance(ctx.original_route, Mount):
            found.add(("GET", ctx.original_route.path))
            continue
        assert ctx.path is not None and ctx.methods is not None, ctx
        found |= {(m, ctx.path) for m in ctx.methods if m != "HEAD"}
    return found


def test_every_route_has_an_expectation_and_an_access_rule(client: TestClient) -> None:
    served = app_routes(client)
    assert served - set(EXPECTED) == set(), "routes without an expectation in this test"
    assert set(EXPECTED) - served == set(), "expectations of routes the portal no longer serves"
    assert set(roles.ROUTES) == served, "portal.roles.ROUTES must hold exactly the served routes"


@pytest.mark.parametrize("route", sorted(EXPECTED))
def test_the_access_table_is_the_expected_policy(route: tuple[str, str]) -> None:
    need = roles.ROUTES[route]
    allowed = None if need is None else frozenset(r for r in ALL_ROLES if roles.has(r, need))
    assert allowed == EXPECTED[route][0]


# ---------------------------------------------------------------- the walk

class Sessions:
    """Bearer tokens and cookie sessions per role, made once; fresh ones for the logouts."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self._tokens: dict[str, dict[str, str]] = {}
        self._browsers: dict[str, tuple[TestClient, str]] = {}
        self.serial = itertools.count(1)

    def token(self, role: str, fresh: bool = False) -> dict[str, str]:
        """The role's bearer token; ``fresh``: a new one of its own (for a logout to revoke)."""
        if fresh:
            return token_for(self.client, USERS[role])
        if role not in self._tokens:
            self._tokens[role] = token_for(self.client, USERS[role])
        return self._tokens[role]

    def browser(self, role: str, fresh: bool = False) -> tuple[TestClient, str]:
        """A cookie-session client and its CSRF token (``fresh``: a new session of its own)."""
        if fresh or role not in self._browsers:
            c = TestClient(self.client.app, raise_server_exceptions=False)
            assert form_login(c, USERS[role], PASSWORD).status_code == 303
            made = (c, str(c.get("/api/v1/me").json()["csrf_token"]))
            if fresh:
                return made
            self._browsers[role] = made
        return self._browsers[role]


@pytest.fixture(scope="module")
def sessions(client: TestClient, admin_user: str) -> Iterator[Sessions]:
    yield Sessions(client)


def _call(s: Sessions, world: World, route: tuple[str, str], call: Call, role: str | None, tenant: str) -> Response:
    method, path = route
    own = tenant == "own"
    ent = world.ent_a if own else world.ent_b
    site = world.site_a if own else world.site_b
    meter = world.meters_a[0] if own else world.meters_b[0]
    alert = world.alert_a if own else world.alert_b
    n = next(s.serial)
    if path.endswith("/acknowledge") and role is not None:  # a fresh unacknowledged alert of the tenant
        alert = open_alert(world.admin_dsn, ent, site, f"walk_{n}", datetime.now(timezone.utc))
    url = call.url.format(site=site, meter=meter, alert=alert, ent=ent)
    logout = path in ("/logout", "/api/v1/auth/logout")
    if route == ("POST", "/login"):
        c = TestClient(s.client.app, raise_server_exceptions=False)
        return form_login(c, USERS[role or INSPECTOR], PASSWORD)
    if route == ("POST", "/api/v1/auth/token"):
        return s.client.post(url, json={"username": USERS[role or INSPECTOR], "password": PASSWORD})
    body = None
    if path.endswith("/acknowledge"):
        body = {"note": f"walk {n}"}
    elif route == ("POST", "/api/v1/users"):
        body = {"username": f"walk-user-{n}", "password": PASSWORD, "role": ENTERPRISE, "enterprise_id": ent}
    if role is None:
        c = TestClient(s.client.app, raise_server_exceptions=False)
        return c.request(method, url, json=body if not call.page else None,
                         data=body if call.page else None, follow_redirects=False)
    if call.page:
        c, csrf = s.browser(role, fresh=logout)
        data = {**(body or {}), "csrf": csrf} if method == "POST" else None
        return c.request(method, url, data=data, follow_redirects=False)
    return s.client.request(method, url, json=body, headers=s.token(role, fresh=logout), follow_redirects=False)


@pytest.mark.parametrize("tenant", ["own", "other"])
@pytest.mark.parametrize("role", [None, *ALL_ROLES], ids=lambda r: r or "anonymous")
@pytest.mark.parametrize("route", sorted(EXPECTED), ids=lambda r: f"{r[0]} {r[1]}")
def test_walk(sessions: Sessions, world: World, route: tuple[str, str], role: str | None, tenant: str) -> None:
    allowed, call = EXPECTED[route]
    r = _call(sessions, world, route, call, role, tenant)
    if allowed is None:
        assert r.status_code in call.ok, r.text
    elif role is None:
        assert r.status_code == 401, r.text
    elif role not in allowed:
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", r.text
    elif call.tenant and role == ENTERPRISE and tenant == "other":
        assert r.status_code == call.hidden, r.text
        assert world.ent_b not in r.text and "宁东" not in r.text
    else:
        assert r.status_code in call.ok, r.text


# ---------------------------------------------------------------- granting roles

#: Who may create a user of which role: only administrators, any role up to their own.
GRANTS: Final = {(ADMIN, ENTERPRISE), (ADMIN, OPERATOR), (ADMIN, INSPECTOR), (ADMIN, ADMIN)}


@pytest.mark.parametrize("new_role", ALL_ROLES)
@pytest.mark.parametrize("grantor", ALL_ROLES)
def test_no_role_grants_above_its_own(sessions: Sessions, world: World, grantor: str, new_role: str) -> None:
    username = f"grant-{grantor}-{new_role}"
    body = {"username": username, "password": PASSWORD, "role": new_role,
            "enterprise_id": world.ent_a if new_role == ENTERPRISE else None}
    r = sessions.client.post("/api/v1/users", json=body, headers=sessions.token(grantor))
    if (grantor, new_role) in GRANTS:
        assert r.status_code == 201 and r.json()["role"] == new_role, r.text
        assert token_for(sessions.client, username)  # the new user signs in
    else:
        assert r.status_code == 403, r.text
    assert roles.can_grant(grantor, new_role) == ((grantor, new_role) in GRANTS)


def test_an_enterprise_user_cannot_widen_a_filter_by_alias(sessions: Sessions, world: World) -> None:
    """The enterprise parameter is checked as given: a lower-case or padded code of another
    enterprise is refused by its pattern (422), never compared loosely."""
    for value in (world.ent_b.lower(), f" {world.ent_b}", f"{world.ent_b}\u0000"):
        r = sessions.client.get("/api/v1/alerts", params={"enterprise_id": value}, headers=sessions.token(ENTERPRISE))
        assert r.status_code == 422, (value, r.text)
    assert re.fullmatch(r"[0-9A-HJ-NP-RTUWXY]{18}", world.ent_b)
