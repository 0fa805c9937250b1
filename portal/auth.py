"""Logins, sessions and bearer tokens, the login rate limit, and the FastAPI dependencies that
turn a request into an authenticated ``Principal`` allowed to use the route it asked for.

A session cookie (HttpOnly, SameSite=Lax, Secure by default) and a bearer token are the same
thing underneath: a random token whose SHA-256 is a row of ``portal_sessions`` with an expiry.

The login rate limit counts attempts under three keys, each with its own limit per window: the
user at one client address (``max_failures``), the client address over all usernames
(``max_failures_per_address``) and the user over all addresses (``max_failures_per_user``, kept
above ``max_failures`` so one address cannot lock another user out). An attempt is *reserved*
under row locks of ``portal_login_attempts`` -- checked against all three limits and recorded
in one transaction -- before its password is verified, so concurrent guesses cannot all pass
the check: at most the limit are ever verified per window. A successful login takes its
reservation back (and forgets that user's failures from that address); a failure keeps it and
is logged in ``portal_login_failures``. Past a limit the answer is 429 with ``Retry-After``,
even for the right password, until the oldest counted attempt leaves the window. The client
address is the peer's, or the one a configured trusted proxy forwarded (``portal.app``).

Authorisation: the permission each route needs is ``portal.roles.ROUTES``; ``API_ACCESS`` and
``PAGE_ACCESS`` look the route up and refuse (403) a role that does not hold it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

import psycopg
from fastapi import Depends, HTTPException, Request

from portal import roles, security
from portal.db import Database
from portal.users import User, get_user

log = logging.getLogger(__name__)

COOKIE_NAME = "nxem_session"
#: The sign-in form's CSRF nonce (double submit: the form carries an HMAC of it).
LOGIN_COOKIE_NAME = "nxem_login"
CSRF_HEADER = "X-CSRF-Token"
TokenKind = Literal["cookie", "bearer"]
Scope = Literal["user", "address", "user_address"]


class NotAuthenticated(Exception):
    """No valid session or token (pages redirect to /login, the API answers 401)."""


class RateLimited(Exception):
    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"too many failed logins; retry after {retry_after_s} s")
        self.retry_after_s = retry_after_s


class BadCredentials(Exception):
    """Unknown user, wrong password or disabled account (one message for all three)."""


@dataclass(frozen=True, slots=True)
class Principal:
    user: User
    token: str
    via: TokenKind
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    max_failures: int  # per user at one address
    window_s: int
    ttl_s: int
    max_failures_per_address: int = 20
    max_failures_per_user: int = 50

    def keys(self, username: str, ip: str) -> list[tuple[Scope, str, int]]:
        """(scope, subject, limit) of the three counters an attempt is reserved in, in lock order."""
        keys: list[tuple[Scope, str, int]] = [("address", ip, self.max_failures_per_address),
                                              ("user", username, self.max_failures_per_user),
                                              ("user_address", f"{username} {ip}", self.max_failures)]
        return sorted(keys)


def reserve_attempt(conn: psycopg.Connection[Any], username: str, ip: str, policy: LoginPolicy) -> datetime:
    """Check the three limits and record one attempt, atomically (the rows are locked in a fixed
    order for the check and the write); the attempt's time, or ``RateLimited``. ``conn`` is in a
    transaction the caller commits."""
    keys = policy.keys(username, ip)
    scopes, subjects = [k[0] for k in keys], [k[1] for k in keys]
    conn.execute("INSERT INTO portal_login_attempts (scope, subject)"
                 " SELECT * FROM unnest(%s::text[], %s::text[]) ORDER BY 1, 2 ON CONFLICT DO NOTHING",
                 (scopes, subjects))
    rows = conn.execute("SELECT scope, subject, attempts, now() FROM portal_login_attempts"
                        " WHERE (scope, subject) IN (SELECT * FROM unnest(%s::text[], %s::text[]))"
                        " ORDER BY scope, subject FOR UPDATE", (scopes, subjects)).fetchall()
    window = timedelta(seconds=policy.window_s)
    limits = {(scope, subject): limit for scope, subject, limit in keys}
    now: datetime = rows[0][3]
    live = {(r[0], r[1]): [a for a in r[2] if a > now - window] for r in rows}
    waits = [min(attempts) + window - now for key, attempts in live.items() if len(attempts) >= limits[key]]
    if waits:
        raise RateLimited(max(1, int(max(waits).total_seconds()) + 1))
    for (scope, subject), attempts in live.items():
        conn.execute("UPDATE portal_login_attempts SET attempts = %s, last_at = %s WHERE scope = %s AND subject = %s",
                     (sorted(attempts) + [now], now, scope, subject))
    return now


def release_attempt(conn: psycopg.Connection[Any], username: str, ip: str, at: datetime,
                    policy: LoginPolicy) -> None:
    """A successful login: take its reservation back from the address and user counters, and
    forget this user's failures from this address."""
    keys = [k for k in policy.keys(username, ip) if k[0] != "user_address"]
    for scope, subject, _ in keys:
        conn.execute("UPDATE portal_login_attempts SET attempts = attempts[:array_position(attempts, %(at)s) - 1]"
                     " || attempts[array_position(attempts, %(at)s) + 1:]"
                     " WHERE scope = %(scope)s AND subject = %(subject)s AND %(at)s = ANY(attempts)",
                     {"at": at, "scope": scope, "subject": subject})
    conn.execute("DELETE FROM portal_login_attempts WHERE scope = 'user_address' AND subject = %s",
                 (f"{username} {ip}",))


