"""tCO₂ beside tce: emissions from metered quantities with configured emission factors.

No factor is built in: the reference tables hold none that are verified (grid factors change
by year and region, fuel factors by the accounting guideline used). Each factor is given per
coefficient id or carrier, in tCO₂ per unit of the meter's base unit (kWh, m3, MJ, kg), with
its source; a metered carrier without a factor raises ``EmissionFactorError``, never counts 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

from analytics.coefficients import scale_unit
from analytics.site_energy import MeterSpec, WindowEnergy
from nxem.errors import NxemError


class EmissionFactorError(NxemError):
    """A metered carrier has no configured emission factor."""


@dataclass(frozen=True)
class EmissionFactor:
    tco2_per_unit: float  # per base unit (kWh, m3, MJ, kg)
    source: str  # guideline and year, e.g. the published grid factor of the year used


F = TypeVar("F")


def factor_for(factors: Mapping[str, F], spec: MeterSpec) -> F | None:
    """The meter's factor: the one of its coefficient id, else the one of its carrier."""
    return factors.get(spec.coefficient or "") or factors.get(spec.carrier)


def tco2(window: WindowEnergy, specs: Mapping[int, MeterSpec], factors: Mapping[str, EmissionFactor]) -> float:
    """Net tCO₂ of the window: consumed (incl. total_facility) − exported, per meter factor
    looked up by the meter's coefficient id, then its carrier."""
    total = 0.0
    for meter_id, spec in specs.items():
        if spec.role in ("it_load", "product_output"):
            continue
        f = factor_for(factors, spec)
        if f is None:
            raise EmissionFactorError(f"no emission factor for meter {meter_id} ({spec.coefficient or spec.carrier})")
        base_qty = window.quantity_by_meter.get(meter_id, 0.0) * scale_unit(spec.unit)[1]
        total += (-1.0 if spec.role == "exported" else 1.0) * base_qty * f.tco2_per_unit
    return total
