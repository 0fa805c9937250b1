"""Imports only point down the layers (docs/ARCHITECTURE.md, "Layers").

Read from the code itself: every ``import`` of every module of the project's packages is parsed
(top-level and inside functions, since a lazy import is still a dependency) and checked against
the layer table below. A package may import its own modules and packages of a lower layer, never
one of its own layer or above -- except the few same-layer pairs listed in ``SIDEWAYS``, each
with its reason. The core (``nxem``) is a leaf: it imports nothing of ours.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Final

import pytest

ROOT: Final = Path(__file__).resolve().parents[2]

#: Layer of each top-level package, bottom (0) to top. tests/ and bench/ sit above them all.
LAYERS: Final[dict[str, int]] = {
    "nxem": 0,          # core: contract, errors, settings base, Kafka adapter, health, time zone
    "analytics": 1,     # domain: energy arithmetic
    "alerts": 2,        # domain: rules over analytics
    "storage": 3,       # adapter: PostgreSQL / TimescaleDB, the one read API
    "collector": 4,     # adapter: MQTT gateway format and the MQTT -> Kafka bridge
    "simulators": 5,    # adapter: gateway simulators (speak the collector's payload format)
    "stream": 6,        # service: Kafka consumer workers
    "portal": 6,        # service: the web portal
    "ops": 7,           # roof: CLI, demo, configuration doc, local service runner
}

#: Same-layer imports that are allowed, with the reason.
SIDEWAYS: Final[dict[tuple[str, str], str]] = {}


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
    return out


def violations(root: Path = ROOT) -> list[str]:
    bad: list[str] = []
    for package, layer in LAYERS.items():
        for path in sorted((root / package).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            for line, module in _imports(path):
                top = module.split(".")[0]
                if top == package or top not in LAYERS:
                    continue
                if (package, top) in SIDEWAYS:
                    continue
                if LAYERS[top] >= layer:
                    bad.append(f"{rel}:{line} imports {module} (layer {LAYERS[top]} from layer {layer})")
    return bad


def test_every_package_is_in_the_table() -> None:
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests", "bench"}
    assert packages == set(LAYERS)


def test_imports_only_point_down() -> None:
    assert violations() == []


@pytest.mark.parametrize(("source", "expected"), [
    ("from ops.cli import app\n", "nxem/probe.py:1 imports ops.cli (layer 7 from layer 0)"),
    ("def f():\n    import stream.service\n", "nxem/probe.py:2 imports stream.service (layer 6 from layer 0)"),
])
def test_the_checker_catches_an_upward_import(tmp_path: Path, source: str, expected: str) -> None:
    for package in LAYERS:
        (tmp_path / package).mkdir()
    (tmp_path / "nxem" / "probe.py").write_text(source, encoding="utf-8")
    assert violations(tmp_path) == [expected]


def test_the_checker_allows_a_downward_import(tmp_path: Path) -> None:
    for package in LAYERS:
        (tmp_path / package).mkdir()
    (tmp_path / "ops" / "probe.py").write_text("from nxem.errors import NxemError\nimport storage.migrate\n",
                                               encoding="utf-8")
    assert violations(tmp_path) == []
