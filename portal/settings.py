"""Settings of the portal (prefix ``NXEM_``, frozen, built once in ``portal.__main__``).

Outside the local demo the portal is served over TLS (behind a reverse proxy), so the session
cookie is ``Secure`` unless ``NXEM_PORTAL_COOKIE_SECURE=false`` says otherwise (the demo does:
it serves plain http on loopback).

The secret used to derive CSRF tokens is read from ``portal_secret_file`` (default
``$NXEM_DATA_DIR/secrets/portal.secret``, created 0600 on first start); it is never a field
value, never logged.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from pathlib import Path

from pydantic import Field, field_validator, model_validator

from nxem.errors import ConfigError
from nxem.settings import EndpointSettings


class PortalSettings(EndpointSettings):
    """Where the portal listens and how long its sessions live."""

    portal_host: str = Field(default="127.0.0.1", description="portal HTTP listen address")
    portal_port: int = Field(default=8080, ge=1, le=65535, description="portal HTTP port")
    portal_secret_file: Path | None = Field(
        default=None, description="file holding the portal's signing secret (default secrets/portal.secret)")
    portal_session_ttl_s: int = Field(default=8 * 3600, ge=60, description="session and token lifetime, seconds")
    portal_cookie_secure: bool = Field(
        default=True, description="mark the session cookie Secure (sent over https only); false only for plain"
        " http on loopback (the local demo sets it)")
    portal_login_max_failures: int = Field(
        default=5, ge=1, description="failed logins per user from one client address per window (then 429 for"
        " that user from that address)")
    portal_login_max_failures_per_address: int = Field(
        default=20, ge=1, description="failed logins from one client address per window, over all usernames"
        " (then 429 for that address)")
    portal_login_max_failures_per_user: int = Field(
        default=50, ge=2, description="failed logins per user per window over all addresses (then 429 for that"
        " user); above NXEM_PORTAL_LOGIN_MAX_FAILURES, so one address cannot lock another user out")
    portal_login_window_s: int = Field(default=300, ge=1, description="login rate-limit window, seconds")
    portal_trusted_proxies: str = Field(
        default="", description="reverse proxies (comma-separated IP addresses or networks) whose"
        " X-Forwarded-For and X-Forwarded-Proto are believed; empty: none, the peer is the client")
    portal_max_body_bytes: int = Field(
        default=64 * 1024, ge=1024, le=16 * 1024 * 1024,
        description="largest request body accepted, bytes (413 beyond, before anything is parsed)")
    portal_sse_poll_s: float = Field(default=1.0, gt=0, le=60, description="alert stream database poll period")
    portal_pool_max: int = Field(default=10, ge=1, description="database connections in the portal's pool")
    emission_factors_file: Path | None = Field(
        default=None, description="CSV of CO₂ emission factors (key,tco2_per_unit,unit,source) for the tCO₂ shown"
        " beside tce; unset: no tCO₂ (no factor is built in; see examples/emission_factors.example.csv)")

    @field_validator("portal_trusted_proxies")
    @classmethod
    def _proxies(cls, value: str) -> str:
        for item in (v.strip() for v in value.split(",")):
            if item:
                try:
                    ipaddress.ip_network(item, strict=False) if "/" in item else ipaddress.ip_address(item)
                except ValueError as err:
                    raise ValueError(f"{item!r} is not an IP address or network") from err
        return value

    @model_validator(mode="after")
    def _limits(self) -> PortalSettings:
        if self.portal_login_max_failures_per_user <= self.portal_login_max_failures:
            raise ValueError("NXEM_PORTAL_LOGIN_MAX_FAILURES_PER_USER must be above NXEM_PORTAL_LOGIN_MAX_FAILURES"
                             " (else failures from one address lock the user out everywhere)")
        return self

    def trusted_proxies(self) -> list[str]:
        """``portal_trusted_proxies`` as a list (empty: trust no forwarding header)."""
        items = [v.strip() for v in self.portal_trusted_proxies.split(",") if v.strip()]
        return [str(ipaddress.ip_network(v, strict=False)) if "/" in v else str(ipaddress.ip_address(v)) for v in items]

    def secret_path(self) -> Path:
        return self.portal_secret_file or (self.secrets_dir / "portal.secret")

    def load_secret(self, create: bool = True) -> bytes:
        """The signing secret; created (0600) when missing and ``create`` is true."""
        path = self.secret_path()
        if not path.exists():
            if not create:
                raise ConfigError(f"NXEM_PORTAL_SECRET_FILE: {path} does not exist")
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(secrets.token_hex(32))
        value = path.read_text(encoding="utf-8").strip()
        if len(value) < 32:
            raise ConfigError(f"NXEM_PORTAL_SECRET_FILE: {path} holds fewer than 32 characters")
        return value.encode()
