"""The national load of issue #17 through the whole pipeline, and the share of this machine it takes.

    .venv/bin/python -m bench.national [--duration 60] [--gateways 1000] [--meters 50] [--backend ...]

≈ 20 000 key energy-using units × 50 meters, one reading per meter a minute = 16 667 readings/s.
The load generator (``simulators.load``) offers that rate as 1000 gateways × 50 readings per
message, each gateway its own site (a unit): the national message rate (333 messages/s) and
message size, so the per-message costs (MQTT, collector, Kafka records) are the national ones;
only the number of distinct units is 1000 instead of 20 000 (50 000 meters, not 1 000 000), so
each meter reads every 3 s instead of every minute. One
``bench.pipeline.run`` (one collector, one worker, no alert probe) for ``--duration`` after its
warm-up; prints its lines, then the machine share -- CPU cores of every process over the
measured window (load generator included, and without it) / ``os.cpu_count()`` -- per process
group and in all, whether it is under 25 %, and the collector's and worker's RSS at the end.

That RSS holds rule state for 50 000 meters fed for a minute, not a year: the memory of a year
of rule state is ``bench/rule_state_memory.py`` (47.4 KiB per meter, ≈ 4.6 GB per 100 000
meters with the shipped horizons). Figures, never pass/fail; it exits non-zero only when the
run did not store exactly the acknowledged readings.
"""

from __future__ import annotations

import argparse
import os
import threading

from bench.pipeline import add_pipeline_args, fail_on_loss, run

UNITS, METERS_PER_UNIT, INTERVAL_S = 20_000, 50, 60
RATE = UNITS * METERS_PER_UNIT / INTERVAL_S  # readings/s
BUDGET = 0.25  # share of the machine the issue allows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_pipeline_args(ap, gateways_per_site=1)
    ap.set_defaults(meters=METERS_PER_UNIT)
    a = ap.parse_args()
    r = run(RATE, a.duration, a.gateways, a.meters, warmup_s=a.warmup, alert_probe=False, backend=a.backend,
            gateways_per_site=a.gateways_per_site)
    cpus = os.cpu_count() or 1
    cores = r.cores
    share, pipeline_share = cores["total"] / cpus, (cores["total"] - cores["simulator"]) / cpus
    print(f"# bench.national  {UNITS:,} units × {METERS_PER_UNIT} meters every {INTERVAL_S} s = {RATE:,.0f} readings/s "
          f"offered, {r.stored_per_s_loading:,.0f} stored/s while loading, backend {r.backend}")
    print(f"machine share: {share:.1%} of {cpus} cores ({cores['total']:.2f} cores, load generator included; "
          f"{pipeline_share:.1%} without it) -- {'under' if share < BUDGET else 'NOT under'} {BUDGET:.0%}")
    print("machine share per process group: " + "  ".join(
        f"{k}={v / cpus:.1%}" for k, v in cores.items() if k != "total"))
    print("rss at the end: " + "  ".join(
        f"{k}={' + '.join(f'{m:.0f}' for m in mib)} MiB" for k, mib in r.rss_mib.items()))
    fail_on_loss([r])


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    main()
