"""Rule-engine cost per reading on the load-mode fleet shape: 1000 gateways x 100 meters of role
``consumed`` (electricity, kWh), one reading per meter per second, 10 plant sites; once with
``interval`` meters (registered interval 900 s, reporting every second) and once with
``register`` meters.

    .venv/bin/python -m bench.engine_probe [--polls N] [--rounds R] [--profile]

Each fleet gets a fresh ``stream.sites.SiteEngine``; one warm-up poll (creates the meter states
and runs the first full evaluation), then R rounds of N one-second polls (100 000 readings each)
are timed and the best round is reported. Times are CPU time of this process
(``time.process_time``), so other load on the machine disturbs them less than wall time.
``apply_readings`` and ``evaluate_site`` are timed by wrapping the functions ``SiteEngine``
calls; "grouping" is the rest of ``SiteEngine.apply`` (stream/sites.py building and sorting the
per-site rows). "15-min edge" is the one full evaluation when a poll crosses a 15-minute
boundary (PUE, silent meters, flags), spread over the 900 s x 100 000 readings in between. The first poll is reported apart: the old
version of this probe timed it with the others, which made the per-reading cost look ~3x higher.
Budget for the whole rule path: <= 1.5 us per reading (0.15 of a core at 100 000 readings/s).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from alerts import engine
from analytics import site_energy as se
from nxem.contract import Reading, ReadingBatch
from storage.registry import MeterRow, SiteRow
from stream.registry import build_registry
from stream.sites import SiteEngine

GATEWAYS, PER_GATEWAY, SITES = 1000, 100, 10
READINGS = GATEWAYS * PER_GATEWAY
T0 = datetime(2026, 11, 24, tzinfo=UTC)  # 08:00 Asia/Shanghai, on a 15-minute edge


class Timed:
    """Wraps a module-level function and accumulates its CPU time."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn, self.spent, self.calls = fn, 0.0, 0

    def __call__(self, *a: Any) -> Any:
        t = time.process_time()
        try:
            return self.fn(*a)
        finally:
            self.spent += time.process_time() - t
            self.calls += 1


def poll(kind: str, sec: int) -> list[ReadingBatch]:
    """One second of the fleet; every reading has its own datetime object, as when decoded."""
    t = (T0 + timedelta(seconds=sec)).timestamp()
    out = []
    for g in range(GATEWAYS):
        base = g * PER_GATEWAY
        readings = [Reading(base + j, datetime.fromtimestamp(t, UTC),
                            25.0 if kind == "interval" else 1000.0 + 25.0 * sec) for j in range(PER_GATEWAY)]
        ts = datetime.fromtimestamp(t, UTC)
        out.append(ReadingBatch(enterprise_id="x", site_id=g * SITES // GATEWAYS, gateway_id=f"g{g}", seq=sec,
                                sent_at=ts, received_at=ts, readings=readings))
    return out


def probe(kind: str, polls: int, rounds: int, profile: bool) -> None:
    # the rows the database returns (storage.registry), for a fleet of plants without products
    sites = {s: SiteRow(id=s, code=f"s{s}", enterprise_id="x", kind="plant", name=f"s{s}", new_build=False,
                        pue_limit=1.5, pue_window_hours=720, energy_budget_tce=None, products=(), city="银川",
                        industry="chemicals") for s in range(SITES)}
    meters = {m: MeterRow(id=m, gateway_id=f"g{g}", code=f"m{j}", site_id=g * SITES // GATEWAYS, enterprise_id="x",
                          carrier="electricity", unit="kWh", role="consumed", kind=kind, multiplier=1.0,
                          rollover=None, coefficient="electricity_calorific", product=None, kgce_per_unit=0.1229)
              for g in range(GATEWAYS) for j in range(PER_GATEWAY) for m in (g * PER_GATEWAY + j,)}
    reg = build_registry(sites, meters)
    eng = SiteEngine(lambda: reg, lambda *a: [], lambda s: [], timedelta(days=35))
    ar, ev = Timed(se.apply_readings), Timed(engine.evaluate_site)
    # stream.sites calls se.apply_readings and engine.evaluate_site through these modules
    setattr(se, "apply_readings", ar)
    setattr(engine, "evaluate_site", ev)
    try:
        first = poll(kind, 0)
        t = time.process_time()
        eng.apply(first)  # warm-up: meter states, first full evaluation
        t_warm, t_warm_ev = time.process_time() - t, ev.spent
        best: tuple[float, float, float] | None = None
        sec = 1
        for _ in range(rounds):
            batches = [poll(kind, sec + i) for i in range(polls)]
            sec += polls
            ar.spent = ev.spent = 0.0
            t = time.process_time()
            for b in batches:
                eng.apply(b)
            total = time.process_time() - t
            if best is None or total < best[0]:
                best = (total, ar.spent, ev.spent)
        assert best is not None
        total, t_ar, t_ev = best
        edge_batches = poll(kind, 900)  # crosses the 15-minute edge at T0 + 900 s
        ev.spent = 0.0
        eng.apply(edge_batches)
        t_edge = ev.spent
        if profile:
            more = [poll(kind, 901 + i) for i in range(2)]
            prof = cProfile.Profile()
            prof.enable()
            for b in more:
                eng.apply(b)
            prof.disable()
    finally:
        setattr(se, "apply_readings", ar.fn)
        setattr(engine, "evaluate_site", ev.fn)
    n = polls * READINGS
    us = 1e6 / n
    edge_us = t_edge * 1e6 / (900 * READINGS)
    print(f"{kind:>8} fleet: {n / total:>9,.0f} readings/s  {total * us:5.2f} us/reading total = "
          f"apply_readings {t_ar * us:.2f} + evaluate_site {t_ev * us:.3f} ({t_ev * 1e6 / (polls * SITES):.1f} us/call)"
          f" + grouping {(total - t_ar - t_ev) * us:.2f};  15-min edge {t_edge * 1e3:.0f} ms = {edge_us:.3f} us/reading")
    print(f"{'':>8}  first poll (creates {READINGS:,} meter states, first full evaluation): "
          f"{t_warm:.2f} s, of which evaluate_site {t_warm_ev:.2f} s (once per worker start)")
    if profile:
        pstats.Stats(prof).sort_stats("tottime").print_stats(8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--polls", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--profile", action="store_true")
    a = ap.parse_args()
    for kind in ("interval", "register"):
        probe(kind, a.polls, a.rounds, a.profile)


if __name__ == "__main__":
    main()
