"""Streaming per-site energy state: meter readings in, 15-minute bucket quantities out.

Owns meter specs (role, register/interval, multiplier, rollover), the register arithmetic
(delta, rollover, reset), and the bucketed quantities that every window sum is built from.

Design for throughput (``apply_readings`` runs for every reading, ≤ ~1 µs each):
* quantities are kept in the meter's own unit × multiplier (kWh, m³, GJ, t, …); conversion to
  kgce happens once per window in ``window_energy``, not per reading;
* buckets are 15 minutes, grouped per local (Asia/Shanghai) day in one ``array`` of 96 slots ×
  (quantity, covered seconds, reading count), ~2.3 KB per meter and day; the three numbers a
  reading updates are adjacent in memory (at 100 000 meters, memory traffic is the cost);
* each meter's state caches what the per-reading path needs: the spec's constants (interned,
  so thousands of meters share the same float objects) and the bounds and array of the
  bucket it last wrote to, so a reading inside that bucket (the common case) costs a few
  attribute and array operations: no index arithmetic, no dict lookup of the day;
* a timestamp is converted to epoch seconds only when it differs from the previous row's (a
  poll's readings share a few timestamps); rows may also carry epoch seconds directly;
* days older than ``fine_retention`` keep only their totals, in one array per meter (3
  doubles = 24 bytes a day, no object per day: a year of day totals costs ≈ 9 KiB a meter,
  where a day object with its array and dict entry cost ≈ 180 bytes); days older than
  ``retention`` are dropped (both relative to the meter's newest reading). Windows aligned on
  local midnights (annual, year-to-date, month-to-date, daily rules) are exact from the totals;
  a window starting inside a day held only as a total takes that day pro rata (approximate).
* a rebuilt state (``seed_days``) starts from day totals the caller derived from the daily
  rollups (``analytics.day_totals``) plus each meter's last reading before the raw replay.

Late and replayed readings (a reading at or before the meter's newest one). The worker may
replay a Kafka poll after a crash, so a reading already applied must be recognised:
* interval meters remember their applied timestamps as runs (first timestamp, step; the
  current run ends at the newest reading), which costs nothing per in-order reading at a
  regular cadence; the last ``REMEMBERED_RUNS`` earlier runs and up to ``REMEMBERED_LATE``
  merged late readings are kept too. A reading at a remembered timestamp is a replay and is
  ignored silently (first value wins). Any other late reading is added to its bucket (and day
  total) if its day is within retention, as if it had arrived in time: it covers
  (max(ts − interval_s, previous applied reading), ts] and adds covered seconds only where the
  reading after it did not already cover them. A reading no newer than a forgotten run cannot
  be told from a replay: it is flagged ``out_of_order`` and not summed (never double-counted);
* registers: a late reading between two known readings does not change the energy between
  them. Known readings are the first, the newest, and both sides of every remembered backwards
  jump (rollover/reset, the last ``REMEMBERED_RUNS``); between two of them with no jump
  between, the register is non-decreasing, so a value between theirs is ignored silently and
  one outside is flagged ``out_of_order``; across a jump, only a value between the two sides
  of the jump is inconsistent. A reading older than the first one extends the data backwards
  (the delta to the first reading is summed).

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

from analytics.coefficients import CALORIFIC_VALUE, ConversionError, ElectricityValue, resolve, scale_unit
from analytics.energy_definition import ROLLOVER_PLAUSIBLE_SHARE as ROLLOVER_PLAUSIBLE_SHARE  # re-exported
from analytics.energy_definition import wrap_quantity as wrap_quantity  # re-exported (analytics.day_totals)
from nxem.localtime import LOCAL_OFFSET

Role = Literal["consumed", "exported", "product_output", "it_load", "total_facility"]
MeterKind = Literal["register", "interval"]
QualityKind = Literal["rollover", "counter_backwards", "out_of_range", "out_of_order", "unknown_meter"]

BUCKET_S: Final = 900  # 15-minute buckets (national online-monitoring real-time interval)
SLOTS: Final = 96  # buckets per day
DAY_S: Final = 86_400
LOCAL_OFFSET_S: Final = int(LOCAL_OFFSET.total_seconds())  # Asia/Shanghai = UTC+8 (nxem/localtime.py)
#: Earlier runs of regular timestamps (interval meters) and backwards jumps (registers) that a
#: meter remembers to judge late readings; and late interval readings remembered as merged.
REMEMBERED_RUNS: Final = 16
REMEMBERED_LATE: Final = 64
#: Two float epoch timestamps closer than this are the same instant (datetimes have 1 µs
#: resolution; a float epoch near 2026 has a resolution of 0.24 µs).
_SAME_INSTANT_S: Final = 4e-7
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


#: the register wrap rule (``analytics.energy_definition``, the one definition), also for
#: ``analytics.day_totals``
_wrap = wrap_quantity


def seed_days(state: SiteEnergyState, specs: Mapping[int, MeterSpec],
              totals: Iterable[tuple[int, int, float, float, float]],
              last: Mapping[int, tuple[float, float]]) -> SiteEnergyState:
    """Start a rebuilt state from day totals instead of a replay of every raw reading.

    ``totals``: (meter_id, local day index, quantity in unit × multiplier, covered seconds,
    readings) of days held without 15-minute detail (``analytics.day_totals`` derives them from
    the daily rollups); ``last``: per meter the (epoch s, raw value) of the newest reading they
    include. The raw replay that follows continues from that reading (a register's baseline;
    an interval meter's previous reading). A reading at or before it is taken as already
    counted: an interval meter flags it ``out_of_order``, a register ignores it (never
    double-counted). Call on a fresh state, before any reading; meters without a spec are
    skipped."""
    meters = state.meters
    for meter_id, di, qty, cov, n in totals:
        spec = specs.get(meter_id)
        if spec is None:
            continue
        ms = meters.get(meter_id)
        if ms is None:
            ms = meters[meter_id] = _Meter()
            _configure(ms, spec)
        arr, k = _coarse_slot(ms, di)
        arr[k] += qty
        arr[k + 1] += cov
        arr[k + 2] += n
    for meter_id, (t, value) in last.items():
        spec = specs.get(meter_id)
        if spec is None:
            continue
        ms = meters.get(meter_id)
        if ms is None:
            ms = meters[meter_id] = _Meter()
            _configure(ms, spec)
        ms.last_ts = ms.forgot = t
        if ms.interval:
            ms.run_start, ms.step = t, _NAN
        else:
            ms.last_value, ms.first_ts, ms.first_value = value, t, value
    return state


def apply_readings(
    state: SiteEnergyState, specs: Mapping[int, MeterSpec],
    readings: Iterable[tuple[int, datetime | float, float]],
) -> tuple[SiteEnergyState, list[QualityEvent]]:
    """Feed readings (meter_id, ts, raw value); ``ts`` is an aware datetime or epoch seconds.
    Readings should come in time order per meter (late ones are handled, at a higher cost).

    Registers: the first reading is the baseline; a delta is multiplied by ``multiplier``; a
    backwards jump is a rollover when plausible (``ROLLOVER_PLAUSIBLE_SHARE``), otherwise a
    ``counter_backwards`` event whose jump is not summed (the new value becomes the baseline).
    Interval meters: the value × multiplier is the quantity since the meter's previous reading,
    covering (max(ts - interval_s, previous ts), ts]: a meter reporting faster than its
    registered ``interval_s`` covers exactly the time between its readings; the first reading
    (or one after a gap longer than ``interval_s``) covers ``interval_s``. Negative or above
    ``max_per_hour`` quantities are ``out_of_range``. Readings at or before the meter's newest
    one: see "Late and replayed readings" in the module docstring.
    """
    events: list[QualityEvent] = []
    meters = state.meters
    prev_ts: object = None
    t = 0.0
    for meter_id, ts, value in readings:
        if ts != prev_ts:
            prev_ts = ts
            t = ts.timestamp() if isinstance(ts, datetime) else float(ts)
        spec = specs.get(meter_id)
        ms = meters.get(meter_id)
        if ms is None or ms.spec is not spec:
            if spec is None:
                _flag(state, events, meter_id, t, "unknown_meter", value, None, "no spec for this meter")
                continue
            if ms is None:
                ms = meters[meter_id] = _Meter()
            _configure(ms, spec)
        last = ms.last_ts
        if t <= last:
            _late(state, ms, meter_id, t, value, events)
            continue
        if ms.interval:
            if t - last != ms.step:
                _new_run(ms, t, last)
            ms.last_ts = t
            qty = value * ms.mult
            t0 = t - ms.ival
            if t0 < last:
                t0 = last
            if qty < 0:
                _flag(state, events, meter_id, t, "out_of_range", value, None, "negative interval quantity")
                continue
        else:
            if value < 0:  # a register cannot be negative: refuse it, keep the baseline
                _flag(state, events, meter_id, t, "out_of_range", value, ms.last_value, "negative register value")
                continue
            prev = ms.last_value
            ms.prev_ts, ms.prev_value = last, prev
            ms.last_ts, ms.last_value = t, value
            if prev is None:
                ms.first_ts, ms.first_value = t, value
                continue  # baseline
            raw = value - prev
            if raw < 0:
                _jump(ms, last, prev, t, value)
                wrapped = _wrap(ms.roll, prev, value)
                if wrapped is None:
                    _flag(state, events, meter_id, t, "counter_backwards", value, prev,
                          f"register went from {prev} to {value}: reset, not summed")
                    continue
                raw = wrapped
                _flag(state, events, meter_id, t, "rollover", value, prev, f"wrapped at {ms.roll}")
            qty = raw * ms.mult
            t0 = last
        if qty > ms.cap * (t - t0):
            _over_cap(state, events, ms, meter_id, t, value, qty, t - t0)
            continue
        if ms.lo <= t0 and t <= ms.hi:  # inside the bucket last written: the common case
            a = ms.cur
            s = ms.slot
            a[s] += qty
            a[s + 1] += t - t0
            a[s + 2] += 1.0
        else:
            _add(state, ms, t0, t, qty)
    return state, events


# ------------------------------------------------------------------- late and replayed readings


def _new_run(ms: _Meter, t: float, last: float) -> None:
    """An interval meter's in-order reading at ``t`` breaks its run of regular timestamps."""
    if last == _NEG_INF:
        ms.run_start, ms.step = t, _NAN
    elif ms.run_start == last:  # a run of one reading takes this step
        ms.step = _const(t - last)
    else:
        runs = ms.runs
        if runs is None:
            runs = ms.runs = []
        runs.append((ms.run_start, last, ms.step))
        if len(runs) > REMEMBERED_RUNS:
            ms.forgot = max(ms.forgot, runs.pop(0)[1])
        ms.run_start, ms.step = t, _NAN


def _jump(ms: _Meter, before_ts: float, before: float, ts: float, value: float) -> None:
    """Remember a register's backwards jump (rollover or reset) between two readings."""
    jumps = ms.jumps
    if jumps is None:
        jumps = ms.jumps = []
    jumps.append((before_ts, before, ts, value))
    if len(jumps) > REMEMBERED_RUNS:
        ms.forgot = max(ms.forgot, jumps.pop(0)[2])


def _runs(ms: _Meter) -> list[tuple[float, float, float]]:
    return [*(ms.runs or ()), (ms.run_start, ms.last_ts, ms.step)]


def _on_run(x: float, start: float, end: float, step: float) -> bool:
    if x == start or x == end:
        return True
    if not start < x < end or step != step:  # NaN: a run of one reading
        return False
    k = round((x - start) / step)
    return abs(start + k * step - x) < _SAME_INSTANT_S


def _neighbours(ms: _Meter, t: float) -> tuple[float, float]:
    """Applied interval readings just before and after ``t`` (−inf/+inf if none remembered)."""
    pred, succ = _NEG_INF, _INF
    for start, end, step in _runs(ms):
        if end < t:
            pred = max(pred, end)
        elif start > t:
            succ = min(succ, start)
        else:
            k = math.floor((t - start) / step) if step == step else 0
            pred, succ = max(pred, start + k * step), min(succ, start + (k + 1) * step, end)
    for x in ms.late or ():
        if pred < x < t:
            pred = x
        elif t < x < succ:
            succ = x
    return pred, succ


def _late(state: SiteEnergyState, ms: _Meter, meter_id: int, t: float, value: float,
          events: list[QualityEvent]) -> None:
    """A reading at or before the meter's newest one (see the module docstring)."""
    if not ms.interval:
        if t != ms.first_ts:  # else a replay of the first reading
            _late_register(state, ms, meter_id, t, value, events)
        return
    if any(_on_run(t, *run) for run in _runs(ms)) or (ms.late is not None and t in ms.late):
        return  # a replay of a reading already applied
    if t <= ms.forgot:
        _flag(state, events, meter_id, t, "out_of_order", value, None,
              "older than what the meter remembers: cannot tell from a replay, not summed")
        return
    if (ms.newest_day - _day_index(t)) * DAY_S > state.retention.total_seconds():
        _flag(state, events, meter_id, t, "out_of_order", value, None, "older than the retention horizon")
        return
    _late_interval(state, ms, meter_id, t, value, events)


def _late_interval(state: SiteEnergyState, ms: _Meter, meter_id: int, t: float, value: float,
                   events: list[QualityEvent]) -> None:
    late = ms.late
    if late is None:
        late = ms.late = set()
    late.add(t)  # remembered even if refused below: a replay is then silent
    if len(late) > REMEMBERED_LATE:
        oldest = min(late)
        late.discard(oldest)
        ms.forgot = max(ms.forgot, oldest)
    qty = value * ms.mult
    if qty < 0:
        _flag(state, events, meter_id, t, "out_of_range", value, None, "negative interval quantity")
        return
    pred, succ = _neighbours(ms, t)
    t0 = max(t - ms.ival, pred)
    if qty > ms.cap * (t - t0):
        _over_cap(state, events, ms, meter_id, t, value, qty, t - t0)
        return
    # the reading after it, applied without this one, covered back to max(pred, succ − interval)
    _add(state, ms, t0, t, qty, cov_to=max(pred, succ - ms.ival))


def _late_register(state: SiteEnergyState, ms: _Meter, meter_id: int, t: float, value: float,
                   events: list[QualityEvent]) -> None:
    if value < 0:
        _flag(state, events, meter_id, t, "out_of_range", value, None, "negative register value")
        return
    first = ms.first_value
    if t < ms.first_ts <= ms.forgot:
        return  # before the baseline of a rebuilt state (counted in its day totals), or unjudgeable
    if t < ms.first_ts:  # before the first reading: the delta to it is new energy
        raw = first - value if value <= first else _wrap(ms.roll, value, first)
        if raw is None:
            _flag(state, events, meter_id, t, "out_of_order", value, first,
                  f"late register value {value} is above the first reading {first} after it")
            return
        qty = raw * ms.mult
        if qty > ms.cap * (ms.first_ts - t):
            _over_cap(state, events, ms, meter_id, t, value, qty, ms.first_ts - t)
            return
        if raw > first - value:
            _jump(ms, t, value, ms.first_ts, first)
        _add(state, ms, t, ms.first_ts, qty)  # the first reading now closes a delta: counted
        ms.first_ts, ms.first_value = t, value
        return
    if t <= ms.forgot:
        return  # a forgotten jump may lie around it: cannot judge (and the energy is unchanged)
    # the known readings around t: the first, the one before the newest, the newest, both sides
    # of each remembered jump
    lo_ts, lo_v = (ms.prev_ts, ms.prev_value) if ms.first_ts < ms.prev_ts < t else (ms.first_ts, first)
    hi_ts, hi_v = (ms.prev_ts, ms.prev_value) if t < ms.prev_ts else (ms.last_ts, ms.last_value)
    for before_ts, before, jump_ts, after in ms.jumps or ():
        if before_ts < t < jump_ts:  # across a jump: anything but a value inside the jump fits
            if after < value < before:
                _flag(state, events, meter_id, t, "out_of_order", value, before,
                      f"late register value {value} falls inside the jump from {before} to {after}")
            return
        if lo_ts < jump_ts <= t:
            lo_ts, lo_v = jump_ts, after
        if t <= before_ts < hi_ts:
            hi_ts, hi_v = before_ts, before
    if lo_v is None or hi_v is None:  # cannot happen: both are readings of this register
        return
    if lo_ts < ms.forgot:  # a forgotten jump lies between the lower reading and t: no lower bound
        lo_v = _NEG_INF
    if not lo_v <= value <= hi_v:
        _flag(state, events, meter_id, t, "out_of_order", value, lo_v,
              f"late register value {value} is not between the readings around it ({lo_v}, {hi_v})")


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
def kgce_per_unit(carrier: str, unit: str, coefficient: str | None,
                  electricity: ElectricityValue = CALORIFIC_VALUE) -> float:
    """Cached ``analytics.coefficients.resolve``: kgce per meter unit (GB/T 2589)."""
    return resolve(carrier, unit, coefficient, electricity)[0]


def _kwh_factor(spec: MeterSpec) -> float:
    base, factor = scale_unit(spec.unit)
    if base != "kWh":
        raise ConversionError(f"meter {spec.meter_id} ({spec.role}) must be metered in kWh/MWh, not {spec.unit!r}")
    return factor


def _tonnes_factor(spec: MeterSpec) -> float:
    """t per meter unit of a product meter; 0 for a product counted in m3 (coal-to-SNG is judged
    per m3, GB 30180-2024: no tonnes, its quota rule reads the meter's quantity)."""
    base, factor = scale_unit(spec.unit)
    if base == "m3":
        return 0.0
    if base != "kg":
        raise ConversionError(f"product meter {spec.meter_id} must be metered in t, kg or m3, not {spec.unit!r}")
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
        kgce_per_unit(spec.carrier, spec.unit, spec.coefficient, spec.electricity)
    if spec.multiplier <= 0:
        raise ConversionError(f"meter {spec.meter_id}: multiplier must be positive")
    if not spec.interval_s > 0:
        raise ConversionError(f"meter {spec.meter_id}: interval_s must be positive")


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
        arr = day.a
        s0 = _W * math.ceil((a - start) / BUCKET_S)  # whole buckets only: window ends on bucket edges
        s1 = _W * math.floor((b - start) / BUCKET_S)
        qty += sum(arr[s0:s1:_W])
        cov += sum(arr[s0 + 1:s1:_W])
        cnt += round(sum(arr[s0 + 2:s1:_W]))
    arr_t = ms.coarse
    if arr_t is not None:
        base = ms.coarse_base
        c0, c1 = max(d0, base), min(d1, base + len(arr_t) // _W - 1)
        for di in (c0, c1) if c0 < c1 else (c0,) if c0 == c1 else ():  # the edge days, maybe partial
            start = di * DAY_S - LOCAL_OFFSET_S
            share = (min(hi, start + DAY_S) - max(lo, start)) / DAY_S
            k = _W * (di - base)
            if share >= 1.0:
                qty, cov, cnt = qty + arr_t[k], cov + arr_t[k + 1], cnt + round(arr_t[k + 2])
            elif share > 0.0 and (arr_t[k] or arr_t[k + 1] or arr_t[k + 2]):
                qty += arr_t[k] * share
                cov += arr_t[k + 1] * share
                cnt += round(arr_t[k + 2] * share)
                approx = True
        if c1 - c0 > 1:  # the whole days between
            k0, k1 = _W * (c0 + 1 - base), _W * (c1 - base)
            qty += math.fsum(arr_t[k0:k1:_W])
            cov += sum(arr_t[k0 + 1:k1:_W])
            cnt += round(sum(arr_t[k0 + 2:k1:_W]))
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
            kgce = q * kgce_per_unit(spec.carrier, spec.unit, spec.coefficient, spec.electricity)
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
