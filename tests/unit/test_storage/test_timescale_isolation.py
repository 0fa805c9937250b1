"""Every TimescaleDB-only statement lives in storage/timescale.py and storage/sql_timescale/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

STORAGE = Path(__file__).resolve().parents[3] / "storage"
TIMESCALE_ONLY = re.compile(
    r"time_bucket|create_hypertable|by_range|add_\w+_policy|remove_\w+_policy|timescaledb\.|"
    r"refresh_continuous_aggregate|CREATE EXTENSION|first\(|last\(", re.IGNORECASE)
FILES = sorted([*STORAGE.glob("*.py"), *(STORAGE / "migrations").glob("*.sql")])


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.relative_to(STORAGE).as_posix())
def test_no_timescale_statement_outside_its_module(path: Path) -> None:
    if path.name == "timescale.py":
        return
    code = "\n".join(line for line in path.read_text(encoding="utf-8").splitlines()
                     if not line.lstrip().startswith(("--", "#", "*", "``")))
    code = re.sub(r'"""[\s\S]*?"""', "", code)  # docstrings describe, they do not run
    assert TIMESCALE_ONLY.findall(code) == []


def test_every_timescale_file_replaces_a_native_migration() -> None:
    native = {p.name for p in (STORAGE / "migrations").glob("*.sql")}
    assert {p.name for p in (STORAGE / "sql_timescale").glob("*.sql")} <= native
