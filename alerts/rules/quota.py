"""Plant quota: unit-product comprehensive energy consumption vs the product's quota levels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from nxem.contract import Severity

RULE = "quota_exceeded"
Period = Literal["day", "month", "year"]
Indicator = Literal["kgce/t", "kWh/t"]


@dataclass(frozen=True)
class QuotaRule:
    product: str  # product key as on the product_output meter
    standard: str  # e.g. "GB 21343-2023"
    indicator: str  # e.g. "单位产品综合能耗"
    unit: Indicator
    level1: float  # 1级 advanced (reference)
    level2: float  # 2级 entry value for new or expanded plants
    level3: float  # 3级 limit for existing plants
    new_build: bool = False
    min_output_t: float = 1.0  # below this output in a period the ratio is not judged
    periods: tuple[Period, ...] = ("day", "month", "year")
    confidence: str = "secondary-transcription"
    severity: Severity = "major"

    @property
    def threshold(self) -> float:
        """2级 for a new-build plant, else 3级 (the limit for existing plants)."""
        return self.level2 if self.new_build else self.level3
