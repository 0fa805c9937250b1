"""Integration tests run against the real services the test session itself starts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ops.services import ServiceSettings, ensure_up


@pytest.fixture(scope="session")
def services() -> Iterator[ServiceSettings]:
    """Mosquitto, Kafka and PostgreSQL up (idempotent: cheap when `./nx test` started them)."""
    settings = ServiceSettings()
    ensure_up(settings)
    yield settings
