"""The production shape under deploy/ stays in step with the code.

* every YAML/JSON file under deploy/compose, deploy/k8s, deploy/prometheus and deploy/grafana parses;
* every ``NXEM_*`` variable named there is a real setting: a field of a ``BaseSettings`` subclass
  (found by importing the projects' ``settings`` modules) or a role password-file variable of
  ``storage.roles``;
* every ``nxem_*`` metric named in the alerting rules and the Grafana dashboards is a sample name
  that ``collector/metrics.py`` or ``stream/metrics.py`` exposes, and every label they group by
  exists;
* no file holds an inline password-like value (only files and secret references);
* the copies that must not drift (alerts.yml vs the PrometheusRule, the two Mosquitto configs)
  are equal;
* every long-running process (collector, worker, portal) is probed on its own health endpoints:
  Kubernetes liveness ``/healthz`` and readiness ``/readyz`` on the port the process serves them
  on, compose healthchecks ``/readyz`` on that port (``nxem/health.py``).

The checkers are plain functions; the ``*_catches_*`` tests feed them a wrong value each, so a
checker that silently accepts everything fails here.
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase
from pydantic_settings import BaseSettings

REPO = Path(__file__).resolve().parents[3]
DEPLOY = REPO / "deploy"
CHECKED_DIRS = ("compose", "k8s", "prometheus", "grafana")
SETTINGS_MODULES = (
    "nxem.settings", "ops.services.settings", "collector.settings", "stream.settings",
    "portal.settings", "simulators.settings",
)
METRIC_MODULES = ("collector.metrics", "stream.metrics", "portal.health")
# Labels Prometheus adds to every scraped series, plus the histogram bucket label.
TARGET_LABELS = frozenset({"instance", "job", "le", "pod", "namespace", "container"})

_ENV_RE = re.compile(r"\bNXEM_[A-Z0-9_]+\b")
_METRIC_RE = re.compile(r"\bnxem_[a-z0-9_]+\b")
_GROUPING_RE = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
_SECRET_KEY_RE = re.compile(r"pass(word|wd)?|secret|token|api[_-]?key|credential", re.IGNORECASE)
# A value that points at a secret instead of being one.
_REFERENCE_RE = re.compile(r"^(/|\./|\.\./|\$\{|\$\(|\$__file\{|\$__env\{)")
_TEXT_SECRET_RE = re.compile(
    r"(?im)^\s*(?:export\s+)?([A-Za-z0-9_.-]*(?:password|passwd|secret|token)[A-Za-z0-9_.-]*)\s*[:= ]\s*(\S+)")


# ---------------------------------------------------------------- the deploy files

def _operator_file(path: Path) -> bool:
    """Git-ignored files an operator creates in a checkout: the secrets themselves, the
    generated broker access files, compose's .env. They are not part of the shape."""
    rel = path.relative_to(DEPLOY).parts
    if rel[:2] == ("compose", "secrets"):
        return path.name not in (".gitignore", "README.md")
    return rel[:2] == ("compose", "mosquitto") and path.name in ("passwd", "acl") or path.name == ".env"


def deploy_files() -> list[Path]:
    return sorted(p for d in CHECKED_DIRS for p in (DEPLOY / d).rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts and not _operator_file(p))


def structured_files() -> list[Path]:
    return [p for p in deploy_files() if p.suffix in (".yaml", ".yml", ".json")]


def load_docs(path: Path) -> list[Any]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        return [json.loads(text)]
    return [d for d in yaml.safe_load_all(text) if d is not None]


