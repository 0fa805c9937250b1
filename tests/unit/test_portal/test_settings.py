"""Portal settings that guard the hardening: secure cookies by default, trusted proxies as IP
addresses or networks only, and login limits that keep one address from locking a user out."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from portal.settings import PortalSettings


def test_defaults_are_the_hardened_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("NXEM_PORTAL_COOKIE_SECURE", "NXEM_PORTAL_TRUSTED_PROXIES", "NXEM_PORTAL_MAX_BODY_BYTES"):
        monkeypatch.delenv(var, raising=False)
    s = PortalSettings()
    assert s.portal_cookie_secure is True
    assert s.trusted_proxies() == []
    assert s.portal_max_body_bytes == 65536  # 64 KiB
    assert s.portal_login_max_failures < s.portal_login_max_failures_per_user


def test_the_demo_switch_turns_secure_cookies_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NXEM_PORTAL_COOKIE_SECURE", "false")
    assert PortalSettings().portal_cookie_secure is False


def test_trusted_proxies_are_addresses_or_networks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NXEM_PORTAL_TRUSTED_PROXIES", " 10.1.2.3/8, 127.0.0.1 ,::1,")
    assert PortalSettings().trusted_proxies() == ["10.0.0.0/8", "127.0.0.1", "::1"]


@pytest.mark.parametrize("value", ["*", "proxy.example", "10.0.0.0/33", "127.0.0.1, *"])
def test_anything_else_fails_at_start_up(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("NXEM_PORTAL_TRUSTED_PROXIES", value)
    with pytest.raises(ValidationError, match="portal_trusted_proxies"):
        PortalSettings()


def test_a_per_user_limit_not_above_the_per_address_one_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NXEM_PORTAL_LOGIN_MAX_FAILURES", "5")
    monkeypatch.setenv("NXEM_PORTAL_LOGIN_MAX_FAILURES_PER_USER", "5")
    with pytest.raises(ValidationError, match="NXEM_PORTAL_LOGIN_MAX_FAILURES_PER_USER must be above"):
        PortalSettings()
