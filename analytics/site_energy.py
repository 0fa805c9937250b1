"""Streaming per-site energy state: meter readings in, 15-minute bucket quantities out.

Owns meter specs (role, register/interval, multiplier, rollover), the register arithmetic
(delta, rollover, reset), and the bucketed quantities that every window sum is built from.

Design for throughput (``apply_readings`` runs for every reading):
* quantities are kept in the meter's own unit × multiplier (kWh, m³, GJ, t, …); conversion to
  kgce happens once per window in ``window_energy``, not per reading;
* buckets are 15 minutes, grouped per local (Asia/Shanghai) day in three ``array`` rows of 96
  slots (quantity, covered seconds, reading count), so a reading costs a few dict/array
  operations and a day costs ~2 KB per meter;
* days older than ``fine_retention`` keep only their totals; days older than ``retention``
  are dropped (both relative to the meter's newest reading).

Ownership: ``SiteEnergyState`` is updated in place for speed and returned; the caller must
use the returned state and not keep using an old reference (treat it as a linear value).

Asia/Shanghai has been UTC+8 without daylight saving since 1991, so local day and bucket
indices are plain integer arithmetic on the UTC epoch (a test checks this against zoneinfo).
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Final, Literal

from analytics.coefficients import ConversionError, resolve, scale_unit

Role = Literal["consumed", "exported", "product_output", "it_load", "total_facility"]
MeterKind = Literal["register", "interval"]
QualityKind = Literal["rollover", "counter_backwards", "out_of_range", "out_of_order", "unknown_meter"]

BUCKET_S: Final = 900  # 15-minute buckets (national online-monitoring real-time interval)
SLOTS: Final = 96  # buckets per day
DAY_S: Final = 86_400
LOCAL_OFFSET_S: Final = 8 * 3600  # Asia/Shanghai = UTC+8, no DST since 1991
#: A backwards register jump is a rollover only if the implied consumption is below this share
#: of the register range; anything else is a reset (flagged, not summed).
ROLLOVER_PLAUSIBLE_SHARE: Final = 0.1


@dataclass(frozen=True, slots=True)
class MeterSpec:
    """What the arithmetic needs to know about one meter (built from the registry)."""

    meter_id: int
    site_id: int
    carrier: str  # electricity, natural_gas, heat, steam, raw_coal, …, or the product carrier
    unit: str  # the meter's unit: kWh, MWh, m3, GJ, MJ, kg, t, …
    role: Role
    kind: MeterKind
    multiplier: float = 1.0  # CT/PT ratio or pulse weight: register units -> unit
    rollover: float | None = None  # register wraps to 0 at this raw value
    coefficient: str | None = None  # coefficient id (analytics.coefficients); required for gas
    product: str | None = None  # product_output: the product; consumed/exported: attributed to it
    interval_s: float = 900.0  # interval meters: the period each value covers; expected cadence
    max_per_hour: float | None = None  # physical maximum quantity per hour (unit × multiplier)


@dataclass(frozen=True, slots=True)
class QualityEvent:
    """Something about a reading the data-quality rules must know; the reading was not summed
    unless ``kind`` is ``rollover``."""

    meter_id: int
    ts: datetime
    kind: QualityKind
    value: float
    previous: float | None
    detail: str


class _Day:
    """One local day of one meter: 96 slots, or only totals once coarsened."""

    __slots__ = ("qty", "cov", "cnt")

    def __init__(self) -> None:
        self.qty = array("d", bytes(8 * SLOTS))
        self.cov = array("d", bytes(8 * SLOTS))
        self.cnt = array("l", bytes(array("l").itemsize * SLOTS))

    @property
    def fine(self) -> bool:
        return len(self.qty) == SLOTS

    def coarsen(self) -> None:
        self.qty = array("d", [sum(self.qty)])
        self.cov = array("d", [sum(self.cov)])
        self.cnt = array("l", [sum(self.cnt)])


class _Meter:
    __slots__ = ("last_ts", "last_value", "days", "newest_day")

    def __init__(self) -> None:
        self.last_ts: float | None = None  # epoch seconds of the last accepted reading
        self.last_value: float | None = None  # raw register value (registers only)
        self.days: dict[int, _Day] = {}
        self.newest_day = -1


@dataclass(frozen=True)
class SiteEnergyState:
    """Per-meter last register and bucketed quantities of one site (see module docstring)."""

    retention: timedelta
    fine_retention: timedelta
    meters: dict[int, _Meter] = field(default_factory=dict)
    #: latest quality event per (meter_id, kind): what the data-quality rules read
    flags: dict[tuple[int, str], QualityEvent] = field(default_factory=dict)

    def last_reading(self, meter_id: int) -> datetime | None:
        m = self.meters.get(meter_id)
        if m is None or m.last_ts is None:
            return None
        return datetime.fromtimestamp(m.last_ts, UTC)

    def latest(self) -> datetime | None:
        ts = [m.last_ts for m in self.meters.values() if m.last_ts is not None]
        return datetime.fromtimestamp(max(ts), UTC) if ts else None

    def first_data(self, meter_id: int) -> datetime | None:
        """Start of the earliest local day holding data of ``meter_id``."""
        m = self.meters.get(meter_id)
        if m is None or not m.days:
            return None
        return datetime.fromtimestamp(min(m.days) * DAY_S - LOCAL_OFFSET_S, UTC)

    def earliest(self) -> datetime | None:
        days = [d for m in self.meters.values() for d in m.days]
        return datetime.fromtimestamp(min(days) * DAY_S - LOCAL_OFFSET_S, UTC) if days else None


def initial_state(retention: timedelta = timedelta(days=35), fine_retention: timedelta | None = None) -> SiteEnergyState:
    """Empty state keeping day totals for ``retention`` and 15-minute detail for
    ``fine_retention`` (default: the smaller of ``retention`` and 35 days)."""
    fine = fine_retention if fine_retention is not None else min(retention, timedelta(days=35))
    return SiteEnergyState(retention=retention, fine_retention=min(fine, retention))


def _add(state: SiteEnergyState, ms: _Meter, t0: float, t1: float, qty: float) -> None:
    """Spread ``qty`` linearly over (t0, t1] into 15-minute buckets; one reading counted at t1."""
    b1 = math.ceil((t1 + LOCAL_OFFSET_S) / BUCKET_S) - 1
    b0 = math.floor((t0 + LOCAL_OFFSET_S) / BUCKET_S)
    span = t1 - t0
    if b0 >= b1:  # the common case: inside one bucket
        day = _day(state, ms, b1 // SLOTS)
        if day is not None:
            s = b1 % SLOTS if day.fine else 0
            day.qty[s] += qty
            day.cov[s] += span
            day.cnt[s] += 1
        return
    keep_from = t1 - state.retention.total_seconds()
    if t0 < keep_from:  # the part before the retention horizon would be dropped anyway
        qty *= (t1 - keep_from) / span
        t0, span = keep_from, t1 - keep_from
        b0 = math.floor((t0 + LOCAL_OFFSET_S) / BUCKET_S)
    for b in range(b0, b1 + 1):
        lo = max(t0, b * BUCKET_S - LOCAL_OFFSET_S)
        hi = min(t1, (b + 1) * BUCKET_S - LOCAL_OFFSET_S)
        if hi <= lo:
            continue
        day = _day(state, ms, b // SLOTS)
        if day is None:
            continue
        s = b % SLOTS if day.fine else 0
        day.qty[s] += qty * (hi - lo) / span
        day.cov[s] += hi - lo
        if b == b1:
            day.cnt[s] += 1


def _day(state: SiteEnergyState, ms: _Meter, di: int) -> _Day | None:
    day = ms.days.get(di)
    if day is not None:
        return day
    if di > ms.newest_day:
        ms.newest_day = di
        _prune(state, ms)
    elif (ms.newest_day - di) * DAY_S > state.retention.total_seconds():
        return None  # older than the horizon: dropped
    day = _Day()
    if (ms.newest_day - di) * DAY_S > state.fine_retention.total_seconds():
        day.coarsen()
    ms.days[di] = day
    return day


def _prune(state: SiteEnergyState, ms: _Meter) -> None:
    keep = state.retention.total_seconds()
    fine = state.fine_retention.total_seconds()
    for di in list(ms.days):
        age = (ms.newest_day - di) * DAY_S
        if age > keep:
            del ms.days[di]
        elif age > fine and ms.days[di].fine:
            ms.days[di].coarsen()


def _flag(state: SiteEnergyState, out: list[QualityEvent], meter_id: int, t: float, kind: QualityKind,
          value: float, previous: float | None, detail: str) -> None:
    ev = QualityEvent(meter_id, datetime.fromtimestamp(t, UTC), kind, value, previous, detail)
    out.append(ev)
    state.flags[(meter_id, kind)] = ev


def apply_readings(
    state: SiteEnergyState, specs: Mapping[int, MeterSpec], readings: Iterable[tuple[int, datetime, float]],
) -> tuple[SiteEnergyState, list[QualityEvent]]:
    """Feed readings (meter_id, aware ts, raw value), in time order per meter.

    Registers: the first reading is the baseline; a delta is multiplied by ``multiplier``; a
    backwards jump is a rollover when plausible (``ROLLOVER_PLAUSIBLE_SHARE``), otherwise a
    ``counter_backwards`` event whose jump is not summed (the new value becomes the baseline).
    Interval meters: the value × multiplier covers (ts - interval_s, ts]. A reading at or
    before the meter's last one is ignored (a replayed duplicate is silent; an older one is
    ``out_of_order``). Negative or above ``max_per_hour`` quantities are ``out_of_range``.
    """
    events: list[QualityEvent] = []
    meters = state.meters
    for meter_id, ts, value in readings:
        spec = specs.get(meter_id)
        if spec is None:
            _flag(state, events, meter_id, ts.timestamp(), "unknown_meter", value, None, "no spec for this meter")
            continue
        ms = meters.get(meter_id)
        if ms is None:
            ms = meters[meter_id] = _Meter()
        t = ts.timestamp()
        last = ms.last_ts
        if last is not None and t <= last:
            if t < last:
                _flag(state, events, meter_id, t, "out_of_order", value, None, "older than the last reading")
            continue
        if spec.kind == "register":
            if value < 0:  # a register cannot be negative: refuse it, keep the baseline
                _flag(state, events, meter_id, t, "out_of_range", value, ms.last_value, "negative register value")
                continue
            prev = ms.last_value
            ms.last_ts, ms.last_value = t, value
            if prev is None or last is None:
                continue  # baseline
            raw = value - prev
            if raw < 0:
                roll = spec.rollover
                if roll is not None and 0 <= roll - prev + value <= roll * ROLLOVER_PLAUSIBLE_SHARE:
                    raw = roll - prev + value
                    _flag(state, events, meter_id, t, "rollover", value, prev, f"wrapped at {roll}")
                else:
                    _flag(state, events, meter_id, t, "counter_backwards", value, prev,
                          f"register went from {prev} to {value}: reset, not summed")
                    continue
            qty = raw * spec.multiplier
            t0 = last
        else:
            qty = value * spec.multiplier
            t0 = t - spec.interval_s
            if last is not None and t0 < last:
                t0 = last
            ms.last_ts = t
            if qty < 0:
                _flag(state, events, meter_id, t, "out_of_range", value, None, "negative interval quantity")
                continue
        cap = spec.max_per_hour
        if cap is not None and qty > cap * (t - t0) / 3600.0:
            _flag(state, events, meter_id, t, "out_of_range", value, None,
                  f"{qty} {spec.unit} in {t - t0:.0f} s exceeds {cap} {spec.unit}/h")
            continue
        _add(state, ms, t0, t, qty)
    return state, events


# ---------------------------------------------------------------------------------- windows


@dataclass(frozen=True, slots=True)
class WindowEnergy:
    """Quantities of one site over [start, end) from the buckets.

    ``consumed_kgce`` includes total_facility meters (a data centre's facility meter is its
    consumption); it_load meters are sub-meters and are not added. ``approximate`` is set when
    a partial day had to be taken pro rata from a day total (older than the 15-minute detail).
    """

    start: datetime
    end: datetime
    it_kwh: float
    facility_kwh: float
    consumed_kgce: float
    exported_kgce: float
    electricity_kwh: float  # net electricity across the boundary (consumed/facility − exported)
    product_t: Mapping[str, float]
    kgce_by_product: Mapping[str, float]  # net kgce of meters attributed to a product
    kwh_by_product: Mapping[str, float]  # net electricity kWh of meters attributed to a product
    quantity_by_meter: Mapping[int, float]  # unit × multiplier
    coverage_s: Mapping[int, float]  # seconds of the window with data, per meter
    readings: Mapping[int, int]
    approximate: bool

    @property
    def net_kgce(self) -> float:
        """Comprehensive energy consumption (综合能耗), kgce: consumed − exported (GB/T 2589)."""
        return self.consumed_kgce - self.exported_kgce

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    def coverage(self, meter_ids: Iterable[int]) -> float:
        """Smallest share of the window covered by data among ``meter_ids`` (0 if none)."""
        secs = self.seconds
        shares = [self.coverage_s.get(m, 0.0) / secs for m in meter_ids] if secs > 0 else []
        return min(shares) if shares else 0.0


@lru_cache(maxsize=1024)
def kgce_per_unit(carrier: str, unit: str, coefficient: str | None) -> float:
    """Cached ``analytics.coefficients.resolve``: kgce per meter unit (GB/T 2589)."""
    return resolve(carrier, unit, coefficient)[0]


def _kwh_factor(spec: MeterSpec) -> float:
    base, factor = scale_unit(spec.unit)
    if base != "kWh":
        raise ConversionError(f"meter {spec.meter_id} ({spec.role}) must be metered in kWh/MWh, not {spec.unit!r}")
    return factor


def _tonnes_factor(spec: MeterSpec) -> float:
    base, factor = scale_unit(spec.unit)
    if base != "kg":
        raise ConversionError(f"product meter {spec.meter_id} must be metered in t or kg, not {spec.unit!r}")
    return factor / 1000.0


def validate_spec(spec: MeterSpec) -> None:
    """Raise ``ConversionError`` if the spec cannot be converted (call when loading the registry)."""
    if spec.role in ("it_load", "total_facility"):
        _kwh_factor(spec)
    elif spec.role == "product_output":
        _tonnes_factor(spec)
        if not spec.product:
            raise ConversionError(f"product meter {spec.meter_id} names no product")
    else:
        kgce_per_unit(spec.carrier, spec.unit, spec.coefficient)
    if spec.multiplier <= 0:
        raise ConversionError(f"meter {spec.meter_id}: multiplier must be positive")


def _sum_meter(ms: _Meter, lo: float, hi: float) -> tuple[float, float, int, bool]:
    """(quantity, covered seconds, readings, approximate) of one meter over [lo, hi) epoch s."""
    qty = cov = 0.0
    cnt = 0
    approx = False
    d0 = math.floor((lo + LOCAL_OFFSET_S) / DAY_S)
    d1 = math.ceil((hi + LOCAL_OFFSET_S) / DAY_S) - 1
    days = ms.days
    for di in range(d0, d1 + 1) if d1 - d0 < len(days) * 4 + 2 else sorted(d for d in days if d0 <= d <= d1):
        day = days.get(di)
        if day is None:
            continue
        start = di * DAY_S - LOCAL_OFFSET_S
        a, b = max(lo, start), min(hi, start + DAY_S)
        if b <= a:
            continue
        if a == start and b == start + DAY_S:
            qty += sum(day.qty)
            cov += sum(day.cov)
            cnt += sum(day.cnt)
        elif day.fine:
            s0 = math.ceil((a - start) / BUCKET_S)  # whole buckets only: window ends on bucket edges
            s1 = math.floor((b - start) / BUCKET_S)
            qty += sum(day.qty[s0:s1])
            cov += sum(day.cov[s0:s1])
            cnt += sum(day.cnt[s0:s1])
        else:
            share = (b - a) / DAY_S
            qty += day.qty[0] * share
            cov += day.cov[0] * share
            cnt += round(day.cnt[0] * share)
            approx = True
    return qty, cov, cnt, approx


def window_energy(state: SiteEnergyState, specs: Mapping[int, MeterSpec], start: datetime, end: datetime) -> WindowEnergy:
    """Sum the site's buckets over [start, end) (15-minute granularity: partial buckets at the
    edges are left out). Raises ``ConversionError`` for a spec that cannot be converted."""
    lo, hi = start.timestamp(), end.timestamp()
    it = fac = cons = exp = elec = 0.0
    prod: dict[str, float] = {}
    kg_p: dict[str, float] = {}
    kwh_p: dict[str, float] = {}
    by_meter: dict[int, float] = {}
    coverage: dict[int, float] = {}
    readings: dict[int, int] = {}
    approx = False
    for meter_id, spec in specs.items():
        ms = state.meters.get(meter_id)
        q, c, n, a = _sum_meter(ms, lo, hi) if ms is not None and hi > lo else (0.0, 0.0, 0, False)
        by_meter[meter_id], coverage[meter_id], readings[meter_id] = q, c, n
        approx = approx or a
        role = spec.role
        if role == "it_load":
            it += q * _kwh_factor(spec)
        elif role == "product_output":
            t = q * _tonnes_factor(spec)
            key = spec.product or ""
            prod[key] = prod.get(key, 0.0) + t
        else:
            kgce = q * kgce_per_unit(spec.carrier, spec.unit, spec.coefficient)
            kwh = q * scale_unit(spec.unit)[1] if spec.carrier == "electricity" else 0.0
            sign = -1.0 if role == "exported" else 1.0
            if role == "exported":
                exp += kgce
            else:
                cons += kgce
            if role == "total_facility":
                fac += q * _kwh_factor(spec)
            elec += sign * kwh
            if spec.product:
                kg_p[spec.product] = kg_p.get(spec.product, 0.0) + sign * kgce
                kwh_p[spec.product] = kwh_p.get(spec.product, 0.0) + sign * kwh
    return WindowEnergy(start, end, it, fac, cons, exp, elec, prod, kg_p, kwh_p, by_meter, coverage, readings, approx)


def floor_bucket(ts: datetime) -> datetime:
    """Start of the 15-minute bucket containing ``ts`` (UTC)."""
    t = ts.timestamp()
    return datetime.fromtimestamp(t - (t % BUCKET_S), UTC)


def local_day_start(ts: datetime, days_back: int = 0) -> datetime:
    """UTC instant of 00:00 Asia/Shanghai of the local day containing ``ts`` (minus ``days_back``)."""
    di = math.floor((ts.timestamp() + LOCAL_OFFSET_S) / DAY_S) - days_back
    return datetime.fromtimestamp(di * DAY_S - LOCAL_OFFSET_S, UTC)