def walk(node: Any) -> Iterator[tuple[str | None, Any]]:
    """Every (mapping key, value) pair of a parsed document, depth first; list items come with
    the key None."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield str(k), v
            yield from walk(v)
    elif isinstance(node, list):
        for item in node:
            yield None, item
            yield from walk(item)


# ---------------------------------------------------------------- the code's truth

def settings_classes() -> list[type[BaseSettings]]:
    found: dict[str, type[BaseSettings]] = {}
    for name in SETTINGS_MODULES:
        module = importlib.import_module(name)
        for obj in vars(module).values():
            if inspect.isclass(obj) and issubclass(obj, BaseSettings) and obj is not BaseSettings:
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return list(found.values())


def known_env_vars() -> frozenset[str]:
    from storage import roles

    names = {
        f"{cls.model_config.get('env_prefix', '')}{field}".upper()
        for cls in settings_classes() for field in cls.model_fields
    }
    names |= {roles.env_var(role) for role in roles.LOGIN_ROLES}
    return frozenset(names)


def _metric_objects() -> list[MetricWrapperBase]:
    out: list[MetricWrapperBase] = []
    for name in METRIC_MODULES:
        module = importlib.import_module(name)
        out += [v for v in vars(module).values() if isinstance(v, MetricWrapperBase)]
    return out


def known_metrics() -> frozenset[str]:
    """Sample names as Prometheus stores them (counter _total, histogram _bucket/_sum/_count)."""
    suffixes = {"counter": ("_total", "_created"), "gauge": ("",),
                "histogram": ("_bucket", "_sum", "_count", "_created"), "summary": ("", "_sum", "_count", "_created")}
    names: set[str] = set()
    for metric in _metric_objects():
        for family in metric.describe():
            names |= {family.name + s for s in suffixes.get(family.type, ("",))}
    return frozenset(names)


def known_labels() -> frozenset[str]:
    labels: set[str] = set(TARGET_LABELS)
    for metric in _metric_objects():
        labels |= set(getattr(metric, "_labelnames", ()))
    return frozenset(labels)


# ---------------------------------------------------------------- checkers (pure)

def unknown_env_vars(text: str, known: frozenset[str]) -> set[str]:
    return set(_ENV_RE.findall(text)) - known


def promql_problems(expr: str, metrics: frozenset[str], labels: frozenset[str]) -> list[str]:
    problems = [f"unknown metric {m}" for m in _METRIC_RE.findall(expr) if m not in metrics]
    for group in _GROUPING_RE.findall(expr):
        problems += [f"unknown label {lbl}" for lbl in (x.strip() for x in group.split(",")) if lbl and lbl not in labels]
    return problems


def inline_secrets(doc: Any) -> list[str]:
    """Password-like keys with a literal value, env entries with a literal secret, Secret data."""
    found: list[str] = []
    for key, value in walk(doc):
        if key is None:
            if isinstance(value, str) and "=" in value:  # compose list form: - NAME=value
                name, _, literal = value.partition("=")
                if _is_inline(name, literal):
                    found.append(value)
            elif (isinstance(value, dict) and isinstance(value.get("name"), str) and "value" in value
                  and _is_inline(value["name"], value["value"])):  # k8s env: {name: X_PASSWORD, value: ...}
                found.append(f"{value['name']}: {value['value']}")
            continue
        if isinstance(value, (str, int, float)) and not isinstance(value, bool) and _is_inline(key, value):
            found.append(f"{key}: {value}")
    if isinstance(doc, dict) and doc.get("kind") == "Secret" and (doc.get("data") or doc.get("stringData")):
        found.append(f"Secret {doc.get('metadata', {}).get('name')} carries data")
    return found


def _is_inline(name: str, value: Any) -> bool:
    if not _SECRET_KEY_RE.search(name):
        return False
    if re.search(r"(_|__|-)?file$|_path$|_dir$|Ref$|Name$", name, re.IGNORECASE):
        return False  # names a file / a reference, not the secret itself
    text = str(value).strip()
    return bool(text) and not _REFERENCE_RE.match(text)


def inline_secrets_in_text(text: str) -> list[str]:
    found = []
    for name, value in _TEXT_SECRET_RE.findall(text):
        if not name.startswith("#") and _is_inline(name, value):
            found.append(f"{name} {value}")
    return found


# ---------------------------------------------------------------- tests: the files

def test_deploy_tree_has_the_production_shape() -> None:
    for rel in ("compose/compose.yaml", "compose/Dockerfile", "prometheus/prometheus.yml",
                "prometheus/alerts.yml", "README.md"):
        assert (DEPLOY / rel).is_file(), rel
    assert list((DEPLOY / "k8s").glob("*.yaml")), "no Kubernetes manifests"
    assert list((DEPLOY / "grafana" / "dashboards").glob("*.json")), "no Grafana dashboard"


@pytest.mark.parametrize("path", structured_files(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_yaml_and_json_file_parses(path: Path) -> None:
    docs = load_docs(path)
    assert docs, f"{path} is empty"
    for doc in docs:
        assert isinstance(doc, dict), f"{path}: a document is not a mapping"


def test_k8s_manifests_have_kind_and_namespace() -> None:
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in load_docs(path):
            assert doc.get("apiVersion") and doc.get("kind"), f"{path.name}: apiVersion/kind missing"
            if doc["kind"] != "Namespace":
                assert doc["metadata"].get("namespace") == "nxem", f"{path.name}: {doc['kind']} outside nxem"


def test_kustomization_lists_every_manifest() -> None:
    kustomization = load_docs(DEPLOY / "k8s" / "kustomization.yaml")[0]
    manifests = {p.name for p in (DEPLOY / "k8s").glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == manifests


def test_every_nxem_variable_is_a_real_setting() -> None:
    known = known_env_vars()
    assert {"NXEM_COLLECTOR_SHARED_GROUP", "NXEM_WORKER_GROUP", "NXEM_PG_INGEST_PASSWORD_FILE"} <= known
    bad = {}
    for path in [*deploy_files(), DEPLOY / "README.md"]:
        unknown = unknown_env_vars(path.read_text(encoding="utf-8"), known)
        if unknown:
            bad[str(path.relative_to(DEPLOY))] = sorted(unknown)
    assert not bad, f"NXEM_* variables that no settings class defines: {bad}"


def _rule_exprs() -> list[tuple[str, str]]:
    out = []
    for path in [DEPLOY / "prometheus" / "alerts.yml", DEPLOY / "k8s" / "50-monitoring.yaml"]:
        for doc in load_docs(path):
            groups = doc.get("groups") or (doc.get("spec") or {}).get("groups") or []
            for group in groups:
                for rule in group["rules"]:
                    out.append((f"{path.name}:{rule.get('alert') or rule.get('record')}", rule["expr"]))
    return out


def _dashboard_exprs() -> list[tuple[str, str]]:
    out = []
    for path in sorted((DEPLOY / "grafana" / "dashboards").glob("*.json")):
        for key, value in walk(load_docs(path)[0]):
            if key == "expr" and isinstance(value, str):
                out.append((path.name, value))
    return out


def test_alert_rules_name_only_real_metrics_and_labels() -> None:
    metrics, labels = known_metrics(), known_labels()
    exprs = _rule_exprs()
    assert len(exprs) >= 5
    problems = {where: p for where, e in exprs if (p := promql_problems(e, metrics, labels))}
    assert not problems, problems


def test_dashboards_name_only_real_metrics_and_labels() -> None:
    metrics, labels = known_metrics(), known_labels()
    exprs = _dashboard_exprs()
    assert len(exprs) >= 5
    problems = {f"{where}: {e}": p for where, e in exprs if (p := promql_problems(e, metrics, labels))}
    assert not problems, problems


def test_required_alerts_and_panels_are_there() -> None:
    alerts = {where.split(":", 1)[1] for where, _ in _rule_exprs()}
    assert {"NxemConsumerLagGrowing", "NxemCollectorProduceErrors", "NxemWorkerNotReady",
            "NxemReadingToStoredP99High", "NxemLagGrowingNothingConsuming"} <= alerts
    assert any("DeadLetters" in a for a in alerts)
    exprs = " ".join(e for _, e in _dashboard_exprs())
    for needed in ("nxem_collector_readings_accepted_total", "nxem_worker_readings_written_total",
                   "nxem_worker_consumer_lag_records", "nxem_worker_reading_to_stored_seconds_bucket",
                   "nxem_collector_invalid_total", "nxem_worker_alert_transitions_total"):
        assert needed in exprs, needed


def test_prometheus_rule_equals_alerts_yml() -> None:
    plain = load_docs(DEPLOY / "prometheus" / "alerts.yml")[0]["groups"]
    crd = [d for d in load_docs(DEPLOY / "k8s" / "50-monitoring.yaml") if d["kind"] == "PrometheusRule"]
    assert len(crd) == 1 and crd[0]["spec"]["groups"] == plain


def test_grafana_dashboards_use_the_provisioned_datasource() -> None:
    uids = {ds["uid"] for path in (DEPLOY / "grafana" / "provisioning" / "datasources").glob("*.y*ml")
            for ds in load_docs(path)[0]["datasources"]}
    for path in sorted((DEPLOY / "grafana" / "dashboards").glob("*.json")):
        for key, value in walk(load_docs(path)[0]):
            if key == "datasource" and isinstance(value, dict):
                assert value.get("uid") in uids, f"{path.name}: datasource {value}"


def test_no_inline_secrets() -> None:
    found = {}
    for path in deploy_files():
        rel = str(path.relative_to(DEPLOY))
        if path.suffix in (".yaml", ".yml", ".json"):
            hits = [h for doc in load_docs(path) for h in inline_secrets(doc)]
            # Embedded files (a ConfigMap's mosquitto.conf, a compose shell command) as text too.
            hits += [h for doc in load_docs(path) for _, v in walk(doc)
                     if isinstance(v, str) and "\n" in v for h in inline_secrets_in_text(v)]
        else:
            hits = inline_secrets_in_text(path.read_text(encoding="utf-8"))
        if hits:
            found[rel] = hits
    assert not found, f"inline secret values (use a file / Docker secret / k8s Secret): {found}"


def test_compose_secrets_are_files_and_every_python_service_reads_its_passwords_from_files() -> None:
    compose = load_docs(DEPLOY / "compose" / "compose.yaml")[0]
    for name, spec in compose["secrets"].items():
        assert set(spec) == {"file"}, f"secret {name} must come from a file"
    for name, svc in compose["services"].items():
        env = svc.get("environment") or {}
        if any(k.startswith("NXEM_PG") and k.endswith("_PASSWORD_FILE") for k in env):
            mounted = {s if isinstance(s, str) else s["source"] for s in svc.get("secrets", [])}
            for key, path in env.items():
                if key.endswith(("_PASSWORD_FILE", "_SECRET_FILE")):
                    assert path.startswith("/run/secrets/"), f"{name}: {key}"
                    assert path.removeprefix("/run/secrets/") in mounted, f"{name}: {key} -> {path} not mounted"


def test_collectors_share_the_subscription_with_distinct_client_ids() -> None:
    services = load_docs(DEPLOY / "compose" / "compose.yaml")[0]["services"]
    collectors = [s for s in services.values() if s.get("command") == ["collector"]]
    assert len(collectors) >= 2
    ids = [c["environment"]["NXEM_COLLECTOR_ID"] for c in collectors]
    assert len(set(ids)) == len(ids)
    for c in collectors:
        env = c["environment"]
        assert env["NXEM_COLLECTOR_SHARED_GROUP"]
        # use_username_as_clientid: the broker replaces the client id by the user name
        assert env["NXEM_COLLECTOR_MQTT_USERNAME"] == env["NXEM_COLLECTOR_ID"]


def _conf(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition(" ")
            out.setdefault(key, []).append(value.strip())
    return out


def test_mosquitto_config_is_the_production_one_in_compose_and_k8s() -> None:
    compose_conf = _conf((DEPLOY / "compose" / "mosquitto" / "mosquitto.conf").read_text(encoding="utf-8"))
    cm = next(d for d in load_docs(DEPLOY / "k8s" / "22-mosquitto.yaml") if d["kind"] == "ConfigMap")
    k8s_conf = _conf(cm["data"]["mosquitto.conf"])
    for conf in (compose_conf, k8s_conf):
        assert conf["allow_anonymous"] == ["false"]
        assert conf["persistence"] == ["true"]
        assert conf["autosave_interval"] == ["5"]
        assert conf["max_inflight_messages"] == ["1000"]
        assert conf["use_username_as_clientid"] == ["true"]
        assert int(conf["max_queued_messages"][0]) >= 1_000_000
        assert conf["password_file"] and conf["acl_file"]
    differ = {k for k in compose_conf.keys() | k8s_conf.keys() if compose_conf.get(k) != k8s_conf.get(k)}
    assert differ == {"password_file", "acl_file"}


# ---------------------------------------------------------------- probes

# the variable that sets where each process serves /metrics, /healthz and /readyz
HEALTH_PORT_VAR = {"collector": "NXEM_COLLECTOR_METRICS_PORT", "worker": "NXEM_WORKER_METRICS_PORT",
                   "portal": "NXEM_PORTAL_PORT"}


def _env(entries: Any) -> dict[str, str]:
    """compose (mapping) or Kubernetes (list of name/value) environment as a mapping."""
    if isinstance(entries, dict):
        return {str(k): str(v) for k, v in entries.items()}
    return {e["name"]: str(e["value"]) for e in entries or [] if "value" in e}


def k8s_probe_problems(container: dict[str, Any], process: str) -> list[str]:
    """Liveness on /healthz and readiness on /readyz, over HTTP, on the named port whose
    number is the one the process serves them on."""
    port = _env(container.get("env")).get(HEALTH_PORT_VAR[process])
    ports = {p.get("name"): str(p["containerPort"]) for p in container.get("ports") or []}
    problems = []
    for kind, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = (container.get(kind) or {}).get("httpGet")
        if not get:
            problems.append(f"{kind}: not an httpGet probe")
            continue
        if get.get("path") != path:
            problems.append(f"{kind}: path {get.get('path')} instead of {path}")
        target = ports.get(get.get("port"), str(get.get("port")))
        if port is None or target != port:
            problems.append(f"{kind}: port {get.get('port')} ({target}) is not {HEALTH_PORT_VAR[process]}={port}")
    return problems


def compose_healthcheck_problems(service: dict[str, Any], process: str) -> list[str]:
    port = _env(service.get("environment")).get(HEALTH_PORT_VAR[process])
    test = (service.get("healthcheck") or {}).get("test") or []
    want = f"http://127.0.0.1:{port}/readyz"
    return [] if want in test else [f"healthcheck {test} does not probe {want}"]


def _k8s_containers() -> dict[str, dict[str, Any]]:
    out = {}
    for path in sorted((DEPLOY / "k8s").glob("4*.yaml")):
        for doc in load_docs(path):
            if doc["kind"] in ("Deployment", "StatefulSet"):
                for c in doc["spec"]["template"]["spec"]["containers"]:
                    out[c["name"]] = c
    return out


def test_every_process_is_probed_on_its_health_endpoints_in_kubernetes() -> None:
    containers = _k8s_containers()
    assert set(HEALTH_PORT_VAR) <= set(containers)
    problems = {name: p for name in HEALTH_PORT_VAR if (p := k8s_probe_problems(containers[name], name))}
    assert not problems, problems


def test_every_process_is_probed_on_its_health_endpoints_in_compose() -> None:
    services = load_docs(DEPLOY / "compose" / "compose.yaml")[0]["services"]
    checked = 0
    for svc in services.values():
        command = svc.get("command") or []
        if command and command[0] in HEALTH_PORT_VAR:
            assert not compose_healthcheck_problems(svc, command[0]), compose_healthcheck_problems(svc, command[0])
            checked += 1
    assert checked >= 4  # two collectors, the workers, the portal


def test_portal_metrics_are_scraped() -> None:
    jobs = {j["job_name"] for j in load_docs(DEPLOY / "prometheus" / "prometheus.yml")[0]["scrape_configs"]}
    assert {"nxem-collector", "nxem-worker", "nxem-portal"} <= jobs
    monitors = {d["metadata"]["name"] for d in load_docs(DEPLOY / "k8s" / "50-monitoring.yaml")
                if d["kind"] == "PodMonitor"}
    assert {"nxem-collector", "nxem-worker", "nxem-portal"} <= monitors


# ---------------------------------------------------------------- tests: the checkers can fail

def test_env_checker_catches_a_misspelt_variable() -> None:
    known = known_env_vars()
    assert unknown_env_vars("NXEM_COLLECTOR_SHARED_GROUP: g\nNXEM_WORKER_GROUPS: w", known) == {"NXEM_WORKER_GROUPS"}


def test_promql_checker_catches_a_wrong_metric_and_label() -> None:
    metrics, labels = known_metrics(), known_labels()
    assert "nxem_worker_reading_to_stored_seconds_bucket" in metrics
    assert "nxem_collector_produce_errors_total" in metrics
    assert promql_problems("sum by (reason) (rate(nxem_collector_invalid_total[5m]))", metrics, labels) == []
    assert promql_problems("rate(nxem_worker_readings_stored_total[5m])", metrics, labels) == [
        "unknown metric nxem_worker_readings_stored_total"]
    assert promql_problems("histogram_quantile(0.99, rate(nxem_worker_reading_to_stored_seconds[5m]))",
                           metrics, labels) == ["unknown metric nxem_worker_reading_to_stored_seconds"]
    assert promql_problems("sum by (reasons) (rate(nxem_worker_invalid_total[5m]))", metrics, labels) == [
        "unknown label reasons"]


@pytest.mark.parametrize(("doc", "expected"), [
    ({"environment": {"POSTGRES_PASSWORD": "hunter2"}}, 1),
    ({"environment": ["POSTGRES_PASSWORD=hunter2"]}, 1),
    ({"env": [{"name": "NXEM_PG_PASSWORD", "value": "hunter2"}]}, 1),
    ({"kind": "Secret", "metadata": {"name": "x"}, "stringData": {"a": "b"}}, 1),
    ({"environment": {"GF_SECURITY_ADMIN_PASSWORD": "admin"}}, 1),
    ({"environment": {"POSTGRES_PASSWORD_FILE": "/run/secrets/pg"}}, 0),
    ({"environment": {"GF_SECURITY_ADMIN_PASSWORD__FILE": "/run/secrets/g"}}, 0),
    ({"env": [{"name": "X_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}, 0),
    ({"secrets": [{"source": "pg_admin_password", "target": "/var/lib/nxem/secrets/pg-admin.password"}]}, 0),
])
def test_secret_checker(doc: Any, expected: int) -> None:
    assert len(inline_secrets(doc)) == expected


def test_text_secret_checker() -> None:
    assert inline_secrets_in_text("password_file /mosquitto/config/passwd\n") == []
    assert inline_secrets_in_text("# password hunter2\n") == []
    assert inline_secrets_in_text("PGPASSWORD=hunter2 psql\n") == ["PGPASSWORD hunter2"]
    assert inline_secrets_in_text("  password: hunter2\n") == ["password hunter2"]


def test_probe_checkers_catch_a_wrong_path_port_or_kind() -> None:
    good = {"env": [{"name": "NXEM_WORKER_METRICS_PORT", "value": "9102"}],
            "ports": [{"name": "metrics", "containerPort": 9102}],
            "livenessProbe": {"httpGet": {"path": "/healthz", "port": "metrics"}},
            "readinessProbe": {"httpGet": {"path": "/readyz", "port": "metrics"}}}
    assert k8s_probe_problems(good, "worker") == []
    swapped = {**good, "livenessProbe": {"httpGet": {"path": "/readyz", "port": "metrics"}}}
    assert k8s_probe_problems(swapped, "worker") == ["livenessProbe: path /readyz instead of /healthz"]
    other_port = {**good, "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080}}}
    assert k8s_probe_problems(other_port, "worker") == [
        "readinessProbe: port 8080 (8080) is not NXEM_WORKER_METRICS_PORT=9102"]
    gauge = {**good, "readinessProbe": {"exec": {"command": ["nxem-probe", "http://127.0.0.1:9102/metrics"]}}}
    assert k8s_probe_problems(gauge, "worker") == ["readinessProbe: not an httpGet probe"]
    svc = {"environment": {"NXEM_WORKER_METRICS_PORT": "9102"},
           "healthcheck": {"test": ["CMD", "nxem-probe", "http://127.0.0.1:9102/metrics", "nxem_worker_ready"]}}
    assert compose_healthcheck_problems(svc, "worker") != []
    svc["healthcheck"] = {"test": ["CMD", "nxem-probe", "http://127.0.0.1:9102/readyz"]}
    assert compose_healthcheck_problems(svc, "worker") == []
