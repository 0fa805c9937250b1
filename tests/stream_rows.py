"""Registry rows and a data-centre reading stream for the worker's rule-engine unit tests
(tests/unit/test_stream): the rows the database would return, no database, no Kafka."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from nxem.contract import AlertEvent, Reading, ReadingBatch
from stream.registry import build_registry
from stream.sites import Registry, SiteEngine

ENT = "91640500MA76L8XK3A"  # 中卫 data centre
T0 = datetime(2026, 11, 24, 0, 0, tzinfo=UTC)
Q = timedelta(minutes=15)


@dataclass(frozen=True)
class SiteRow:
    id: int
    enterprise_id: str
    kind: str
    new_build: bool = False
    pue_limit: float | None = 1.2
    pue_window_hours: float | None = 1
    energy_budget_tce: float | None = None
    products: tuple[Any, ...] = ()
    standard_racks: int | None = None
    it_capacity_kw: float | None = None
    pue_limit_source: str | None = None


@dataclass(frozen=True)
class MeterRow:
    id: int
    site_id: int
    role: str
    carrier: str = "electricity"
    unit: str = "kWh"
    kind: str = "register"
    multiplier: float = 1.0
    rollover: float | None = 1e9
    coefficient: str | None = "electricity_calorific"
    product: str | None = None
    interval_s: int = 900
    code: str = ""


def dc_registry(pue_limit: float = 1.2) -> Registry:
    """Site 7, a data centre: IT meter 1 and facility meter 2 (kWh registers)."""
    return build_registry({7: SiteRow(7, ENT, "data_centre", pue_limit=pue_limit)},
                          {1: MeterRow(1, 7, "it_load"), 2: MeterRow(2, 7, "total_facility")})


def engine(reg: Registry, history: list[tuple[int, datetime, float]] | None = None,
           active: list[AlertEvent] | None = None) -> SiteEngine:
    """A rule engine over ``reg`` whose database returns ``history`` and ``active``."""
    def hist(_site: int, _ids: Iterable[int], _since: datetime) -> list[tuple[int, datetime, float]]:
        return list(history or [])

    return SiteEngine(lambda: reg, hist, lambda _site: list(active or []), timedelta(days=35))


def dc_batches(pues: list[float]) -> list[ReadingBatch]:
    """One batch per quarter-hour k = 0..len(pues): IT 2000 kW (500 kWh a quarter), facility at
    ``pues[k-1]`` over quarter k."""
    out = []
    it = fac = 0.0
    for k in range(len(pues) + 1):
        if k:
            it, fac = it + 500.0, fac + 500.0 * pues[k - 1]
        ts = T0 + k * Q
        out.append(ReadingBatch(enterprise_id=ENT, site_id=7, gateway_id="gw", seq=k, sent_at=ts, received_at=ts,
                                readings=[Reading(1, ts, it), Reading(2, ts, fac)]))
    return out
