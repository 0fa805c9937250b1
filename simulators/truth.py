"""Ground truth of a scenario run: what was published, and what a correct system must conclude.

Pure. Readings are fingerprinted per meter with an order-independent checksum::

    reading_hash(meter, ts, value) = int.from_bytes(blake2b(f"{meter}|{epoch_us}|{value!r}",
                                                            digest_size=8).digest(), "big")
    checksum(meter) = Σ reading_hash over its distinct published readings  mod 2**64

where ``epoch_us`` is the integer number of microseconds since 1970-01-01T00:00:00Z of the
reading's ``ts`` and ``value!r`` is Python's shortest round-trip repr of the float (``0.0``
for zero; a stored float8 gives back the same float). The test side computes the same from
the database with ``reading_hash`` / ``checksum`` below.

Expected alerts are derived from the scenario's own parameters and the site models (IT kWh ×
PUE, tonnes × kgce/t, × 0.1229 kgce/kWh) — never from ``analytics`` or ``alerts``. Near a
threshold (within ``MARGIN``) a rule is left out rather than guessed: ``alerts`` lists what
must be raised, ``quiet`` what must not, ``not_evaluated`` what the truth does not judge.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Final

from simulators.expect import ExpectedAlert, expected_alerts
from simulators.generate import Publish, site_quantities
from simulators.reference import COEFFICIENTS, ELECTRICITY_KGCE_PER_KWH
from simulators.scenario import Scenario
from simulators.sites import CST, DataCentreSim, PlantSim

MOD: Final = 2**64
EPOCH: Final = datetime(1970, 1, 1, tzinfo=timezone.utc)
def epoch_us(ts: datetime) -> int:
    return (ts - EPOCH) // timedelta(microseconds=1)


def reading_hash(meter: str, ts: datetime, value: float) -> int:
    """64-bit fingerprint of one reading (see the module docstring)."""
    text = f"{meter}|{epoch_us(ts)}|{float(value) + 0.0!r}"
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def checksum(readings: Iterable[tuple[str, datetime, float]]) -> int:
    """Order-independent checksum of (meter, ts, value) readings, mod 2**64."""
    return sum(reading_hash(m, t, v) for m, t, v in readings) % MOD


@dataclass
class MeterTruth:
    enterprise: str
    site: str
    gateway: str
    meter: str
    unit: str
    count: int = 0  # distinct readings published in well-formed messages
    checksum: int = 0
    first_ts: str | None = None
    last_ts: str | None = None
    expected_quantity: float = 0.0  # true quantity metered over the run (after × multiplier)
    faulted: dict[str, int] = field(default_factory=dict)  # readings shaped by each fault kind


@dataclass
class SiteTruth:
    enterprise: str
    site: str
    kind: str
    it_kwh: float = 0.0
    facility_kwh: float = 0.0
    product_t: float = 0.0
    tce: float = 0.0  # comprehensive energy consumption, net of exports, calorific basis
    pue: float | None = None
    kgce_per_t: float | None = None


@dataclass
class GroundTruth:
    scenario: str
    start: str
    end: str
    interval_s: float
    messages: int = 0  # MQTT messages published, duplicates and malformed included
    duplicate_messages: int = 0
    malformed_messages: int = 0
    readings: int = 0  # distinct readings a correct collector accepts
    rejected_readings: int = 0  # readings inside malformed messages, refused by design
    reconnects: int = 0
    meters: list[MeterTruth] = field(default_factory=list)
    sites: list[SiteTruth] = field(default_factory=list)
    alerts: list[ExpectedAlert] = field(default_factory=list)
    quiet: list[ExpectedAlert] = field(default_factory=list)
    not_evaluated: list[str] = field(default_factory=list)
    checksum_doc: str = (
        "per meter: sum of int.from_bytes(blake2b(f'{meter}|{epoch_us}|{value!r}'.encode(), "
        "digest_size=8).digest(), 'big') over distinct readings, mod 2**64; epoch_us = integer µs since "
        "1970-01-01Z; see simulators.truth.reading_hash")

    def meter(self, gateway: str, meter: str) -> MeterTruth:
        return next(m for m in self.meters if m.gateway == gateway and m.meter == meter)

    def to_json_dict(self) -> dict[str, Any]:
        return asdict(self)


class TruthBuilder:
    """Accumulates what was published; ``finish`` adds the expected alerts."""

    def __init__(self, scenario: Scenario) -> None:
        self.sc = scenario
        sim = scenario.simulation
        self.truth = GroundTruth(scenario.name, sim.start.isoformat(), sim.end.isoformat(),
                                 sim.interval.total_seconds())
        self._meters: dict[tuple[str, str], MeterTruth] = {}
        self._per_day: dict[tuple[str, str], dict[date, int]] = defaultdict(lambda: defaultdict(int))
        for e, s, g in scenario.gateways():
            for m in g.meters:
                mt = MeterTruth(e.id, s.code, g.id, m.code, m.unit)
                self._meters[(g.id, m.code)] = mt
                self.truth.meters.append(mt)

    def reconnect(self, count: int) -> None:
        self.truth.reconnects += count

    def record(self, pub: Publish) -> None:
        t = self.truth
        t.messages += 1
        if pub.duplicate:
            t.duplicate_messages += 1
            return
        if pub.malformed is not None:
            t.malformed_messages += 1
            t.rejected_readings += pub.rejected
        for r in pub.accepted:
            mt = self._meters[(pub.gateway, r.meter)]
            mt.count += 1
            mt.checksum = (mt.checksum + reading_hash(r.meter, r.ts, r.value)) % MOD
            iso = r.ts.astimezone(timezone.utc).isoformat()
            if mt.first_ts is None or iso < mt.first_ts:
                mt.first_ts = iso
            if mt.last_ts is None or iso > mt.last_ts:
                mt.last_ts = iso
            for kind in r.faults:
                mt.faulted[kind] = mt.faulted.get(kind, 0) + 1
            self._per_day[(pub.gateway, r.meter)][r.ts.astimezone(CST).date()] += 1
            t.readings += 1

    def finish(self) -> GroundTruth:
        sites, quantities = _site_totals(self.sc)
        for mt in self.truth.meters:
            mt.expected_quantity = round(quantities.get((mt.gateway, mt.meter), 0.0), 6)
        self.truth.sites = sites
        alerts, quiet, skipped = expected_alerts(self.sc, self._per_day)
        self.truth.alerts, self.truth.quiet, self.truth.not_evaluated = alerts, quiet, skipped
        return self.truth


def _site_totals(sc: Scenario) -> tuple[list[SiteTruth], dict[tuple[str, str], float]]:
    """Totals per site over the run and the true quantity behind every meter."""
    sim = sc.simulation
    sites: list[SiteTruth] = []
    per_meter: dict[tuple[str, str], float] = {}
    for e in sc.enterprises:
        for s in e.sites:
            st = SiteTruth(e.id, s.code, s.kind)
            sums: dict[str, float] = defaultdict(float)
            for k in range(1, sim.ticks + 1):
                for key, v in site_quantities(e, s, sim.start + k * sim.interval, sim.interval, sim.start).items():
                    sums[key] += v
            for g in s.gateways:
                for m in g.meters:
                    per_meter[(g.id, m.code)] = sums.get(m.source, 0.0) * m.share
            if isinstance(s.model, DataCentreSim):
                st.it_kwh, st.facility_kwh = round(sums["it"], 6), round(sums["facility"], 6)
                st.tce = round(sums["facility"] * ELECTRICITY_KGCE_PER_KWH / 1000, 6)
                st.pue = round(sums["facility"] / sums["it"], 6) if sums["it"] > 0 else None
            elif isinstance(s.model, PlantSim):
                kgce = sum(v * COEFFICIENTS[key.split(":")[1]][1] * (1 if key.startswith("consumed:") else -1)
                           for key, v in sums.items() if key != "product")
                st.product_t = round(sums["product"], 6)
                st.tce = round(kgce / 1000, 6)
                st.kgce_per_t = round(kgce / sums["product"], 6) if sums["product"] > 0 else None
            sites.append(st)
    return sites, per_meter
