"""Unit-product energy-consumption quotas (能耗限额): the table, what each indicator divides by
what, the standards' corrections, the comparison at the stated precision, and which energy
belongs to which product of a site.

The table is ``analytics/data/quotas.csv``, read once at import: the rows of
shared/reference/quotas.csv verbatim (standard, edition, table, levels, source, confidence)
plus the project's columns — ``product`` and ``indicator`` (the registry's keys), ``numerator``
(which energy is summed), ``output`` (whose product_output meters are the denominator),
``decimals`` (the precision the standard states its values at) and ``correction`` (the
standard's correction of the limits, with its constants). The same file seeds the database's
``quotas`` table (``storage.registry.sync_reference``) and the portal's levels: one source.

In the current standards 3级 is the limit for existing plants, 2级 the entry value for new or
expanded plants, 1级 the advanced value. Every row is ``secondary-transcription`` (the
transcribing repository flags them for independent review): the confidence travels with each
judgment.

Numerators (GB/T 2589-2020: energy consumed within the boundary, net of energy exported):
* ``energy`` — Σ (consumed + total_facility − exported) × GB/T 2589 coefficient, kgce, of the
  meters attributed to the product;
* ``energy_excl_feedstock`` — the same without meters flagged ``feedstock`` (原料用能), for
  GB 30180-2024's "原料用能不纳入" rows;
* ``electricity`` — consumed electricity, kWh, of the product's meters (电耗 indicators: 电炉电耗,
  冶炼电耗, 交流电耗, 工段电耗); exported electricity is not a consumption;
* ``coal`` — consumed coal (raw, washed, middlings), kgce (熟料综合煤耗).
A site with one product attributes every energy meter to it; a site with two or more products
needs each energy meter tagged (``product``) or apportioned (``shares``), otherwise it is
ambiguous and is not judged (``Allocation.untagged``).

Comparison (GB/T 8170-2008, 修约值比较法): the value and the (corrected) limit are rounded to the
row's ``decimals`` (round half to even, 四舍六入五成双) and only a value strictly greater than
the limit is a violation: a value on the limit is compliant.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from importlib import resources
from types import MappingProxyType
from typing import Final, Literal, cast, get_args

Numerator = Literal["energy", "energy_excl_feedstock", "electricity", "coal"]
CorrectionKind = Literal["altitude", "coke", "ore_grade", "clinker_ratio"]
OutputUnit = Literal["t", "kg", "m3", "toe"]
Level = Literal["1级", "2级", "3级", "超过3级(不达标)"]

NUMERATORS: Final[tuple[str, ...]] = get_args(Numerator)
#: Indicator unit -> unit of its denominator (the product output).
OUTPUT_UNIT: Final[Mapping[str, OutputUnit]] = MappingProxyType(
    {"kgce/t": "t", "kWh/t": "t", "kgce/kg": "kg", "kgce/m3": "m3", "kgce/toe": "toe"})
#: Roles whose energy a product can be charged (it_load is part of total_facility).
ENERGY_ROLES: Final = frozenset({"consumed", "exported", "total_facility"})
#: Carriers counted by a ``coal`` numerator (GB/T 2589 Table A.1 coals).
COAL_CARRIERS: Final = frozenset({"raw_coal", "washed_coal", "middlings"})
#: GB 16780-2021: the altitude correction applies above this site altitude.
ALTITUDE_CORRECTION_ABOVE_M: Final = 1500.0
#: Standard atmospheric pressure, Pa (the P₀ of GB 16780-2021's altitude factor).
STANDARD_PRESSURE_PA: Final = 101_325.0


class QuotaError(ValueError):
    """The quota table itself is malformed (a packaging error, raised at import)."""


@dataclass(frozen=True, slots=True)
class Correction:
    """A standard's correction of the limits; ``args`` are its constants from the table."""

    kind: CorrectionKind
    args: tuple[tuple[str, float], ...] = ()

    def arg(self, name: str) -> float:
        return dict(self.args)[name]


#: Correction kind -> the site-declared parameters it reads (registry ``parameters`` names).
PARAMETERS_OF: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType({
    "altitude": ("altitude_m", "atmospheric_pressure_pa"),
    "coke": ("mixed_gas_ratio", "coke_oven_age_years", "wet_quenching"),
    "ore_grade": ("ore_grade_pct",),
    "clinker_ratio": ("clinker_ratio_pct",),
})


