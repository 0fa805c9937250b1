"""Password hashes, session tokens and CSRF tokens (no I/O).

* Passwords: argon2id via argon2-cffi's ``PasswordHasher`` (its RFC 9106 low-memory profile).
* Session cookies and bearer tokens: 256 random bits, URL-safe; the database keeps only their
  SHA-256, so a copy of the sessions table cannot be replayed.
* CSRF: an HMAC-SHA256 of the session token under the portal secret. Forms carry it in a
  hidden field and scripts in the ``X-CSRF-Token`` header; it is checked on every unsafe
  request authenticated by the cookie (a bearer token is not sent by browsers on their own,
  so it needs none). The sign-in form, before any session exists, carries an HMAC of a random
  nonce the browser holds in a cookie of its own (double submit: a cross-site form can send
  the cookie but cannot know the field).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_HASHER: Final = PasswordHasher()

#: A real hash of a random password, verified against when the username does not exist so an
#: unknown user costs the same time as a wrong password (no username oracle by timing).
_DUMMY_HASH: Final = _HASHER.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; an absent hash still costs one verification."""
    try:
        return _HASHER.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _HASHER.check_needs_rehash(password_hash)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def csrf_token(secret: bytes, session_token: str) -> str:
    return hmac.new(secret, b"csrf:" + session_token.encode(), hashlib.sha256).hexdigest()


def _same(expected: str, presented: str) -> bool:
    # bytes: compare_digest refuses (TypeError) a str with non-ASCII characters
    return hmac.compare_digest(expected.encode(), presented.encode("utf-8", "replace"))


def csrf_ok(secret: bytes, session_token: str, presented: str | None) -> bool:
    return presented is not None and _same(csrf_token(secret, session_token), presented)


def login_csrf_token(secret: bytes, nonce: str) -> str:
    return hmac.new(secret, b"login:" + nonce.encode(), hashlib.sha256).hexdigest()


def login_csrf_ok(secret: bytes, nonce: str | None, presented: str | None) -> bool:
    return nonce is not None and presented is not None and _same(login_csrf_token(secret, nonce), presented)


def new_password() -> str:
    """A generated password for demo users: 20 URL-safe characters (≈ 120 bits)."""
    return secrets.token_urlsafe(15)
