"""Day totals of a meter from its daily rollups, counted the way the streaming state counts.

A worker rebuilds a site's rule state when it starts: the last few weeks from the raw
readings (15-minute detail) and everything older, up to the horizon of the annual rules (two
calendar years), from the daily rollup (``rollup_1d``: per meter and Asia/Shanghai day the
reading count, sum, min, max, and first and last reading) -- one row per meter and day
instead of 96. ``day_totals`` turns those rows into what ``analytics.site_energy`` would have
held for each day had it seen every reading, so a rebuilt state and a live one agree:

* the streaming state puts a reading's quantity on the interval it closes, (ts − interval,
  ts], so the reading at 00:00 belongs to the day before, where the rollup (a plain date bin)
  counts it in the new day. An interval meter's day is therefore its rollup sum, less the
  part of its first reading that covers the previous day, plus that part of the next day's
  first reading (exact for readings on the interval grid);
* a register's energy is spread linearly over the time between two readings: inside a day
  (first to last reading of the day: last − first) and across midnight (the previous day's
  last reading to this day's first, shared by time between the days it spans). A backwards
  step is a wrap when ``site_energy.wrap_quantity`` finds it plausible, else a reset whose
  jump is not summed; inside a day the rollup only shows that one happened (the minimum below
  the first or the maximum above the last reading): one wrap, else one reset, is assumed;
* covered seconds: a register covers the time between its readings; an interval meter its
  readings × interval, at most the time from its first reading's interval to its last
  reading (the rollup has no gaps: exact for readings on the grid);
* the readings of a day are counted at the bucket they close, like the streaming state.

The first reading a register rollup holds is its baseline (not summed, as in the stream). The
meter's last reading is returned with the totals: the raw replay continues from it
(``site_energy.seed_days``), so nothing is counted twice at the boundary.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from analytics.site_energy import (
    DAY_S,
    LOCAL_OFFSET_S,
    MeterSpec,
    SiteEnergyState,
    seed_days,
    wrap_quantity,
)


@dataclass(frozen=True, slots=True)
class DayRollup:
    """One row of the daily rollup: a meter's readings on one local day (raw values)."""

    meter_id: int
    day: datetime  # 00:00 Asia/Shanghai of the day (aware)
    readings: int
    sum_value: float
    min_value: float
    max_value: float
    first_ts: datetime
    first_value: float
    last_ts: datetime
    last_value: float


#: (local day index, quantity in unit × multiplier, covered seconds, readings)
DayTotal = tuple[int, float, float, float]


def _day_index(t: float) -> int:
    return int((t + LOCAL_OFFSET_S) // DAY_S)


def _count_day(t: float) -> int:
    """The local day whose last 15-minute bucket a reading at ``t`` closes when on a midnight."""
    di = _day_index(t)
    return di - 1 if (t + LOCAL_OFFSET_S) % DAY_S == 0 else di


def _spread(out: dict[int, list[float]], t0: float, t1: float, qty: float) -> None:
    """Quantity ``qty`` and covered time linearly over (t0, t1] into the days it spans."""
    span = t1 - t0
    if span <= 0:
        return
    d = _day_index(t0)
    while True:
        lo = d * DAY_S - LOCAL_OFFSET_S
        a, b = max(t0, lo), min(t1, lo + DAY_S)
        if b > a:
            acc = out.setdefault(d, [0.0, 0.0, 0.0])
            acc[0] += qty * (b - a) / span
            acc[1] += b - a
        if lo + DAY_S >= t1:
            return
        d += 1


def _step(roll: float | None, prev: float, value: float) -> float:
    """Raw quantity of a register step between two readings (a reset counts 0)."""
    if value >= prev:
        return value - prev
    wrapped = wrap_quantity(roll, prev, value)
    return 0.0 if wrapped is None else wrapped


def _within(r: DayRollup, roll: float | None) -> float:
    """Raw quantity a register advanced between its first and last reading of a day."""
    if r.min_value >= r.first_value and r.max_value <= r.last_value:
        return max(0.0, r.last_value - r.first_value)  # went up only
    wrapped = wrap_quantity(roll, r.max_value, r.min_value)
    if wrapped is not None:  # one wrap: first -> max, max -> (wrap) -> min, min -> last
        return (r.max_value - r.first_value) + wrapped + (r.last_value - r.min_value)
    return max(0.0, r.max_value - r.first_value) + max(0.0, r.last_value - r.min_value)  # one reset, not summed


def day_totals(spec: MeterSpec, rows: Sequence[DayRollup]) -> tuple[list[DayTotal], tuple[float, float] | None]:
    """(day totals, last reading as (epoch s, raw value)) of one meter from its rollup rows
    (any order); see the module docstring."""
    rs = sorted(rows, key=lambda r: r.day)
    if not rs:
        return [], None
    out: dict[int, list[float]] = {}
    mult, ival = spec.multiplier, spec.interval_s
    if spec.kind == "interval":
        prev_last = float("-inf")
        for r in rs:
            t_first, t_last = r.first_ts.timestamp(), r.last_ts.timestamp()
            cov_from = max(t_first - ival, prev_last)
            # the first reading's interval, shared by time with the day(s) before its own
            _spread(out, cov_from, t_first, r.first_value * mult)
            rest = out.setdefault(_day_index(t_first), [0.0, 0.0, 0.0])
            rest[0] += (r.sum_value - r.first_value) * mult
            rest[1] += min((r.readings - 1) * ival, t_last - t_first)
            prev_last = t_last
    else:
        prev: DayRollup | None = None
        for r in rs:
            t_first, t_last = r.first_ts.timestamp(), r.last_ts.timestamp()
            if prev is not None:  # previous day's last reading to this day's first
                _spread(out, prev.last_ts.timestamp(), t_first, _step(spec.rollover, prev.last_value, r.first_value) * mult)
            _spread(out, t_first, t_last, _within(r, spec.rollover) * mult)
            prev = r
    for i, r in enumerate(rs):
        t_first = r.first_ts.timestamp()
        counted = r.readings - 1  # the others are after the first reading, inside its day
        out.setdefault(_day_index(t_first), [0.0, 0.0, 0.0])[2] += counted
        if spec.kind == "interval" or i > 0:  # a register's first reading is its baseline
            out.setdefault(_count_day(t_first), [0.0, 0.0, 0.0])[2] += 1
    totals = [(di, q, min(c, float(DAY_S)), n) for di, (q, c, n) in sorted(out.items()) if q or c or n]
    last = rs[-1]
    return totals, (last.last_ts.timestamp(), last.last_value)


def seed_from_rollups(state: SiteEnergyState, specs: Mapping[int, MeterSpec],
                      rows: Iterable[DayRollup]) -> SiteEnergyState:
    """A fresh state holding the day totals of ``rows`` (meters without a spec are skipped);
    replay the raw readings after each meter's last rollup reading on top of it."""
    by_meter: dict[int, list[DayRollup]] = {}
    for r in rows:
        by_meter.setdefault(r.meter_id, []).append(r)
    totals: list[tuple[int, int, float, float, float]] = []
    last: dict[int, tuple[float, float]] = {}
    for meter_id, rs in by_meter.items():
        spec = specs.get(meter_id)
        if spec is None:
            continue
        days, newest = day_totals(spec, rs)
        totals += [(meter_id, di, q, c, n) for di, q, c, n in days]
        if newest is not None:
            last[meter_id] = newest
    return seed_days(state, specs, totals, last)
