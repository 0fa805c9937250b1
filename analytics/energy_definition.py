"""One definition of energy: how a meter's readings become quantities, and which quantities a
site's comprehensive energy consumption (综合能耗, tce) counts, with which sign.

Two implementations read it: the streaming rule state (``analytics.site_energy``, with
``analytics.day_totals`` for a state rebuilt from the daily rollups) and the SQL of the read
API (``storage.read.energy_sql``), whose sign and step expressions are rendered from the
constants below. ``tests/integration/test_energy_definition.py`` feeds the same rows through
both and demands the same numbers.

Register arithmetic (a register is a cumulative counter; raw values × ``multiplier`` are the
meter's unit):

* the first reading is the baseline (nothing is summed for it);
* a step between two successive readings, ``prev`` → ``value``, is ``value − prev`` when not
  negative; a negative step is a **wrap** when the meter has a wrap point (``rollover``, the
  modulus: 10⁸ for an 8-digit register) and the implied quantity ``rollover − prev + value``
  is at most ``ROLLOVER_PLAUSIBLE_SHARE`` of the range; any other negative step is a **reset**
  (the meter was replaced or zeroed): the jump is not summed, the new value is the baseline;
* a step is spread linearly over the time between its readings, (prev ts, ts]: a reading
  closes the interval before it (a reading at 00:00 belongs to the day before), and a
  difference across a gap -- a day or a week without readings -- is real consumption, shared
  by time among the quarter-hours, hours and days the gap spans;
* a negative register value is refused (flagged, not summed; the baseline stays).

Interval meters (each value is the quantity of the interval before it): a value covers
(max(ts − interval_s, previous reading), ts] and is spread linearly over it; the first reading
(or one after a gap) covers ``interval_s``; a negative value is refused.

Late readings: a reading stored after later ones counts as if it had arrived in time (the
database has one row per (meter, ts), the first value wins).

The boundary (GB/T 2589-2020: energy consumed within the boundary, net of energy exported):
``TCE_SIGN``. ``it_load`` is a sub-meter of ``total_facility`` (used for PUE only);
``product_output`` is a denominator. The boundary does not depend on the site kind: a data
centre's diesel or gas (``consumed``) is part of its comprehensive consumption as much as its
facility electricity, and a plant's ``total_facility`` meter is its consumption too. (The
portal once counted only the facility meter of a data centre and only consumed/exported at a
plant while the rules counted every role below, so the two could disagree; docs/registry.md
"How the roles are used" states this one; ``analytics.quotas.ENERGY_ROLES`` are the roles
with a sign, and a product's energy is the same sum over its own meters.)

Residual differences between the implementations, where the SQL reads the rollups (one row
per meter and local day, quarter-hour or hour: count, sum, min, max, first and last reading)
instead of every reading -- the same inference ``analytics.day_totals`` makes when a worker
rebuilds its state from the daily rollup:

* inside one rollup bucket only one backwards jump can be told apart: the minimum below the
  first or the maximum above the last reading means one wrap (when plausible from the maximum
  to the minimum) or else one reset. Two wraps, or a wrap and a reset, inside one bucket are
  counted as one. With the SQL's quarter-hours and hours built from the raw readings of a
  15-minute meter (one reading a bucket) nothing is inferred; a day is one bucket;
* a negative value inside a daily rollup is in its sum (the daily rollup keeps no per-reading
  flag); the quarter-hours and hours, built from the raw readings, leave it out as the stream
  does;
* a late register reading outside the values around it (flagged ``out_of_order`` by the
  stream, not summed) is a step like any other in SQL; a late register reading between its
  neighbours only splits a step in two, which moves energy between buckets only when the two
  halves lie in different buckets;
* ``max_per_hour`` (a physical cap a spec may carry) is not stored in the database: the SQL
  does not refuse a quantity above it (the registry does not set it today).

The span of a register over many readings (the daily checks' month-to-date register
difference, ``span_quantity``) cannot be judged step by step: a negative span is one wrap
when the meter has a wrap point, otherwise it stays negative (a reset inside the span: not a
usable total).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, Literal, get_args

Role = Literal["consumed", "exported", "product_output", "it_load", "total_facility"]
ROLES: Final[tuple[str, ...]] = get_args(Role)

#: A backwards register step is a wrap only if the quantity it implies is at most this share of
#: the register's range (a 15-minute step a tenth of an 8-digit range is already 10⁷ units);
#: anything else is a reset, flagged and not summed.
ROLLOVER_PLAUSIBLE_SHARE: Final = 0.1

#: Sign of each meter role in comprehensive energy consumption (GB/T 2589-2020: consumed −
#: exported); 0 for roles that are no energy input of the boundary.
TCE_SIGN: Final[Mapping[str, int]] = MappingProxyType(
    {"consumed": 1, "total_facility": 1, "exported": -1, "it_load": 0, "product_output": 0})

#: The roles a site's tce counts (sign ≠ 0).
COUNTED_ROLES: Final = frozenset(r for r, s in TCE_SIGN.items() if s)


def tce_sign(role: str) -> int:
    """+1, −1 or 0: how a meter of ``role`` counts in its site's tce, whatever the site's kind
    (``KeyError`` for an unknown role: the registry only stores known ones)."""
    return TCE_SIGN[role]


def wrap_quantity(rollover: float | None, prev: float, value: float) -> float | None:
    """Raw quantity of a register going from ``prev`` down to ``value`` when that is a
    plausible wrap at ``rollover`` (the modulus), else ``None`` (a reset)."""
    if rollover is not None and 0 <= rollover - prev + value <= rollover * ROLLOVER_PLAUSIBLE_SHARE:
        return rollover - prev + value
    return None


def register_step(rollover: float | None, prev: float, value: float) -> float | None:
    """Raw quantity of one step between successive register readings, or ``None`` for a reset
    (the jump is not summed)."""
    if value >= prev:
        return value - prev
    return wrap_quantity(rollover, prev, value)


def span_quantity(first: float, last: float, rollover: float | None = None) -> float:
    """Raw quantity a register advanced over a span of many readings, first to last: a
    negative span is one wrap when the meter has a wrap point, otherwise it stays negative (a
    reset inside the span; not a usable total)."""
    raw = last - first
    if raw < 0 and rollover is not None:
        raw += rollover
    return raw
