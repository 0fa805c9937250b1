"""Turn a scenario into the gateway messages it publishes, tick by tick, faults applied (pure).

``generate(scenario)`` yields, for each reporting instant, the events of every gateway:
``Publish`` (topic + payload bytes + the readings a correct collector accepts from it) and
``Reconnect`` (a reconnect storm for the publisher to act out). Timing is the caller's job.

Registers are kept as integer steps of the meter's resolution so a register advances by
exactly the energy it measured (÷ multiplier), wraps at ``rollover``, and never drifts.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from collector.payload import SCHEMA_ID, GatewayMessage, GatewayReading, encode, topic_for
from simulators.scenario import MALFORMED_VARIANTS, Enterprise, Fault, Gateway, Meter, Scenario, Site
from simulators.sites import CST, DataCentreSim, PlantSim

SEND_DELAY: Final = timedelta(seconds=3)  # a gateway sends a few seconds after the instant


@dataclass(frozen=True, slots=True)
class Reading:
    """One reading as published (``ts`` aware), with the faults that shaped it."""

    meter: str
    ts: datetime
    value: float
    faults: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Publish:
    enterprise: str
    site: str
    gateway: str
    topic: str
    payload: bytes
    seq: int
    tick: datetime
    accepted: tuple[Reading, ...]  # readings a correct collector accepts from this message
    malformed: str | None = None  # variant when the payload (or one reading) is broken on purpose
    duplicate: bool = False  # a repeat of an earlier message (same bytes)
    rejected: int = 0  # readings a correct collector refuses (bad_reading variant)


@dataclass(frozen=True, slots=True)
class Reconnect:
    gateway: str
    count: int
    tick: datetime


Event = Publish | Reconnect


def _decimals(resolution: float) -> int:
    return max(0, -math.floor(math.log10(resolution) + 1e-9))


@dataclass(slots=True)
class _MeterState:
    meter: Meter
    rollover_steps: int
    decimals: int
    cum: float = 0.0  # true cumulative quantity since start, meter unit
    offset_steps: int = 0  # initial value + counter resets, register steps
    last_steps: int = 0  # raw register steps at the last tick
    last_increment: int = 0
    last_value: float | None = None  # last value published (stuck faults)
    pending: float = 0.0  # interval meters: quantity since the meter's last reporting tick, meter unit

    def steps(self) -> int:
        m = self.meter
        return math.floor(self.cum / m.multiplier / m.resolution + 1e-6) + self.offset_steps


@dataclass(slots=True)
class _GatewayState:
    enterprise: Enterprise
    site: Site
    gateway: Gateway
    topic: str
    meters: list[_MeterState]
    rngs: list[random.Random]
    seq: int = 0
    held: list[Publish] = field(default_factory=list)  # out-of-order window
    reset_done: set[int] = field(default_factory=set)
    variant_i: int = 0


def site_quantities(enterprise: Enterprise, site: Site, tick: datetime, interval: timedelta,
                    start: datetime) -> dict[str, float]:
    """The site's quantities over the interval ending at ``tick`` (see ``sites.py``)."""
    mid = tick - interval / 2
    hours = interval.total_seconds() / 3600
    if isinstance(site.model, DataCentreSim):
        return site.model.quantities(enterprise.city, mid, hours, start)
    if isinstance(site.model, PlantSim):
        return site.model.quantities(mid, hours)
    return {}


