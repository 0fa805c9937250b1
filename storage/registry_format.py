"""The registry file format (docs/registry.md): parse and validate, no I/O beyond reading text.

``parse_registry(doc, source)`` turns the YAML document into frozen dataclasses and raises
``RegistryError`` naming the path of the first bad field (``enterprises[0].sites[1].pue_limit``).
Unknown keys are ignored on purpose: scenario files put ``sim:`` blocks (and top-level
``simulation:``/``faults:``) into the same document.

Refused at load, each with the meter's code in the message: a meter whose conversion to kgce is
unknown or ambiguous (natural gas without its coefficient, steam by mass without its pressure
row, …: the candidates are listed), a coefficient id ``analytics.coefficients`` does not know, a
register that does not say where it wraps (``digits``, ``register_max`` or ``rollover``), a
``rollover`` written as the largest reading, a product or indicator without a quota row, a
product tag or share naming a product the site does not declare, shares not summing to 1.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Final, Literal, cast, get_args

from analytics.coefficients import COEFFICIENTS, ConversionError, candidates, conversion_problem, scale_unit
from analytics.quotas import ENERGY_ROLES, QUOTAS, Quota, find
from nxem.errors import NxemError
from storage import uscc

City = Literal["银川", "石嘴山", "吴忠", "固原", "中卫", "宁东"]
Industry = Literal[
    "data_centre", "calcium_carbide", "methanol", "coke", "ferroalloy", "aluminium", "cement", "other"
]
SiteKind = Literal["data_centre", "plant"]
MeterRole = Literal["consumed", "exported", "product_output", "it_load", "total_facility"]
MeterKind = Literal["register", "interval"]

CITIES: Final[tuple[str, ...]] = get_args(City)
INDUSTRIES: Final[tuple[str, ...]] = get_args(Industry)
SITE_KINDS: Final[tuple[str, ...]] = get_args(SiteKind)
METER_ROLES: Final[tuple[str, ...]] = get_args(MeterRole)
METER_KINDS: Final[tuple[str, ...]] = get_args(MeterKind)

#: Ningxia's target for new large and very large data centres (宁夏 computing-hub plan): PUE ≤
#: 1.2. A site without ``pue_limit`` gets it only when new-built and large (``standard_racks``
#: or ``it_capacity_kw``); any other centre the GB 40879-2021 limit value (``analytics.pue``).
DEFAULT_PUE_LIMIT: Final = 1.2
#: Default window of the operational PUE warning: 7 days (168 h), short enough that an excursion
#: of a few weeks shows; the compliance figure is the annual PUE (GB 40879-2021 rates a year).
DEFAULT_PUE_WINDOW_HOURS: Final = 168
#: Default reading interval of a meter: 15 minutes (national online-monitoring real-time
#: indicators; 30 min or 1 h are allowed, shared/reference/README.md). Any whole number of
#: seconds dividing a day is accepted.
DEFAULT_INTERVAL_S: Final = 900
_DURATION_RE: Final = re.compile(r"^\s*(\d+)\s*(s|m|min|h|d)?\s*$")
_DURATION_UNIT_S: Final = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86_400}

# Codes and ids travel in MQTT topics and URLs: keep them to a safe character class.
_CODE_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
_WORD_RE: Final = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class RegistryError(NxemError):
    """A registry document is invalid; ``path`` names the offending field."""

    def __init__(self, source: str, path: str, message: str) -> None:
        super().__init__(f"{source}: {path}: {message}")
        self.source, self.path, self.message = source, path, message


@dataclass(frozen=True, slots=True)
class ProductSpec:
    product: str
    indicator: str
    #: the indicator's own numerator meters ("gateway/code"), e.g. the furnaces of 电炉电耗
    meters: tuple[str, ...] = ()
    #: the standard's correction inputs (ore_grade_pct, mixed_gas_ratio, toe_per_t, …)
    parameters: tuple[tuple[str, float | bool], ...] = ()


@dataclass(frozen=True, slots=True)
class MeterSpec:
    code: str
    carrier: str
    unit: str
    role: MeterRole
    kind: MeterKind
    multiplier: float = 1.0
    #: the wrap modulus (10⁸ for an 8-digit register), from ``rollover``, ``register_max`` + 1
    #: step, or 10^(digits − decimals)
    rollover: float | None = None
    coefficient: str | None = None
    product: str | None = None
    shares: tuple[tuple[str, float], ...] = ()  # product -> share of this meter's energy (sum 1)
    feedstock: bool = False  # 原料用能 (GB 30180-2024 rows "原料用能不纳入" leave it out)
    #: reading interval, seconds (``interval``: 15m, 1h, 900, …; divides a day): the cadence
    #: completeness, silence and an interval meter's coverage are judged on
    interval_s: int = DEFAULT_INTERVAL_S


@dataclass(frozen=True, slots=True)
class GatewaySpec:
    id: str
    meters: tuple[MeterSpec, ...]


@dataclass(frozen=True, slots=True)
class SiteSpec:
    code: str
    name: str
    kind: SiteKind
    new_build: bool = False
    pue_limit: float | None = None  # None: by new-build flag and size class (analytics.pue.site_limit)
    pue_window_hours: int = DEFAULT_PUE_WINDOW_HOURS
    energy_budget_tce: float | None = None
    products: tuple[ProductSpec, ...] = ()
    gateways: tuple[GatewaySpec, ...] = ()
    altitude_m: float | None = None  # GB 16780-2021 altitude correction (above 1 500 m)
    atmospheric_pressure_pa: float | None = None  # the local pressure P of that correction, Pa
    standard_racks: int | None = None  # data centres: size in standard racks (2.5 kW each)
    it_capacity_kw: float | None = None  # data centres: IT capacity, kW (size when racks are not given)


@dataclass(frozen=True, slots=True)
class EnterpriseSpec:
    id: str
    name: str
    city: City
    industry: Industry
    sites: tuple[SiteSpec, ...] = ()


@dataclass(frozen=True, slots=True)
class Registry:
    enterprises: tuple[EnterpriseSpec, ...] = field(default_factory=tuple)


class _Ctx:
    """Error reporting with the source name."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, message: str) -> RegistryError:
        return RegistryError(self.source, path, message)

    def mapping(self, value: Any, path: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(path, f"must be a mapping, got {type(value).__name__}")
        return value

    def seq(self, d: Mapping[str, Any], key: str, path: str, required: bool = False) -> Sequence[Any]:
        value = d.get(key)
        if value is None:
            if required:
                raise self.fail(f"{path}.{key}", "is required")
            return ()
        if not isinstance(value, list):
            raise self.fail(f"{path}.{key}", f"must be a list, got {type(value).__name__}")
        return value

    def text(self, d: Mapping[str, Any], key: str, path: str, pattern: re.Pattern[str] | None = None,
             required: bool = True) -> str | None:
        value = d.get(key)
        p = f"{path}.{key}"
        if value is None:
            if required:
                raise self.fail(p, "is required")
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(p, f"must be a non-empty string, got {value!r}")
        if pattern is not None and not pattern.match(value):
            raise self.fail(p, f"{value!r} does not match {pattern.pattern}")
        return value

    def req_text(self, d: Mapping[str, Any], key: str, path: str, pattern: re.Pattern[str] | None = None) -> str:
        value = self.text(d, key, path, pattern)
        assert value is not None
        return value

    def choice(self, d: Mapping[str, Any], key: str, path: str, allowed: tuple[str, ...]) -> str:
        value = d.get(key)
        if value not in allowed:
            raise self.fail(f"{path}.{key}", f"{value!r} is not one of {' | '.join(allowed)}")
        return cast(str, value)

    def number(self, d: Mapping[str, Any], key: str, path: str, default: float | None,
               positive: bool = True) -> float | None:
        value = d.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise self.fail(f"{path}.{key}", f"must be a finite number, got {value!r}")
        if positive and value <= 0:
            raise self.fail(f"{path}.{key}", f"must be > 0, got {value!r}")
        return float(value)

    def code_ref(self, value: Any, path: str) -> str:
        """A meter named by ``code`` or ``gateway/code``."""
        if not isinstance(value, str) or not all(_CODE_RE.match(part) for part in value.split("/", 1)):
            raise self.fail(path, f"must be a meter code or gateway/code, got {value!r}")
        return value

    def flag(self, d: Mapping[str, Any], key: str, path: str, default: bool) -> bool:
        value = d.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(f"{path}.{key}", f"must be true or false, got {value!r}")
        return value


def _meter(c: _Ctx, raw: Any, path: str) -> MeterSpec:
    d = c.mapping(raw, path)
    role = cast(MeterRole, c.choice(d, "role", path, METER_ROLES))
    product = c.text(d, "product", path, _WORD_RE, required=False)
    if role == "product_output" and product is None:
        raise c.fail(f"{path}.product", "is required for a product_output meter")
    multiplier = c.number(d, "multiplier", path, 1.0)
    assert multiplier is not None
    code = c.req_text(d, "code", path, _CODE_RE)
    carrier = c.req_text(d, "carrier", path, _WORD_RE)
    unit = c.req_text(d, "unit", path)
    kind = cast(MeterKind, c.choice(d, "kind", path, METER_KINDS))
    coefficient = _coefficient(c, d, path, code, carrier, unit)
    _check_conversion(c, path, code, role, carrier, unit, coefficient)
    shares = _shares(c, d, path, code, role, product)
    feedstock = c.flag(d, "feedstock", path, False)
    if feedstock and role != "consumed":
        raise c.fail(f"{path}.feedstock", f"meter {code!r}: only a consumed meter is feedstock (原料用能), not {role}")
    return MeterSpec(
        code=code,
        carrier=carrier,
        unit=unit,
        role=role,
        kind=kind,
        multiplier=multiplier,
        rollover=_wrap_modulus(c, d, path, code, kind),
        coefficient=coefficient,
        product=product,
        shares=shares,
        feedstock=feedstock,
        interval_s=_interval(c, d, path, code),
    )


def _interval(c: _Ctx, d: Mapping[str, Any], path: str, code: str) -> int:
    """A meter's reading interval in seconds: a number of seconds or ``15m``/``15min``/``1h``/
    ``1d``; a whole number of seconds that divides a day (so a day holds a whole number of
    expected readings)."""
    raw = d.get("interval", DEFAULT_INTERVAL_S)
    seconds: float | None = None
    if isinstance(raw, int | float) and not isinstance(raw, bool) and math.isfinite(raw):
        seconds = float(raw)
    elif isinstance(raw, str) and (m := _DURATION_RE.match(raw)):
        seconds = float(int(m.group(1)) * _DURATION_UNIT_S[m.group(2) or "s"])
    if seconds is None or seconds <= 0 or seconds != int(seconds):
        raise c.fail(f"{path}.interval", f"meter {code!r}: {raw!r} is not a positive whole number of seconds"
                                         " or a duration like 15m, 1h")
    if 86_400 % int(seconds):
        raise c.fail(f"{path}.interval", f"meter {code!r}: {raw!r} ({int(seconds)} s) does not divide a day"
                                         " (86 400 s): a day must hold a whole number of readings")
    return int(seconds)


def _gateway(c: _Ctx, raw: Any, path: str) -> GatewaySpec:
    d = c.mapping(raw, path)
    meters = tuple(_meter(c, m, f"{path}.meters[{i}]") for i, m in enumerate(c.seq(d, "meters", path)))
    seen: set[str] = set()
    for i, m in enumerate(meters):
        if m.code in seen:
            raise c.fail(f"{path}.meters[{i}].code", f"duplicate meter code {m.code!r} on this gateway")
        seen.add(m.code)
    return GatewaySpec(id=c.req_text(d, "id", path, _CODE_RE), meters=meters)


def _products(c: _Ctx, d: Mapping[str, Any], path: str) -> tuple[ProductSpec, ...]:
    out: list[ProductSpec] = []
    seen: dict[tuple[str, str], str] = {}
    for i, raw in enumerate(c.seq(d, "products", path)):
        p = f"{path}.products[{i}]"
        item = c.mapping(raw, p)
        product = c.req_text(item, "product", p, _WORD_RE)
        indicator = c.req_text(item, "indicator", p, _WORD_RE)
        q = _quota_row(c, p, product, indicator)
        prev = seen.setdefault((product, indicator), p)
        if prev != p:
            raise c.fail(p, f"duplicate product {product!r} indicator {indicator!r} (first at {prev})")
        meters = tuple(c.code_ref(m, f"{p}.meters[{k}]") for k, m in enumerate(c.seq(item, "meters", p)))
        out.append(ProductSpec(product=product, indicator=indicator, meters=meters,
                               parameters=_parameters(c, item, p, q)))
    return tuple(out)


def _site(c: _Ctx, raw: Any, path: str) -> SiteSpec:
    d = c.mapping(raw, path)
    window = c.number(d, "pue_window_hours", path, DEFAULT_PUE_WINDOW_HOURS)
    assert window is not None
    if window != int(window):
        raise c.fail(f"{path}.pue_window_hours", f"must be a whole number of hours, got {window!r}")
    pue_limit = c.number(d, "pue_limit", path, None)
    if pue_limit is not None and pue_limit < 1.0:
        raise c.fail(f"{path}.pue_limit", f"a PUE is at least 1.0, got {pue_limit!r}")
    racks = c.number(d, "standard_racks", path, None, positive=False)
    if racks is not None and (racks < 0 or racks != int(racks)):
        raise c.fail(f"{path}.standard_racks", f"must be a whole number of racks ≥ 0, got {racks!r}")
    site = SiteSpec(
        code=c.req_text(d, "code", path, _CODE_RE),
        name=c.req_text(d, "name", path),
        kind=cast(SiteKind, c.choice(d, "kind", path, SITE_KINDS)),
        new_build=c.flag(d, "new_build", path, False),
        pue_limit=pue_limit,
        pue_window_hours=int(window),
        energy_budget_tce=c.number(d, "energy_budget_tce", path, None),
        products=_products(c, d, path),
        gateways=tuple(_gateway(c, g, f"{path}.gateways[{i}]") for i, g in enumerate(c.seq(d, "gateways", path))),
        altitude_m=c.number(d, "altitude_m", path, None, positive=False),
        atmospheric_pressure_pa=c.number(d, "atmospheric_pressure_pa", path, None),
        standard_racks=None if racks is None else int(racks),
        it_capacity_kw=c.number(d, "it_capacity_kw", path, None),
    )
    return _check_boundary(c, path, site)


def _enterprise(c: _Ctx, raw: Any, path: str) -> EnterpriseSpec:
    d = c.mapping(raw, path)
    ent_id = d.get("id")
    if not isinstance(ent_id, str):
        raise c.fail(f"{path}.id", f"must be an 18-character unified social credit code string, got {ent_id!r}")
    why = uscc.problem(ent_id)
    if why is not None:
        raise c.fail(f"{path}.id", f"{ent_id!r} is not a valid unified social credit code (GB 32100-2015): {why}")
    ent = EnterpriseSpec(
        id=ent_id,
        name=c.req_text(d, "name", path),
        city=cast(City, c.choice(d, "city", path, CITIES)),
        industry=cast(Industry, c.choice(d, "industry", path, INDUSTRIES)),
        sites=tuple(_site(c, s, f"{path}.sites[{i}]") for i, s in enumerate(c.seq(d, "sites", path))),
    )
    return ent


def parse_registry(doc: Any, source: str = "<registry>") -> Registry:
    """Validate a parsed YAML document (see docs/registry.md); raise ``RegistryError``."""
    c = _Ctx(source)
    root = c.mapping(doc, "$")
    ents = tuple(_enterprise(c, e, f"enterprises[{i}]")
                 for i, e in enumerate(c.seq(root, "enterprises", "$", required=True)))
    _check_unique(c, ents)
    return Registry(enterprises=ents)


def _check_unique(c: _Ctx, ents: tuple[EnterpriseSpec, ...]) -> None:
    """Ids that are unique in the database must be unique in the file too."""
    first: dict[tuple[str, str], str] = {}

    def claim(kind: str, value: str, path: str) -> None:
        prev = first.setdefault((kind, value), path)
        if prev != path:
            raise c.fail(path, f"duplicate {kind} {value!r} (first at {prev})")

    for i, e in enumerate(ents):
        claim("enterprise id", e.id, f"enterprises[{i}].id")
        for j, s in enumerate(e.sites):
            claim("site code", s.code, f"enterprises[{i}].sites[{j}].code")
            for k, g in enumerate(s.gateways):
                claim("gateway id", g.id, f"enterprises[{i}].sites[{j}].gateways[{k}].id")


# ------------------------------------------------ conversion, registers, products (issue 14)

#: Correction inputs a product entry may declare, with their allowed range (the altitude
#: correction reads the site's ``altitude_m`` / ``atmospheric_pressure_pa``).
_PARAMETER_RANGE: Final[Mapping[str, tuple[float, float]]] = {
    "ore_grade_pct": (0.0, 100.0), "clinker_ratio_pct": (0.0, 100.0), "mixed_gas_ratio": (0.0, 1.0),
    "coke_oven_age_years": (0.0, 200.0), "toe_per_t": (0.0, 10.0),
}
_SITE_PARAMETERS: Final = frozenset({"altitude_m", "atmospheric_pressure_pa"})


def _coefficient(c: _Ctx, d: Mapping[str, Any], path: str, code: str, carrier: str, unit: str) -> str | None:
    """An id of ``analytics.coefficients`` (the ids of the steam table, ``steam_1.0MPa`` …, are
    not identifiers: the id is checked against the table, not a pattern)."""
    key = c.text(d, "coefficient", path, required=False)
    if key is None or key in COEFFICIENTS:
        return key
    fits = candidates(carrier, unit)
    known = ", ".join(r.key for r in fits) if fits else ", ".join(COEFFICIENTS)
    raise c.fail(f"{path}.coefficient", f"meter {code!r}: unknown coefficient {key!r}; candidates: {known}")


def _check_conversion(c: _Ctx, path: str, code: str, role: str, carrier: str, unit: str,
                      coefficient: str | None) -> None:
    """Refuse a meter whose quantity cannot be converted unambiguously (GB/T 2589)."""
    try:
        base = scale_unit(unit)[0]
    except ConversionError as err:
        raise c.fail(f"{path}.unit", f"meter {code!r}: {err}") from None
    if role in ("it_load", "total_facility") and base != "kWh":
        raise c.fail(f"{path}.unit", f"meter {code!r}: a {role} meter is metered in kWh, MWh or GWh, not {unit!r}")
    if role == "product_output":
        if base not in ("kg", "m3"):
            raise c.fail(f"{path}.unit", f"meter {code!r}: a product_output meter is metered in t, kg or m3 "
                                         f"(coal-to-SNG), not {unit!r}")
        return
    if role == "it_load":
        return
    problem = conversion_problem(carrier, unit, coefficient)
    if problem is not None:
        raise c.fail(f"{path}.coefficient", f"meter {code!r} ({carrier} in {unit}) cannot be converted to kgce: {problem}")


def _shares(c: _Ctx, d: Mapping[str, Any], path: str, code: str, role: str,
            product: str | None) -> tuple[tuple[str, float], ...]:
    raw = d.get("shares")
    if raw is None:
        return ()
    p = f"{path}.shares"
    m = c.mapping(raw, p)
    if role not in ENERGY_ROLES:
        raise c.fail(p, f"meter {code!r}: only an energy meter (consumed, exported, total_facility) is shared")
    if product is not None:
        raise c.fail(p, f"meter {code!r}: give product (all of its energy) or shares, not both")
    if not m:
        raise c.fail(p, f"meter {code!r}: shares name no product")
    out: list[tuple[str, float]] = []
    for k in m:
        if not isinstance(k, str) or not _WORD_RE.match(k):
            raise c.fail(p, f"meter {code!r}: {k!r} is not a product key")
        share = c.number(m, k, p, None)
        assert share is not None
        if share > 1:
            raise c.fail(f"{p}.{k}", f"meter {code!r}: a share is at most 1, got {share!r}")
        out.append((k, share))
    total = sum(s for _k, s in out)
    if abs(total - 1.0) > 1e-9:
        raise c.fail(p, f"meter {code!r}: shares sum to {total:g}, not 1 (a shared meter's energy is apportioned "
                        "whole: none lost, none counted twice)")
    return tuple(sorted(out))


def _exponent(x: float) -> int:
    """Decimal places of ``x`` as written (99999999 -> 0, 999999.99 -> 2, 1e9 -> 0)."""
    return max(0, -int(Decimal(repr(x)).normalize().as_tuple().exponent))


def _largest_reading(x: float) -> bool:
    """All nines (99 999 999, 999 999.99): the largest reading of a decimal register."""
    nxt = Decimal(repr(x)).normalize() + Decimal(1).scaleb(-_exponent(x))
    return nxt > 0 and nxt == Decimal(10) ** nxt.adjusted()


def _wrap_modulus(c: _Ctx, d: Mapping[str, Any], path: str, code: str, kind: str) -> float | None:
    """Where a register wraps to 0 (the modulus), from exactly one of ``digits`` (+ ``decimals``):
    10^(digits − decimals); ``register_max``, the largest reading: max + one step of its last
    decimal (99 999 999 -> 10⁸, 999 999.99 -> 10⁶); ``rollover``: the modulus itself. A register
    meter must give one (a wrap is then counted, not a counter_backwards and a lost interval)."""
    given = [k for k in ("digits", "register_max", "rollover") if d.get(k) is not None]
    if len(given) > 1:
        raise c.fail(f"{path}.{given[1]}", f"meter {code!r}: give one of digits, register_max or rollover, "
                                           f"not {' and '.join(given)}")
    if d.get("decimals") is not None and given != ["digits"]:
        raise c.fail(f"{path}.decimals", f"meter {code!r}: decimals goes with digits")
    if not given:
        if kind == "register":
            raise c.fail(f"{path}.digits", f"meter {code!r}: a register must say where it wraps: digits (8 for a "
                                           "register reading up to 99999999), register_max (its largest reading) or "
                                           "rollover (the modulus, 100000000 for 8 digits)")
        return None
    if given == ["digits"]:
        digits, decimals = d["digits"], d.get("decimals", 0)
        for k, v, lo, hi in (("digits", digits, 1, 18), ("decimals", decimals, 0, 17)):
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise c.fail(f"{path}.{k}", f"meter {code!r}: must be a whole number {lo}..{hi}, got {v!r}")
        if decimals >= digits:
            raise c.fail(f"{path}.decimals", f"meter {code!r}: {decimals} decimals leave no integer digit of {digits}")
        return float(10 ** (digits - decimals))
    value = c.number(d, given[0], path, None)
    assert value is not None
    if given == ["register_max"]:
        return float(Decimal(repr(value)).normalize() + Decimal(1).scaleb(-_exponent(value)))
    if _largest_reading(value):
        written = Decimal(repr(value)).normalize()
        modulus = written + Decimal(1).scaleb(-_exponent(value))
        raise c.fail(f"{path}.rollover", f"meter {code!r}: rollover is the modulus the register wraps at, and "
                                         f"{written:f} is a largest reading (it would lose a unit at every wrap): "
                                         f"write register_max: {written:f} or rollover: {modulus.normalize():f}")
    return value


def _quota_row(c: _Ctx, path: str, product: str, indicator: str) -> Quota:
    rows = QUOTAS.get(product)
    if rows is None:
        raise c.fail(f"{path}.product", f"{product!r} has no quota row (analytics/data/quotas.csv); "
                                        f"products: {', '.join(sorted(QUOTAS))}")
    q = find(product, indicator)
    if q is None:
        known = ", ".join(f"{r.indicator} ({r.indicator_cn}, {r.unit})" for r in rows)
        raise c.fail(f"{path}.indicator", f"{product} has no indicator {indicator!r}; its indicators: {known}")
    return q


def _parameters(c: _Ctx, item: Mapping[str, Any], path: str, q: Quota) -> tuple[tuple[str, float | bool], ...]:
    raw = item.get("parameters")
    p = f"{path}.parameters"
    m = c.mapping(raw, p) if raw is not None else {}
    allowed = [n for n in q.parameters if n not in _SITE_PARAMETERS]
    out: list[tuple[str, float | bool]] = []
    for k in m:
        if k not in allowed:
            where = "site fields" if k in _SITE_PARAMETERS else f"parameters of {q.product} {q.indicator}"
            raise c.fail(f"{p}.{k}", f"{k!r} is not one of the {where}: {', '.join(allowed) or 'none'}")
        if k == "wet_quenching":
            out.append((k, c.flag(m, k, p, False)))
            continue
        lo, hi = _PARAMETER_RANGE[k]
        v = c.number(m, k, p, None, positive=False)
        assert v is not None
        if not lo <= v <= hi or (k == "toe_per_t" and v <= 0):
            raise c.fail(f"{p}.{k}", f"must be within {lo:g}..{hi:g}, got {v!r}")
        out.append((k, v))
    if "toe_per_t" in allowed and "toe_per_t" not in m:
        raise c.fail(f"{p}.toe_per_t", f"{q.product} is judged per toe ({q.standard}): declare the tonnes of oil "
                                       "equivalent per tonne of product")
    return tuple(sorted(out))


def _check_boundary(c: _Ctx, path: str, site: SiteSpec) -> SiteSpec:
    """Product tags and shares name declared products; an indicator's own meters are meters of
    the site attributed to its product; a corrected row has what its correction reads. Returns
    the site with each indicator meter written as "gateway/code"."""
    declared = tuple(dict.fromkeys(p.product for p in site.products))
    where: dict[str, list[tuple[str, MeterSpec, str]]] = {}
    for k, g in enumerate(site.gateways):
        for i, m in enumerate(g.meters):
            mp = f"{path}.gateways[{k}].meters[{i}]"
            where.setdefault(m.code, []).append((g.id, m, mp))
            where.setdefault(f"{g.id}/{m.code}", []).append((g.id, m, mp))
            if m.role not in ENERGY_ROLES:
                continue
            named = ([m.product] if m.product else []) + [p for p, _s in m.shares]
            for p in named:
                if p not in declared:
                    field_ = "product" if m.product else f"shares.{p}"
                    raise c.fail(f"{mp}.{field_}", f"meter {m.code!r} names product {p!r}, which site {site.code!r} "
                                                   f"does not declare (products: {', '.join(declared) or 'none'})")
    products: list[ProductSpec] = []
    for j, ps in enumerate(site.products):
        pp = f"{path}.products[{j}]"
        canon: list[str] = []
        for k, ref in enumerate(ps.meters):
            found = where.get(ref, [])
            if len(found) != 1:
                why = "is not a meter of this site" if not found else "is on several gateways: write gateway/code"
                raise c.fail(f"{pp}.meters[{k}]", f"{ref!r} {why}")
            gw, m, _mp = found[0]
            mine = m.product == ps.product or any(p == ps.product for p, _s in m.shares) or (
                m.product is None and not m.shares and len(declared) == 1)
            if m.role not in ENERGY_ROLES or not mine:
                raise c.fail(f"{pp}.meters[{k}]", f"meter {m.code!r} is not an energy meter of product {ps.product!r} "
                                                  "(tag it or give it a share)")
            canon.append(f"{gw}/{m.code}")
        q = find(ps.product, ps.indicator)
        if q is not None and q.correction is not None and q.correction.kind == "altitude":
            alt = site.altitude_m
            if alt is not None and alt > 1500 and site.atmospheric_pressure_pa is None:
                raise c.fail(f"{path}.atmospheric_pressure_pa", f"site {site.code!r} at {alt:g} m: {q.standard} corrects "
                                                                "the limit above 1 500 m with the local pressure P")
        products.append(ProductSpec(ps.product, ps.indicator, tuple(canon), ps.parameters))
    return replace(site, products=tuple(products))
