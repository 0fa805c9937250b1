"""Rule-state memory per meter: what a worker holds for each meter of its sites.

    .venv/bin/python -m bench.rule_state_memory [--meters 200] [--days 740] [--horizon-days 740] [--fine-days 35]

Feeds ``--days`` local days of 15-minute readings (interval meters, electricity, one plant
site) through ``analytics.site_energy.apply_readings`` with the given horizons (the worker's
``NXEM_WORKER_STATE_HORIZON_DAYS`` and ``NXEM_WORKER_FINE_HORIZON_DAYS``) and prints the memory
the state holds afterwards: ``sys.getsizeof`` of every object reachable from the state (the
meter specs excluded: they belong to the registry), divided by the meters. ``--tracemalloc``
measures the allocations instead (same figures within a few %, ~40x slower to feed). It only uses ``initial_state`` / ``apply_readings`` /
``window_energy``, so the same file measures an older checkout too (run it from that tree)::

    mkdir /tmp/nxem-before && git archive <commit> analytics | tar -x -C /tmp/nxem-before && \
        cd /tmp/nxem-before && /work/main/.venv/bin/python /work/main/bench/rule_state_memory.py

A figure, never a pass/fail. It also prints the annual figure the state can give (the window
the annual rules sum), so a horizon that cuts the year shows up as a smaller number.

Measured 2026-12-03 on the shared 2-core machine (100 meters, 740 days fed, KiB per meter;
"year held" = kWh of the last 365 days the state still holds, of 876 000):

| tree | horizon / fine days | KiB per meter | year held |
| --- | --- | --- | --- |
| before (89ad7ad), shipped settings | 35 / 35 | 94.7 | 86 400 |
| before, a year of day objects | 740 / 35 | 246.8 | 876 000 |
| before | 740 / 2 | 167.9 | 876 000 |
| after (compact day totals), shipped settings | 740 / 10 | 47.4 | 876 000 |
| after | 740 / 35 | 111.9 | 876 000 |
| after | 740 / 2 | 26.7 | 876 000 |
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import tracemalloc
import types
from typing import Any
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path.cwd()))  # measure the tree it is run from (see the docstring)

from analytics import site_energy as se  # noqa: E402

T0 = datetime(2024, 12, 31, 16, 0, tzinfo=UTC)  # 2025-01-01 00:00 Asia/Shanghai
Q = 900.0


def deep_size(root: Any, exclude: set[int]) -> int:
    """Bytes of every object reachable from ``root`` (each counted once), skipping ``exclude``
    ids and types, modules and functions."""
    seen, stack, total = set(exclude), [root], 0
    while stack:
        o = stack.pop()
        if id(o) in seen or isinstance(o, type | types.ModuleType | types.FunctionType):
            continue
        seen.add(id(o))
        total += sys.getsizeof(o)
        stack.extend(gc.get_referents(o))
    return total


def measure(meters: int, days: int, horizon_days: float, fine_days: float, traced: bool) -> None:
    specs = {m: se.MeterSpec(m, 1, "electricity", "kWh", "consumed", "interval") for m in range(meters)}
    gc.collect()
    if traced:
        tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    state = se.initial_state(retention=timedelta(days=horizon_days), fine_retention=timedelta(days=fine_days))
    t0 = T0.timestamp()
    cpu = time.process_time()
    for day in range(days):  # one local day per call, every meter reading 25 kWh a quarter hour
        base = t0 + day * 86_400
        rows = [(m, base + Q * k, 25.0) for k in range(1, 97) for m in range(meters)]
        state, _ = se.apply_readings(state, specs, rows)
    cpu = time.process_time() - cpu
    gc.collect()
    if traced:
        held = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
    else:
        held = deep_size(state, {id(s) for s in specs.values()})
    end = T0 + timedelta(days=days)
    year = se.window_energy(state, {0: specs[0]}, end - timedelta(days=365), end)
    print(f"meters {meters}, {days} days fed, horizon {horizon_days:g} d, fine {fine_days:g} d: "
          f"{held / meters / 1024:6.1f} KiB per meter ({held / 2**20:.1f} MiB for {meters}); "
          f"last 365 days held {year.quantity_by_meter[0]:,.0f} kWh of {min(days, 365) * 96 * 25:,} "
          f"({cpu / (meters * days * 96) * 1e6:.2f} us/reading)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--meters", type=int, default=200)
    ap.add_argument("--days", type=int, default=740)
    ap.add_argument("--horizon-days", type=float, default=740.0)
    ap.add_argument("--fine-days", type=float, default=35.0)
    ap.add_argument("--tracemalloc", action="store_true")
    a = ap.parse_args()
    print(f"analytics from {Path(se.__file__).parent}")
    measure(a.meters, a.days, a.horizon_days, min(a.fine_days, a.horizon_days), a.tracemalloc)


if __name__ == "__main__":
    main()
