"""Renders docs/configuration.md from the settings classes, so the list of environment
variables and the code cannot drift apart (a unit test compares the two)."""

from __future__ import annotations

import importlib
from pathlib import Path

from pydantic_settings import BaseSettings

from nxem.settings import REPO_ROOT

DOC_PATH = REPO_ROOT / "docs" / "configuration.md"

# (title, "module:Class") in the order they appear in the document
SETTINGS: list[tuple[str, str]] = [
    ("Endpoints (every process)", "nxem.settings:EndpointSettings"),
    ("Collector", "collector.settings:CollectorSettings"),
    ("Stream worker", "stream.settings:WorkerSettings"),
    ("Local service runner", "ops.services.settings:ServiceSettings"),
    ("Simulators", "simulators.settings:SimulatorSettings"),
    ("Portal", "portal.settings:PortalSettings"),
]


def _load(ref: str) -> type[BaseSettings] | None:
    module, cls = ref.split(":")
    try:
        found: type[BaseSettings] = getattr(importlib.import_module(module), cls)
    except (ImportError, AttributeError):
        return None
    return found


def render() -> str:
    lines = [
        "# Configuration",
        "",
        "Every setting is an environment variable with the `NXEM_` prefix. Generated from the",
        "settings classes by `nxem config-doc`; `tests/unit/test_nxem/test_configdoc.py` fails",
        "when this file and the code disagree. Secrets are never settings: they are read from",
        "files (`*_FILE` variables or `$NXEM_DATA_DIR/secrets/`).",
        "",
    ]
    seen: set[str] = set()
    for title, ref in SETTINGS:
        cls = _load(ref)
        if cls is None:
            continue
        prefix = str(cls.model_config.get("env_prefix", ""))
        rows = []
        for name, field in cls.model_fields.items():
            var = f"{prefix}{name}".upper()
            if var in seen:
                continue
            seen.add(var)
            default = "(required)" if field.is_required() else f"`{field.default}`"
            if name == "data_dir":
                default = "`<repo>/.data`"
            desc = (field.description or "").replace("|", "\\|")
            rows.append(f"| `{var}` | {default} | {desc} |")
        if rows:
            lines += [f"## {title}", "", "| variable | default | meaning |", "| --- | --- | --- |", *rows, ""]
    return "\n".join(lines)


def write(path: Path = DOC_PATH) -> None:
    path.write_text(render())
