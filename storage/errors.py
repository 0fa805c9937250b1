"""Errors raised by the storage package (all under ``nxem.errors.NxemError``)."""

from __future__ import annotations

from nxem.errors import NxemError


class StorageError(NxemError):
    """A migration, a registry upsert or a storage statement failed for a reason that retrying
    will not fix (a bad migration, a changed migration file, an invalid registry row)."""


class TimescaleError(StorageError):
    """TimescaleDB is available but one of its statements failed. Never silently downgraded to
    the native path: a half-Timescale schema is worse than a clear failure."""


class Conflict(StorageError):
    """The change asked for conflicts with the stored state (an alert already acknowledged):
    the HTTP layer answers 409."""
