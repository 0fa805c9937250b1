"""Meters with their own reading interval in a simulation (registry ``interval``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from simulators.generate import Publish, generate
from simulators.scenario import ScenarioError, data_centre_document, parse_scenario

ENT = "91640500MA76L8XK3A"
START = datetime(2025, 12, 31, 16, 0, tzinfo=UTC)  # 2026-01-01 00:00 Asia/Shanghai


def test_an_hourly_meter_in_a_15_minute_simulation_reports_its_hours() -> None:
    # 2 000 kW IT at PUE 1.25 for 24 h in 15-minute ticks; the facility meter is an hourly
    # interval meter: 24 readings of 2 000 × 1.25 × 1 h = 2 500 kWh each; the IT register keeps
    # reporting every 15 minutes (96 readings, last value 2 000 × 24 = 48 000 kWh)
    doc = data_centre_document(ENT, "dc-1", "gw-1", pue=1.25, it_kw=2000.0, start=START, hours=24)
    fac = doc["enterprises"][0]["sites"][0]["gateways"][0]["meters"][1]
    fac.update({"kind": "interval", "interval": "1h"})
    sc = parse_scenario(doc, now=START)
    readings = [r for _, evs in generate(sc) for e in evs if isinstance(e, Publish) for r in e.accepted]
    hourly = [r for r in readings if r.meter == "facility-main"]
    assert [r.ts for r in hourly] == [START + timedelta(hours=h) for h in range(1, 25)]
    assert {r.value for r in hourly} == {2500.0}
    it = [r for r in readings if r.meter == "it-main"]
    assert len(it) == 96 and it[-1].value == 48_000.0


def test_an_interval_that_is_not_a_multiple_of_the_ticks_is_refused() -> None:
    doc = data_centre_document(ENT, "dc-1", "gw-1", pue=1.25, it_kw=2000.0, start=START, hours=24)
    doc["enterprises"][0]["sites"][0]["gateways"][0]["meters"][1]["interval"] = "20m"
    with pytest.raises(ScenarioError, match="multiple of the simulation interval"):
        parse_scenario(doc, now=START)
