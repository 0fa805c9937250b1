"""Conversion of metered energy to standard coal (kgce), GB/T 2589 (综合能耗计算通则).

Owns the coefficient table and the unit scaling of meter units to the table's base units.
The table mirrors ``analytics/data/coefficients.csv`` (copied from shared/reference with its
source and confidence columns); a unit test keeps the two equal.

Rules that matter for the numbers:
* electricity defaults to the calorific value (当量值) 0.1229 kgce/kWh (GB/T 2589-2020, Annex A),
  the basis of comprehensive energy consumption (综合能耗). The equivalent value (等价值) is the
  year's thermal-power coal rate: never a default, always passed in per year;
* natural gas has two coefficients in use (gas-field 1.2143, oil-field 1.3300 kgce/m³): a gas
  meter must name one; there is no silent choice;
* heat 0.03412 kgce/MJ; steam is booked as heat (MJ/GJ) or, explicitly, by the per-pressure
  table, which is an industry convention and not GB/T 2589 (labelled so);
* an unknown carrier, coefficient or unit raises ``ConversionError``, never returns zero;
  ``conversion_problem`` says why a meter cannot be converted and lists the candidate
  coefficients, so the registry can refuse it at load with that message;
* how electricity is valued is a deployment choice passed in (``ElectricityValue``): 当量值
  (calorific value, the default of GB/T 2589-2020) or 等价值 (the year's thermal-power rate,
  configured, never defaulted). It applies to every electricity meter, whatever coefficient id
  the registry names for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Final, Literal, get_args

from nxem.errors import NxemError

#: 1 kgce = 29 307 kJ (GB/T 2589-2020, 3.x definition of 标准煤; 7000 kcal/kg).
KJ_PER_KGCE: Final = 29_307.0
#: Electricity at calorific value (当量值), GB/T 2589-2020 Annex A: 3600 kJ/kWh ÷ 29 307 kJ/kgce,
#: tabulated as 0.1229 kgce/kWh. Confidence: confirmed-from-source (secondary citing the standard).
ELECTRICITY_CALORIFIC_KGCE_PER_KWH: Final = 0.1229

GBT2589: Final = "GB/T 2589-2020 Annex A (2008 Table A.1 as reproduced)"
STEAM_TABLE: Final = "industry convention (per-pressure steam table, not GB/T 2589; cf. GB/T 50441)"


class ConversionError(NxemError):
    """A carrier, unit or coefficient that cannot be converted to kgce (never a silent zero)."""


@dataclass(frozen=True, slots=True)
class Coefficient:
    """kgce per ``base_unit`` of one energy carrier, with where the number comes from."""

    key: str  # coefficient id (shared/reference carrier_id)
    carrier: str  # the registry's carrier this coefficient applies to
    base_unit: str  # kg, m3, MJ, kWh, t (water)
    kgce_per_unit: float
    basis: str  # calorific (当量) / equivalent (等价) / industry convention
    source: str
    confidence: str


def _c(key: str, carrier: str, unit: str, kgce: float, confidence: str = "secondary-reproduction",
       source: str = GBT2589, basis: str = "calorific") -> Coefficient:
    return Coefficient(key, carrier, unit, kgce, basis, source, confidence)


_ROWS: Final = (
    # GB/T 2589-2020 Annex A (2008 Table A.1 as reproduced), kgce per kg
    _c("raw_coal", "raw_coal", "kg", 0.7143),  # 20 908 kJ/kg
    _c("washed_coal", "washed_coal", "kg", 0.9000),  # 26 344 kJ/kg
    _c("middlings", "middlings", "kg", 0.2857),  # 8 363 kJ/kg
    _c("coke", "coke", "kg", 0.9714),  # 28 435 kJ/kg
    _c("crude_oil", "crude_oil", "kg", 1.4286),  # 41 816 kJ/kg
    _c("fuel_oil", "fuel_oil", "kg", 1.4286),  # 41 816 kJ/kg
    _c("gasoline", "gasoline", "kg", 1.4714),  # 43 070 kJ/kg
    _c("kerosene", "kerosene", "kg", 1.4714),  # 43 070 kJ/kg
    _c("diesel", "diesel", "kg", 1.4571),  # 42 652 kJ/kg
    _c("coal_tar", "coal_tar", "kg", 1.1429),  # 33 453 kJ/kg
    _c("residual_oil", "residual_oil", "kg", 1.4286),  # 41 816 kJ/kg
    _c("lpg", "lpg", "kg", 1.7143),  # 50 179 kJ/kg
    _c("refinery_gas", "refinery_gas", "kg", 1.5714),  # 46 055 kJ/kg
    _c("crude_benzene", "crude_benzene", "kg", 1.4286),  # 41 816 kJ/kg
    # GB/T 2589-2020 Annex A, kgce per m³ (standard state)
    _c("natural_gas_oilfield", "natural_gas", "m3", 1.3300),  # 38 931 kJ/m³ 油田天然气
    _c("natural_gas_gasfield", "natural_gas", "m3", 1.2143),  # 35 544 kJ/m³ 气田天然气
    _c("blast_furnace_gas", "blast_furnace_gas", "m3", 0.1286),  # 3 763 kJ/m³
    _c("producer_gas", "producer_gas", "m3", 0.1786),  # 5 227 kJ/m³
    _c("water_gas", "water_gas", "m3", 0.3571),  # 10 454 kJ/m³
    # GB/T 2589-2020 Annex A: heat 0.03412 kgce/MJ (= 34.12 kgce/GJ), calorific
    _c("heat", "heat", "MJ", 0.03412),
    # GB/T 2589-2020 Annex A: electricity 当量值 3 600 kJ/kWh -> 0.1229 kgce/kWh
    _c("electricity_calorific", "electricity", "kWh", ELECTRICITY_CALORIFIC_KGCE_PER_KWH,
       "confirmed-from-source(secondary citing standard)"),
    # Steam by pressure, kgce per kg: an industry convention, NOT GB/T 2589 (prefer heat in MJ)
    _c("steam_10MPa", "steam", "kg", 0.131429, source=STEAM_TABLE, basis="industry convention"),
    _c("steam_3.5MPa", "steam", "kg", 0.125714, source=STEAM_TABLE, basis="industry convention"),
    _c("steam_1.0MPa", "steam", "kg", 0.108571, source=STEAM_TABLE, basis="industry convention"),
    _c("steam_0.3MPa", "steam", "kg", 0.094286, source=STEAM_TABLE, basis="industry convention"),
    _c("steam_lt0.3MPa", "steam", "kg", 0.078571, source=STEAM_TABLE, basis="industry convention"),
)

#: Coefficient id -> row. Read-only.
COEFFICIENTS: Final[Mapping[str, Coefficient]] = MappingProxyType({r.key: r for r in _ROWS})

#: Meter unit -> (base unit, factor to the base unit). Units are case-sensitive as registered.
UNIT_SCALE: Final[Mapping[str, tuple[str, float]]] = MappingProxyType({
    "kWh": ("kWh", 1.0), "MWh": ("kWh", 1_000.0), "GWh": ("kWh", 1_000_000.0),
    "MJ": ("MJ", 1.0), "GJ": ("MJ", 1_000.0), "kJ": ("MJ", 0.001),
    "kg": ("kg", 1.0), "t": ("kg", 1_000.0),
    "m3": ("m3", 1.0), "Nm3": ("m3", 1.0), "10^4 m3": ("m3", 10_000.0),
})

#: Default coefficient per carrier when a meter names none. Natural gas and steam by mass have
#: no default on purpose (two gas values are in use; the steam table is not GB/T 2589).
_DEFAULT: Final[Mapping[str, str]] = MappingProxyType(
    {r.carrier: r.key for r in _ROWS if r.carrier not in ("natural_gas", "steam")}
)


def scale_unit(unit: str) -> tuple[str, float]:
    """(base unit, factor) of a meter unit; ``ConversionError`` if unknown."""
    try:
        return UNIT_SCALE[unit]
    except KeyError:
        raise ConversionError(f"unknown unit {unit!r}; known: {', '.join(UNIT_SCALE)}") from None


ElectricityBasis = Literal["calorific_value", "equivalent_value"]
ELECTRICITY_BASES: Final[tuple[str, ...]] = get_args(ElectricityBasis)


@dataclass(frozen=True, slots=True)
class ElectricityValue:
    """How electricity is valued (a deployment setting, passed in): 当量值, the calorific value
    0.1229 kgce/kWh (GB/T 2589-2020, the default for 综合能耗), or 等价值, the coal burnt per
    kWh generated in the year (≈ 0.30 kgce/kWh, recalled-unverified: always configured)."""

    basis: ElectricityBasis = "calorific_value"
    equivalent_kgce_per_kwh: float | None = None

    def __post_init__(self) -> None:
        if self.basis not in ELECTRICITY_BASES:
            raise ConversionError(f"electricity basis {self.basis!r} is not one of {' | '.join(ELECTRICITY_BASES)}")
        rate = self.equivalent_kgce_per_kwh
        if self.basis == "equivalent_value" and (rate is None or not 0 < rate < 1):
            raise ConversionError("electricity at 等价值 (equivalent_value) needs the year's rate in kgce/kWh "
                                  f"(about 0.30, configured), got {rate!r}")

    @property
    def row(self) -> Coefficient:
        """The coefficient row electricity is converted with."""
        if self.basis == "calorific_value" or self.equivalent_kgce_per_kwh is None:
            return COEFFICIENTS["electricity_calorific"]
        return Coefficient("electricity_equivalent", "electricity", "kWh", self.equivalent_kgce_per_kwh,
                           "equivalent", "GB/T 2589-2020 等价值: the year's thermal-power standard-coal rate, configured",
                           "configured")

    @property
    def label(self) -> str:
        """What to show beside a figure that contains electricity."""
        name = "当量值 (calorific value)" if self.basis == "calorific_value" else "等价值 (equivalent value)"
        return f"electricity at {name} {self.row.kgce_per_unit:g} kgce/kWh"


#: The default: electricity at 当量值, 0.1229 kgce/kWh (GB/T 2589-2020).
CALORIFIC_VALUE: Final = ElectricityValue()


def resolve(carrier: str, unit: str, coefficient: str | None = None,
            electricity: ElectricityValue = CALORIFIC_VALUE) -> tuple[float, Coefficient]:
    """kgce per one ``unit`` of ``carrier``, and the coefficient row used.

    Steam metered as heat (MJ/GJ) uses the heat coefficient; steam by mass needs an explicit
    pressure row. Electricity is valued as ``electricity`` says (default 当量值). Raises
    ``ConversionError`` for any unknown or ambiguous combination.
    """
    base, factor = scale_unit(unit)
    key = coefficient
    if key is None:
        if carrier == "steam" and base == "MJ":
            key = "heat"
        elif carrier == "natural_gas":
            raise ConversionError(
                "natural gas needs an explicit coefficient: natural_gas_gasfield (1.2143 kgce/m3) "
                "or natural_gas_oilfield (1.3300 kgce/m3), GB/T 2589-2020 Annex A"
            )
        elif carrier == "steam":
            raise ConversionError("steam by mass needs an explicit pressure row (steam_1.0MPa, …) or meter it in MJ")
        elif carrier == "electricity_equivalent":
            raise ConversionError("electricity equivalent value is per year: use electricity_equivalent_kgce")
        else:
            key = _DEFAULT.get(carrier)
            if key is None:
                raise ConversionError(f"unknown energy carrier {carrier!r}")
    row = COEFFICIENTS.get(key)
    if row is None:
        raise ConversionError(f"unknown coefficient {key!r} for carrier {carrier!r}")
    if row.carrier != carrier and not (carrier == "steam" and row.key == "heat"):
        raise ConversionError(f"coefficient {key!r} is for {row.carrier!r}, not {carrier!r}")
    if row.base_unit != base:
        raise ConversionError(f"unit {unit!r} does not fit coefficient {key!r} (per {row.base_unit})")
    if row.carrier == "electricity" and electricity.basis == "equivalent_value":
        row = electricity.row
    # the tabulated decimal × the unit's decimal factor, rounded once: 0.9714 kgce/kg × 1 000 is
    # 971.4 kgce/t, not the float product 971.4000000000001
    return float(Decimal(repr(row.kgce_per_unit)) * Decimal(repr(factor))), row


def to_kgce(quantity: float, carrier: str, unit: str, coefficient: str | None = None,
            electricity: ElectricityValue | None = None) -> float:
    """``quantity`` (in ``unit``) of ``carrier`` as kgce, GB/T 2589 (see ``resolve``)."""
    per_unit, _ = resolve(carrier, unit, coefficient, electricity or CALORIFIC_VALUE)
    return quantity * per_unit


def candidates(carrier: str, unit: str) -> tuple[Coefficient, ...]:
    """The coefficient rows a meter of ``carrier`` in ``unit`` may name (steam in MJ/GJ: heat)."""
    try:
        base = scale_unit(unit)[0]
    except ConversionError:
        return tuple(r for r in _ROWS if r.carrier == carrier)
    return tuple(r for r in _ROWS if r.base_unit == base
                 and (r.carrier == carrier or (carrier == "steam" and r.key == "heat")))


def _listed(rows: tuple[Coefficient, ...]) -> str:
    return ", ".join(f"{r.key} ({r.kgce_per_unit:g} kgce/{r.base_unit})" for r in rows)


def conversion_problem(carrier: str, unit: str, coefficient: str | None = None) -> str | None:
    """Why a meter of ``carrier`` in ``unit`` naming ``coefficient`` cannot be converted to kgce,
    with the candidate coefficients; ``None`` when it converts unambiguously."""
    try:
        resolve(carrier, unit, coefficient)
    except ConversionError as err:
        found = candidates(carrier, unit)
        if found:
            return f"{err}; candidates: {_listed(found)}"
        carriers = sorted({r.carrier for r in _ROWS} | {"steam"})
        if carrier not in carriers:
            return f"{err}; known carriers: {', '.join(carriers)}"
        units = sorted({u for u, (b, _f) in UNIT_SCALE.items() if any(r.base_unit == b for r in candidates(carrier, u))})
        return f"{err}; {carrier} is metered in {', '.join(units)}"
    return None


def electricity_equivalent_kgce(kwh: float, year: int, kgce_per_kwh_by_year: Mapping[int, float]) -> float:
    """Electricity at the equivalent value (等价值) of ``year`` (GB/T 2589: that year's
    thermal-power standard-coal rate, ≈ 0.30 kgce/kWh; recalled-unverified, so always supplied
    by configuration). A year without a configured value raises ``ConversionError``."""
    rate = kgce_per_kwh_by_year.get(year)
    if rate is None or rate <= 0:
        raise ConversionError(f"no electricity equivalent value (等价值) configured for {year}")
    return kwh * rate
