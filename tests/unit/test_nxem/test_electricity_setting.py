"""NXEM_ELECTRICITY_BASIS selects analytics' electricity valuation; 等价值 needs its rate."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from analytics.coefficients import ElectricityValue, to_kgce
from nxem.settings import EndpointSettings


def test_default_is_the_calorific_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NXEM_ELECTRICITY_BASIS", raising=False)
    s = EndpointSettings()
    value = ElectricityValue(s.electricity_basis, s.electricity_equivalent_kgce_per_kwh)
    # 1 000 kWh × 0.1229 kgce/kWh (当量值, GB/T 2589-2020) = 122.9 kgce
    assert to_kgce(1000.0, "electricity", "kWh", None, value) == pytest.approx(122.9)


def test_equivalent_value_needs_its_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NXEM_ELECTRICITY_BASIS", "equivalent_value")
    with pytest.raises(ValidationError, match="NXEM_ELECTRICITY_EQUIVALENT_KGCE_PER_KWH"):
        EndpointSettings()
    monkeypatch.setenv("NXEM_ELECTRICITY_EQUIVALENT_KGCE_PER_KWH", "0.3007")
    s = EndpointSettings()
    value = ElectricityValue(s.electricity_basis, s.electricity_equivalent_kgce_per_kwh)
    # 1 000 kWh × 0.3007 kgce/kWh (等价值, configured) = 300.7 kgce
    assert to_kgce(1000.0, "electricity", "kWh", None, value) == pytest.approx(300.7)
    monkeypatch.setenv("NXEM_ELECTRICITY_BASIS", "guess")
    with pytest.raises(ValidationError, match="electricity_basis"):
        EndpointSettings()
