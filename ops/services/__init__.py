"""Local service runner: installs and starts Mosquitto, Kafka (KRaft) and PostgreSQL without Docker.

Public entry points: :func:`ensure_up`, :func:`up`, :func:`down`, :func:`status`,
:func:`admin_dsn`, :func:`reload_mosquitto` and :class:`ServiceSettings`.
"""

from __future__ import annotations

from ops.services.mosquitto import reload_mosquitto
from ops.services.postgres import admin_dsn
from ops.services.procs import ServiceStatus
from ops.services.runner import down, ensure_up, status, up
from ops.services.settings import ServiceSettings

__all__ = [
    "ServiceSettings",
    "ServiceStatus",
    "admin_dsn",
    "down",
    "ensure_up",
    "reload_mosquitto",
    "status",
    "up",
]
