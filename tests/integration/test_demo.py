"""The README's main job, ``nxem demo``, runs end to end: services, migration, registry, the
collector, a worker and the portal as processes, and the demo fleet simulated into them.

Isolated like every pipeline test (its own database, topics, client ids and ports); run for
5 s, so the scenario is the fleet's week of history (published at full speed) and the demo
waits for it to be published before it stops.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from collector.mqtt import purge_session
from tests.harness import REPO, free_port, pipeline, wait_for
from ops.services import ServiceSettings

pytestmark = pytest.mark.integration


def test_the_demo_runs_and_stores_every_reading_it_published(services: ServiceSettings) -> None:
    with pipeline(services) as p:
        client_id = f"demo-collector-{p.suffix}"
        env = {**p.env, "NXEM_COLLECTOR_ID": client_id, "NXEM_WORKER_ID": f"demo-worker-{p.suffix}",
               "NXEM_COLLECTOR_METRICS_PORT": str(free_port()), "NXEM_WORKER_METRICS_PORT": str(free_port()),
               "NXEM_PORTAL_PORT": str(free_port())}
        try:
            done = subprocess.run([sys.executable, "-m", "ops", "demo", "--duration-s", "5"], cwd=REPO, env=env,
                                  capture_output=True, text=True, timeout=240, check=False)
        finally:
            purge_session(services.mqtt_host, services.mqtt_port, client_id)
        out = done.stdout + done.stderr
        assert done.returncode == 0, out[-3000:]
        m = re.search(r"published (\d+) readings in (\d+) MQTT messages", out)
        assert m, out[-3000:]
        published = int(m.group(1))
        assert published > 10_000  # a week of 15-minute readings of the demo fleet
        stored = wait_for(lambda: p.sql("SELECT count(*) FROM readings")[0][0] >= published and
                          p.sql("SELECT count(*) FROM readings")[0][0], 5, "readings stored")
        assert stored == published
        assert "demo processes stopped" in out
