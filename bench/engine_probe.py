"""Rule-engine cost per reading on the load-mode fleet shape (1000 gateways x 100 interval meters).

    .venv/bin/python -m bench.engine_probe
"""
import time, cProfile, pstats
from datetime import UTC, datetime, timedelta
from dataclasses import dataclass, field
from typing import Any
from nxem.contract import Reading, ReadingBatch
from stream.registry import build_registry
from stream.sites import SiteEngine
@dataclass(frozen=True)
class SiteRow:
    id: int; enterprise_id: str; kind: str; new_build: bool=False; pue_limit: Any=None; pue_window_hours: Any=720; energy_budget_tce: Any=None; products: tuple=()
@dataclass(frozen=True)
class MeterRow:
    id: int; site_id: int; role: str="consumed"; carrier: str="electricity"; unit: str="kWh"; kind: str="interval"; multiplier: float=1.0; rollover: Any=None; coefficient: Any="electricity_calorific"; product: Any=None
sites={s: SiteRow(s, "x", "plant") for s in range(10)}
meters={g*100+j: MeterRow(g*100+j, g//100) for g in range(1000) for j in range(100)}
reg=build_registry(sites, meters)
eng=SiteEngine(lambda: reg, lambda *a: [], lambda s: [], timedelta(days=35))
T0=datetime(2026,11,24,tzinfo=UTC)
def polls(sec):
    ts=T0+timedelta(seconds=sec)
    return [ReadingBatch(enterprise_id="x", site_id=g//100, gateway_id="g", seq=sec, sent_at=ts, received_at=ts, readings=[Reading(g*100+j, ts, 25.0) for j in range(100)]) for g in range(1000)]
P=[polls(s) for s in range(5)]
t=time.perf_counter()
for p in P: eng.apply(p)
el=time.perf_counter()-t
print(f"{5*100000/el:,.0f} readings/s, {el/5e5*1e6:.2f} us/reading")
cProfile.run("[eng.apply(polls(s)) for s in range(5,7)]", "/tmp/e.out"); pstats.Stats("/tmp/e.out").sort_stats("tottime").print_stats(10)
