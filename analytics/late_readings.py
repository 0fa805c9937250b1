"""Late and replayed readings of the streaming state: a reading at or before the meter's newest one.

Owns what a meter remembers to judge such a reading (runs of regular timestamps, backwards
jumps, merged late readings; ``REMEMBERED_RUNS``, ``REMEMBERED_LATE``) and the judgement
itself (``_late``, called by ``analytics.site_energy.apply_readings``). Builds on
``analytics.meter_state``.

The worker may replay a Kafka poll after a crash, so a reading already applied must be
recognised:
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
"""

from __future__ import annotations

import math
from typing import Final

from analytics.energy_definition import wrap_quantity as _wrap
from analytics.meter_state import (
    _INF,
    _NAN,
    _NEG_INF,
    DAY_S,
    QualityEvent,
    SiteEnergyState,
    _add,
    _const,
    _day_index,
    _flag,
    _Meter,
    _over_cap,
)

#: Earlier runs of regular timestamps (interval meters) and backwards jumps (registers) that a
#: meter remembers to judge late readings; and late interval readings remembered as merged.
REMEMBERED_RUNS: Final = 16
REMEMBERED_LATE: Final = 64
#: Two float epoch timestamps closer than this are the same instant (datetimes have 1 µs
#: resolution; a float epoch near 2026 has a resolution of 0.24 µs).
_SAME_INSTANT_S: Final = 4e-7


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
