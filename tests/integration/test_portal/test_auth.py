"""Logins, tokens, cookies, CSRF, the login rate limit and role checks."""

from __future__ import annotations

import re

import psycopg
import pytest
from fastapi.testclient import TestClient

from portal.app import create_app
from portal.settings import PortalSettings
from portal.users import create_user
from storage.roles import dsn_for

from .conftest import form_login, token_for
from .fixtures import PASSWORD, World

pytestmark = pytest.mark.integration


def test_token_and_me(client: TestClient, ent_a: dict[str, str], world: World) -> None:
    r = client.get("/api/v1/me", headers=ent_a)
    assert r.status_code == 200
    assert r.json() == {"username": "ent-a", "role": "enterprise", "enterprise_id": world.ent_a, "csrf_token": None}


@pytest.mark.parametrize(("username", "password"), [("insp", "wrong-password"), ("nobody", PASSWORD)])
def test_bad_credentials_are_one_401(client: TestClient, username: str, password: str) -> None:
    r = client.post("/api/v1/auth/token", json={"username": username, "password": password})
    assert r.status_code == 401
    assert r.json() == {"error": {"code": "bad_credentials", "message": "unknown user or wrong password"}}


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic abc"},
                                     {"Cookie": "nxem_session=forged"}])
def test_no_valid_credentials_is_401(client: TestClient, headers: dict[str, str]) -> None:
    r = client.get("/api/v1/alerts", headers=headers)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "not_authenticated"
    assert r.headers["www-authenticate"] == "Bearer"


def _age_attempts(dsn: str, minutes: int) -> None:
    """Move every counted login attempt ``minutes`` into the past (the window passing)."""
    with psycopg.connect(dsn) as conn:
        conn.execute("UPDATE portal_login_attempts SET attempts = array(SELECT a - make_interval(mins => %s)"
                     " FROM unnest(attempts) a)", (minutes,))


def test_login_rate_limit_per_user_and_ip(client: TestClient, world: World) -> None:
    with psycopg.connect(world.admin_dsn) as conn:
        create_user(conn, "rate-limited", PASSWORD, "inspector", None)
    for _ in range(5):
        r = client.post("/api/v1/auth/token", json={"username": "rate-limited", "password": "wrong-password"})
        assert r.status_code == 401
    r = client.post("/api/v1/auth/token", json={"username": "rate-limited", "password": PASSWORD})
    assert r.status_code == 429, "the right password must not get through during the lockout"
    assert 1 <= int(r.headers["retry-after"]) <= 301
    assert r.json()["error"]["code"] == "rate_limited"
    # another user from the same address is not locked out by this user's failures
    assert client.post("/api/v1/auth/token", json={"username": "oper", "password": PASSWORD}).status_code == 200
    # nor is this user from another address
    elsewhere = TestClient(client.app, raise_server_exceptions=False, client=("192.0.2.7", 40000))
    assert elsewhere.post("/api/v1/auth/token", json={"username": "rate-limited", "password": PASSWORD}
                          ).status_code == 200
    _age_attempts(world.admin_dsn, 6)  # the 300 s window passes
    assert client.post("/api/v1/auth/token", json={"username": "rate-limited", "password": PASSWORD}).status_code == 200


def test_forwarded_for_from_an_untrusted_peer_is_ignored(client: TestClient, world: World) -> None:
    """No trusted proxy is configured: X-Forwarded-For cannot spread one address's guesses
    over made-up addresses (5 failures, each claiming another address, are 5 from this one)."""
    with psycopg.connect(world.admin_dsn) as conn:
        create_user(conn, "xff-victim", PASSWORD, "inspector", None)
    c = TestClient(client.app, raise_server_exceptions=False, client=("198.51.100.9", 40000))
    for i in range(5):
        r = c.post("/api/v1/auth/token", json={"username": "xff-victim", "password": "wrong-password"},
                   headers={"X-Forwarded-For": f"203.0.113.{i + 1}"})
        assert r.status_code == 401
    r = c.post("/api/v1/auth/token", json={"username": "xff-victim", "password": PASSWORD},
               headers={"X-Forwarded-For": "203.0.113.99"})
    assert r.status_code == 429
    with psycopg.connect(world.admin_dsn) as conn:
        assert conn.execute("SELECT DISTINCT ip FROM portal_login_failures WHERE username = 'xff-victim'"
                            ).fetchall() == [("198.51.100.9",)]


