from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from analytics.emissions import EmissionFactor, EmissionFactorError, tco2
from analytics.site_energy import MeterSpec, apply_readings, initial_state, window_energy

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SPECS = {1: MeterSpec(1, 1, "electricity", "MWh", "consumed", "interval"),
         2: MeterSpec(2, 1, "heat", "GJ", "exported", "interval")}


def test_configured_factors_give_net_tco2() -> None:
    st, _ = apply_readings(initial_state(), SPECS, [(1, T0 + timedelta(minutes=15), 2.0), (2, T0 + timedelta(minutes=15), 1.0)])
    w = window_energy(st, SPECS, T0, T0 + timedelta(hours=1))
    # illustrative factors (not real ones): 2 MWh = 2 000 kWh × 0.0005 = 1.0 t; 1 GJ = 1 000 MJ × 0.0001 = 0.1 t
    f = {"electricity": EmissionFactor(0.0005, "test"), "heat": EmissionFactor(0.0001, "test")}
    assert tco2(w, SPECS, f) == pytest.approx(0.9)
    with pytest.raises(EmissionFactorError, match="heat"):
        tco2(w, SPECS, {"electricity": EmissionFactor(0.0005, "test")})
