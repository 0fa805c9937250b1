"""Logins, sessions and bearer tokens, the login rate limit, and the FastAPI dependencies that
turn a request into an authenticated ``Principal`` with a role.

A session cookie (HttpOnly, SameSite=Lax) and a bearer token are the same thing underneath:
a random token whose SHA-256 is a row of ``portal_sessions`` with an expiry. Failed logins
are rows of ``portal_login_failures``; ``max_failures`` within ``window_s`` for one
username+IP (or 4x that for one IP over all usernames) answer 429 with ``Retry-After``, even
for the right password, until the window has passed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

import psycopg
from fastapi import Depends, HTTPException, Request

from portal import security
from portal.db import Database
from portal.users import User, get_user

log = logging.getLogger(__name__)

COOKIE_NAME = "nxem_session"
CSRF_HEADER = "X-CSRF-Token"
TokenKind = Literal["cookie", "bearer"]


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
    max_failures: int
    window_s: int
    ttl_s: int


def _retry_after(conn: psycopg.Connection[Any], username: str, ip: str, policy: LoginPolicy) -> int | None:
    window = timedelta(seconds=policy.window_s)
    row = conn.execute(
        "SELECT count(*) FILTER (WHERE username = %s), min(at) FILTER (WHERE username = %s),"
        " count(*), min(at), now() FROM portal_login_failures WHERE ip = %s AND at > now() - %s",
        (username, username, ip, window),
    ).fetchone()
    assert row is not None
    user_n, user_first, ip_n, ip_first, now = row
    for n, first, limit in ((user_n, user_first, policy.max_failures), (ip_n, ip_first, 4 * policy.max_failures)):
        if n >= limit and first is not None:
            return max(1, int((first + window - now).total_seconds()) + 1)
    return None


def login(db: Database, username: str, password: str, ip: str, kind: TokenKind,
          policy: LoginPolicy) -> Principal:
    """Check the password (argon2) under the rate limit and open a session or token."""
    username = username.strip().lower()
    with db.system() as conn:
        wait = _retry_after(conn, username, ip, policy)
    if wait is not None:
        raise RateLimited(wait)
    with db.system() as conn:
        found = get_user(conn, username)
    ok = security.verify_password(found[1] if found else None, password)
    if found is None or not ok or found[0].disabled:
        with db.system() as conn:
            conn.execute("INSERT INTO portal_login_failures (username, ip) VALUES (%s, %s)", (username, ip))
            conn.execute("DELETE FROM portal_login_failures WHERE at < now() - interval '1 day'")
        log.info("login refused user=%s ip=%s", username, ip)
        raise BadCredentials()
    user, pw_hash = found
    token = security.new_token()
    expires = datetime.now(timezone.utc) + timedelta(seconds=policy.ttl_s)
    with db.system() as conn:
        if security.needs_rehash(pw_hash):
            conn.execute("UPDATE portal_users SET password_hash = %s WHERE id = %s",
                         (security.hash_password(password), user.id))
        conn.execute("DELETE FROM portal_login_failures WHERE username = %s AND ip = %s", (username, ip))
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
    # The portal listens on loopback behind nothing; a reverse proxy would set the real
    # address via uvicorn's --proxy-headers, which rewrites request.client.
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


def require(*roles: str) -> Any:
    """Dependency factory: the principal, if its role is one of ``roles`` (else 403)."""

    def dep(p: Principal = Depends(api_principal)) -> Principal:
        if p.user.role not in roles:
            raise HTTPException(403, f"this needs the role {' or '.join(roles)}")
        return p

    return Depends(dep)


def page_require(*roles: str) -> Any:
    def dep(p: Principal = Depends(principal)) -> Principal:
        if p.user.role not in roles:
            raise HTTPException(403, f"this page needs the role {' or '.join(roles)}")
        return p

    return Depends(dep)