def test_logout_revokes_the_token(client: TestClient) -> None:
    h = token_for(client, "insp")
    assert client.post("/api/v1/auth/logout", headers=h).status_code == 204
    assert client.get("/api/v1/me", headers=h).status_code == 401


def test_cookie_login_sets_a_safe_cookie_and_csrf_guards_api_posts(client: TestClient, world: World) -> None:
    c = TestClient(client.app, raise_server_exceptions=False)
    r = form_login(c, "insp", PASSWORD, "/board")
    assert r.status_code == 303 and r.headers["location"] == "/board"
    cookie = r.headers["set-cookie"]
    assert "nxem_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert c.get("/board").status_code == 200
    body = {"note": "checked on site"}
    r = c.post(f"/api/v1/alerts/{world.alert_b}/acknowledge", json=body)
    assert r.status_code == 403 and "X-CSRF-Token" in r.json()["error"]["message"]
    csrf = c.get("/api/v1/me").json()["csrf_token"]
    r = c.post(f"/api/v1/alerts/{world.alert_b}/acknowledge", json=body, headers={"X-CSRF-Token": "0" * 64})
    assert r.status_code == 403
    r = c.post(f"/api/v1/alerts/{world.alert_b}/acknowledge", json=body, headers={b"X-CSRF-Token": ("é" * 64).encode("latin-1")})
    assert r.status_code == 403  # a non-ASCII token is a wrong token, not an error
    r = c.post(f"/api/v1/alerts/{world.alert_b}/acknowledge", json=body, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200, r.text


def test_session_cookie_is_secure_by_default(portal_settings: PortalSettings) -> None:
    """Outside the local demo (which serves plain http and says so) the cookie is Secure."""
    default = PortalSettings.model_fields["portal_cookie_secure"].default
    assert default is True
    secure = portal_settings.model_copy(update={"portal_cookie_secure": default})
    c = TestClient(create_app(secure, dsn_for("nxem_portal", secure)), raise_server_exceptions=False,
                   base_url="https://testserver")  # a Secure cookie goes back over https only
    with c:
        r = form_login(c, "ent-a", PASSWORD)
    assert r.status_code == 303
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("nxem_session=") and "; Secure" in cookie and "HttpOnly" in cookie


def test_login_form_needs_its_csrf_token(client: TestClient) -> None:
    c = TestClient(client.app, raise_server_exceptions=False)
    r = c.post("/login", data={"username": "insp", "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 403 and "nxem_session" not in r.headers.get("set-cookie", "")
    page = c.get("/login")  # a token for another browser's nonce does not do either
    other = TestClient(client.app, raise_server_exceptions=False)
    token = re.search(r'name="csrf" value="([0-9a-f]{64})"', page.text)
    assert token is not None
    r = other.post("/login", data={"username": "insp", "password": PASSWORD, "csrf": token[1]},
                   follow_redirects=False)
    assert r.status_code == 403 and "nxem_session" not in r.headers.get("set-cookie", "")


@pytest.mark.parametrize("headers", [{"Origin": "https://evil.example"}, {"Origin": "null"},
                                     {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"}])
def test_cross_origin_form_post_is_refused(client: TestClient, headers: dict[str, str]) -> None:
    c = TestClient(client.app, raise_server_exceptions=False)
    page = c.get("/login")
    token = re.search(r'name="csrf" value="([0-9a-f]{64})"', page.text)
    assert token is not None
    r = c.post("/login", data={"username": "insp", "password": PASSWORD, "csrf": token[1]},
               headers=headers, follow_redirects=False)
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    r = c.post("/login", data={"username": "insp", "password": PASSWORD, "csrf": token[1]},
               headers={"Origin": "http://testserver"}, follow_redirects=False)
    assert r.status_code == 303, "the same origin signs in"


def test_wrong_login_form_shows_the_error_without_a_cookie(client: TestClient) -> None:
    c = TestClient(client.app, raise_server_exceptions=False)
    r = form_login(c, "ent-b", "nope-nope-nope")
    assert r.status_code == 401 and "Unknown user or wrong password" in r.text
    assert "nxem_session" not in r.headers.get("set-cookie", "")


def test_pages_redirect_to_login_without_a_session(client: TestClient) -> None:
    c = TestClient(client.app, raise_server_exceptions=False)
    r = c.get("/board", headers={"Accept": "text/html"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


@pytest.mark.parametrize("target", ["//evil.example/x", "/\\evil.example", "https://evil.example", "/login"])
def test_sign_in_never_redirects_off_the_portal(client: TestClient, target: str) -> None:
    c = TestClient(client.app, raise_server_exceptions=False)
    r = form_login(c, "ent-a", PASSWORD, target)
    assert r.status_code == 303 and r.headers["location"] == "/sites"


@pytest.mark.parametrize(("who", "method", "path", "status"), [
    ("ent_a", "GET", "/api/v1/overview", 403),
    ("ent_a", "GET", "/api/v1/users", 403),
    ("ent_a", "POST", "/api/v1/alerts/1/acknowledge", 403),
    ("oper", "POST", "/api/v1/alerts/1/acknowledge", 403),
    ("oper", "GET", "/api/v1/users", 403),
    ("oper", "POST", "/api/v1/users", 403),
    ("insp", "GET", "/api/v1/users", 403),
    ("insp", "POST", "/api/v1/users", 403),
    ("admin", "GET", "/api/v1/users", 200),
    ("oper", "GET", "/api/v1/overview", 200),
    ("insp", "GET", "/api/v1/overview", 200),
    ("ent_a", "GET", "/api/v1/export/overview.csv", 403),
])
def test_role_matrix(client: TestClient, request: pytest.FixtureRequest, who: str, method: str, path: str,
                     status: int) -> None:
    headers = request.getfixturevalue(who)
    body = {"note": "x"} if path.endswith("acknowledge") else {
        "username": "made-by-test", "password": PASSWORD, "role": "inspector"} if method == "POST" else None
    r = client.request(method, path, headers=headers, json=body)
    assert r.status_code == status, r.text
    if status == 403:
        assert r.json()["error"]["code"] == "forbidden"


def test_admin_creates_users_and_bad_bindings_are_400(client: TestClient, admin: dict[str, str],
                                                       world: World) -> None:
    ok = {"username": "new-ent-user", "password": PASSWORD, "role": "enterprise", "enterprise_id": world.ent_b}
    r = client.post("/api/v1/users", headers=admin, json=ok)
    assert r.status_code == 201 and r.json()["enterprise_id"] == world.ent_b
    assert client.post("/api/v1/users", headers=admin, json=ok).status_code == 400  # exists
    r = client.post("/api/v1/users", headers=admin, json={**ok, "username": "x-unbound", "enterprise_id": None})
    assert r.status_code == 400 and "enterprise_id" in r.json()["error"]["message"]
    # a well-formed code of an enterprise the registry does not hold: 400, not a database error
    r = client.post("/api/v1/users", headers=admin, json={**ok, "username": "x-ghost",
                                                          "enterprise_id": "91640100MA7PLB00XX"})
    assert r.status_code == 400 and "no enterprise" in r.json()["error"]["message"], r.text
    assert token_for(client, "new-ent-user")


def test_an_operator_cannot_make_an_inspector_who_acknowledges(client: TestClient, oper: dict[str, str],
                                                               world: World) -> None:
    """The issue's escalation: an operator created an inspector, who then acknowledged alerts."""
    r = client.post("/api/v1/users", headers=oper, json={"username": "oper-made-insp", "password": PASSWORD,
                                                         "role": "inspector"})
    assert r.status_code == 403
    with psycopg.connect(world.admin_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM portal_users WHERE username = 'oper-made-insp'").fetchone() == (0,)
