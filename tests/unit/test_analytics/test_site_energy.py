from __future__ import annotations

from collections.abc import Sequence
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


def feed(specs: dict[int, MeterSpec], rows: Sequence[tuple[int, datetime | float, float]], state: SiteEnergyState | None = None):  # type: ignore[no-untyped-def]
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


def test_replayed_readings_are_silent_and_not_double_counted() -> None:
    # the older reading at T0 + Q is the same reading again (a replayed poll), not a late one
    specs = {1: MeterSpec(1, 7, "electricity", "kWh", "consumed", "interval")}
    st_, ev = feed(specs, [(1, T0 + Q, 5.0), (1, T0 + 2 * Q, 5.0), (1, T0 + 2 * Q, 5.0), (1, T0 + Q, 5.0)])
    assert ev == []
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


TL = datetime(2025, 12, 31, 16, 0, tzinfo=UTC)  # 2026-01-01 00:00 Asia/Shanghai


def test_retention_drops_old_days_and_keeps_day_totals_without_detail() -> None:
    specs = {1: MeterSpec(1, 7, "electricity", "kWh", "consumed", "interval")}
    state = initial_state(retention=timedelta(days=10), fine_retention=timedelta(days=2))
    # 15 local days (1–15 January) of 1 kWh per quarter hour: the reading at a midnight closes
    # the day before, so every day holds 96 readings, 96 kWh, 86 400 covered seconds
    rows = [(1, TL + Q * k, 1.0) for k in range(1, 96 * 15 + 1)]
    state, _ = apply_readings(state, specs, rows)
    m = state.meters[1]
    # newest day 15 Jan: ages 0–2 days (13–15 Jan) keep 15-minute detail, ages 3–10 days
    # (5–12 Jan) only their totals, older ones (1–4 Jan) are dropped
    assert len(m.days) == 3
    assert m.coarse is not None and len(m.coarse) == 8 * 3  # 8 days × (quantity, seconds, readings)
    assert state.first_data(1) == TL + timedelta(days=4)  # 5 Jan
    day = timedelta(days=1)
    w = window_energy(state, specs, TL + 8 * day, TL + 9 * day)  # 9 Jan, a whole day total
    assert (w.quantity_by_meter[1], w.coverage_s[1], w.readings[1], w.approximate) == (96.0, 86_400.0, 96, False)
    assert window_energy(state, specs, TL + 3 * day, TL + 4 * day).quantity_by_meter[1] == 0.0  # 4 Jan dropped
    # 5 Jan 12:00 to 7 Jan 00:00: half of 5 Jan pro rata (48) + 6 Jan (96) = 144 kWh, approximate
    w = window_energy(state, specs, TL + 4.5 * day, TL + 6 * day)
    assert (w.quantity_by_meter[1], w.approximate) == (144.0, True)
    # the whole held range: 11 days × 96 = 1 056 kWh, same as the detail and totals added up
    assert window_energy(state, specs, TL, TL + 15 * day).quantity_by_meter[1] == 1056.0


def test_late_reading_into_a_day_held_as_a_total() -> None:
    specs = {1: MeterSpec(1, 7, "electricity", "kWh", "consumed", "interval")}
    state = initial_state(retention=timedelta(days=10), fine_retention=timedelta(days=2))
    rows = [(1, TL + Q * k, 1.0) for k in range(1, 96 * 15 + 1) if k != 96 * 7 + 40]  # one missing on 8 Jan
    state, _ = apply_readings(state, specs, rows)
    day = timedelta(days=1)
    assert window_energy(state, specs, TL + 7 * day, TL + 8 * day).quantity_by_meter[1] == 95.0
    state, ev = apply_readings(state, specs, [(1, TL + Q * (96 * 7 + 40), 5.0)])  # arrives a week late
    w = window_energy(state, specs, TL + 7 * day, TL + 8 * day)
    assert ev == [] and (w.quantity_by_meter[1], w.readings[1], w.coverage_s[1]) == (100.0, 96, 86_400.0)
    assert len(state.meters[1].days) == 3  # no 15-minute detail was re-created for it


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


