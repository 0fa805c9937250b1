"""Collector cost per reading without the network: ``collector.normalise`` (decode, validate
against the registry, group per site) plus ``nxem.contract.encode`` of the resulting Kafka
record, on the load generator's own message shape (``simulators.load``: one gateway message of
M meters, kWh, timestamps in +08:00).

    .venv/bin/python -m bench.collector_probe [--meters 100] [--messages 2000] [--rounds 5] [--profile]

Prints the best round's CPU time (``time.process_time``) per reading and per message; the MQTT
receipt and the Kafka send around it are measured in ``bench.pipeline`` (py-spy on the running
collector). Figures, never pass/fail.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import time
from datetime import UTC, datetime

from collector.normalise import normalise
from nxem import contract
from simulators.load import LoadConfig, _template, stamp
from storage.registry import GatewayRoute, MeterRoute


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--meters", type=int, default=100)
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--profile", action="store_true", help="print cProfile's top frames of one round")
    a = ap.parse_args()

    now = datetime.now(UTC)
    data = stamp(_template(LoadConfig(meters=a.meters), 0), 1, now)
    doc = json.loads(data)
    ent, gw = doc["enterprise"], doc["gateway"]
    topic = f"nxem/v1/{ent}/{gw}/readings"
    gateways = {gw: GatewayRoute(gw, ent, 1)}
    meters = {(gw, r["meter"]): MeterRoute(i + 1, 1, ent, "kWh", "interval", "consumed")
              for i, r in enumerate(doc["readings"])}

    def one_round() -> int:
        accepted = 0
        for _ in range(a.messages):
            out = normalise(topic, data, gateways, meters, now)
            for batch in out.batches:
                contract.encode(batch)
            accepted += out.accepted
        return accepted

    assert one_round() == a.messages * a.meters, "the probe's messages must all be accepted"
    best = float("inf")
    for _ in range(a.rounds):
        t0 = time.process_time()
        one_round()
        best = min(best, time.process_time() - t0)
    readings = a.messages * a.meters
    print(f"# bench.collector_probe  meters/message={a.meters}  messages={a.messages}  best of {a.rounds}")
    print(f"normalise + encode: {best / readings * 1e6:.2f} µs per reading, {best / a.messages * 1e6:.0f} µs per "
          f"message ({readings / best:,.0f} readings/s on one core)")
    if a.profile:
        prof = cProfile.Profile()
        prof.runcall(one_round)
        pstats.Stats(prof).sort_stats("tottime").print_stats(10)


if __name__ == "__main__":
    main()
