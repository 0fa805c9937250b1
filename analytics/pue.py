"""Power usage effectiveness (PUE) and its GB 40879-2021 grade.

PUE = total facility energy ÷ IT equipment energy over the same period (GB 40879-2021 calls
the annual metered form 电能比 RM2 = E / E_IT). A window without IT energy has no PUE (``None``),
never infinity. Hourly/daily PUE is indicative only: the standard's value is a full year.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Final, Literal

PUE_FORMULA: Final = "PUE = total facility energy (kWh) / IT equipment energy (kWh)"
GB40879: Final = "GB 40879-2021 数据中心能效限定值及能效等级 (电能比 RM ≈ PUE)"
#: GB 40879-2021 grade limits on RM (≈ PUE): 1级 ≤ 1.20, 2级 ≤ 1.30 (both recalled-unverified:
#: not located in a page quoting Table 1), 3级 (the limit value) ≤ 1.50 (secondary-reproduction).
GRADE_LIMITS: Final = (("1级", 1.20), ("2级", 1.30), ("3级", 1.50))
GRADE_CONFIDENCE: Final = "recalled-unverified (1级/2级), secondary-reproduction (3级)"
#: Ningxia plan target for new large and very large data centres (as given in the brief;
#: shared/reference/datacenter_grades.csv "Ningxia draft carbon-peak plan (2022)"); per-site
#: configurable.
NINGXIA_PUE_LIMIT: Final = 1.2
NINGXIA_SOURCE: Final = ("Ningxia plan: new large and very large data centres PUE ≤ 1.2 (draft carbon-peak plan 2022,"
                         " as given in the brief)")
#: GB 40879-2021 3级 = 能效限定值 (the limit value every centre in its scope must meet): RM ≤ 1.50
#: (secondary-reproduction; scope: new and renovated/expanded centres, not edge ones ≤ 100 racks).
GB40879_LIMIT_VALUE: Final = 1.50
GB40879_LIMIT_SOURCE: Final = "GB 40879-2021 3级 能效限定值 RM ≤ 1.50 (secondary-reproduction)"
#: The annual PUE is compared with a limit at the precision the limits are written in (0.01:
#: 1.20, 1.30, 1.50): 1.204 is on the 1.20 limit (compliant), 1.205 above it.
LIMIT_DECIMALS: Final = 2

SizeClass = Literal["very_large", "large", "small_medium"]
#: One standard rack (标准机架) = 2.5 kW: the unit the size classes are counted in (工信部等
#: 《关于数据中心建设布局的指导意见》, 工信部联通〔2013〕13号; recalled-unverified, not in shared/reference).
STANDARD_RACK_KW: Final = 2.5
#: Size classes by standard racks, same guideline: 超大型 ≥ 10 000, 大型 3 000 – 10 000, 中小型 < 3 000
#: (secondary-reproduction: a reproduction of the guideline's table on ruankaoba.com; not in
#: shared/reference).
SIZE_CLASSES: Final[tuple[tuple[SizeClass, int], ...]] = (("very_large", 10_000), ("large", 3_000), ("small_medium", 0))
SIZE_SOURCE: Final = ("data-centre size by standard racks of 2.5 kW: 超大型 ≥ 10 000, 大型 3 000–10 000, 中小型 < 3 000"
                      " (工信部联通〔2013〕13号 《关于数据中心建设布局的指导意见》; secondary-reproduction)")


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


def size_class(standard_racks: int | None, it_capacity_kw: float | None) -> SizeClass | None:
    """超大型/大型/中小型 of a data centre by its standard racks, or by its IT capacity at 2.5 kW
    a rack when the racks are not given; ``None`` when neither is known (see ``SIZE_CLASSES``)."""
    racks = standard_racks if standard_racks is not None else (
        it_capacity_kw / STANDARD_RACK_KW if it_capacity_kw is not None else None)
    if racks is None:
        return None
    return next(name for name, least in SIZE_CLASSES if racks >= least)


def site_limit(explicit: float | None, new_build: bool, size: SizeClass | None) -> tuple[float, str]:
    """(PUE limit, where it comes from) of a data centre: its own ``explicit`` limit when the
    registry gives one; 1.2 (Ningxia plan) for a new large or very large centre; otherwise the
    GB 40879-2021 limit value 1.50."""
    if explicit is not None:
        return explicit, "site's own limit (registry pue_limit)"
    if new_build and size in ("large", "very_large"):
        return NINGXIA_PUE_LIMIT, f"{NINGXIA_SOURCE}; size class {size} ({SIZE_SOURCE})"
    why = "not new-built" if not new_build else f"size class {size or 'unknown (give standard_racks or it_capacity_kw)'}"
    return GB40879_LIMIT_VALUE, f"{GB40879_LIMIT_SOURCE}; the Ningxia 1.2 applies to new large centres only ({why})"


def above(value: float, limit: float) -> bool:
    """A PUE is above a limit when, at the limits' precision (0.01), it is strictly greater:
    on the limit is compliant."""
    scale = 10**LIMIT_DECIMALS
    return math.floor(value * scale + 0.5 + 1e-9) > round(limit * scale)  # half up: 1.205 -> 1.21
