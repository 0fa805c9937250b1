"""deploy/ migrates on the path CI tests (TimescaleDB, explicitly) and its database server
refuses client connections as the schema owner with the lines the local runner writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from storage.roles import OWNER_HBA_LINES

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
SCRIPT = DEPLOY / "compose" / "initdb" / "010-nxem-owner-hba.sh"


def _docs(path: Path) -> list[Any]:
    return list(yaml.safe_load_all(path.read_text(encoding="utf-8")))


def test_the_initdb_script_writes_the_runners_reject_lines_first() -> None:
    text = SCRIPT.read_text(encoding="utf-8")
    for line in OWNER_HBA_LINES:
        assert f"echo '{line}'" in text
    assert text.index("echo 'local") < text.index('cat "$hba"')


def test_compose_and_kubernetes_run_the_same_initdb_script() -> None:
    compose = _docs(DEPLOY / "compose" / "compose.yaml")[0]
    mounts = compose["services"]["timescaledb"]["volumes"]
    assert "./initdb/010-nxem-owner-hba.sh:/docker-entrypoint-initdb.d/010-nxem-owner-hba.sh:ro" in mounts
    k8s = _docs(DEPLOY / "k8s" / "20-timescaledb.yaml")
    config = next(d for d in k8s if d["kind"] == "ConfigMap")
    assert config["data"]["010-nxem-owner-hba.sh"] == SCRIPT.read_text(encoding="utf-8")
    pod = next(d for d in k8s if d["kind"] == "StatefulSet")["spec"]["template"]["spec"]
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "initdb")
    assert mount["mountPath"] == "/docker-entrypoint-initdb.d/010-nxem-owner-hba.sh"
    assert next(v for v in pod["volumes"] if v["name"] == "initdb")["configMap"]["name"] == config["metadata"]["name"]


def test_both_migrations_ask_for_timescaledb_explicitly() -> None:
    compose = _docs(DEPLOY / "compose" / "compose.yaml")[0]
    assert compose["services"]["migrate"]["environment"]["NXEM_DB_BACKEND"] == "timescale"
    assert compose["services"]["migrate"]["command"] == ["migrate"]
    job = _docs(DEPLOY / "k8s" / "30-migrate-job.yaml")[0]["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "NXEM_DB_BACKEND", "value": "timescale"} in job["env"]
    assert job["args"] == ["migrate"]
