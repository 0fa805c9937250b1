"""Logins, tokens, cookies, CSRF, the login rate limit and role checks."""

from __future__ import annotations

import psycopg
import pytest
from fastapi.testclient import TestClient

from portal.users import create_user

from .conftest import token_for
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
    with psycopg.connect(world.admin_dsn) as conn:  # the window passes
        conn.execute("UPDATE portal_login_failures SET at = at - interval '6 minutes'")
    assert client.post("/api/v1/auth/token", json={"username": "rate-limited", "password": PASSWORD}).status_code == 200


def test_logout_revokes_the_token(client: TestClient) -> None:
    h = token_for(client, "insp")
    assert client.post("/api/v1/auth/logout", headers=h).status_code == 204
    assert client.get("/api/v1/me", headers=h).status_code == 401


def test_cookie_login_sets_a_safe_cookie_and_csrf_guards_api_posts(client: TestClient, world: World) -> None:
    c = TestClient(client.app, raise_server_exceptions=False)
    r = c.post("/login", data={"username": "insp", "password": PASSWORD, "next": "/board"}, follow_redirects=False)
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
    r = c.post(f"/api/v1/alerts/{world.alert_b}/acknowledge", json=body, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200, r.text


def test_cross_origin_form_post_is_refused(client: TestClient) -> None:
    r = client.post("/login", data={"username": "insp", "password": PASSWORD},
                    headers={"Origin": "https://evil.example"}, follow_redirects=False)
    assert r.status_code == 403


def test_wrong_login_form_shows_the_error_without_a_cookie(client: TestClient) -> None:
    r = client.post("/login", data={"username": "ent-b", "password": "nope-nope-nope"}, follow_redirects=False)
    assert r.status_code == 401 and "Unknown user or wrong password" in r.text and "set-cookie" not in r.headers


def test_pages_redirect_to_login_without_a_session(client: TestClient) -> None:
    c = TestClient(client.app, raise_server_exceptions=False)
    r = c.get("/board", headers={"Accept": "text/html"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


@pytest.mark.parametrize(("who", "method", "path", "status"), [
    ("ent_a", "GET", "/api/v1/overview", 403),
    ("ent_a", "GET", "/api/v1/users", 403),
    ("ent_a", "POST", "/api/v1/alerts/1/acknowledge", 403),
    ("oper", "POST", "/api/v1/alerts/1/acknowledge", 403),
    ("insp", "GET", "/api/v1/users", 403),
    ("insp", "POST", "/api/v1/users", 403),
    ("oper", "GET", "/api/v1/users", 200),
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


def test_operator_creates_users_and_bad_bindings_are_400(client: TestClient, oper: dict[str, str],
                                                          world: World) -> None:
    ok = {"username": "new-ent-user", "password": PASSWORD, "role": "enterprise", "enterprise_id": world.ent_b}
    r = client.post("/api/v1/users", headers=oper, json=ok)
    assert r.status_code == 201 and r.json()["enterprise_id"] == world.ent_b
    assert client.post("/api/v1/users", headers=oper, json=ok).status_code == 400  # exists
    r = client.post("/api/v1/users", headers=oper, json={**ok, "username": "x-unbound", "enterprise_id": None})
    assert r.status_code == 400 and "enterprise_id" in r.json()["error"]["message"]
    assert token_for(client, "new-ent-user")
