"""Per-site energy state of the streaming rules: meter specs in, 15-minute buckets held.

Owns meter specs (role, register/interval, multiplier, rollover), quality events, the per-meter
and per-site state (``_Meter``, ``SiteEnergyState``, ``initial_state``), the 15-minute day
arrays and day totals every window sum is built from, and the primitives that write them:
``_add`` (spread a quantity over buckets), ``_slot`` (where a day is written), ``_prune``
(fine days become totals, old days are dropped), ``_flag`` (record a quality event). It
imports no other module of the streaming state: ``analytics.late_readings``,
``analytics.windows`` and ``analytics.site_energy`` (the entry point) build on it.

Design for throughput (``analytics.site_energy.apply_readings`` runs for every reading):
* quantities are kept in the meter's own unit × multiplier (kWh, m³, GJ, t, …); conversion to
  kgce happens once per window in ``analytics.windows.window_energy``, not per reading;
* buckets are 15 minutes, grouped per local (Asia/Shanghai) day in one ``array`` of 96 slots ×
  (quantity, covered seconds, reading count), ~2.3 KB per meter and day; the three numbers a
  reading updates are adjacent in memory (at 100 000 meters, memory traffic is the cost);
* each meter's state caches what the per-reading path needs: the spec's constants (interned,
  so thousands of meters share the same float objects) and the bounds and array of the
  bucket it last wrote to, so a reading inside that bucket (the common case) costs a few
  attribute and array operations: no index arithmetic, no dict lookup of the day;
* days older than ``fine_retention`` keep only their totals, in one array per meter (3
  doubles = 24 bytes a day, no object per day: a year of day totals costs ≈ 9 KiB a meter,
  where a day object with its array and dict entry cost ≈ 180 bytes); days older than
  ``retention`` are dropped (both relative to the meter's newest reading).

``SiteEnergyState`` is updated in place for speed (see "Ownership" in
``analytics.site_energy``).

Asia/Shanghai has been UTC+8 without daylight saving since 1991, so local day and bucket
indices are plain integer arithmetic on the UTC epoch (a test checks this against zoneinfo).
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

from analytics.coefficients import CALORIFIC_VALUE, ElectricityValue
from nxem.localtime import LOCAL_OFFSET

Role = Literal["consumed", "exported", "product_output", "it_load", "total_facility"]
MeterKind = Literal["register", "interval"]
QualityKind = Literal["rollover", "counter_backwards", "out_of_range", "out_of_order", "unknown_meter"]

BUCKET_S: Final = 900  # 15-minute buckets (national online-monitoring real-time interval)
SLOTS: Final = 96  # buckets per day
DAY_S: Final = 86_400
LOCAL_OFFSET_S: Final = int(LOCAL_OFFSET.total_seconds())  # Asia/Shanghai = UTC+8 (nxem/localtime.py)
_NEG_INF: Final = float("-inf")
_INF: Final = float("inf")
_NAN: Final = float("nan")
_W: Final = 3  # numbers per slot in a day's array: quantity, covered seconds, readings


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
    #: interval meters: the longest period one value covers (a value covers the time since the
    #: meter's previous reading when that is shorter); the expected cadence for the quality rules
    interval_s: float = 900.0
    max_per_hour: float | None = None  # physical maximum quantity per hour (unit × multiplier)
    #: how electricity is valued in kgce (the deployment's NXEM_ELECTRICITY_BASIS, passed in)
    electricity: ElectricityValue = CALORIFIC_VALUE


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
    """One local day of one meter in 15-minute detail: ``a[3s:3s+3]`` = (quantity, covered s,
    readings) of slot s. Days older than the fine horizon move to the meter's day totals."""

    __slots__ = ("a",)

    def __init__(self) -> None:
        self.a = array("d", bytes(8 * _W * SLOTS))

    def totals(self) -> tuple[float, float, float]:
        a = self.a
        return sum(a[0::_W]), sum(a[1::_W]), sum(a[2::_W])


_CONSTS: dict[float, float] = {}


def _const(x: float) -> float:
    """One shared float object per distinct spec constant (fewer cache misses per reading)."""
    if len(_CONSTS) < 4096:
        return _CONSTS.setdefault(x, x)
    return _CONSTS.get(x, x)


