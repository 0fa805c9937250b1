"""Reference numbers the simulators use to set up plants and to state expected alerts.

Copied from ``shared/reference/`` with their standard, edition and confidence (do not import
``analytics`` for these: the ground truth must not agree with a wrong formula by sharing it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

QuotaLevel = Literal["advanced", "compliant", "marginal", "violating"]
QUOTA_LEVELS: Final[tuple[QuotaLevel, ...]] = ("advanced", "compliant", "marginal", "violating")

#: Electricity at calorific value (当量值), GB/T 2589-2020 Annex A, kgce per kWh (confirmed).
ELECTRICITY_KGCE_PER_KWH: Final = 0.1229
#: 重点用能单位 threshold, tce per year (节约能源法 art. 52; recalled-unverified).
KEY_UNIT_TCE_PER_YEAR: Final = 10_000.0

#: kgce per unit of the meter's unit, by coefficient id (GB/T 2589 Table A.1 as reproduced,
#: 2008 table; secondary-reproduction). Per-kg/MJ values are scaled to the meter units used by
#: the simulated plants: coal and coke in t, gas in m3, heat in GJ.
COEFFICIENTS: Final[dict[str, tuple[str, float]]] = {
    "electricity_calorific": ("kWh", 0.1229),
    "raw_coal": ("t", 714.3),  # 0.7143 kgce/kg
    "coke": ("t", 971.4),  # 0.9714 kgce/kg
    "natural_gas_gasfield": ("m3", 1.2143),  # gas-field gas; the oil-field value is 1.3300
    "heat": ("GJ", 34.12),  # 0.03412 kgce/MJ
}

#: Carrier of each coefficient id (the registry's ``carrier`` field).
CARRIER_OF: Final[dict[str, str]] = {
    "electricity_calorific": "electricity",
    "raw_coal": "raw_coal",
    "coke": "coke",
    "natural_gas_gasfield": "natural_gas",
    "heat": "heat",
}


@dataclass(frozen=True, slots=True)
class Quota:
    """Unit-product comprehensive energy consumption quota, kgce per tonne of product."""

    product: str
    name_cn: str
    standard: str
    level1_kgce_per_t: float  # 1级 advanced
    level2_kgce_per_t: float  # 2级 entry value for new or expanded plants
    level3_kgce_per_t: float  # 3级 limit for existing plants
    confidence: str
    #: default split of the consumed energy (kgce) over coefficient ids; sums to 1
    carrier_shares: tuple[tuple[str, float], ...]
    #: exported energy per tonne (kgce/t) and its coefficient id, e.g. waste-heat steam
    export_kgce_per_t: float = 0.0
    export_coefficient: str = "heat"


#: From shared/reference/quotas.csv (source: transcriptions of the standards' tables,
#: confidence as given there). Carrier shares are simulation assumptions, not standards.
QUOTAS: Final[dict[str, Quota]] = {
    q.product: q
    for q in (
        Quota("calcium_carbide", "电石", "GB 21343-2023 表1", 805, 823, 940, "secondary-transcription",
              (("electricity_calorific", 0.80), ("coke", 0.20))),
        Quota("methanol", "烟煤制甲醇", "GB 29436-2023 表1", 1380, 1400, 1800, "secondary-transcription",
              (("raw_coal", 0.90), ("electricity_calorific", 0.10)), export_kgce_per_t=60.0),
        Quota("coke", "焦炭(顶装焦炉)", "GB 21342-2025 表1", 110, 110, 135, "secondary-transcription",
              (("natural_gas_gasfield", 0.50), ("electricity_calorific", 0.30), ("heat", 0.20))),
        Quota("ferrosilicon", "硅铁", "GB 21341-2022 表1", 1700, 1770, 1850, "secondary-transcription",
              (("electricity_calorific", 0.93), ("coke", 0.07))),
        Quota("aluminium", "电解铝(铝锭)综合能耗", "GB 21346-2022 表1", 1670, 1680, 1720, "secondary-transcription",
              (("electricity_calorific", 0.98), ("natural_gas_gasfield", 0.02))),
        Quota("cement_clinker", "水泥熟料", "GB 16780-2021 表2", 100, 107, 117, "secondary-transcription",
              (("raw_coal", 0.85), ("electricity_calorific", 0.15))),
    )
}

#: The registry ``industry`` of a plant making each product.
INDUSTRY_OF: Final[dict[str, str]] = {
    "calcium_carbide": "calcium_carbide",
    "methanol": "methanol",
    "coke": "coke",
    "ferrosilicon": "ferroalloy",
    "aluminium": "aluminium",
    "cement_clinker": "cement",
}


def specific_for_level(quota: Quota, level: QuotaLevel) -> float:
    """The specific consumption (kgce/t) a plant at ``level`` runs at.

    advanced: 3 % better than 1级; compliant: midway 1级-2级; marginal: midway 2级-3级 (passes
    for an existing plant, fails for a new build); violating: 5 % above 3级.
    """
    l1, l2, l3 = quota.level1_kgce_per_t, quota.level2_kgce_per_t, quota.level3_kgce_per_t
    if level == "advanced":
        return round(l1 * 0.97, 3)
    if level == "compliant":
        return round((l1 + l2) / 2, 3)
    if level == "marginal":
        return round((l2 + l3) / 2, 3)
    return round(l3 * 1.05, 3)
