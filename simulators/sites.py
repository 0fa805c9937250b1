"""What a simulated site consumes and produces in one interval (pure, deterministic).

A site model turns its ``sim:`` parameters and an interval into *source quantities*, keyed:

* ``it`` / ``facility`` — data-centre IT and total facility electricity, kWh
* ``product`` — plant output, t
* ``consumed:<coefficient id>`` / ``exported:<coefficient id>`` — plant energy carriers in the
  unit of that coefficient (kWh, t, m3, GJ; see ``reference.COEFFICIENTS``)

Meters then read a share of one source (``scenario.Meter.source``). Rates are evaluated at
the middle of the interval; with no daily swing and no growth they are exactly constant, so a
2 MW IT load over one hour is exactly 2000 kWh.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Final

from simulators.reference import COEFFICIENTS, QUOTAS, QuotaLevel, specific_for_level

#: Ningxia local time (Asia/Shanghai has had no DST since 1991, so a fixed offset is exact).
CST: Final = timezone(timedelta(hours=8))

#: Approximate climate normals (°C): annual mean, half the Jan-Jul range, half the daily range.
#: Rounded from the China Meteorological Administration 1991-2020 normals as commonly quoted
#: (recalled-unverified; good enough to drive free-cooling seasons, not a climate record).
CLIMATE: Final[dict[str, tuple[float, float, float]]] = {
    "银川": (9.5, 15.5, 6.0),
    "石嘴山": (9.7, 15.8, 6.0),
    "吴忠": (9.8, 15.2, 6.5),
    "固原": (7.0, 13.0, 6.5),
    "中卫": (9.3, 14.8, 7.0),
    "宁东": (9.2, 15.5, 6.5),
}


def outdoor_temperature_c(city: str, t: datetime) -> float:
    """Outdoor dry-bulb temperature model: coldest mid-January, warmest mid-July, 15:00 peak."""
    mean, seasonal, daily = CLIMATE[city]
    local = t.astimezone(CST)
    doy = local.timetuple().tm_yday + (local.hour + local.minute / 60) / 24
    hour = local.hour + local.minute / 60 + local.second / 3600
    return (mean - seasonal * math.cos(2 * math.pi * (doy - 15) / 365.25)
            + daily * math.cos(2 * math.pi * (hour - 15) / 24))


def _cycle(t: datetime, swing: float) -> float:
    """Daily load factor around 1: peak at 15:00 local, trough at 03:00."""
    if swing == 0:
        return 1.0
    local = t.astimezone(CST)
    hour = local.hour + local.minute / 60 + local.second / 3600
    return 1.0 + swing * math.cos(2 * math.pi * (hour - 15) / 24)


@dataclass(frozen=True, slots=True)
class DataCentreSim:
    """A data centre: IT load × PUE. ``pue`` fixed, or following outdoor temperature."""

    it_capacity_mw: float
    utilisation: float = 0.6  # mean share of IT capacity in use
    daily_swing: float = 0.0  # ± share of the mean over the day
    growth_per_year: float = 0.0  # relative growth of utilisation per year since start
    pue: float | None = None  # fixed PUE (tests), else the temperature model below
    pue_min: float = 1.12  # full free cooling (winter)
    pue_max: float = 1.40  # full mechanical cooling (summer afternoons)
    free_cooling_below_c: float = 5.0
    mechanical_above_c: float = 28.0

    def it_kw(self, t: datetime, start: datetime) -> float:
        years = (t - start).total_seconds() / (365.25 * 86400)
        u = self.utilisation * _cycle(t, self.daily_swing) * (1.0 + self.growth_per_year * years)
        return self.it_capacity_mw * 1000.0 * min(1.0, max(0.0, u))

    def pue_at(self, city: str, t: datetime) -> float:
        if self.pue is not None:
            return self.pue
        temp = outdoor_temperature_c(city, t)
        span = self.mechanical_above_c - self.free_cooling_below_c
        frac = min(1.0, max(0.0, (temp - self.free_cooling_below_c) / span))
        return self.pue_min + (self.pue_max - self.pue_min) * frac

    def quantities(self, city: str, mid: datetime, hours: float, start: datetime) -> dict[str, float]:
        it_kwh = self.it_kw(mid, start) * hours
        return {"it": it_kwh, "facility": it_kwh * self.pue_at(city, mid)}


@dataclass(frozen=True, slots=True)
class PlantSim:
    """A plant making one product at a specific consumption set against its quota."""

    product: str
    output_t_per_h: float
    level: QuotaLevel | None = "compliant"
    specific_kgce_per_t: float | None = None  # overrides ``level`` when given
    carrier_shares: tuple[tuple[str, float], ...] | None = None  # default: the product's
    export_kgce_per_t: float | None = None  # default: the product's
    daily_swing: float = 0.0

    @property
    def specific(self) -> float:
        """Net unit-product comprehensive energy consumption, kgce per tonne."""
        if self.specific_kgce_per_t is not None:
            return self.specific_kgce_per_t
        return specific_for_level(QUOTAS[self.product], self.level or "compliant")

    @property
    def shares(self) -> tuple[tuple[str, float], ...]:
        return self.carrier_shares if self.carrier_shares is not None else QUOTAS[self.product].carrier_shares

    @property
    def export(self) -> tuple[str, float]:
        q = QUOTAS[self.product]
        per_t = self.export_kgce_per_t if self.export_kgce_per_t is not None else q.export_kgce_per_t
        return q.export_coefficient, per_t

    def quantities(self, mid: datetime, hours: float) -> dict[str, float]:
        output_t = self.output_t_per_h * _cycle(mid, self.daily_swing) * hours
        export_coef, export_per_t = self.export
        # Gross consumption covers the net figure plus what is exported out of the boundary.
        gross_kgce = output_t * (self.specific + export_per_t)
        out: dict[str, float] = {"product": output_t}
        for coef, share in self.shares:
            out[f"consumed:{coef}"] = gross_kgce * share / COEFFICIENTS[coef][1]
        out[f"exported:{export_coef}"] = output_t * export_per_t / COEFFICIENTS[export_coef][1]
        return out
