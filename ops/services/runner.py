"""Up, down and status over the three local services, in dependency order.

``up`` is idempotent: a running service is reported and skipped (PostgreSQL still gets its
database checked and Kafka its topics), a stale pid file is cleaned and the service started.
Concurrent callers (several test sessions in one tree) are serialised by an ``flock`` on
``<data_dir>/run/runner.lock``.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal, get_args

from nxem.errors import ServiceError
from ops.services import kafka, mosquitto, postgres, procs
from ops.services.procs import ServiceStatus
from ops.services.settings import ServiceSettings

log = logging.getLogger(__name__)

ServiceName = Literal["postgres", "mosquitto", "kafka"]
#: Start order; ``down`` goes in reverse.
ALL_SERVICES: tuple[ServiceName, ...] = get_args(ServiceName)

_START: dict[ServiceName, Callable[[ServiceSettings], bool]] = {
    "postgres": postgres.start, "mosquitto": mosquitto.start, "kafka": kafka.start}
_STOP: dict[ServiceName, Callable[[ServiceSettings], bool]] = {
    "postgres": postgres.stop, "mosquitto": mosquitto.stop, "kafka": kafka.stop}
_STATUS: dict[ServiceName, Callable[[ServiceSettings], ServiceStatus]] = {
    "postgres": postgres.status, "mosquitto": mosquitto.status, "kafka": kafka.status}


@dataclass(frozen=True, slots=True)
class UpResult:
    """Outcome of ``up`` for one service."""

    name: ServiceName
    started: bool  # False: it was already running
    seconds: float
    status: ServiceStatus


def parse_only(text: str | None) -> tuple[ServiceName, ...]:
    """``"kafka,postgres"`` -> the named services in start order; None/empty -> all."""
    if not text:
        return ALL_SERVICES
    wanted = {part.strip() for part in text.split(",") if part.strip()}
    unknown = wanted - set(ALL_SERVICES)
    if unknown:
        raise ServiceError(f"unknown service(s) {sorted(unknown)}; choose from {list(ALL_SERVICES)}")
    return tuple(name for name in ALL_SERVICES if name in wanted)


def _select(only: Sequence[ServiceName] | None) -> tuple[ServiceName, ...]:
    if only is None:
        return ALL_SERVICES
    return tuple(name for name in ALL_SERVICES if name in only)


@contextmanager
def exclusive(settings: ServiceSettings) -> Iterator[None]:
    """Hold the runner lock: no other ``up``/``down`` runs meanwhile (not re-entrant)."""
    procs.ensure_data_dir(settings)
    fd = os.open(procs.run_dir(settings) / "runner.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def up(settings: ServiceSettings, only: Sequence[ServiceName] | None = None) -> list[UpResult]:
    """Start the selected services (all by default) and wait until each is ready."""
    results: list[UpResult] = []
    with exclusive(settings):
        for name in _select(only):
            began = time.monotonic()
            started = _START[name](settings)
            elapsed = time.monotonic() - began
            state = _STATUS[name](settings)
            log.info("service=%s started=%s seconds=%.2f pid=%s", name, started, elapsed, state.pid)
            results.append(UpResult(name, started, elapsed, state))
    return results


def down(settings: ServiceSettings, only: Sequence[ServiceName] | None = None) -> dict[str, bool]:
    """Stop the selected services by pid, in reverse start order; True where one was stopped."""
    stopped: dict[str, bool] = {}
    with exclusive(settings):
        for name in reversed(_select(only)):
            stopped[name] = _STOP[name](settings)
    return stopped


def status(settings: ServiceSettings,
           only: Sequence[ServiceName] | None = None) -> list[ServiceStatus]:
    """Pid, liveness and endpoint of the selected services."""
    return [_STATUS[name](settings) for name in _select(only)]


def ensure_up(settings: ServiceSettings) -> None:
    """Make sure all three services run (cheap when they already do); for test sessions."""
    if all(s.running for s in status(settings)):
        # Fast path: still confirm the parts other code relies on (database and topics).
        with exclusive(settings):
            postgres.start(settings)
            kafka.ensure_topics(settings)
        return
    up(settings)
