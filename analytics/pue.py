"""Power usage effectiveness (PUE) and its GB 40879-2021 grade.

PUE = total facility energy ÷ IT equipment energy over the same period (GB 40879-2021 calls
the annual metered form 电能比 RM2 = E / E_IT). A window without IT energy has no PUE (``None``),
never infinity. Hourly/daily PUE is indicative only: the standard's value is a full year.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

PUE_FORMULA: Final = "PUE = total facility energy (kWh) / IT equipment energy (kWh)"
GB40879: Final = "GB 40879-2021 数据中心能效限定值及能效等级 (电能比 RM ≈ PUE)"
#: GB 40879-2021 grade limits on RM (≈ PUE): 1级 ≤ 1.20, 2级 ≤ 1.30 (both recalled-unverified:
#: not located in a page quoting Table 1), 3级 (the limit value) ≤ 1.50 (secondary-reproduction).
GRADE_LIMITS: Final = (("1级", 1.20), ("2级", 1.30), ("3级", 1.50))
GRADE_CONFIDENCE: Final = "recalled-unverified (1级/2级), secondary-reproduction (3级)"
#: Ningxia plan target for new large data centres (as given in the brief); per-site configurable.
NINGXIA_PUE_LIMIT: Final = 1.2


def pue(facility_kwh: float, it_kwh: float) -> float | None:
    """facility ÷ IT, or ``None`` when there is no (positive) IT energy."""
    if it_kwh <= 0.0 or facility_kwh < 0.0:
        return None
    return facility_kwh / it_kwh


def merged_pue(windows: Iterable[tuple[float, float]]) -> float | None:
    """PUE of several (facility_kwh, it_kwh) windows taken together: Σ facility ÷ Σ IT, which
    is the IT-energy-weighted mean of the windows' PUEs (not their plain mean)."""
    fac = it = 0.0
    for f, i in windows:
        fac += f
        it += i
    return pue(fac, it)


def grade(value: float | None) -> str | None:
    """GB 40879-2021 grade of a PUE: "1级"/"2级"/"3级", "超过3级(不达标)" above the limit value,
    ``None`` without a value. Labelled recalled-unverified (see ``GRADE_LIMITS``)."""
    if value is None:
        return None
    for name, limit in GRADE_LIMITS:
        if value <= limit:
            return name
    return "超过3级(不达标)"
