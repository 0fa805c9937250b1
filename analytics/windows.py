"""Windows over the streaming state: a site's quantities over [start, end) from the buckets.

Owns ``WindowEnergy`` and ``window_energy`` (the sum over a window, converted once per window,
not per reading), the per-meter conversion factors (kgce per unit, cached from
``analytics.coefficients``, GB/T 2589; kWh and tonnes per unit), ``validate_spec`` (that a
spec can be converted, checked when the registry is loaded) and the bucket and local-day
boundaries (``floor_bucket``, ``local_day_start``). Builds on ``analytics.meter_state``.

Windows are summed in whole 15-minute buckets (partial buckets at the edges are left out).
Windows aligned on local midnights (annual, year-to-date, month-to-date, daily rules) are
exact from the day totals; a window starting inside a day held only as a total takes that
day pro rata (``approximate``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from analytics.coefficients import CALORIFIC_VALUE, ConversionError, ElectricityValue, resolve, scale_unit
from analytics.meter_state import (
    _W,
    BUCKET_S,
    DAY_S,
    LOCAL_OFFSET_S,
    MeterSpec,
    SiteEnergyState,
    _Meter,
)


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
