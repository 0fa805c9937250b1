"""stream/registry.py: what the registry rows make of each site's rules and each meter's spec --
the reading interval, and a data centre's PUE limit from its new-build flag and size."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from alerts import engine
from analytics.site_energy import apply_readings, initial_state
from nxem.contract import AlertEvent
from stream.registry import build_registry, site_rules
from tests.stream_rows import MeterRow, SiteRow

ENT = "91640500MA76L8XK3A"
T0 = datetime(2025, 12, 31, 16, 0, tzinfo=UTC)  # 2026-01-01 00:00 Asia/Shanghai


def _dc(pue_limit: float | None = None, **kw: Any) -> SiteRow:
    """A data centre's row: no stored limit unless given (the registry derives it), a 1-week window."""
    return SiteRow(1, ENT, "data_centre", pue_limit=pue_limit, pue_window_hours=168, **kw)


@pytest.mark.parametrize(("row", "limit", "source"), [
    (_dc(new_build=True, standard_racks=3_000), 1.2, "Ningxia plan"),
    (_dc(new_build=True, it_capacity_kw=30_000.0), 1.2, "Ningxia plan"),  # 12 000 racks
    (_dc(new_build=True, standard_racks=2_999), 1.5, "GB 40879-2021"),
    (_dc(standard_racks=12_000), 1.5, "GB 40879-2021"),  # not new-built
    (_dc(pue_limit=1.25), 1.25, "site's own limit"),
    # stored at registry load with its source: taken as it is
    (_dc(pue_limit=1.2, pue_limit_source="Ningxia plan: …"), 1.2, "Ningxia plan"),
])
def test_a_data_centre_gets_the_operational_and_the_annual_pue_rule_at_its_limit(
        row: SiteRow, limit: float, source: str) -> None:
    rules = site_rules(row)
    assert rules.pue is not None and rules.pue_annual is not None
    assert (rules.pue.limit, rules.pue_annual.limit) == (limit, limit)
    assert rules.pue.limit_source.startswith(source) and rules.pue_annual.limit_source.startswith(source)
    assert (rules.pue.severity, rules.pue_annual.severity) == ("warning", "major")
    assert rules.pue.window == timedelta(hours=168) and rules.pue_annual.period == timedelta(days=365)


def _carbide(interval_s: int, days: int = 3) -> list[AlertEvent]:
    """100 t/day of calcium carbide at 960 kgce/t, metered hourly: electricity 96 000 kgce a day
    / 0.1229 kgce/kWh = 781 122.86 kWh a day, 32 546.79 kWh and 100 / 24 = 4.1667 t an hour."""
    site = SiteRow(6, ENT, "plant", products=({"product": "calcium_carbide", "indicator": "kgce_per_t"},))
    meters = {10: MeterRow(10, 6, "consumed", kind="interval", rollover=None, interval_s=interval_s, code="furnace"),
              11: MeterRow(11, 6, "product_output", carrier="product", unit="t", kind="interval", rollover=None,
                           coefficient=None, product="calcium_carbide", interval_s=interval_s, code="output")}
    reg = build_registry({6: site}, meters)
    specs = reg.meters_by_site[6]
    energy, state = initial_state(timedelta(days=740), timedelta(days=10)), engine.initial_state()
    kwh_h, t_h = 960 * 100 / 0.1229 / 24, 100 / 24
    out: list[AlertEvent] = []
    for h in range(1, 24 * days + 2):
        ts = T0 + timedelta(hours=h)
        energy, _ = apply_readings(energy, specs, [(10, ts, kwh_h), (11, ts, t_h)])
        state, ev = engine.evaluate_site(reg.sites[6], state, energy, specs, ts)
        out += ev
    return out


def test_an_hourly_metered_carbide_plant_over_its_quota_is_judged_and_complete() -> None:
    ev = _carbide(3600)
    quota = [e for e in ev if e.rule.startswith("quota_exceeded.calcium_carbide.kgce_per_t") and e.kind == "opened"]
    # 96 000 kgce / 100 t = 960 kgce/t > 940 (GB 21343-2023 表1 电石 3级, shared/reference/quotas.csv)
    assert quota and all(e.value == pytest.approx(960.0) and e.threshold == 940 for e in quota)
    # 24 readings a day of 24 expected (86 400 s / 3 600 s): 100 %, no completeness alert
    assert not [e for e in ev if e.rule == "completeness_low"]
    assert not [e for e in ev if e.rule == "meter_silent"]


def test_the_same_plant_registered_at_15_minutes_is_what_went_wrong() -> None:
    # each hourly value then covers 15 minutes of its hour: 24 of 96 expected readings a day
    # (25 %), a completeness alert per meter, and a window covered 25 % is not judged
    ev = _carbide(900)
    assert {e.source_id for e in ev if e.rule == "completeness_low" and e.kind == "opened"} == {10, 11}
    assert [e.value for e in ev if e.rule == "completeness_low"][:1] == [0.25]
    assert not [e for e in ev if e.rule.startswith("quota_exceeded")]
