"""Settings of the portal (prefix ``NXEM_``, frozen, built once in ``portal.__main__``).

The secret used to derive CSRF tokens is read from ``portal_secret_file`` (default
``$NXEM_DATA_DIR/secrets/portal.secret``, created 0600 on first start); it is never a field
value, never logged.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from pydantic import Field

from nxem.errors import ConfigError
from nxem.settings import EndpointSettings


class PortalSettings(EndpointSettings):
    """Where the portal listens and how long its sessions live."""

    portal_host: str = Field(default="127.0.0.1", description="portal HTTP listen address")
    portal_port: int = Field(default=8080, ge=1, le=65535, description="portal HTTP port")
    portal_secret_file: Path | None = Field(
        default=None, description="file holding the portal's signing secret (default secrets/portal.secret)")
    portal_session_ttl_s: int = Field(default=8 * 3600, ge=60, description="session and token lifetime, seconds")
    portal_cookie_secure: bool = Field(default=False, description="mark the session cookie Secure (behind TLS)")
    portal_login_max_failures: int = Field(default=5, ge=1, description="failed logins per user+IP per window")
    portal_login_window_s: int = Field(default=300, ge=1, description="login rate-limit window, seconds")
    portal_sse_poll_s: float = Field(default=1.0, gt=0, le=60, description="alert stream database poll period")
    portal_pool_max: int = Field(default=10, ge=1, description="database connections in the portal's pool")
    emission_factors_file: Path | None = Field(
        default=None, description="CSV of CO₂ emission factors (key,tco2_per_unit,unit,source) for the tCO₂ shown"
        " beside tce; unset: no tCO₂ (no factor is built in; see examples/emission_factors.example.csv)")

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