def login(db: Database, username: str, password: str, ip: str, kind: TokenKind,
          policy: LoginPolicy) -> Principal:
    """Check the password (argon2) under the rate limit and open a session or token."""
    username = username.strip().lower()
    with db.system() as conn:
        reserved_at = reserve_attempt(conn, username, ip, policy)
    with db.system() as conn:
        found = get_user(conn, username)
    ok = security.verify_password(found[1] if found else None, password)
    if found is None or not ok or found[0].disabled:
        with db.system() as conn:
            conn.execute("INSERT INTO portal_login_failures (username, ip) VALUES (%s, %s)", (username, ip))
            conn.execute("DELETE FROM portal_login_failures WHERE at < now() - interval '1 day'")
            conn.execute("DELETE FROM portal_login_attempts WHERE last_at < now() - %s",
                         (timedelta(seconds=policy.window_s),))
        log.info("login refused user=%s ip=%s", username, ip)
        raise BadCredentials()
    user, pw_hash = found
    token = security.new_token()
    expires = datetime.now(timezone.utc) + timedelta(seconds=policy.ttl_s)
    with db.system() as conn:
        release_attempt(conn, username, ip, reserved_at, policy)
        if security.needs_rehash(pw_hash):
            conn.execute("UPDATE portal_users SET password_hash = %s WHERE id = %s",
                         (security.hash_password(password), user.id))
        conn.execute("DELETE FROM portal_sessions WHERE expires_at < now()")
        conn.execute("INSERT INTO portal_sessions (token_sha256, user_id, kind, expires_at)"
                     " VALUES (%s, %s, %s, %s)", (security.token_digest(token), user.id, kind, expires))
    log.info("login user=%s role=%s via=%s", user.username, user.role, kind)
    return Principal(user, token, kind, expires)


def lookup(db: Database, token: str, via: TokenKind) -> Principal | None:
    with db.system() as conn:
        row = conn.execute(
            "SELECT u.id, u.username, u.role, u.enterprise_id, s.expires_at FROM portal_sessions s"
            " JOIN portal_users u ON u.id = s.user_id"
            " WHERE s.token_sha256 = %s AND s.kind = %s AND s.expires_at > now() AND NOT u.disabled",
            (security.token_digest(token), via),
        ).fetchone()
    if row is None:
        return None
    return Principal(User(row[0], row[1], row[2], row[3], False), token, via, row[4])


def logout(db: Database, token: str) -> None:
    with db.system() as conn:
        conn.execute("DELETE FROM portal_sessions WHERE token_sha256 = %s", (security.token_digest(token),))


# ---------------------------------------------------------------- FastAPI dependencies

def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def client_ip(request: Request) -> str:
    """The client's address: the peer's, or -- when the peer is a configured trusted proxy --
    the address it forwarded (``portal_trusted_proxies``; uvicorn's ProxyHeadersMiddleware,
    installed by ``portal.app``, rewrites ``request.client`` then and only then)."""
    return request.client.host if request.client else "unknown"


def optional_principal(request: Request, db: Database = Depends(get_db)) -> Principal | None:
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise NotAuthenticated()
        found = lookup(db, value.strip(), "bearer")
        if found is None:
            raise NotAuthenticated()
        return found
    cookie = request.cookies.get(COOKIE_NAME)
    if cookie:
        found = lookup(db, cookie, "cookie")
        if found is not None and request.method not in ("GET", "HEAD", "OPTIONS"):
            secret: bytes = request.app.state.secret
            if not security.csrf_ok(secret, cookie, request.headers.get(CSRF_HEADER)):
                # Forms put the token in a field; the page handlers check that themselves.
                request.state.csrf_missing = True
        return found
    return None


def principal(p: Principal | None = Depends(optional_principal)) -> Principal:
    if p is None:
        raise NotAuthenticated()
    return p


def api_principal(request: Request, p: Principal = Depends(principal)) -> Principal:
    """The API's principal: a cookie-authenticated unsafe request must carry the CSRF header."""
    if getattr(request.state, "csrf_missing", False):
        raise HTTPException(403, "missing or wrong X-CSRF-Token header for a cookie session")
    return p


def _authorize(request: Request, p: Principal) -> Principal:
    route = request.scope.get("route")
    path = getattr(route, "path", None) or request.url.path
    try:
        need = roles.route_permission(request.method, path)
    except roles.NoRule:
        log.error("refused: no access rule for %s %s", request.method, path)
        raise HTTPException(403, "no access rule for this route") from None
    if need is not None and not roles.has(p.user.role, need):
        raise HTTPException(403, f"this needs the role {' or '.join(roles.holders(need))}")
    return p


def _api_access(request: Request, p: Principal = Depends(api_principal)) -> Principal:
    return _authorize(request, p)


def _page_access(request: Request, p: Principal = Depends(principal)) -> Principal:
    return _authorize(request, p)


#: The principal of an API request, allowed by ``portal.roles.ROUTES`` to use its route.
API_ACCESS: Any = Depends(_api_access)
#: The same for pages (no CSRF header: forms carry their token in a field, checked by the page).
PAGE_ACCESS: Any = Depends(_page_access)