# ------------------------------------------------------------------ cadence, epoch input, caches

S = timedelta(seconds=1)


def iv(mid: int = 1, **kw: object) -> MeterSpec:
    return MeterSpec(mid, 7, "electricity", "kWh", "consumed", "interval", **kw)  # type: ignore[arg-type]


def test_a_meter_reporting_faster_than_its_interval_covers_the_time_since_its_previous_reading() -> None:
    # registered interval 900 s, reporting every 60 s: the first value (15 kWh at T0 + Q) covers
    # its full interval (T0, T0 + Q]; each later 1 kWh covers the 60 s since the previous one
    specs = {1: iv()}
    rows = [(1, T0 + Q, 15.0)] + [(1, T0 + Q + k * timedelta(seconds=60), 1.0) for k in range(1, 16)]
    st_, ev = feed(specs, rows)
    assert ev == []
    first = window_energy(st_, specs, T0, T0 + Q)
    second = window_energy(st_, specs, T0 + Q, T0 + 2 * Q)
    assert (first.quantity_by_meter[1], first.coverage([1]), first.readings[1]) == (15.0, 1.0, 1)
    assert (second.quantity_by_meter[1], second.coverage([1]), second.readings[1]) == (15.0, 1.0, 15)
    # after a gap longer than the interval, a value covers only its interval (900 s), not the gap
    st_, _ = feed(specs, [(1, T0 + 4 * Q, 9.0)], st_)
    gap = window_energy(st_, specs, T0 + 2 * Q, T0 + 4 * Q)
    assert gap.quantity_by_meter[1] == 9.0 and gap.coverage([1]) == pytest.approx(0.5)


def test_epoch_seconds_and_datetimes_give_the_same_state() -> None:
    specs = {1: reg(multiplier=2.0), 2: iv(2)}
    rows = [(m, T0 + k * Q + k * S, 10.0 * k) for k in range(1, 9) for m in (1, 2)]
    a, _ = feed(specs, rows)
    b, _ = feed(specs, [(m, ts.timestamp(), v) for m, ts, v in rows])
    end = T0 + timedelta(hours=3)
    assert window_energy(a, specs, T0, end) == window_energy(b, specs, T0, end)
    assert window_energy(a, specs, T0, end).quantity_by_meter == {1: 140.0, 2: 360.0}


def test_a_changed_spec_takes_effect_from_the_next_reading() -> None:
    # the per-meter cache of the multiplier follows a registry reload (a new spec object)
    st_, _ = feed({1: reg(multiplier=1.0)}, [(1, T0, 0.0), (1, T0 + Q, 10.0)])
    specs = {1: reg(multiplier=40.0)}
    st_, _ = feed(specs, [(1, T0 + 2 * Q, 12.0)], st_)
    assert qty(st_, specs) == pytest.approx(10.0 + 2.0 * 40.0)


def test_per_second_readings_across_midnight_with_no_fine_detail_kept() -> None:
    # the remembered bucket must not outlive its day being coarsened: 1 kWh a second over local
    # midnight (2026-01-01T16:00Z), previous days reduced to totals at once
    specs = {1: iv()}
    state = initial_state(retention=timedelta(days=3), fine_retention=timedelta(0))
    mid = datetime(2026, 1, 1, 16, 0, tzinfo=UTC)
    rows = [(1, mid - 600 * S, 0.0)] + [(1, mid + k * S, 1.0) for k in range(-599, 601)]
    state, ev = apply_readings(state, specs, rows)
    assert ev == []
    assert window_energy(state, specs, mid - timedelta(days=1), mid).quantity_by_meter[1] == pytest.approx(600.0)
    assert window_energy(state, specs, mid, mid + timedelta(days=1)).quantity_by_meter[1] == pytest.approx(600.0)


