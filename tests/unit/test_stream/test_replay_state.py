"""Replaying stored readings through the worker's rule engine adds no transition: a site's
rule state is restored with its evaluation watermark (the newest stored reading), so a topic
replayed from the start over the same database evaluates no old edge again. No Kafka, no
database: the stored readings and active alert are handed over as the database returns them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from nxem.contract import AlertEvent, Reading, ReadingBatch
from stream.registry import build_registry
from stream.sites import Registry, SiteEngine

ENT = "91640500MA76L8XK3A"
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


def _registry() -> Registry:
    return build_registry({7: SiteRow(7, ENT, "data_centre")},
                          {1: MeterRow(1, 7, "it_load"), 2: MeterRow(2, 7, "total_facility")})


def _engine(history: list[tuple[int, datetime, float]] | None = None,
            active: list[AlertEvent] | None = None) -> SiteEngine:
    reg = _registry()

    def hist(_site: int, _ids: Iterable[int], _since: datetime) -> list[tuple[int, datetime, float]]:
        return list(history or [])

    return SiteEngine(lambda: reg, hist, lambda _site: list(active or []), timedelta(days=35))


def _dc(pues: list[float]) -> list[ReadingBatch]:
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


def test_a_replay_of_stored_readings_adds_no_transition() -> None:
    # 8 quarters at PUE 1.3 then 8 at 1.5: opened, then updated (1.3 -> 1.5 is +15 %, over 2 %)
    batches = _dc([1.3] * 8 + [1.5] * 8)
    live = _engine()
    events = [e for b in batches for e in live.apply([b])]
    kinds = [e.kind for e in events if e.rule == "pue_above_limit"]
    assert kinds[0] == "opened" and "updated" in kinds
    # a new worker replays the topic from the start over the database that stored all of it:
    # the stored readings and the active alert as the database keeps it (its latest value)
    stored = [(r.meter_id, r.ts, r.value) for b in batches for r in b.readings]
    latest = [e for e in events if e.rule == "pue_above_limit"][-1]
    active = AlertEvent(alert_key=latest.alert_key, source_kind="site", source_id=7, enterprise_id=ENT,
                        rule=latest.rule, kind="opened", severity=latest.severity,
                        at=T0 + 8 * Q, value=latest.value, threshold=latest.threshold, details=dict(latest.details))
    replay = _engine(history=stored, active=[active])
    assert [e for b in batches for e in replay.apply([b])] == []
    # and the next new reading is evaluated as if the worker had never stopped: quarter 17 at
    # PUE 2.0 makes the 1-hour window (3 × 1.5 + 2.0) / 4 = 1.625, +8 % on the last 1.5: updated
    nxt = ReadingBatch(enterprise_id=ENT, site_id=7, gateway_id="gw", seq=17, sent_at=T0 + 17 * Q,
                       received_at=T0 + 17 * Q,
                       readings=[Reading(1, T0 + 17 * Q, 17 * 500.0),
                                 Reading(2, T0 + 17 * Q, 8 * 650.0 + 8 * 750.0 + 1000.0)])
    after_replay, after_live = replay.apply([nxt]), live.apply([nxt])
    assert [(e.kind, e.at, e.value) for e in after_replay] == [("updated", T0 + 17 * Q, 1.625)]
    assert after_replay == after_live
