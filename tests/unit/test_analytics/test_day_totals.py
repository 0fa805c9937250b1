"""Day totals from daily rollups agree with what the streaming state counts from every reading.

The rollup rows here are built the way ``rollup_1d`` defines them (a plain bin of the
readings by Asia/Shanghai day: count, sum, min, max, first and last reading), not by the code
under test.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from analytics.day_totals import DayRollup, day_totals, seed_from_rollups
from analytics.site_energy import MeterSpec, apply_readings, initial_state, window_energy

D0 = datetime(2025, 2, 28, 16, 0, tzinfo=UTC)  # 2025-03-01 00:00 Asia/Shanghai
DAY = timedelta(days=1)
Q = timedelta(minutes=15)
H = timedelta(hours=1)
IV = MeterSpec(1, 7, "electricity", "kWh", "consumed", "interval")
IV_H = MeterSpec(1, 7, "electricity", "kWh", "consumed", "interval", interval_s=3600)
REG = MeterSpec(1, 7, "electricity", "kWh", "consumed", "register", multiplier=10.0, rollover=1e6)


def rollups(rows: Sequence[tuple[datetime, float]], meter_id: int = 1) -> list[DayRollup]:
    """Bin readings into local days [00:00, 24:00) as the database's daily rollup does."""
    days: dict[datetime, list[tuple[datetime, float]]] = {}
    for ts, v in sorted(rows):
        local_midnight = D0 + ((ts - D0) // DAY) * DAY
        days.setdefault(local_midnight, []).append((ts, v))
    out = []
    for day, rs in sorted(days.items()):
        vals = [v for _, v in rs]
        out.append(DayRollup(meter_id, day, len(rs), sum(vals), min(vals), max(vals), rs[0][0], rs[0][1],
                             rs[-1][0], rs[-1][1]))
    return out


def test_interval_day_takes_its_last_quarter_from_the_next_midnight_reading() -> None:
    # 2 kWh per quarter hour, readings on the grid from 1 Mar 00:15 to 3 Mar 00:00: the rollup
    # bins 1 Mar 00:15..23:45 (95 readings, 190 kWh) and 2 Mar 00:00..23:45 (96, 192 kWh) and
    # 3 Mar 00:00 (1, 2 kWh); the stream puts each reading on the quarter it closes, so 1 and 2
    # March hold 96 quarters = 192 kWh and 86 400 s each, and 3 March nothing
    rows = [(D0 + k * Q, 2.0) for k in range(1, 2 * 96 + 1)]
    totals, last = day_totals(IV, rollups(rows))
    d = int((D0.timestamp() + 8 * 3600) // 86400)
    assert totals == [(d, 192.0, 86_400.0, 96.0), (d + 1, 192.0, 86_400.0, 96.0)]
    assert last == ((D0 + 2 * DAY).timestamp(), 2.0)


def test_register_day_is_its_increase_with_the_midnight_step_shared_by_time() -> None:
    # register (CT ×10) read at 1 Mar 22:00 = 100.0, 2 Mar 02:00 = 104.0, 2 Mar 20:00 = 110.0,
    # 3 Mar 04:00 = 118.0: the 22:00→02:00 step of 4.0 × 10 = 40 kWh spans 2 h on 1 Mar and
    # 2 h on 2 Mar (20 kWh each); 02:00→20:00 is 60 kWh on 2 Mar; 20:00→04:00 is 80 kWh over
    # 4 h on 2 Mar (40) and 4 h on 3 Mar (40). So 1 Mar 20, 2 Mar 20 + 60 + 40 = 120, 3 Mar 40;
    # the first reading is the baseline (not counted)
    rows = [(D0 + 22 * H, 100.0), (D0 + DAY + 2 * H, 104.0), (D0 + DAY + 20 * H, 110.0), (D0 + 2 * DAY + 4 * H, 118.0)]
    totals, last = day_totals(REG, rollups(rows))
    d = int((D0.timestamp() + 8 * 3600) // 86400)
    assert [(di - d, round(q, 9), c, n) for di, q, c, n in totals] == [
        (0, 20.0, 7200.0, 0.0), (1, 120.0, 86_400.0, 2.0), (2, 40.0, 4 * 3600.0, 1.0)]
    assert last == ((D0 + 2 * DAY + 4 * H).timestamp(), 118.0)


def test_register_wrap_inside_a_day_and_across_midnight() -> None:
    # rollover 1e6: 999 990 at 10:00, 999 998 at 20:00, 6 at 1 Mar 23:00 (a wrap: +8 raw, all on
    # 1 Mar), 10 at 2 Mar 01:00 (+4 over 2 h, half each day); × 10: 1 Mar (8 + 8 + 2) × 10 = 180
    rows = [(D0 + 10 * H, 999_990.0), (D0 + 20 * H, 999_998.0), (D0 + 23 * H, 6.0), (D0 + DAY + H, 10.0)]
    totals, _ = day_totals(REG, rollups(rows))
    assert [round(q, 6) for _, q, _, _ in totals] == [180.0, 20.0]


def test_register_reset_inside_a_day_is_not_summed() -> None:
    # 500 → 520 (+20), reset to 0, → 30 (+30): 50 raw × 10 = 500 kWh, the jump is not energy
    rows = [(D0 + 1 * H, 500.0), (D0 + 2 * H, 520.0), (D0 + 3 * H, 0.0), (D0 + 4 * H, 30.0)]
    totals, _ = day_totals(REG, rollups(rows))
    assert [q for _, q, _, _ in totals] == [500.0]


@pytest.mark.parametrize("spec,step", [(IV, Q), (IV_H, H), (REG, Q), (REG, 3 * H)])
def test_seeded_state_equals_the_streamed_one(spec: MeterSpec, step: timedelta) -> None:
    """Five local days: the first three from rollups + a raw replay of the rest give every
    day, and every window of whole days, the same figures as streaming all readings."""
    n = int(5 * DAY / step)
    rows = [(D0 + k * step, (3.0 + (k % 7) if spec.kind == "interval" else 1000.0 + 2.5 * k + (k % 3) * 0.1))
            for k in range(1, n + 1)]
    specs = {1: spec}
    streamed, _ = apply_readings(initial_state(timedelta(days=40), timedelta(days=40)), specs,
                                 [(1, ts, v) for ts, v in rows])
    boundary = D0 + 3 * DAY  # rollups for the days before it, raw readings from it on
    seeded = seed_from_rollups(initial_state(timedelta(days=40), timedelta(days=40)), specs,
                               rollups([r for r in rows if r[0] < boundary]))
    seeded, ev = apply_readings(seeded, specs, [(1, ts, v) for ts, v in rows if ts >= boundary])
    assert ev == []
    for k in range(6):
        a = window_energy(streamed, specs, D0 + k * DAY, D0 + (k + 1) * DAY)
        b = window_energy(seeded, specs, D0 + k * DAY, D0 + (k + 1) * DAY)
        assert b.quantity_by_meter[1] == pytest.approx(a.quantity_by_meter[1], rel=1e-12, abs=1e-9), k
        assert b.coverage_s[1] == pytest.approx(a.coverage_s[1]), k
        assert b.readings[1] == a.readings[1], k
    whole = window_energy(seeded, specs, D0, D0 + 6 * DAY).quantity_by_meter[1]
    assert whole == pytest.approx(window_energy(streamed, specs, D0, D0 + 6 * DAY).quantity_by_meter[1])


def test_a_reading_already_in_the_day_totals_is_not_counted_again() -> None:
    rows = [(D0 + k * Q, 2.0) for k in range(1, 3 * 96 + 1)]
    specs = {1: IV}
    seeded = seed_from_rollups(initial_state(timedelta(days=40)), specs, rollups(rows[:200]))
    before = window_energy(seeded, specs, D0, D0 + 3 * DAY).quantity_by_meter[1]
    assert before == 400.0  # 200 readings × 2 kWh
    seeded, ev = apply_readings(seeded, specs, [(1, rows[150][0], 2.0), (1, rows[199][0], 2.0)])  # replays
    assert window_energy(seeded, specs, D0, D0 + 3 * DAY).quantity_by_meter[1] == 400.0
    assert [e.kind for e in ev] == ["out_of_order"]  # the boundary reading itself is a silent replay
