from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from analytics.coefficients import ConversionError
from analytics.site_energy import (
    MeterSpec,
    SiteEnergyState,
    apply_readings,
    initial_state,
    validate_spec,
    window_energy,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
Q = timedelta(minutes=15)


def reg(mid: int = 1, role: str = "consumed", **kw: object) -> MeterSpec:
    return MeterSpec(mid, 7, str(kw.pop("carrier", "electricity")), str(kw.pop("unit", "kWh")), role, "register", **kw)  # type: ignore[arg-type]


def feed(specs: dict[int, MeterSpec], rows: list[tuple[int, datetime, float]], state: SiteEnergyState | None = None):  # type: ignore[no-untyped-def]
    return apply_readings(state or initial_state(timedelta(days=35)), specs, rows)


def qty(state: SiteEnergyState, specs: dict[int, MeterSpec], mid: int = 1,
        start: datetime = T0 - timedelta(days=1), end: datetime = T0 + timedelta(days=3)) -> float:
    return window_energy(state, specs, start, end).quantity_by_meter[mid]


def test_register_deltas_times_multiplier() -> None:
    # CT ratio 200/5 = 40: register 100.0 -> 102.5 -> 110.0 is (10.0 raw) × 40 = 400 kWh
    specs = {1: reg(multiplier=40.0)}
    st_, ev = feed(specs, [(1, T0, 100.0), (1, T0 + Q, 102.5), (1, T0 + 2 * Q, 110.0)])
    assert ev == []
    assert qty(st_, specs) == pytest.approx(400.0)
    # 12 kgce check: 400 kWh × 0.1229 = 49.16 kgce
    assert window_energy(st_, specs, T0, T0 + timedelta(hours=1)).consumed_kgce == pytest.approx(49.16)


def test_rollover_is_not_negative_consumption() -> None:
    # 99 990 -> 20 on a 100 000 register: (100 000 − 99 990) + 20 = 30 kWh
    specs = {1: reg(rollover=100_000.0)}
    st_, ev = feed(specs, [(1, T0, 99_990.0), (1, T0 + Q, 20.0), (1, T0 + 2 * Q, 50.0)])
    assert [e.kind for e in ev] == ["rollover"]
    assert qty(st_, specs) == pytest.approx(60.0)


def test_reset_is_flagged_not_summed() -> None:
    # 5 000 -> 10 is not a plausible rollover of a 100 000 register (would be 95 010 kWh in 15 min)
    specs = {1: reg(rollover=100_000.0)}
    st_, ev = feed(specs, [(1, T0, 4_990.0), (1, T0 + Q, 5_000.0), (1, T0 + 2 * Q, 10.0), (1, T0 + 3 * Q, 25.0)])
    assert [e.kind for e in ev] == ["counter_backwards"]
    assert ev[0].previous == 5_000.0 and ev[0].value == 10.0
    # 10 before the reset + 15 after it; the backwards jump itself is not summed
    assert qty(st_, specs) == pytest.approx(25.0)
    assert st_.flags[(1, "counter_backwards")] == ev[0]


def test_register_without_rollover_going_backwards_is_a_reset() -> None:
    specs = {1: reg()}
    _, ev = feed(specs, [(1, T0, 10.0), (1, T0 + Q, 9.0)])
    assert [e.kind for e in ev] == ["counter_backwards"]


def test_interval_meters_are_summed_and_cover_their_interval() -> None:
    specs = {1: MeterSpec(1, 7, "natural_gas", "m3", "consumed", "interval", coefficient="natural_gas_gasfield")}
    st_, _ = feed(specs, [(1, T0 + Q * k, 10.0) for k in range(1, 5)])
    w = window_energy(st_, specs, T0, T0 + timedelta(hours=1))
    # 4 × 10 m³ × 1.2143 kgce/m³ = 48.572 kgce over a fully covered hour
    assert w.quantity_by_meter[1] == pytest.approx(40.0)
    assert w.consumed_kgce == pytest.approx(48.572)
    assert w.coverage([1]) == pytest.approx(1.0)
    assert w.readings[1] == 4


def test_replayed_duplicate_is_silent_and_older_reading_is_out_of_order() -> None:
    specs = {1: MeterSpec(1, 7, "electricity", "kWh", "consumed", "interval")}
    st_, ev = feed(specs, [(1, T0 + Q, 5.0), (1, T0 + 2 * Q, 5.0), (1, T0 + 2 * Q, 5.0), (1, T0 + Q, 5.0)])
    assert [e.kind for e in ev] == ["out_of_order"]
    assert qty(st_, specs) == pytest.approx(10.0)  # not 20


def test_negative_and_physically_impossible_values_are_out_of_range() -> None:
    specs = {1: MeterSpec(1, 7, "electricity", "kWh", "consumed", "interval", max_per_hour=1000.0),
             2: reg(2)}
    # 400 kWh in 15 min = 1 600 kWh/h > 1 000 kWh/h
    st_, ev = feed(specs, [(1, T0 + Q, -3.0), (1, T0 + 2 * Q, 400.0), (1, T0 + 3 * Q, 100.0), (2, T0, -5.0)])
    assert [(e.meter_id, e.kind) for e in ev] == [(1, "out_of_range"), (1, "out_of_range"), (2, "out_of_range")]
    assert qty(st_, specs) == pytest.approx(100.0)


def test_unknown_meter_is_flagged() -> None:
    _, ev = feed({}, [(99, T0, 1.0)])
    assert [e.kind for e in ev] == ["unknown_meter"]


def test_a_long_register_gap_is_spread_over_its_buckets() -> None:
    # 0 -> 96 kWh over 24 h: 1 kWh per 15-minute bucket, so the first 6 hours hold 24 kWh
    specs = {1: reg()}
    st_, _ = feed(specs, [(1, T0, 0.0), (1, T0 + timedelta(days=1), 96.0)])
    w = window_energy(st_, specs, T0, T0 + timedelta(hours=6))
    assert w.quantity_by_meter[1] == pytest.approx(24.0)
    assert w.coverage([1]) == pytest.approx(1.0)


def test_local_day_boundary_asia_shanghai() -> None:
    # a 15-minute interval ending 2026-01-01T16:30Z (00:30 local on 2 Jan) belongs to local 2026-01-02
    specs = {1: MeterSpec(1, 7, "electricity", "kWh", "consumed", "interval")}
    st_, _ = feed(specs, [(1, datetime(2026, 1, 1, 16, 30, tzinfo=UTC), 7.0)])
    jan2 = datetime(2026, 1, 1, 16, 0, tzinfo=UTC)
    assert qty(st_, specs, start=jan2, end=jan2 + timedelta(days=1)) == pytest.approx(7.0)
    assert qty(st_, specs, start=jan2 - timedelta(days=1), end=jan2) == 0.0


def test_data_centre_roles() -> None:
    specs = {1: reg(1, "it_load"), 2: reg(2, "total_facility"),
             3: MeterSpec(3, 7, "heat", "GJ", "exported", "interval"),
             4: MeterSpec(4, 7, "product", "t", "product_output", "interval", product="calcium_carbide")}
    rows = [(1, T0, 0.0), (2, T0, 0.0), (1, T0 + Q, 100.0), (2, T0 + Q, 125.0), (3, T0 + Q, 1.0), (4, T0 + Q, 2.0)]
    st_, _ = feed(specs, rows)
    w = window_energy(st_, specs, T0, T0 + Q)
    assert (w.it_kwh, w.facility_kwh) == (100.0, 125.0)
    # consumed = facility 125 kWh × 0.1229 = 15.3625 kgce (IT is a sub-meter, not added);
    # exported = 1 GJ × 34.12 = 34.12 kgce; net = −18.7575
    assert w.consumed_kgce == pytest.approx(15.3625)
    assert w.exported_kgce == pytest.approx(34.12)
    assert w.net_kgce == pytest.approx(15.3625 - 34.12)
    assert w.product_t == {"calcium_carbide": 2.0}


def test_retention_drops_and_coarsens_old_days() -> None:
    specs = {1: MeterSpec(1, 7, "electricity", "kWh", "consumed", "interval")}
    state = initial_state(retention=timedelta(days=10), fine_retention=timedelta(days=2))
    rows = [(1, T0 + Q * k, 1.0) for k in range(1, 96 * 15 + 1)]  # 15 days of 1 kWh per quarter hour
    state, _ = apply_readings(state, specs, rows)
    days = state.meters[1].days
    assert len(days) <= 12
    assert sum(1 for d in days.values() if d.fine) <= 3
    # old full days keep their totals: 96 kWh
    w = window_energy(state, specs, T0 + timedelta(days=8), T0 + timedelta(days=9))
    assert w.quantity_by_meter[1] == pytest.approx(96.0)


def test_validate_spec() -> None:
    validate_spec(reg())
    with pytest.raises(ConversionError):
        validate_spec(MeterSpec(1, 7, "natural_gas", "m3", "consumed", "interval"))
    with pytest.raises(ConversionError):
        validate_spec(MeterSpec(1, 7, "electricity", "m3", "it_load", "register"))
    with pytest.raises(ConversionError):
        validate_spec(MeterSpec(1, 7, "product", "t", "product_output", "interval"))


@given(st.lists(st.floats(min_value=0, max_value=1000, allow_nan=False), min_size=2, max_size=60),
       st.integers(min_value=1, max_value=59))
def test_window_sums_are_additive_over_split_points(values: list[float], split: int) -> None:
    specs = {1: MeterSpec(1, 7, "electricity", "kWh", "consumed", "interval")}
    state, _ = apply_readings(initial_state(), specs, [(1, T0 + Q * (k + 1), v) for k, v in enumerate(values)])
    mid = T0 + Q * min(split, len(values))
    end = T0 + Q * (len(values) + 1)
    a = window_energy(state, specs, T0, mid).consumed_kgce
    b = window_energy(state, specs, mid, end).consumed_kgce
    assert a + b == pytest.approx(window_energy(state, specs, T0, end).consumed_kgce, rel=1e-9, abs=1e-9)
    assert a + b == pytest.approx(sum(values) * 0.1229, rel=1e-9, abs=1e-9)