@dataclass(frozen=True, slots=True)
class Quota:
    """One indicator row of a quota standard (see the module docstring for the columns)."""

    product: str  # registry product key
    indicator: str  # registry indicator id, unique per product
    product_cn: str
    standard: str  # number and edition, e.g. "GB 21343-2023"
    table: str
    indicator_cn: str
    unit: str  # kgce/t, kWh/t, kgce/kg, kgce/m3, kgce/toe
    level1: float  # 1级 advanced
    level2: float  # 2级 new build
    level3: float  # 3级 limit (existing plants)
    numerator: Numerator = "energy"
    output: str = ""  # product key of the denominator's product_output meters ("" = product)
    decimals: int = 0  # precision the standard states the values at
    correction: Correction | None = None
    confidence: str = "secondary-transcription"
    notes: str = ""

    @property
    def output_product(self) -> str:
        return self.output or self.product

    @property
    def output_unit(self) -> OutputUnit:
        return OUTPUT_UNIT[self.unit]

    @property
    def energy_unit(self) -> str:
        """Unit of the numerator: kgce or kWh."""
        return self.unit.split("/")[0]

    @property
    def parameters(self) -> tuple[str, ...]:
        """Site-declared parameters this row reads (its correction's, and toe_per_t for /toe)."""
        names = PARAMETERS_OF[self.correction.kind] if self.correction else ()
        return (*names, "toe_per_t") if self.output_unit == "toe" else names


_CORRECTION_RE: Final = re.compile(r"^([a-z_]+)\((.*)\)$")


def _correction(text: str) -> Correction | None:
    if not text:
        return None
    m = _CORRECTION_RE.match(text)
    if m is None or m.group(1) not in PARAMETERS_OF:
        raise QuotaError(f"bad correction {text!r}")
    args = tuple((k.strip(), float(v)) for k, v in (a.split("=") for a in m.group(2).split(",") if a.strip()))
    return Correction(cast(CorrectionKind, m.group(1)), args)


def parse_quotas(text: str) -> tuple[Quota, ...]:
    """Rows of ``analytics/data/quotas.csv`` (pure: the text is passed in)."""
    out: list[Quota] = []
    seen: set[tuple[str, str]] = set()
    for i, r in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        try:
            q = Quota(
                product=r["product"], indicator=r["indicator"], product_cn=r["product_cn"],
                standard=r["standard"], table=r["table"], indicator_cn=r["indicator_cn"], unit=r["unit"],
                level1=float(r["level1_advanced"]), level2=float(r["level2_new_build"]),
                level3=float(r["level3_limit_existing"]), numerator=cast(Numerator, r["numerator"]),
                output=r["output"] if r["output"] != r["product"] else "", decimals=int(r["decimals"]),
                correction=_correction(r["correction"]), confidence=r["confidence"], notes=r["notes"],
            )
        except (KeyError, ValueError) as err:
            raise QuotaError(f"quotas.csv line {i}: {err}") from err
        if q.numerator not in NUMERATORS or q.unit not in OUTPUT_UNIT or (q.product, q.indicator) in seen:
            raise QuotaError(f"quotas.csv line {i}: bad numerator/unit or duplicate {q.product}/{q.indicator}")
        seen.add((q.product, q.indicator))
        out.append(q)
    return tuple(out)


#: The CSV as shipped in the package (read once; the database and the portal use the same rows).
QUOTAS_CSV: Final = resources.files("analytics").joinpath("data/quotas.csv").read_text(encoding="utf-8")
ROWS: Final[tuple[Quota, ...]] = parse_quotas(QUOTAS_CSV)

#: product key -> its quota indicators
QUOTAS: Final[Mapping[str, tuple[Quota, ...]]] = MappingProxyType(
    {p: tuple(q for q in ROWS if q.product == p) for p in dict.fromkeys(q.product for q in ROWS)}
)


def find(product: str, indicator: str) -> Quota | None:
    """The row of ``product``'s ``indicator`` (ids as in the CSV), or None."""
    return next((q for q in QUOTAS.get(product, ()) if q.indicator == indicator), None)


# ------------------------------------------------------------------------- corrections


@dataclass(frozen=True, slots=True)
class QuotaParams:
    """Site-declared inputs of the standards' corrections (registry: site ``altitude_m`` and
    ``atmospheric_pressure_pa``, product ``parameters``). ``None``: not declared, no correction."""

    altitude_m: float | None = None
    atmospheric_pressure_pa: float | None = None  # multi-year mean local pressure, Pa
    ore_grade_pct: float | None = None  # GB 21341-2022: grade of the ore, %
    clinker_ratio_pct: float | None = None  # GB 16780-2021: clinker share of the cement, %
    mixed_gas_ratio: float | None = None  # GB 21342-2025: share (0-1) of oven heating by mixed gas
    coke_oven_age_years: float | None = None  # GB 21342-2025
    wet_quenching: bool = False  # GB 21342-2025: wet (not dry) coke quenching
    toe_per_t: float | None = None  # GB 30180-2024 /toe rows: tonnes of oil equivalent per t of product


