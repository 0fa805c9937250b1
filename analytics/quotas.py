"""Unit-product energy-consumption quotas (能耗限额) and the unit-product arithmetic.

Values mirror ``analytics/data/quotas.csv`` (copied from shared/reference with source and
confidence; a unit test keeps them equal). In the current standards 3级 is the limit for
existing plants, 2级 the entry value for new or expanded plants, 1级 the advanced value.
All rows are ``secondary-transcription`` (a transcription of the standards' tables whose own
repository flags them for independent review): keep them configurable per site.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

IndicatorUnit = Literal["kgce/t", "kWh/t"]


@dataclass(frozen=True, slots=True)
class Quota:
    product: str  # product key used on product_output meters
    product_cn: str
    standard: str  # number and edition
    table: str
    indicator_cn: str
    unit: IndicatorUnit
    level1: float  # 1级 advanced
    level2: float  # 2级 new build
    level3: float  # 3级 limit (existing plants)
    confidence: str = "secondary-transcription"


_T: Final = (
    # GB 21343-2023 电石, 表1 (kgce/t; kWh/t)
    Quota("calcium_carbide", "电石", "GB 21343-2023", "表1", "单位产品综合能耗", "kgce/t", 805, 823, 940),
    Quota("calcium_carbide", "电石", "GB 21343-2023", "表1", "单位产品电炉电耗", "kWh/t", 3000, 3080, 3200),
    # GB 29436-2023 烟煤制甲醇, 表1 (continuous pressurised gasification of bituminous coal)
    Quota("methanol", "烟煤制甲醇", "GB 29436-2023", "表1", "单位产品综合能耗", "kgce/t", 1380, 1400, 1800),
    # GB 21342-2025 焦炭 顶装焦炉 (top-charging), base values before corrections, 表1/表2
    Quota("coke", "焦炭(顶装焦炉)", "GB 21342-2025", "表1/表2", "焦炭单位产品能耗", "kgce/t", 110, 110, 135),
    Quota("coke_stamp_charged", "焦炭(捣固焦炉)", "GB 21342-2025", "表1/表2", "焦炭单位产品能耗", "kgce/t", 115, 115, 140),
    # GB 21341-2022 硅铁, 表1
    Quota("ferrosilicon", "硅铁", "GB 21341-2022", "表1", "单位产品综合能耗", "kgce/t", 1700, 1770, 1850),
    Quota("ferrosilicon", "硅铁", "GB 21341-2022", "表1", "单位产品冶炼电耗", "kWh/t", 8050, 8300, 8400),
    # GB 21346-2022 电解铝 铝锭, 表1: 综合交流电耗 in its own unit kWh/t, and 综合能耗 kgce/t
    Quota("aluminium", "电解铝(铝锭)", "GB 21346-2022", "表1", "铝锭综合交流电耗", "kWh/t", 13300, 13400, 13750),
    Quota("aluminium", "电解铝(铝锭)", "GB 21346-2022", "表1", "铝锭综合能耗", "kgce/t", 1670, 1680, 1720),
    # GB 16780-2021 水泥熟料, 表2
    Quota("cement_clinker", "水泥熟料", "GB 16780-2021", "表2", "熟料单位产品综合能耗", "kgce/t", 100, 107, 117),
    Quota("cement_clinker", "水泥熟料", "GB 16780-2021", "表2", "熟料单位产品综合电耗", "kWh/t", 48, 57, 61),
)

#: product key -> its quota indicators
QUOTAS: Final[Mapping[str, tuple[Quota, ...]]] = MappingProxyType(
    {p: tuple(q for q in _T if q.product == p) for p in dict.fromkeys(q.product for q in _T)}
)


def unit_consumption(numerator: float, output_t: float, min_output_t: float = 0.0) -> float | None:
    """kgce/t (or kWh/t) = energy of the product ÷ its qualified output in the same period;
    ``None`` when the output is below ``min_output_t`` or not positive (no value, not infinity)."""
    if output_t <= 0.0 or output_t < min_output_t:
        return None
    return numerator / output_t


def level_of(value: float, q: Quota) -> str:
    """Which quota level a value meets: "1级", "2级", "3级" or "超过3级(不达标)"."""
    for name, limit in (("1级", q.level1), ("2级", q.level2), ("3级", q.level3)):
        if value <= limit:
            return name
    return "超过3级(不达标)"
