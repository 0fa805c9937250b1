"""A registry snapshot kept fresh in the background: reloaded only when the registry's
version changed (one cheap query per refresh period), so a reader never waits on it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import psycopg

from nxem.errors import BackendUnavailable
from storage.registry import registry_version

log = logging.getLogger(__name__)
T = TypeVar("T")


class RegistryWatcher(Generic[T]):
    def __init__(self, dsn: str, load: Callable[[psycopg.Connection[Any]], T], refresh_s: float,
                 name: str = "registry") -> None:
        self._dsn, self._load, self._refresh_s, self._name = dsn, load, refresh_s, name
        self._conn: psycopg.Connection[Any] | None = None
        self._version = -1
        self._stop = threading.Event()
        snapshot = self._check()
        assert snapshot is not None  # the first check always loads
        self._snapshot: T = snapshot
        self._thread = threading.Thread(target=self._loop, name=f"{name}-watch", daemon=True)
        self._thread.start()

    def _check(self) -> T | None:
        """The new snapshot when the version moved (or on the first call), else None."""
        try:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(self._dsn, autocommit=True, connect_timeout=10,
                                             application_name=f"nxem-{self._name}")
            version = registry_version(self._conn)
            if version == self._version:
                return None
            with self._conn.transaction():  # version and rows from one snapshot
                version = registry_version(self._conn)
                snapshot = self._load(self._conn)
        except psycopg.Error as err:
            if self._conn is not None:
                self._conn.close()
            self._conn = None
            raise BackendUnavailable(f"{self._name}: {err}") from err
        self._version = version
        log.info("%s loaded version=%s", self._name, version)
        return snapshot

    def _loop(self) -> None:
        while not self._stop.wait(self._refresh_s):
            try:
                fresh = self._check()
            except BackendUnavailable as err:
                log.warning("%s refresh failed, keeping the last snapshot: %s", self._name, err)
                continue
            if fresh is not None:
                self._snapshot = fresh

    @property
    def version(self) -> int:
        return self._version

    def __call__(self) -> T:
        return self._snapshot

    def close(self) -> None:
        self._stop.set()
