"""The project's exception hierarchy: one root, adapters re-raise library errors as these."""

from __future__ import annotations


class NxemError(Exception):
    """Root of every error this project raises on purpose."""


class ConfigError(NxemError):
    """A setting is missing or invalid (raised at start-up, before any connection)."""


class ContractError(NxemError):
    """Input does not satisfy a documented format; carries a machine-readable reason code."""

    def __init__(self, reason_code: str, message: str) -> None:
        super().__init__(f"{reason_code}: {message}")
        self.reason_code = reason_code
        self.message = message


class ServiceError(NxemError):
    """A local service (Mosquitto, Kafka, PostgreSQL) could not be installed, started or reached."""


class BackendUnavailable(NxemError):
    """Kafka or the database is down or refused the call; the caller should back off and retry."""

    def __init__(self, message: str, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class DataRefused(NxemError):
    """A backend refused this data itself (a value a column cannot hold, a constraint): retrying
    the same data fails the same way, so the caller isolates it instead of backing off."""