@dataclass(frozen=True, slots=True)
class Limits:
    """The levels after the standard's corrections, and what was applied (human-readable)."""

    level1: float
    level2: float
    level3: float
    applied: tuple[str, ...] = ()


def limits(q: Quota, p: QuotaParams) -> Limits:
    """Levels of ``q`` corrected as its standard says for the site's parameters ``p``.

    * GB 16780-2021 (clinker 综合能耗) above 1 500 m: 3级 × K, K = 1.179 − 0.211 × P / 101 325
      (P the local atmospheric pressure, Pa);
    * GB 21342-2025 (coke): + c × mixed-gas ratio on every level (c = 8.00 top-charged, 12.00
      stamp-charged); ovens older than 15 years +2.5, older than 25 years +5.5 on 1级 and 3级;
      wet quenching +46.46 on 3级. The volatile and moisture corrections are not in the
      reference and are not applied;
    * GB 21341-2022 (冶炼电耗): every level − step × (grade − baseline) when the ore grade is
      above the baseline (the reference gives no correction below it);
    * GB 16780-2021 (cement, 75 % clinker basis): + c₁/c₂/c₃ kgce/t per percentage point of
      clinker above 75 % (none below: the reference gives the correction above it only).
    """
    l1, l2, l3 = q.level1, q.level2, q.level3
    c = q.correction
    if c is None:
        return Limits(l1, l2, l3)
    std = q.standard
    applied: list[str] = []
    if c.kind == "altitude":
        alt, pres = p.altitude_m, p.atmospheric_pressure_pa
        if alt is not None and alt > ALTITUDE_CORRECTION_ABOVE_M:
            if pres is None:
                applied.append(f"{std} altitude correction NOT applied: {alt:g} m > 1500 m but no atmospheric pressure declared")
            else:
                k = 1.179 - 0.211 * pres / STANDARD_PRESSURE_PA
                applied.append(f"{std} altitude {alt:g} m: 3级 {l3:g} × (1.179 − 0.211 × {pres:g} / 101325 = {k:.4f})")
                l3 *= k
    elif c.kind == "coke":
        ratio = p.mixed_gas_ratio or 0.0
        if ratio > 0:
            add = c.arg("mixed_gas") * ratio
            applied.append(f"{std} mixed-gas heating: + {c.arg('mixed_gas'):.2f} × {ratio:g} = + {add:.2f} on every level")
            l1, l2, l3 = l1 + add, l2 + add, l3 + add
        age = p.coke_oven_age_years or 0.0
        if age > 15:
            add = 5.5 if age > 25 else 2.5
            applied.append(f"{std} coke ovens {age:g} years old: + {add} on 1级 and 3级")
            l1, l3 = l1 + add, l3 + add
        if p.wet_quenching:
            applied.append(f"{std} wet quenching: + 46.46 on 3级")
            l3 += 46.46
    elif c.kind == "ore_grade":
        grade = p.ore_grade_pct
        base, step = c.arg("baseline"), c.arg("step")
        if grade is not None and grade > base:
            sub = step * (grade - base)
            applied.append(f"{std} ore grade {grade:g} % > {base:g} %: − {step:g} × {grade - base:g} = − {sub:g} on every level")
            l1, l2, l3 = l1 - sub, l2 - sub, l3 - sub
    elif c.kind == "clinker_ratio":
        clinker = p.clinker_ratio_pct
        base = c.arg("baseline")
        if clinker is not None and clinker > base:
            d = clinker - base
            l1, l2, l3 = l1 + c.arg("level1") * d, l2 + c.arg("level2") * d, l3 + c.arg("level3") * d
            applied.append(f"{std} clinker {clinker:g} % > {base:g} %: + {c.arg('level1'):.2f}/{c.arg('level2'):.2f}/"
                           f"{c.arg('level3'):.2f} × {d:g} on 1级/2级/3级")
    return Limits(l1, l2, l3, tuple(applied))


# -------------------------------------------------------------------- the comparison


def at_precision(x: float, decimals: int) -> float:
    """``x`` rounded to ``decimals`` places, GB/T 8170-2008 (round half to even, 四舍六入五成双);
    the decimal written form of the float is rounded, so 940.5 -> 940 and 941.5 -> 942."""
    return float(Decimal(repr(x)).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_EVEN))


def exceeds(value: float, limit: float, decimals: int) -> bool:
    """Strictly above the limit at the stated precision (GB/T 8170-2008 修约值比较法): on the
    limit is compliant."""
    return at_precision(value, decimals) > at_precision(limit, decimals)