class _Meter:
    """Per-meter streaming state; the spec constants and current bucket are caches."""

    __slots__ = (  # the per-reading fields first: they share the object's first cache lines
        "spec", "last_ts", "interval", "mult", "ival", "step", "cap", "lo", "hi", "cur", "slot", "last_value",
        "prev_ts", "prev_value", "roll", "run_start", "runs", "late", "forgot", "first_ts", "first_value", "jumps",
        "days", "newest_day", "coarse", "coarse_base",
    )

    def __init__(self) -> None:
        self.spec: MeterSpec | None = None
        self.last_ts = _NEG_INF  # epoch seconds of the newest in-order reading
        self.interval = False
        self.mult = 1.0
        self.ival = 900.0
        self.step = _NAN  # interval meters: step of the current run of timestamps (NaN: one reading)
        self.cap = _INF  # quantity per second
        self.lo = _INF  # the bucket (lo, hi] last written and its position in a fine day's array
        self.hi = _NEG_INF
        self.cur = array("d")
        self.slot = 0
        self.last_value: float | None = None  # registers: raw value of the newest reading
        self.prev_ts = _NEG_INF  # registers: the reading before the newest (or -inf)
        self.prev_value: float | None = None
        self.roll: float | None = None
        self.run_start = _NEG_INF  # interval meters: first timestamp of the current run
        self.runs: list[tuple[float, float, float]] | None = None  # earlier runs (start, end, step)
        self.late: set[float] | None = None  # late interval readings merged
        self.forgot = _NEG_INF  # readings at or before this may have been applied and forgotten
        self.first_ts = _INF  # registers: the earliest reading (where the data starts)
        self.first_value = 0.0
        self.jumps: list[tuple[float, float, float, float]] | None = None  # (ts before, value, ts, value)
        self.days: dict[int, _Day] = {}  # 15-minute detail of the recent local days
        self.newest_day = -1
        #: day totals (quantity, covered s, readings) of the local days from ``coarse_base`` on
        #: that are held without detail (older than the fine horizon, or rebuilt from rollups)
        self.coarse: array[float] | None = None
        self.coarse_base = 0


def _configure(ms: _Meter, spec: MeterSpec) -> None:
    """Cache ``spec``'s constants in the meter state (first reading, or the spec changed)."""
    interval = spec.kind == "interval"
    if ms.spec is not None and ms.interval != interval:  # kind changed: restart its readings, keep its data
        fresh = _Meter()
        for name in _Meter.__slots__:
            if name not in ("days", "newest_day", "coarse", "coarse_base"):
                setattr(ms, name, getattr(fresh, name))
    ms.spec, ms.interval = spec, interval
    ms.mult = _const(float(spec.multiplier))
    ms.ival = _const(float(spec.interval_s))
    ms.cap = _const(spec.max_per_hour / 3600.0) if spec.max_per_hour is not None else _INF
    ms.roll = spec.rollover


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
        if m is None or m.last_ts == _NEG_INF:
            return None
        return datetime.fromtimestamp(m.last_ts, UTC)

    def latest(self) -> datetime | None:
        ts = [m.last_ts for m in self.meters.values() if m.last_ts != _NEG_INF]
        return datetime.fromtimestamp(max(ts), UTC) if ts else None

    def first_data(self, meter_id: int) -> datetime | None:
        """Start of the earliest local day holding data of ``meter_id``."""
        m = self.meters.get(meter_id)
        di = _first_day(m) if m is not None else None
        return None if di is None else datetime.fromtimestamp(di * DAY_S - LOCAL_OFFSET_S, UTC)

    def earliest(self) -> datetime | None:
        """Start of the earliest local day holding data of any meter."""
        days = [d for m in self.meters.values() if (d := _first_day(m)) is not None]
        return datetime.fromtimestamp(min(days) * DAY_S - LOCAL_OFFSET_S, UTC) if days else None


def initial_state(retention: timedelta = timedelta(days=35), fine_retention: timedelta | None = None) -> SiteEnergyState:
    """Empty state keeping day totals for ``retention`` and 15-minute detail for
    ``fine_retention`` (default: the smaller of ``retention`` and 35 days)."""
    fine = fine_retention if fine_retention is not None else min(retention, timedelta(days=35))
    return SiteEnergyState(retention=retention, fine_retention=min(fine, retention))


def _add(state: SiteEnergyState, ms: _Meter, t0: float, t1: float, qty: float, cov_to: float = _INF) -> None:
    """Spread ``qty`` linearly over (t0, t1] into 15-minute buckets; one reading counted at t1.
    Covered seconds are counted over (t0, min(t1, cov_to)] only. Remembers the bucket of t1."""
    b1 = math.ceil((t1 + LOCAL_OFFSET_S) / BUCKET_S) - 1
    b0 = math.floor((t0 + LOCAL_OFFSET_S) / BUCKET_S)
    cov_hi = min(t1, cov_to)
    if b0 < b1:
        keep_from = t1 - state.retention.total_seconds()
        if t0 < keep_from:  # the part before the retention horizon would be dropped anyway
            qty *= (t1 - keep_from) / (t1 - t0)
            t0 = keep_from
            b0 = math.floor((t0 + LOCAL_OFFSET_S) / BUCKET_S)
    span = t1 - t0
    for b in range(min(b0, b1), b1 + 1):
        lo = b * BUCKET_S - LOCAL_OFFSET_S
        a, z = max(t0, lo), min(t1, lo + BUCKET_S)
        if z <= a:
            continue
        di = b // SLOTS
        day = ms.days.get(di)
        if day is not None:
            arr, s, fine = day.a, _W * (b % SLOTS), True
        else:
            got = _slot(state, ms, di)
            if got is None:
                continue
            arr, s = got
            fine = len(arr) == _W * SLOTS and arr is not ms.coarse
            if fine:
                s = _W * (b % SLOTS)
        arr[s] += qty if b0 >= b1 else qty * (z - a) / span
        arr[s + 1] += max(0.0, min(z, cov_hi) - a)
        if b == b1:
            arr[s + 2] += 1.0
            if fine:
                ms.lo, ms.hi, ms.cur, ms.slot = lo, lo + BUCKET_S, arr, s


