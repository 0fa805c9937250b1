"""The ``nxem`` command line loads only what the command asked for."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("simulators", "collector", "stream", "portal", "ops.services", "kafka", "paho", "pandas", "sklearn")


def _loaded_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys\nprint('\\n'.join(sys.modules))"],
                         capture_output=True, text=True, check=True).stdout.split()
    return {name for name in HEAVY if any(m == name or m.startswith(name + ".") for m in out)}


def test_importing_the_cli_loads_no_other_component() -> None:
    # `nxem worker` used to load the simulators, the service runner, paho and the collector
    # before starting the worker: the command groups of other packages were imported eagerly.
    assert _loaded_after("import ops.cli") == set()


@pytest.mark.parametrize(("argv", "group"), [(["services", "--help"], "ops.services"),
                                             (["simulate", "--help"], "simulators")])
def test_a_command_group_is_loaded_when_named(argv: list[str], group: str) -> None:
    code = f"import ops.cli\ntry:\n    ops.cli.main({argv!r})\nexcept SystemExit:\n    pass"
    assert group in _loaded_after(code)


def test_help_lists_every_group() -> None:
    out = subprocess.run([sys.executable, "-m", "ops", "--help"], capture_output=True, text=True, check=True).stdout
    for name in ("services", "simulate", "worker", "collector", "demo", "db"):
        assert name in out