def _rollover_initial(sc: Scenario, e: Enterprise, s: Site, m: Meter, at: datetime) -> int:
    """Initial steps that put the register just below rollover one tick before ``at``."""
    sim = sc.simulation
    cum_prev = cum_at = 0.0
    t = sim.start + sim.interval
    while t <= at:
        cum_prev = cum_at
        cum_at += site_quantities(e, s, t, sim.interval, sim.start).get(m.source, 0.0) * m.share
        t += sim.interval
    scale = m.multiplier * m.resolution
    prev, now = math.floor(cum_prev / scale + 1e-6), math.floor(cum_at / scale + 1e-6)
    rollover_steps = round(m.rollover / m.resolution)
    return rollover_steps - prev - max(1, (now - prev) // 2)


def _states(sc: Scenario) -> list[_GatewayState]:
    out = []
    for e, s, g in sc.gateways():
        meters = []
        for m in g.meters:
            st = _MeterState(m, round(m.rollover / m.resolution), _decimals(m.resolution))
            st.offset_steps = round(m.initial / m.resolution)
            for f in g.faults:
                if f.kind == "rollover" and f.meter == m.code:
                    st.offset_steps = _rollover_initial(sc, e, s, m, f.start)
            meters.append(st)
        rngs = [random.Random(f"{sc.simulation.seed}:{g.id}:{i}:{f.kind}") for i, f in enumerate(g.faults)]
        out.append(_GatewayState(e, s, g, topic_for(e.id, g.id), meters, rngs))
    return out


def _fires(gs: _GatewayState, i: int, f: Fault, tick: datetime, meter: str | None = None) -> bool:
    if not f.active(tick) or (meter is not None and f.meter is not None and f.meter != meter):
        return False
    return f.probability >= 1.0 or gs.rngs[i].random() < f.probability


def _corrupt(msg: GatewayMessage, variant: str) -> bytes:
    raw = encode(msg)
    if variant == "truncated":
        return raw[: max(1, len(raw) // 2)]
    if variant == "not_utf8":
        return raw.replace(b'"schema"', b'"sch\xff\xfema"', 1)
    if variant == "bad_schema":
        return raw.replace(SCHEMA_ID.encode(), b"nxem.gateway/999", 1)
    # bad_reading: the first reading's value becomes a string; the others stay valid
    return raw.replace(b'"value":', b'"value":"NaN","x":', 1)


def _tick_gateway(gs: _GatewayState, sc: Scenario, tick: datetime, k: int) -> list[Event]:
    sim = sc.simulation
    faults = gs.gateway.faults
    events: list[Event] = []
    quantities = site_quantities(gs.enterprise, gs.site, tick, sim.interval, sim.start)
    # Gateway-wide draws are made once per tick, in fault order, so runs are reproducible.
    fired = {i: _fires(gs, i, f, tick) for i, f in enumerate(faults)}
    gateway_off = any(fired[i] and f.kind == "offline" and f.meter is None for i, f in enumerate(faults))
    readings: list[Reading] = []
    for ms in gs.meters:
        m = ms.meter
        amount = quantities.get(m.source, 0.0) * m.share
        ms.cum += amount
        ms.pending += amount
        applied = [(i, f) for i, f in enumerate(faults)
                   if fired[i] and (f.meter is None or f.meter == m.code)]
        kinds = {f.kind for _, f in applied}
        for i, f in applied:  # a counter reset happens once, at the first tick of its window
            if f.kind == "counter_reset" and i not in gs.reset_done:
                gs.reset_done.add(i)
                ms.offset_steps -= ms.steps()
        if not m.due(sim.start, tick):
            continue  # between two of its reporting instants (a meter with a longer interval)
        amount, ms.pending = ms.pending, 0.0  # an interval meter reports what it measured since its last report
        if m.kind == "register":
            steps = ms.steps()
            ms.last_increment, ms.last_steps = steps - ms.last_steps, steps
            value = round((steps % ms.rollover_steps) * m.resolution, ms.decimals)
            if "spike" in kinds:
                factor = next(f.factor for _, f in applied if f.kind == "spike")
                value = round(value + factor * max(1, ms.last_increment) * m.resolution, ms.decimals)
        else:
            value = round(amount / m.multiplier, ms.decimals)
            if "spike" in kinds:
                value = round(value * next(f.factor for _, f in applied if f.kind == "spike"), ms.decimals)
        if "stuck" in kinds and ms.last_value is not None:
            value = ms.last_value
        if "negative" in kinds:
            value = -abs(value) if value != 0 else -1.0
        if "offline" in kinds or gateway_off:
            continue
        skew = sum(f.skew_s for _, f in applied if f.kind == "clock_skew")
        ts = (tick + timedelta(seconds=skew)).astimezone(CST)
        ms.last_value = value
        readings.append(Reading(m.code, ts, value + 0.0, tuple(sorted(kinds - {"offline"}))))
    if gateway_off or not any(ms.meter.due(sim.start, tick) for ms in gs.meters):
        return events  # offline, or none of its meters reports at this tick: nothing is sent
    for i, f in enumerate(faults):
        if fired[i] and f.kind == "reconnect_storm":
            events.append(Reconnect(gs.gateway.id, max(1, f.count), tick))
    units = {ms.meter.code: ms.meter.unit or None for ms in gs.meters}
    gw_skew = sum(f.skew_s for i, f in enumerate(faults) if fired[i] and f.kind == "clock_skew" and f.meter is None)
    msg = GatewayMessage(
        schema=SCHEMA_ID, enterprise=gs.enterprise.id, gateway=gs.gateway.id, seq=gs.seq,
        sent_at=(tick + SEND_DELAY + timedelta(seconds=gw_skew)).astimezone(CST),
        readings=[GatewayReading(r.meter, r.ts, r.value, units[r.meter]) for r in readings],
    )
    gs.seq += 1
    malformed = next((f for i, f in enumerate(faults) if fired[i] and f.kind == "malformed"), None)
    if malformed is not None and readings:
        variant = malformed.variant or MALFORMED_VARIANTS[gs.variant_i % len(MALFORMED_VARIANTS)]
        gs.variant_i += 1
        ok = tuple(readings[1:]) if variant == "bad_reading" else ()
        pub = Publish(gs.enterprise.id, gs.site.code, gs.gateway.id, gs.topic, _corrupt(msg, variant),
                      msg.seq, tick, ok, malformed=variant, rejected=1 if variant == "bad_reading" else 0)
    else:
        pub = Publish(gs.enterprise.id, gs.site.code, gs.gateway.id, gs.topic, encode(msg), msg.seq, tick,
                      tuple(readings))
    copies = [pub]
    for i, f in enumerate(faults):
        if fired[i] and f.kind == "duplicate":
            copies += [Publish(pub.enterprise, pub.site, pub.gateway, pub.topic, pub.payload, pub.seq, tick,
                               pub.accepted, pub.malformed, True, pub.rejected)] * max(1, f.count)
    if any(fired[i] and f.kind == "out_of_order" for i, f in enumerate(faults)):
        gs.held.extend(copies)
    else:
        events.extend(_flush(gs))
        events.extend(copies)
    return events


def _flush(gs: _GatewayState) -> list[Publish]:
    held, gs.held = gs.held, []
    return held[::-1]


def generate(sc: Scenario) -> Iterator[tuple[datetime, list[Event]]]:
    """(tick, events) for the end of every interval: start+interval, …, end.

    A register starts at its ``initial`` value at ``start`` (not published): its first
    reading already includes the first interval's energy.
    """
    sim = sc.simulation
    states = _states(sc)
    for k in range(1, sim.ticks + 1):
        tick = sim.start + k * sim.interval
        events: list[Event] = []
        for gs in states:
            events.extend(_tick_gateway(gs, sc, tick, k))
        if k == sim.ticks:
            for gs in states:
                events.extend(_flush(gs))
        yield tick, events
