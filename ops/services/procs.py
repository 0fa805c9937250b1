"""Process plumbing shared by the service modules: pid files, detached start, stop by pid, waits.

Services are started *detached*: a short-lived Python shim starts the real process in a new
session, writes its pid file and exits, so the service is never a child of the caller (no
zombies in a long-running test process, no ``ResourceWarning`` from an abandoned ``Popen``).
A pid only counts as ours when ``/proc/<pid>/cmdline`` contains a marker (the service's config
path or data folder), so a recycled pid is never signalled.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from nxem.errors import ServiceError
from ops.services.settings import ServiceSettings

log = logging.getLogger(__name__)

# Started with ``python -c``: argv = [log, pidfile, fds-to-pass (comma list), *command].
_DETACH_SHIM = """
import os, subprocess, sys
log, pidfile, fds = sys.argv[1], sys.argv[2], sys.argv[3]
keep = tuple(int(x) for x in fds.split(",") if x)
with open(log, "ab") as out:
    p = subprocess.Popen(sys.argv[4:], stdin=subprocess.DEVNULL, stdout=out,
                         stderr=subprocess.STDOUT, start_new_session=True, pass_fds=keep)
tmp = pidfile + ".tmp"
with open(tmp, "w") as f:
    f.write(str(p.pid))
os.replace(tmp, pidfile)
sys.stdout.write(str(p.pid))
sys.stdout.flush()
os._exit(0)
"""


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    """What ``status`` reports for one service."""

    name: str
    pid: int | None
    running: bool
    endpoint: str


def run_dir(settings: ServiceSettings) -> Path:
    """Folder of pid files (and the PostgreSQL socket folder)."""
    path = settings.resolved_data_dir() / "run"
    path.mkdir(parents=True, exist_ok=True)
    return path


def log_dir(settings: ServiceSettings) -> Path:
    """Folder of service log files."""
    path = settings.resolved_data_dir() / "logs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def ensure_data_dir(settings: ServiceSettings) -> Path:
    """Create the data folder, traversable by the ``postgres`` user (mode 0755)."""
    path = settings.resolved_data_dir()
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o755)
    return path


def pid_file(settings: ServiceSettings, name: str) -> Path:
    """Pid file of service ``name``."""
    return run_dir(settings) / f"{name}.pid"


def read_pid(path: Path) -> int | None:
    """Pid stored in ``path`` (first line), or None when missing or unreadable."""
    try:
        first = path.read_text(encoding="ascii").splitlines()[0].strip()
        return int(first)
    except (OSError, ValueError, IndexError):
        return None


def write_pid(path: Path, pid: int) -> None:
    """Write ``pid`` atomically."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(f"{pid}\n", encoding="ascii")
    os.replace(tmp, path)


def is_alive(pid: int | None, marker: str) -> bool:
    """True when ``pid`` runs, is not a zombie, and its command line contains ``marker``."""
    if pid is None or pid <= 0:
        return False
    for _ in range(50):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
        except OSError:
            return False
        # Field 3 of /proc/<pid>/stat follows the parenthesised command name.
        state = stat.rsplit(")", 1)[-1].split()[0] if ")" in stat else "?"
        if state in ("Z", "X"):
            return False
        if cmdline:
            return marker.encode() in cmdline
        # An empty command line of a live process: it is inside execve (the detach shim's child
        # becoming the service), not gone. Read as "exited", it made a start-up check start a
        # second broker beside the first (seen in CI and here: "Address already in use").
        time.sleep(0.01)
    return False


def live_pid(settings: ServiceSettings, name: str, marker: str) -> int | None:
    """Pid of our running service ``name``; removes a stale pid file and returns None."""
    path = pid_file(settings, name)
    pid = read_pid(path)
    if pid is None:
        return None
    if is_alive(pid, marker):
        return pid
    log.info("removing stale pid file service=%s pid=%s", name, pid)
    path.unlink(missing_ok=True)
    return None


def spawn_detached(
    settings: ServiceSettings,
    name: str,
    argv: Sequence[str],
    *,
    log_path: Path,
    pass_fds: Sequence[int] = (),
    cwd: Path | None = None,
) -> int:
    """Start ``argv`` in a new session, output appended to ``log_path``; returns its pid."""
    path = pid_file(settings, name)
    shim = [sys.executable, "-c", _DETACH_SHIM, str(log_path), str(path),
            ",".join(str(fd) for fd in pass_fds), *argv]
    try:
        done = subprocess.run(shim, capture_output=True, text=True, check=True,
                              pass_fds=tuple(pass_fds), cwd=cwd, timeout=30)
    except (OSError, subprocess.SubprocessError) as err:
        raise ServiceError(f"{name}: could not start {argv[0]}: {err}") from err
    pid = int(done.stdout.strip())
    log.info("started service=%s pid=%s log=%s", name, pid, log_path)
    return pid


def _gone(pid: int, marker: str) -> bool:
    return not is_alive(pid, marker)


def stop_pid(
    name: str,
    pid: int,
    marker: str,
    *,
    timeout_s: float = 30.0,
    first_signal: signal.Signals = signal.SIGTERM,
) -> None:
    """Send ``first_signal``, wait up to ``timeout_s``, then SIGKILL; returns once it is gone."""
    if not is_alive(pid, marker):
        return
    log.info("stopping service=%s pid=%s signal=%s", name, pid, first_signal.name)
    try:
        os.kill(pid, first_signal)
    except ProcessLookupError:
        return
    if wait_for(lambda: _gone(pid, marker), timeout_s):
        return
    log.warning("service=%s pid=%s ignored %s for %ss, sending SIGKILL",
                name, pid, first_signal.name, timeout_s)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    if not wait_for(lambda: _gone(pid, marker), 10.0):
        raise ServiceError(f"{name}: pid {pid} survived SIGKILL")


def wait_for(predicate: Callable[[], bool], timeout_s: float, interval_s: float = 0.1) -> bool:
    """Poll ``predicate`` until it is true or ``timeout_s`` passes; returns the last result."""
    deadline = time.monotonic() + timeout_s
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval_s)


def port_open(host: str, port: int, timeout_s: float = 0.5) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def log_tail(path: Path, lines: int = 25) -> str:
    """Last ``lines`` lines of a log file, for error messages."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 16384))
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return f"(no log at {path})"
    tail = "\n".join(text.splitlines()[-lines:])
    return f"--- last lines of {path} ---\n{tail}"


def run_checked(name: str, argv: Sequence[str], *, log_path: Path | None = None,
                timeout_s: float = 300.0, cwd: Path | None = None) -> str:
    """Run a setup command to completion; ServiceError with its output when it fails."""
    log.debug("running service=%s argv=%s", name, argv[0])
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout_s,
                              cwd=cwd, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as err:
        raise ServiceError(f"{name}: {argv[0]} failed to run: {err}") from err
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip()[-4000:]
        extra = f"\n{log_tail(log_path)}" if log_path else ""
        raise ServiceError(
            f"{name}: {' '.join(argv[:3])} … exited {done.returncode}:\n{output}{extra}")
    return done.stdout