def unit_consumption(numerator: float, output: float, min_output: float = 0.0) -> float | None:
    """kgce/t (or kWh/t, …) = energy of the product ÷ its qualified output in the same period;
    ``None`` when the output is below ``min_output`` or not positive (no value, not infinity)."""
    if output <= 0.0 or output < min_output:
        return None
    return numerator / output


def level_of(value: float, q: Quota, lim: Limits | None = None) -> Level:
    """Which level a value meets at the row's precision: "1级", "2级", "3级" or "超过3级(不达标)"
    (``lim``: corrected levels, default the table's)."""
    lim = lim or Limits(q.level1, q.level2, q.level3)
    levels: tuple[tuple[Level, float], ...] = (("1级", lim.level1), ("2级", lim.level2), ("3级", lim.level3))
    for name, limit in levels:
        if not exceeds(value, limit, q.decimals):
            return name
    return "超过3级(不达标)"


# ------------------------------------------------------- which energy is a product's


@dataclass(frozen=True, slots=True)
class MeterUse:
    """What the allocation needs to know about one meter of a site."""

    meter_id: int
    code: str
    role: str  # consumed | exported | total_facility | product_output | it_load
    carrier: str
    product: str | None = None  # tagged: all its energy is this product's
    shares: tuple[tuple[str, float], ...] = ()  # apportioned: product -> share (sum 1)
    feedstock: bool = False  # 原料用能 (GB 30180-2024 "原料用能不纳入" rows leave it out)


@dataclass(frozen=True, slots=True)
class Allocation:
    """Which meters' energy each declared product of one site is charged, with which weight.

    ``untagged`` lists the energy meters of a site with two or more products that carry
    neither a product tag nor shares: such a site is ambiguous and none of its products is
    judged (each would otherwise be charged energy that may not be its own)."""

    site: str  # site code, for messages
    products: tuple[str, ...]
    weights: Mapping[str, Mapping[int, float]] = field(default_factory=dict)  # product -> meter -> share
    outputs: Mapping[str, tuple[int, ...]] = field(default_factory=dict)  # product key -> output meters
    untagged: tuple[str, ...] = ()
    meters: Mapping[int, MeterUse] = field(default_factory=dict)

    def numerator(self, q: Quota, only: Iterable[int] | None = None) -> dict[int, float]:
        """Meter id -> weight of the meters summed by ``q``'s numerator (``only``: the
        indicator's own meter list from the registry, among the product's)."""
        keep = None if only is None else set(only)
        out: dict[int, float] = {}
        for mid, share in self.weights.get(q.product, {}).items():
            m = self.meters[mid]
            if keep is not None and mid not in keep:
                continue
            if q.numerator == "electricity" and (m.carrier != "electricity" or m.role == "exported"):
                continue
            if q.numerator == "coal" and (m.carrier not in COAL_CARRIERS or m.role == "exported"):
                continue
            if q.numerator == "energy_excl_feedstock" and m.feedstock:
                continue
            out[mid] = share
        return out

    def output_meters(self, q: Quota) -> tuple[int, ...]:
        """The denominator's product_output meters: those of the row's output product, else the
        product's own (a site without a separate ingot meter divides by its aluminium output)."""
        return self.outputs.get(q.output_product) or self.outputs.get(q.product, ())


def allocate(site: str, products: Iterable[str], meters: Iterable[MeterUse]) -> Allocation:
    """Attribute a site's energy meters to its declared ``products`` (see ``Allocation``):
    tagged -> weight 1 to that product; shares -> each share; untagged at a one-product site
    -> weight 1 to it; untagged at a site of two or more products -> ``untagged``. Tags and
    shares naming a product the site does not declare are ignored (the registry refuses them)."""
    prods = tuple(dict.fromkeys(products))
    declared = set(prods)
    weights: dict[str, dict[int, float]] = {p: {} for p in prods}
    outputs: dict[str, list[int]] = {}
    untagged: list[str] = []
    by_id: dict[int, MeterUse] = {}
    for m in meters:
        by_id[m.meter_id] = m
        if m.role == "product_output":
            if m.product:
                outputs.setdefault(m.product, []).append(m.meter_id)
            continue
        if m.role not in ENERGY_ROLES or not prods:
            continue
        if m.product:
            if m.product in declared:
                weights[m.product][m.meter_id] = 1.0
        elif m.shares:
            for p, s in m.shares:
                if p in declared and s > 0:
                    weights[p][m.meter_id] = s
        elif len(prods) == 1:
            weights[prods[0]][m.meter_id] = 1.0
        else:
            untagged.append(m.code)
    return Allocation(site, prods, MappingProxyType({p: MappingProxyType(w) for p, w in weights.items()}),
                      MappingProxyType({p: tuple(ids) for p, ids in outputs.items()}), tuple(sorted(untagged)),
                      MappingProxyType(by_id))