def _day_index(t: float) -> int:
    return int((t + LOCAL_OFFSET_S) // DAY_S)


def _slot(state: SiteEnergyState, ms: _Meter, di: int) -> tuple[array[float], int] | None:
    """Where local day ``di`` of the meter is written: (a fine day's array, 0) -- the caller
    adds the slot offset -- or (the day totals array, the day's offset in it); ``None`` when
    the day is older than the retention horizon. A day already held as a total stays one."""
    day = ms.days.get(di)
    if day is not None:
        return day.a, 0
    if di > ms.newest_day:
        ms.newest_day = di
        _prune(state, ms)
    elif (ms.newest_day - di) * DAY_S > state.retention.total_seconds():
        return None  # older than the horizon: dropped
    coarse = ms.coarse
    in_totals = coarse is not None and ms.coarse_base <= di < ms.coarse_base + len(coarse) // _W
    if in_totals or (ms.newest_day - di) * DAY_S > state.fine_retention.total_seconds():
        return _coarse_slot(ms, di)
    day = ms.days[di] = _Day()
    return day.a, 0


def _coarse_slot(ms: _Meter, di: int) -> tuple[array[float], int]:
    """(day totals array, offset of day ``di``), growing the array to hold the day."""
    arr = ms.coarse
    if arr is None:
        arr = ms.coarse = array("d", bytes(8 * _W))
        ms.coarse_base = di
        return arr, 0
    n = len(arr) // _W
    if di < ms.coarse_base:  # rare: a late reading or a rebuilt day before the first total
        arr = ms.coarse = array("d", bytes(8 * _W * (ms.coarse_base - di))) + arr
        ms.coarse_base = di
    elif di >= ms.coarse_base + n:
        arr.frombytes(bytes(8 * _W * (di - ms.coarse_base - n + 1)))
    return arr, _W * (di - ms.coarse_base)


def _prune(state: SiteEnergyState, ms: _Meter) -> None:
    """The meter's newest day moved on: fine days past the fine horizon become day totals, and
    days past the retention horizon are dropped."""
    keep = state.retention.total_seconds()
    fine = state.fine_retention.total_seconds()
    ms.lo, ms.hi = _INF, _NEG_INF  # the remembered bucket's array may be moved or dropped below
    for di in sorted(ms.days):
        age = (ms.newest_day - di) * DAY_S
        if age > keep:
            del ms.days[di]
        elif age > fine:
            qty, cov, n = ms.days.pop(di).totals()
            tot, s = _coarse_slot(ms, di)
            tot[s] += qty
            tot[s + 1] += cov
            tot[s + 2] += n
        else:
            break  # sorted: the rest are younger
    arr = ms.coarse
    if arr is not None:
        first_kept = ms.newest_day - math.floor(keep / DAY_S)  # (newest - di) × 1 day <= keep
        drop = min(first_kept - ms.coarse_base, len(arr) // _W)
        if drop > 0:
            del arr[:_W * drop]
            ms.coarse_base += drop
            if not arr:
                ms.coarse = None


def _first_day(ms: _Meter) -> int | None:
    """Earliest local day of the meter holding data (a reading or covered time)."""
    first = min(ms.days) if ms.days else None
    arr = ms.coarse
    if arr is not None:
        for k in range(0, len(arr), _W):
            if arr[k + 1] > 0.0 or arr[k + 2] > 0.0 or arr[k] != 0.0:
                di = ms.coarse_base + k // _W
                return di if first is None else min(first, di)
    return first


def _flag(state: SiteEnergyState, out: list[QualityEvent], meter_id: int, t: float, kind: QualityKind,
          value: float, previous: float | None, detail: str) -> None:
    ev = QualityEvent(meter_id, datetime.fromtimestamp(t, UTC), kind, value, previous, detail)
    out.append(ev)
    state.flags[(meter_id, kind)] = ev


def _over_cap(state: SiteEnergyState, out: list[QualityEvent], ms: _Meter, meter_id: int, t: float,
              value: float, qty: float, span: float) -> None:
    unit, cap = (ms.spec.unit, ms.spec.max_per_hour) if ms.spec is not None else ("", None)
    _flag(state, out, meter_id, t, "out_of_range", value, None, f"{qty} {unit} in {span:.0f} s exceeds {cap} {unit}/h")
