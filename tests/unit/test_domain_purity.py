"""The domain packages stay pure: no I/O libraries, no environment, no logging, no clock reads."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {"paho", "kafka", "psycopg", "httpx", "requests", "socket", "logging", "urllib", "subprocess"}
NUMERIC = {"numpy", "sklearn"}
ALLOWED_NUMERIC = {"analytics/anomaly.py"}
MODULES = sorted(p for pkg in ("analytics", "alerts") for p in (ROOT / pkg).rglob("*.py"))


def _violations(path: Path, root: Path = ROOT) -> list[str]:
    rel = path.relative_to(root).as_posix()
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
    bad: list[str] = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            top = name.split(".")[0]
            if top in FORBIDDEN or (top in NUMERIC and rel not in ALLOWED_NUMERIC) or top == "time":
                bad.append(f"{rel}:{getattr(node, 'lineno', '?')} imports {name}")
        if isinstance(node, ast.Attribute):
            chain = ast.unparse(node)
            if chain.endswith(("os.environ", "datetime.now", "datetime.utcnow", "date.today", "time.time",
                               "time.monotonic", "time.perf_counter")) or chain in ("os.getenv",):
                bad.append(f"{rel}:{node.lineno} uses {chain}")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "open":
            bad.append(f"{rel}:{node.lineno} calls open()")
    return bad


def test_there_are_domain_modules() -> None:
    assert any(p.name == "site_energy.py" for p in MODULES)
    assert any(p.name == "engine.py" for p in MODULES)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_domain_module_is_pure(path: Path) -> None:
    assert _violations(path) == []


def test_the_checker_catches_violations(tmp_path: Path) -> None:
    (tmp_path / "analytics").mkdir()
    probe = tmp_path / "analytics" / "probe.py"
    probe.write_text("import logging\nimport os\nimport numpy\nfrom datetime import datetime\n"
                     "x = os.environ['A']\ny = datetime.now()\n")
    found = "\n".join(_violations(probe, tmp_path))
    for what in ("logging", "numpy", "os.environ", "datetime.now"):
        assert what in found
