"""Scenario files, examples, fleet generation, faults and the settings documentation."""

from __future__ import annotations

import ast
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from simulators import uscc
from simulators.fleet import fleet_document
from simulators.generate import Publish, Reconnect, generate
from simulators.reference import QUOTAS
from simulators.scenario import CITIES, ScenarioError, data_centre_document, load_scenario, parse_scenario
from simulators.settings import ENV_VARS, SimulatorSettings
from simulators.truth import TruthBuilder

REPO = Path(__file__).parents[3]
EXAMPLES = sorted((REPO / "examples" / "scenarios").glob("*.yaml"))
NOW = datetime(2026, 11, 24, 8, tzinfo=timezone.utc)
START = datetime(2026, 1, 5, tzinfo=timezone(timedelta(hours=8)))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_examples_load(path: Path) -> None:
    sc = load_scenario(path, now=NOW)
    assert sc.gateways()


def test_demo_fleet_covers_every_city_and_product() -> None:
    sc = load_scenario(REPO / "examples" / "scenarios" / "demo-fleet.yaml", now=NOW)
    assert {e.city for e in sc.enterprises} == set(CITIES)
    assert {p for e in sc.enterprises for s in e.sites for p in s.products} == set(QUOTAS)


def test_fleet_of_any_size_has_unique_valid_codes() -> None:
    doc = fleet_document(40, 60, seed=3)
    sc = parse_scenario(doc, now=NOW)
    ids = [e.id for e in sc.enterprises]
    assert len(ids) == len(set(ids)) == 100 and all(uscc.is_valid(i) for i in ids)
    assert len({g.id for _, _, g in sc.gateways()}) == 100
    assert fleet_document(2, 2, seed=3) == fleet_document(2, 2, seed=3)  # reproducible


def _dc(**changes: Any) -> dict[str, Any]:
    doc = data_centre_document("91640500MA76L8XK3A", "zw-dc-01", "gw-a", 1.3, 2000, START, 6)
    for path, value in changes.items():
        node: Any = doc
        *parents, leaf = path.split("__")
        for p in parents:
            node = node[int(p)] if p.isdigit() else node[p]
        node[leaf] = value
    return doc


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"enterprises__0__id": "91640500MA76L8XK3Q"}, "check character should be 'A'"),
        ({"enterprises__0__city": "西安"}, "enterprises[0].city"),
        ({"enterprises__0__sites__0__gateways__0__meters__0__role": "x"}, "meters[0].role"),
        ({"simulation__interval": "soon"}, "simulation.interval"),
        ({"simulation__start": "2026-01-05T00:00:00"}, "no UTC offset"),
        ({"faults": [{"kind": "offline", "gateway": "gw-nope"}]}, "faults[0].gateway"),
        ({"faults": [{"kind": "duplicate", "gateway": "gw-a", "meter": "it-main"}]}, "whole gateway"),
    ],
)
def test_invalid_scenarios_name_the_key(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ScenarioError, match=re.escape(message)):
        parse_scenario(_dc(**changes), now=NOW)


def _events(doc: dict[str, Any]) -> list[Publish | Reconnect]:
    return [e for _, evs in generate(parse_scenario(doc, now=NOW)) for e in evs]


def test_offline_gateway_sends_nothing_and_truth_expects_meter_silent() -> None:
    # 6 h = 24 intervals; offline +1h for 2h drops the 8 messages stamped 01:00 … 02:45
    doc = _dc(faults=[{"kind": "offline", "gateway": "gw-a", "start": "+1h", "duration": "2h"}])
    sc = parse_scenario(doc, now=NOW)
    tb = TruthBuilder(sc)
    for _, evs in generate(sc):
        for e in evs:
            assert isinstance(e, Publish)
            tb.record(e)
    truth = tb.finish()
    assert truth.messages == 16 and truth.meter("gw-a", "it-main").count == 16
    silent = [a for a in truth.alerts if a.rule == "meter_silent"]
    assert {a.meter for a in silent} == {"it-main", "facility-main"} and silent[0].value == 8


def test_duplicates_and_out_of_order_do_not_change_the_truth() -> None:
    plain = parse_scenario(_dc(), now=NOW)
    noisy = parse_scenario(_dc(faults=[
        {"kind": "duplicate", "gateway": "gw-a", "start": "+1h", "duration": "1h", "count": 2},
        {"kind": "out_of_order", "gateway": "gw-a", "start": "+3h", "duration": "1h"},
    ]), now=NOW)
    truths = []
    for sc in (plain, noisy):
        tb = TruthBuilder(sc)
        for _, evs in generate(sc):
            for e in evs:
                assert isinstance(e, Publish)
                tb.record(e)
        truths.append(tb.finish())
    assert truths[1].messages == 24 + 4 * 2 and truths[1].duplicate_messages == 8
    assert [(m.count, m.checksum) for m in truths[0].meters] == [(m.count, m.checksum) for m in truths[1].meters]
    seqs = [e.seq for e in _events(_dc(faults=[{"kind": "out_of_order", "gateway": "gw-a", "start": "+3h",
                                                "duration": "1h"}])) if isinstance(e, Publish)]
    assert seqs[11:17] == [14, 13, 12, 11, 15, 16]  # seq 11-14 (03:00-03:45) held, sent newest first


def test_counter_reset_and_reconnect_storm() -> None:
    doc = _dc(faults=[{"kind": "counter_reset", "gateway": "gw-a", "meter": "it-main", "start": "+2h"},
                      {"kind": "reconnect_storm", "gateway": "gw-a", "start": "+1h", "count": 3}])
    events = _events(doc)
    it = [r.value for e in events if isinstance(e, Publish) for r in e.accepted if r.meter == "it-main"]
    assert it[6:9] == [3500.0, 0.0, 500.0]  # 500 kWh per quarter-hour; reset at 02:00
    assert [e.count for e in events if isinstance(e, Reconnect)] == [3]


def test_settings_are_documented_in_the_readme() -> None:
    readme = (REPO / "simulators" / "README.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `(NXEM_[A-Z_]+)`", readme, flags=re.MULTILINE))
    assert documented == set(ENV_VARS) == {f"NXEM_{n.upper()}" for n in SimulatorSettings.model_fields}


def test_password_is_never_a_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("hunter2\n")
    monkeypatch.setenv("NXEM_MQTT_PASSWORD_FILE", str(secret))
    monkeypatch.setenv("NXEM_MQTT_USERNAME", "sim")
    s = SimulatorSettings()
    assert "hunter2" not in repr(s) and "hunter2" not in str(s.model_dump())


PURE = ["uscc", "reference", "sites", "scenario", "generate", "truth", "expect", "fleet"]
FORBIDDEN = {"paho", "kafka", "psycopg", "httpx", "requests", "logging", "socket"}


@pytest.mark.parametrize("module", PURE)
def test_pure_modules_do_no_io(module: str) -> None:
    tree = ast.parse((REPO / "simulators" / f"{module}.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        elif isinstance(node, ast.Attribute) and node.attr == "environ":
            pytest.fail(f"{module} reads os.environ")
        else:
            continue
        assert not {n.split(".")[0] for n in names} & FORBIDDEN, f"{module} imports {names}"


def test_example_files_are_registry_files() -> None:
    # the registry keys the storage loader reads are all present on every meter
    keys = {"code", "carrier", "unit", "role", "kind", "multiplier", "rollover", "coefficient", "product"}
    for path in EXAMPLES:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        for e in doc["enterprises"]:
            for s in e["sites"]:
                for g in s["gateways"]:
                    for m in g["meters"]:
                        assert keys <= set(m), f"{path.name}: {m['code']}"
