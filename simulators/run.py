"""Run a scenario against the broker: pace the generated messages, publish, write the truth.

Wiring: the pure generator (``generate``) and truth builder (``truth``) meet the MQTT adapter
(``mqtt``) and the clock here. Modes:

* ``backfill`` — explicit timestamps, full speed (bounded only by PUBACKs in flight)
* ``accelerated`` — simulated time runs ``speed`` times faster than the wall clock
* ``realtime`` — each interval is published when the wall clock reaches it
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import get_args

from simulators.generate import Publish, Reconnect, generate
from simulators.mqtt import PublishError, close_all, connect_all, unique_tag
from simulators.scenario import Scenario, TimeMode
from simulators.settings import SimulatorSettings
from simulators.truth import GroundTruth, TruthBuilder

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (ticks done, ticks total)


def write_truth(truth: GroundTruth, path: str | Path) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(p.suffix + ".tmp")
    tmp.write_text(json.dumps(truth.to_json_dict(), ensure_ascii=False, indent=1), encoding="utf-8")
    tmp.replace(p)


def run_scenario(
    scenario: Scenario,
    settings: SimulatorSettings,
    mode: TimeMode = "backfill",
    speed: float | None = None,
    truth_path: str | Path | None = None,
    progress: Progress | None = None,
    ack_timeout_s: float = 120.0,
) -> GroundTruth:
    """Publish every message of ``scenario`` and wait for all PUBACKs; return the ground truth.

    Raises ``PublishError`` when the broker is unreachable, refuses a message, or does not
    acknowledge everything within ``ack_timeout_s`` after the last publish.
    """
    if mode not in get_args(TimeMode):
        raise ValueError(f"mode {mode!r} is not one of {get_args(TimeMode)}")
    sim = scenario.simulation
    if speed is not None:
        scenario = replace(scenario, simulation=replace(sim, speed=speed))
        sim = scenario.simulation
    gateways = [g.id for _, _, g in scenario.gateways()]
    n = max(1, min(settings.sim_connections, len(gateways)))
    pubs = connect_all(settings, n, unique_tag())
    route = {gid: pubs[i % n] for i, gid in enumerate(gateways)}
    builder = TruthBuilder(scenario)
    mono0 = time.monotonic()
    try:
        for k, (tick, events) in enumerate(generate(scenario)):
            _wait_for(tick, mode, sim.start, sim.speed, mono0)
            for ev in events:
                if isinstance(ev, Reconnect):
                    for _ in range(ev.count):
                        route[ev.gateway].reconnect()
                    builder.reconnect(ev.count)
                else:
                    assert isinstance(ev, Publish)
                    route[ev.gateway].publish(ev.topic, ev.payload)
                    builder.record(ev)
            if progress is not None:
                progress(k + 1, sim.ticks)
        deadline = time.monotonic() + ack_timeout_s
        for p in pubs:
            if not p.wait_acked(max(0.0, deadline - time.monotonic())):
                raise PublishError(f"{p.pending} messages of {p.client_id} not acknowledged within {ack_timeout_s} s")
        failed = {p.client_id: dict(p.stats.errors) for p in pubs if p.stats.failed}
        if failed:
            raise PublishError(f"broker refused messages: {failed}")
    finally:
        close_all(pubs)
    truth = builder.finish()
    log.info("scenario published name=%s messages=%d readings=%d", scenario.name, truth.messages, truth.readings)
    if truth_path is not None:
        write_truth(truth, truth_path)
    return truth


def _wait_for(tick: datetime, mode: TimeMode, start: datetime, speed: float, mono0: float) -> None:
    if mode == "backfill":
        return
    if mode == "realtime":
        delay = tick.timestamp() - time.time()
    else:
        delay = mono0 + (tick - start).total_seconds() / speed - time.monotonic()
    if delay > 0:
        time.sleep(delay)