def test_interval_must_be_positive() -> None:
    with pytest.raises(ConversionError):
        validate_spec(iv(interval_s=0.0))


# ------------------------------------------------------------------------------- late readings


def test_a_late_interval_reading_lands_in_its_bucket() -> None:
    # 15-minute meter: 4, 6, (8 late), 10 kWh; the 8 kWh of (T0 + 2Q, T0 + 3Q] arrives after T0 + 4Q
    specs = {1: iv()}
    st_, ev = feed(specs, [(1, T0 + Q, 4.0), (1, T0 + 2 * Q, 6.0), (1, T0 + 4 * Q, 10.0)])
    gap = window_energy(st_, specs, T0 + 2 * Q, T0 + 3 * Q)
    assert (gap.quantity_by_meter[1], gap.coverage([1]), gap.readings[1]) == (0.0, 0.0, 0)
    st_, ev = feed(specs, [(1, T0 + 3 * Q, 8.0)], st_)
    assert ev == []
    filled = window_energy(st_, specs, T0 + 2 * Q, T0 + 3 * Q)
    assert (filled.quantity_by_meter[1], filled.coverage([1]), filled.readings[1]) == (8.0, 1.0, 1)
    hour = window_energy(st_, specs, T0, T0 + 4 * Q)
    assert (hour.quantity_by_meter[1], hour.coverage([1]), hour.readings[1]) == (28.0, 1.0, 4)
    # 28 kWh × 0.1229 = 3.4412 kgce; the day total holds it too
    assert hour.consumed_kgce == pytest.approx(3.4412)
    assert qty(st_, specs) == pytest.approx(28.0)


def test_a_replayed_poll_with_a_late_reading_does_not_double_count() -> None:
    specs = {1: iv()}
    first = [(1, T0 + Q, 4.0), (1, T0 + 2 * Q, 6.0), (1, T0 + 4 * Q, 10.0)]
    late = [(1, T0 + 3 * Q, 8.0)]
    st_, _ = feed(specs, first)
    st_, _ = feed(specs, late, st_)
    st_, ev = feed(specs, first + late, st_)  # the worker crashed and re-reads both polls
    st_, ev2 = feed(specs, late, st_)
    assert ev == ev2 == []
    w = window_energy(st_, specs, T0, T0 + 4 * Q)
    assert (w.quantity_by_meter[1], w.coverage([1]), w.readings[1]) == (28.0, 1.0, 4)


def test_a_late_reading_of_a_fast_meter_adds_its_value_but_no_covered_seconds_twice() -> None:
    # 1 kWh per second; the reading at +2 s arrives after +3 s, whose value already covered (+1, +3]
    specs = {1: iv()}
    base = T0 + Q
    st_, _ = feed(specs, [(1, base, 0.0), (1, base + S, 1.0), (1, base + 3 * S, 1.0)])
    st_, ev = feed(specs, [(1, base + 2 * S, 1.0)], st_)
    assert ev == []
    w = window_energy(st_, specs, base, base + Q)
    assert (w.quantity_by_meter[1], w.coverage_s[1], w.readings[1]) == (3.0, 3.0, 3)


def test_a_late_reading_older_than_what_the_meter_remembers_is_out_of_order_and_not_summed() -> None:
    # readings two per run, each run broken by a gap: after REMEMBERED_RUNS more runs the first
    # run (T0 + Q, T0 + 2Q) is forgotten, and a reading inside it cannot be told from a replay
    from analytics.site_energy import REMEMBERED_RUNS

    specs = {1: iv()}
    ks = [k for r in range(REMEMBERED_RUNS + 2) for k in (1 + 3 * r, 2 + 3 * r)]
    st_, _ = feed(specs, [(1, T0 + k * Q, 1.0) for k in ks])
    before = qty(st_, specs)
    st_, ev = feed(specs, [(1, T0 + 2 * Q, 1.0)], st_)
    assert [(e.kind, e.ts) for e in ev] == [("out_of_order", T0 + 2 * Q)]
    # the gap (T0 + 2Q, T0 + 4Q) is still known to be empty: a reading there is merged
    st_, ev = feed(specs, [(1, T0 + 3 * Q, 2.0)], st_)
    assert ev == []
    assert qty(st_, specs) == pytest.approx(before + 2.0)


