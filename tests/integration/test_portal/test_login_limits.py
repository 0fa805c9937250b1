"""The login rate limit holds under concurrency and cannot be turned against other users:

* 50 wrong guesses sent at once to the real portal (uvicorn, its thread pool, PostgreSQL) get
  at most the limit (5) argon2 verifications -- counted by wrapping the verifier the portal
  calls -- and the right password then gets 429;
* the three counters (a user at one address, one address, one user) each lock only what they
  count, so one address cannot lock out a user at another address;
* X-Forwarded-For names the client only when the peer is a configured trusted proxy.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from portal import security
from portal.app import create_app
from portal.settings import PortalSettings
from portal.users import create_user
from storage.roles import dsn_for
from tests.harness import serve

from .fixtures import PASSWORD, World

pytestmark = pytest.mark.integration

GUESSES = 50
LIMIT = 5  # NXEM_PORTAL_LOGIN_MAX_FAILURES (the default)



@pytest.fixture(scope="module")
def served(portal_settings: PortalSettings) -> Iterator[str]:
    """The portal behind a (pretend) reverse proxy on loopback: uvicorn's own forwarded-header
    handling off, as in ``python -m portal``; the app believes 127.0.0.1's X-Forwarded-For."""
    settings = portal_settings.model_copy(update={"portal_trusted_proxies": "127.0.0.1"})
    assert settings.portal_login_max_failures == LIMIT
    app = create_app(settings, dsn_for("nxem_portal", settings))
    with serve(app) as url:
        yield url


def _post_token(base: str, username: str, password: str, client_ip: str) -> tuple[int, dict[str, str]]:
    req = urllib.request.Request(f"{base}/api/v1/auth/token", method="POST",
                                 data=json.dumps({"username": username, "password": password}).encode(),
                                 headers={"Content-Type": "application/json", "X-Forwarded-For": client_ip})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}


def test_fifty_concurrent_guesses_get_at_most_the_limit_verified(served: str, world: World,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    with psycopg.connect(world.admin_dsn) as conn:
        create_user(conn, "race-victim", PASSWORD, "inspector", None)
    verified: list[str] = []
    lock = threading.Lock()
    real_verify = security.verify_password

    def counting_verify(password_hash: str | None, password: str) -> bool:
        with lock:
            verified.append(password)
        return real_verify(password_hash, password)

    monkeypatch.setattr(security, "verify_password", counting_verify)
    attacker = "203.0.113.50"
    start = threading.Barrier(GUESSES)
    statuses: list[int] = []

    def guess(i: int) -> None:
        start.wait()
        status, _ = _post_token(served, "race-victim", f"guess-{i:02d}-wrong", attacker)
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(GUESSES)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(statuses) == GUESSES
    # exactly the limit were verified (each a wrong password: 401), the other 45 refused unverified
    assert len(verified) == LIMIT, f"{len(verified)} verified"
    assert Counter(statuses) == {401: LIMIT, 429: GUESSES - LIMIT}
    status, headers = _post_token(served, "race-victim", PASSWORD, attacker)
    assert status == 429 and 1 <= int(headers["retry-after"]) <= 301
    assert len(verified) == LIMIT, "the right password is not verified during the lockout"
    with psycopg.connect(world.admin_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM portal_login_failures WHERE username = 'race-victim'"
                            ).fetchone() == (LIMIT,)
    # the owner, from their own address, is not locked out by the attacker's address
    assert _post_token(served, "race-victim", PASSWORD, "198.51.100.20")[0] == 200


@pytest.fixture(scope="module")
def small_limits(portal_settings: PortalSettings) -> Iterator[Any]:
    """An app with small limits (2 per user at an address, 3 per address, 4 per user) behind a
    trusted proxy at 127.0.0.1, and a function to post a login from a client address."""
    settings = portal_settings.model_copy(update={
        "portal_trusted_proxies": "127.0.0.1", "portal_login_max_failures": 2,
        "portal_login_max_failures_per_address": 3, "portal_login_max_failures_per_user": 4})
    with TestClient(create_app(settings, dsn_for("nxem_portal", settings)), raise_server_exceptions=False,
                    client=("127.0.0.1", 40000)) as c:
        def login(username: str, password: str, client_ip: str) -> int:
            r = c.post("/api/v1/auth/token", json={"username": username, "password": password},
                       headers={"X-Forwarded-For": client_ip})
            return r.status_code
        yield login


def test_one_address_locks_only_itself(small_limits: Any, world: World) -> None:
    login = small_limits
    with psycopg.connect(world.admin_dsn) as conn:
        for name in ("addr-u1", "addr-u2", "addr-u3"):
            create_user(conn, name, PASSWORD, "operator", None)
    x, y = "192.0.2.10", "192.0.2.11"
    assert [login("addr-u1", "wrong-password", x) for _ in range(2)] == [401, 401]
    assert login("addr-u1", PASSWORD, x) == 429  # u1 at x: 2 of 2
    assert login("addr-u2", PASSWORD, x) == 200  # x: 2 of 3, another user passes
    assert login("addr-u2", "wrong-password", x) == 401  # x: 3 of 3
    assert login("addr-u3", PASSWORD, x) == 429  # every user at x now waits
    assert login("addr-u3", PASSWORD, y) == 200  # and nobody elsewhere
    assert login("addr-u1", PASSWORD, y) == 200


def test_one_address_cannot_lock_a_user_out_but_many_can(small_limits: Any, world: World) -> None:
    login = small_limits
    with psycopg.connect(world.admin_dsn) as conn:
        create_user(conn, "user-u4", PASSWORD, "operator", None)
    # one address: 2 failures, then refused without counting: u4 is at 2 of 4
    assert [login("user-u4", "wrong-password", "192.0.2.20") for _ in range(4)] == [401, 401, 429, 429]
    assert login("user-u4", PASSWORD, "192.0.2.21") == 200  # u4 elsewhere: not locked out
    # a second address adds 2 more: 4 of 4 for u4 over all addresses -> locked everywhere
    assert [login("user-u4", "wrong-password", "192.0.2.22") for _ in range(2)] == [401, 401]
    assert login("user-u4", PASSWORD, "192.0.2.23") == 429


def test_forwarded_addresses_count_only_from_a_trusted_proxy(portal_settings: PortalSettings, world: World) -> None:
    """A peer outside NXEM_PORTAL_TRUSTED_PROXIES that sends X-Forwarded-For is counted as
    itself: claiming a fresh address per guess gains nothing."""
    settings = portal_settings.model_copy(update={"portal_trusted_proxies": "127.0.0.1"})
    with psycopg.connect(world.admin_dsn) as conn:
        create_user(conn, "xff-u5", PASSWORD, "operator", None)
    with TestClient(create_app(settings, dsn_for("nxem_portal", settings)), raise_server_exceptions=False,
                    client=("198.51.100.77", 40000)) as c:
        codes = [c.post("/api/v1/auth/token", json={"username": "xff-u5", "password": "wrong-password"},
                        headers={"X-Forwarded-For": f"203.0.113.{i + 100}"}).status_code for i in range(LIMIT + 1)]
    assert codes == [401] * LIMIT + [429]
    with psycopg.connect(world.admin_dsn) as conn:
        assert conn.execute("SELECT DISTINCT ip FROM portal_login_failures WHERE username = 'xff-u5'"
                            ).fetchall() == [("198.51.100.77",)]
