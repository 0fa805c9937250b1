"""Password hashes, tokens and CSRF tokens."""

from __future__ import annotations

from portal import security


def test_password_round_trip() -> None:
    h = security.hash_password("correct horse battery")
    assert h.startswith("$argon2id$")
    assert security.verify_password(h, "correct horse battery")
    assert not security.verify_password(h, "wrong")


def test_unknown_user_never_verifies() -> None:
    assert not security.verify_password(None, "anything")


def test_garbage_hash_is_a_failure_not_an_error() -> None:
    assert not security.verify_password("not-a-hash", "x")


def test_token_digest_is_not_the_token() -> None:
    t = security.new_token()
    assert len(t) >= 43 and security.token_digest(t) != t.encode() and len(security.token_digest(t)) == 32


def test_csrf_binds_secret_and_session() -> None:
    secret = b"s" * 32
    tok = security.csrf_token(secret, "session-a")
    assert security.csrf_ok(secret, "session-a", tok)
    assert not security.csrf_ok(secret, "session-b", tok)
    assert not security.csrf_ok(b"t" * 32, "session-a", tok)
    assert not security.csrf_ok(secret, "session-a", None)


def test_generated_passwords_are_long_and_distinct() -> None:
    a, b = security.new_password(), security.new_password()
    assert a != b and len(a) >= 20


def test_login_csrf_binds_secret_and_nonce() -> None:
    secret = b"s" * 32
    tok = security.login_csrf_token(secret, "nonce-a")
    assert security.login_csrf_ok(secret, "nonce-a", tok)
    assert not security.login_csrf_ok(secret, "nonce-b", tok)
    assert not security.login_csrf_ok(secret, None, tok)
    assert not security.login_csrf_ok(secret, "nonce-a", None)
    assert tok != security.csrf_token(secret, "nonce-a"), "a login token is not a session token"


def test_a_non_ascii_token_is_wrong_not_an_error() -> None:
    secret = b"s" * 32
    assert not security.csrf_ok(secret, "session-a", "é" * 64)
    assert not security.login_csrf_ok(secret, "nonce-a", "\u4e2d" * 64)