def test_late_interval_readings_beyond_retention_or_negative_are_flagged() -> None:
    specs = {1: iv()}
    state = initial_state(retention=timedelta(days=2))
    state, _ = apply_readings(state, specs, [(1, T0 + Q, 1.0), (1, T0 + timedelta(days=5), 1.0)])
    state, ev = apply_readings(state, specs, [(1, T0 + 2 * Q, 1.0), (1, T0 + timedelta(days=4), -1.0)])
    assert [(e.kind, e.detail) for e in ev] == [("out_of_order", "older than the retention horizon"),
                                                ("out_of_range", "negative interval quantity")]
    assert qty(state, specs, end=T0 + timedelta(days=6)) == pytest.approx(1.0)


def test_a_late_register_reading_between_known_ones_changes_nothing_unless_inconsistent() -> None:
    # 100 @ Q, 110 @ 2Q, 130 @ 4Q: 30 kWh; a late 120 @ 3Q fits between 110 and 130: silent
    specs = {1: reg()}
    rows = [(1, T0 + Q, 100.0), (1, T0 + 2 * Q, 110.0), (1, T0 + 4 * Q, 130.0)]
    st_, _ = feed(specs, rows)
    st_, ev = feed(specs, [(1, T0 + 3 * Q, 120.0), *rows], st_)  # and a replay of the known ones
    assert ev == []
    assert qty(st_, specs) == pytest.approx(30.0)
    assert window_energy(st_, specs, T0 + 2 * Q, T0 + 3 * Q).quantity_by_meter[1] == pytest.approx(10.0)
    # 140 @ 3Q contradicts 130 @ 4Q (a register does not run backwards): flagged, nothing summed
    st_, ev = feed(specs, [(1, T0 + 3 * Q, 140.0)], st_)
    assert [(e.kind, e.value, e.previous) for e in ev] == [("out_of_order", 140.0, 110.0)]
    assert qty(st_, specs) == pytest.approx(30.0)


def test_a_late_register_reading_before_the_first_extends_the_data() -> None:
    # first known 100 @ Q; a late 95 @ T0 adds the 5 kWh of (T0, T0 + Q]; the first reading now
    # closes a delta and counts as one reading
    specs = {1: reg()}
    st_, _ = feed(specs, [(1, T0 + Q, 100.0), (1, T0 + 2 * Q, 110.0)])
    st_, ev = feed(specs, [(1, T0, 95.0), (1, T0, 95.0)], st_)
    assert ev == []
    w = window_energy(st_, specs, T0, T0 + Q)
    assert (w.quantity_by_meter[1], w.coverage([1]), w.readings[1]) == (5.0, 1.0, 1)
    assert qty(st_, specs) == pytest.approx(15.0)
    # a value above the first reading after it is inconsistent
    _, ev = feed(specs, [(1, T0 - Q, 99.0)], st_)
    assert [e.kind for e in ev] == ["out_of_order"]


def test_a_late_register_reading_across_a_rollover() -> None:
    # 990 @ Q, 995 @ 2Q, 5 @ 4Q on a 1 000 register: rollover, 15 kWh in all
    specs = {1: reg(rollover=1000.0)}
    st_, ev = feed(specs, [(1, T0 + Q, 990.0), (1, T0 + 2 * Q, 995.0), (1, T0 + 4 * Q, 5.0)])
    assert [e.kind for e in ev] == ["rollover"]
    st_, ev = feed(specs, [(1, T0 + 3 * Q, 998.0), (1, T0 + 3 * Q + S, 2.0)], st_)  # before/after the wrap
    assert ev == []
    st_, ev = feed(specs, [(1, T0 + 3 * Q, 500.0)], st_)  # inside the jump: impossible
    assert [(e.kind, e.value) for e in ev] == [("out_of_order", 500.0)]
    assert qty(st_, specs) == pytest.approx(15.0)


