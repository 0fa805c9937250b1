"""Streaming per-site energy state: meter readings in, 15-minute bucket quantities out.

The entry point of the four modules that own the streaming state; the public names of all
four are re-exported here (import them from ``analytics.site_energy``):
* ``analytics.meter_state``: meter specs (role, register/interval, multiplier, rollover),
  quality events, the per-meter and per-site state, the 15-minute buckets and day totals;
* ``analytics.late_readings``: readings at or before a meter's newest one (replays, late
  readings: what is summed, what is ignored, what is flagged);
* ``analytics.windows``: window sums and their conversion to kgce, kWh and tonnes,
  ``validate_spec``;
* this module: the register arithmetic (delta, rollover, reset) and interval coverage of
  in-order readings (``apply_readings``), and a rebuilt state (``seed_days``).

Design for throughput (``apply_readings`` runs for every reading, ≤ ~1 µs each; the memory
layout is described in ``analytics.meter_state``):
* a reading inside the bucket its meter last wrote to (the common case) is added in place:
  no index arithmetic, no dict lookup of the day;
* a timestamp is converted to epoch seconds only when it differs from the previous row's (a
  poll's readings share a few timestamps); rows may also carry epoch seconds directly;
* a rebuilt state (``seed_days``) starts from day totals the caller derived from the daily
  rollups (``analytics.day_totals``) plus each meter's last reading before the raw replay.

Ownership: ``SiteEnergyState`` is updated in place for speed and returned; the caller must
use the returned state and not keep using an old reference (treat it as a linear value).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from analytics.energy_definition import ROLLOVER_PLAUSIBLE_SHARE, wrap_quantity
from analytics.late_readings import REMEMBERED_LATE, REMEMBERED_RUNS, _jump, _late, _new_run
from analytics.meter_state import (
    _NAN,
    BUCKET_S,
    DAY_S,
    LOCAL_OFFSET_S,
    SLOTS,
    MeterKind,
    MeterSpec,
    QualityEvent,
    QualityKind,
    Role,
    SiteEnergyState,
    _add,
    _coarse_slot,
    _configure,
    _flag,
    _Meter,
    _over_cap,
    initial_state,
)
from analytics.windows import WindowEnergy, floor_bucket, kgce_per_unit, local_day_start, validate_spec, window_energy

__all__ = [
    "BUCKET_S",
    "DAY_S",
    "LOCAL_OFFSET_S",
    "REMEMBERED_LATE",
    "REMEMBERED_RUNS",
    "ROLLOVER_PLAUSIBLE_SHARE",
    "SLOTS",
    "MeterKind",
    "MeterSpec",
    "QualityEvent",
    "QualityKind",
    "Role",
    "SiteEnergyState",
    "WindowEnergy",
    "apply_readings",
    "floor_bucket",
    "initial_state",
    "kgce_per_unit",
    "local_day_start",
    "seed_days",
    "validate_spec",
    "window_energy",
    "wrap_quantity",
]

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
    one: see ``analytics.late_readings``.
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
