"""The worker's per-site rule wiring over the real domain functions, without Kafka or a DB."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from nxem.contract import AlertEvent, Reading, ReadingBatch
from stream.registry import build_registry
from stream.sites import Registry, SiteEngine
from tests.stream_rows import ENT, T0, MeterRow, SiteRow, engine



def _registry(pue_limit: float = 1.2) -> Registry:
    return build_registry(
        {7: SiteRow(7, ENT, "data_centre", pue_limit=pue_limit)},
        {1: MeterRow(1, 7, "it_load"), 2: MeterRow(2, 7, "total_facility")},
    )


def _batches(pue: float, quarters: int, it_kw: float = 2000.0) -> list[ReadingBatch]:
    out = []
    for q in range(quarters + 1):
        ts = T0 + timedelta(minutes=15 * q)
        it = it_kw * 0.25 * q  # kWh register: 2000 kW × 0.25 h = 500 kWh per quarter
        out.append(ReadingBatch(enterprise_id=ENT, site_id=7, gateway_id="gw", seq=q, sent_at=ts, received_at=ts,
                                readings=[Reading(1, ts, it), Reading(2, ts, it * pue)]))
    return out


_engine = engine


def _pue_events(events: list[AlertEvent]) -> list[AlertEvent]:
    return [e for e in events if e.rule.startswith("pue")]


def test_pue_above_limit_opens_one_alert_and_repeats_do_not_reopen() -> None:
    engine = _engine(_registry())
    events: list[AlertEvent] = []
    for b in _batches(1.3, 16):  # 4 h of quarter-hours, one batch per poll
        events += engine.apply([b])
    pue = _pue_events(events)
    opened = [e for e in pue if e.kind == "opened"]
    assert len(opened) == 1
    # facility/IT over the 1-hour window = (500 × 1.3 × 4) / (500 × 4) = 2600 / 2000 = 1.3
    assert opened[0].value is not None and abs(opened[0].value - 1.3) < 1e-9
    assert opened[0].threshold == 1.2 and opened[0].source_id == 7 and opened[0].enterprise_id == ENT
    assert all(e.kind in ("opened", "updated") for e in pue)  # never cleared, never re-opened


def test_pue_below_limit_raises_nothing() -> None:
    engine = _engine(_registry())
    events = [e for b in _batches(1.1, 16) for e in engine.apply([b])]
    assert _pue_events(events) == []


def test_restart_with_an_active_alert_does_not_open_it_twice() -> None:
    first = _engine(_registry())
    batches = _batches(1.3, 16)
    events = [e for b in batches[:10] for e in first.apply([b])]
    opened = [e for e in _pue_events(events) if e.kind == "opened"]
    assert len(opened) == 1
    # A new worker rebuilds the site from what the database holds: readings so far + the open alert.
    stored = [(r.meter_id, r.ts, r.value) for b in batches[:10] for r in b.readings]
    second = _engine(_registry(), history=stored, active=opened)
    later = [e for b in batches[10:] for e in second.apply([b])]
    assert [e for e in _pue_events(later) if e.kind == "opened"] == []


def test_unknown_site_is_stored_but_not_evaluated() -> None:
    engine = _engine(_registry())
    b = _batches(1.3, 8)[0]
    orphan = ReadingBatch(enterprise_id=ENT, site_id=99, gateway_id="gw", seq=0, sent_at=b.sent_at,
                          received_at=b.sent_at, readings=list(b.readings))
    assert engine.apply([orphan]) == []


def test_spec_cache_keeps_specs_of_identical_row_objects() -> None:
    from stream.registry import SpecCache

    rows = {1: MeterRow(1, 7, "it_load"), 2: MeterRow(2, 7, "total_facility")}
    cache = SpecCache()
    first = cache.specs(rows)
    again = cache.specs({1: rows[1], 2: MeterRow(2, 7, "total_facility", multiplier=2.0)})
    assert again[1] is first[1]  # same row object: same spec
    assert again[2] is not first[2] and again[2].multiplier == 2.0


def _silent(events: list[AlertEvent]) -> list[tuple[str, int]]:
    return sorted((e.kind, e.source_id) for e in events if e.rule == "meter_silent")


def test_tick_flags_meters_silent_for_four_intervals_by_the_wall_clock() -> None:
    engine = _engine(_registry())
    for b in _batches(1.1, 4):  # readings at T0 .. T0 + 1 h
        engine.apply([b])
    last = T0 + timedelta(hours=1)
    # 3 quarter-hours after the last reading: 45 min / 15 min = 3 < 4 missed intervals
    assert _silent(engine.tick(last + timedelta(minutes=45))) == []
    # 4 quarter-hours: 60 min / 15 min = 4 ≥ 4 -> both meters silent, opened once
    assert _silent(engine.tick(last + timedelta(minutes=60))) == [("opened", 1), ("opened", 2)]
    assert _silent(engine.tick(last + timedelta(minutes=75))) == []  # 5 missed: no repeat
    # the gateway is back: its readings clear both (event time), and the next tick adds nothing
    ts = last + timedelta(minutes=90)
    back = engine.apply([ReadingBatch(enterprise_id=ENT, site_id=7, gateway_id="gw", seq=99, sent_at=ts,
                                      received_at=ts, readings=[Reading(1, ts, 1e6), Reading(2, ts, 1.2e6)])])
    assert _silent(back) == [("cleared", 1), ("cleared", 2)]
    assert _silent(engine.tick(ts + timedelta(minutes=1))) == []


def test_tick_loads_an_owned_site_that_sent_nothing_since_the_worker_started() -> None:
    # the database holds an hour of readings; the gateway died before this worker started
    stored = [(r.meter_id, r.ts, r.value) for b in _batches(1.1, 4) for r in b.readings]

    def hist(_site: int, _ids: Iterable[int], _since: datetime) -> list[tuple[int, datetime, float]]:
        return stored

    reg = _registry()
    now = T0 + timedelta(hours=3)  # 2 h after the last reading: 8 missed quarter-hours
    mine = SiteEngine(lambda: reg, hist, lambda _s: [], timedelta(days=35), owns=lambda site: site == 7)
    assert _silent(mine.tick(now)) == [("opened", 1), ("opened", 2)]
    other = SiteEngine(lambda: reg, hist, lambda _s: [], timedelta(days=35), owns=lambda site: False)
    assert other.tick(now) == []  # another worker's partition: not this worker's to flag


def test_a_silence_sweep_is_spread_over_calls_by_its_budget() -> None:
    reg = build_registry({s: SiteRow(s, ENT, "data_centre") for s in (7, 8, 9)},
                         {10 * s + k: MeterRow(10 * s + k, s, role) for s in (7, 8, 9)
                          for k, role in ((1, "it_load"), (2, "total_facility"))})
    engine = _engine(reg)
    engine.apply([ReadingBatch(enterprise_id=ENT, site_id=s, gateway_id="gw", seq=0, sent_at=T0, received_at=T0,
                               readings=[Reading(10 * s + 1, T0, 1.0), Reading(10 * s + 2, T0, 1.0)])
                  for s in (7, 8, 9)])
    later = T0 + timedelta(hours=2)  # 8 quarter-hours missed by all 6 meters
    # budget 3 = one site per call (2 meters + 1 for the site): three calls for three sites
    per_call = []
    while True:
        per_call.append(len(_silent(engine.tick(later, budget=3))))
        if not engine.sweeping:
            break
    assert per_call == [2, 2, 2]
    assert _silent(engine.tick(later + timedelta(minutes=1), budget=100)) == []  # a new sweep: nothing new


def test_the_fine_horizon_bounds_15_minute_detail_and_rules_still_fire() -> None:
    reg = _registry()
    engine = SiteEngine(lambda: reg, lambda *_: [], lambda _s: [], timedelta(days=35), fine_horizon=timedelta(days=1))
    events = [e for b in _batches(1.3, 16) for e in engine.apply([b])]
    assert [e.kind for e in _pue_events(events)][:1] == ["opened"]  # the 1-hour window is all fine detail
    state = engine._energy[7]
    assert state.fine_retention == timedelta(days=1) and state.retention == timedelta(days=35)


def _day_rollups(rows: list[tuple[int, datetime, float]], since: datetime, until: datetime) -> list[Any]:
    """The daily rollup of stored rows as the database defines it: per meter and local day
    [00:00, 24:00) Asia/Shanghai, count, sum, min, max, first and last reading."""
    from analytics.day_totals import DayRollup

    origin = datetime(1999, 12, 31, 16, 0, tzinfo=UTC)  # a local midnight
    groups: dict[tuple[int, datetime], list[tuple[datetime, float]]] = {}
    for mid, ts, v in sorted(rows, key=lambda r: (r[0], r[1])):
        day = origin + ((ts - origin) // timedelta(days=1)) * timedelta(days=1)
        if since <= day < until:
            groups.setdefault((mid, day), []).append((ts, v))
    return [DayRollup(mid, day, len(rs), sum(v for _, v in rs), min(v for _, v in rs), max(v for _, v in rs),
                      rs[0][0], rs[0][1], rs[-1][0], rs[-1][1]) for (mid, day), rs in sorted(groups.items())]


def test_a_restarted_worker_rebuilds_the_whole_year_from_daily_rollups() -> None:
    # 8 MW IT at PUE 1.25, daily register readings at local midnights through 2025: facility
    # 240 000 kWh a day = 29.496 tce a day (0.1229 kgce/kWh). The database holds the readings to
    # 1 October 00:00 (closing 30 September); a new worker (shipped horizons: 740 days of day
    # totals, 10 of detail) rebuilds the site when the 2 October 00:00 reading arrives and must
    # still see the whole calendar year on 31 December: 365 × 29.496 = 10 766.04 tce
    from stream.settings import WorkerSettings

    y2025 = datetime(2024, 12, 31, 16, 0, tzinfo=UTC)  # 2025-01-01 00:00 Asia/Shanghai
    reg = build_registry({7: SiteRow(7, ENT, "data_centre")},
                         {1: MeterRow(1, 7, "it_load", rollover=1e12), 2: MeterRow(2, 7, "total_facility", rollover=1e12)})

    def day(k: int) -> ReadingBatch:
        ts = y2025 + timedelta(days=k)
        it = 8000.0 * 24 * k
        return ReadingBatch(enterprise_id=ENT, site_id=7, gateway_id="gw", seq=k, sent_at=ts, received_at=ts,
                            readings=[Reading(1, ts, it), Reading(2, ts, it * 1.25)])

    stored = [(r.meter_id, r.ts, r.value) for k in range(0, 274) for r in day(k).readings]  # to 1 Oct 00:00
    asked: dict[str, tuple[datetime, ...]] = {}

    def hist(_site: int, _ids: Iterable[int], since: datetime) -> list[tuple[int, datetime, float]]:
        asked["raw"] = (since,)
        return [r for r in stored if r[1] >= since]

    def days(_site: int, _ids: Iterable[int], since: datetime, until: datetime) -> list[Any]:
        asked["days"] = (since, until)
        return _day_rollups(stored, since, until)

    s = WorkerSettings()
    worker = SiteEngine(lambda: reg, hist, lambda _s: [], timedelta(days=s.worker_state_horizon_days),
                        fine_horizon=timedelta(days=s.worker_fine_horizon_days), day_history=days)
    events = [e for k in range(274, 366) for e in worker.apply([day(k)]) if e.rule == "dc_annual_tce"]
    # rebuilt at the 2 October 00:00 reading: raw readings from 10 local days before its day
    # (22 September), day totals for the days before, back to the horizon
    split = y2025 + timedelta(days=274 - 10)
    assert asked["raw"] == (split,) and asked["days"] == (y2025 + timedelta(days=274) - timedelta(days=740), split)
    last = events[-1]
    assert last.details["as_of_local_date"] == "2025-12-31"
    assert (last.severity, last.value, last.details["designation_year"]) == ("major", 10_766.04, 2025)


def test_a_replay_of_readings_held_only_as_day_totals_adds_no_transition() -> None:
    # the database holds 60 daily readings of an 8 MW centre (January–February 2025) and its open
    # dc_annual_tce alert; a worker's wall-clock sweep a year later rebuilds the site from the
    # daily rollups alone (nothing in the 10-day fine horizon). The topic replayed from the start
    # then redelivers the stored readings: they were evaluated when stored, so no transition
    from stream.settings import WorkerSettings

    y2025 = datetime(2024, 12, 31, 16, 0, tzinfo=UTC)  # 2025-01-01 00:00 Asia/Shanghai
    reg = build_registry({7: SiteRow(7, ENT, "data_centre")},
                         {1: MeterRow(1, 7, "it_load", rollover=1e12), 2: MeterRow(2, 7, "total_facility", rollover=1e12)})

    def day(k: int) -> ReadingBatch:
        ts, it = y2025 + timedelta(days=k), 8000.0 * 24 * k
        return ReadingBatch(enterprise_id=ENT, site_id=7, gateway_id="gw", seq=k, sent_at=ts, received_at=ts,
                            readings=[Reading(1, ts, it), Reading(2, ts, it * 1.25)])

    first = _engine(reg)
    events = [e for k in range(61) for e in first.apply([day(k)])]
    active = [e for e in events if e.rule == "dc_annual_tce"][-1:]
    assert active and active[0].severity == "warning"  # the early warning, updated daily
    stored = [(r.meter_id, r.ts, r.value) for k in range(61) for r in day(k).readings]
    s = WorkerSettings()
    later = SiteEngine(lambda: reg, lambda _s, _i, since: [r for r in stored if r[1] >= since], lambda _s: active,
                       timedelta(days=s.worker_state_horizon_days), owns=lambda site: site == 7,
                       fine_horizon=timedelta(days=s.worker_fine_horizon_days),
                       day_history=lambda _s, _i, since, until: _day_rollups(stored, since, until))
    later.tick(y2025 + timedelta(days=365))  # rebuilt from 60 days of rollups, no raw reading
    replayed = [e for k in range(61) for e in later.apply([day(k)]) if e.rule != "meter_silent"]
    assert replayed == []