@given(st.lists(st.floats(min_value=0, max_value=1000, allow_nan=False), min_size=1, max_size=15),
       st.randoms(use_true_random=False))
def test_any_arrival_order_with_replays_gives_the_in_order_buckets(values: list[float], rnd) -> None:  # type: ignore[no-untyped-def]
    # a 15-minute meter's readings shuffled and partly repeated land in the same buckets
    specs = {1: iv()}
    rows = [(1, T0 + Q * (k + 1), v) for k, v in enumerate(values)]
    shuffled = rows + [r for r in rows if rnd.random() < 0.3]
    rnd.shuffle(shuffled)
    in_order, _ = apply_readings(initial_state(), specs, rows)
    late, ev = apply_readings(initial_state(), specs, shuffled)
    assert ev == []
    for k in range(len(values) + 1):
        a = window_energy(in_order, specs, T0 + Q * k, T0 + Q * (k + 1))
        b = window_energy(late, specs, T0 + Q * k, T0 + Q * (k + 1))
        assert b.quantity_by_meter[1] == pytest.approx(a.quantity_by_meter[1], rel=1e-12, abs=1e-12)
        assert (b.coverage_s, b.readings) == (a.coverage_s, a.readings)


@given(st.lists(st.floats(min_value=0, max_value=100, allow_nan=False), min_size=2, max_size=40),
       st.randoms(use_true_random=False))
def test_registers_in_any_order_sum_last_minus_first(steps: list[float], rnd) -> None:  # type: ignore[no-untyped-def]
    specs = {1: reg()}
    values = [sum(steps[: k + 1]) for k in range(len(steps))]
    rows = [(1, T0 + Q * k, v) for k, v in enumerate(values)]
    rnd.shuffle(rows)
    st_, ev = feed(specs, rows)
    assert ev == []
    assert qty(st_, specs) == pytest.approx(values[-1] - values[0], rel=1e-9, abs=1e-9)


def test_a_late_register_reading_after_forgotten_resets_is_judged_only_by_what_is_known() -> None:
    # 100, 10, 100, 10, … every 15 min: a reset (10 after 100) at every odd quarter hour, each
    # flagged. Of the REMEMBERED_RUNS + 2 jumps, those at Q and 3Q are forgotten.
    from analytics.site_energy import REMEMBERED_RUNS

    specs = {1: reg()}
    n = REMEMBERED_RUNS + 2
    rows = [(1, T0 + k * Q, 100.0 if k % 2 == 0 else 10.0) for k in range(2 * n + 1)]
    st_, ev = feed(specs, rows)
    assert [e.kind for e in ev] == ["counter_backwards"] * n
    before = qty(st_, specs)
    # 50 just after 3Q: the register was at 10 then (a forgotten reset) and at 100 at 4Q, so 50
    # fits; the first reading (100 at T0) must not serve as a lower bound any more
    # 50 at 2Q + 1 s lies inside the forgotten reset at 3Q: it cannot be judged, so it is silent
    st_, ev = feed(specs, [(1, T0 + 3 * Q + S, 50.0), (1, T0 + 2 * Q + S, 50.0)], st_)
    assert ev == []
    # 150 just after 3Q is above the known 100 at 4Q: inconsistent
    st_, ev = feed(specs, [(1, T0 + 3 * Q + S, 150.0)], st_)
    assert [(e.kind, e.value) for e in ev] == [("out_of_order", 150.0)]
    assert qty(st_, specs) == pytest.approx(before)
