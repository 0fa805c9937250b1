"""The registry file format (docs/registry.md): parse and validate, no I/O beyond reading text.

``parse_registry(doc, source)`` turns the YAML document into frozen dataclasses and raises
``RegistryError`` naming the path of the first bad field (``enterprises[0].sites[1].pue_limit``).
Unknown keys are ignored on purpose: scenario files put ``sim:`` blocks (and top-level
``simulation:``/``faults:``) into the same document.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, cast, get_args

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

#: Ningxia's target for data centres (宁夏 computing-hub plan): PUE ≤ 1.2.
DEFAULT_PUE_LIMIT: Final = 1.2
#: Default PUE evaluation window: 30 days (GB 40879-2021 rates a full year; shorter is indicative).
DEFAULT_PUE_WINDOW_HOURS: Final = 720

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


@dataclass(frozen=True, slots=True)
class MeterSpec:
    code: str
    carrier: str
    unit: str
    role: MeterRole
    kind: MeterKind
    multiplier: float = 1.0
    rollover: float | None = None
    coefficient: str | None = None
    product: str | None = None


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
    pue_limit: float = DEFAULT_PUE_LIMIT
    pue_window_hours: int = DEFAULT_PUE_WINDOW_HOURS
    energy_budget_tce: float | None = None
    products: tuple[ProductSpec, ...] = ()
    gateways: tuple[GatewaySpec, ...] = ()


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
    return MeterSpec(
        code=c.req_text(d, "code", path, _CODE_RE),
        carrier=c.req_text(d, "carrier", path, _WORD_RE),
        unit=c.req_text(d, "unit", path),
        role=role,
        kind=cast(MeterKind, c.choice(d, "kind", path, METER_KINDS)),
        multiplier=multiplier,
        rollover=c.number(d, "rollover", path, None),
        coefficient=c.text(d, "coefficient", path, _WORD_RE, required=False),
        product=product,
    )


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
    out = []
    for i, raw in enumerate(c.seq(d, "products", path)):
        p = f"{path}.products[{i}]"
        item = c.mapping(raw, p)
        out.append(ProductSpec(product=c.req_text(item, "product", p, _WORD_RE),
                               indicator=c.req_text(item, "indicator", p, _WORD_RE)))
    return tuple(out)


def _site(c: _Ctx, raw: Any, path: str) -> SiteSpec:
    d = c.mapping(raw, path)
    window = c.number(d, "pue_window_hours", path, DEFAULT_PUE_WINDOW_HOURS)
    assert window is not None
    if window != int(window):
        raise c.fail(f"{path}.pue_window_hours", f"must be a whole number of hours, got {window!r}")
    pue_limit = c.number(d, "pue_limit", path, DEFAULT_PUE_LIMIT)
    if pue_limit is not None and pue_limit < 1.0:
        raise c.fail(f"{path}.pue_limit", f"a PUE is at least 1.0, got {pue_limit!r}")
    return SiteSpec(
        code=c.req_text(d, "code", path, _CODE_RE),
        name=c.req_text(d, "name", path),
        kind=cast(SiteKind, c.choice(d, "kind", path, SITE_KINDS)),
        new_build=c.flag(d, "new_build", path, False),
        pue_limit=DEFAULT_PUE_LIMIT if pue_limit is None else pue_limit,
        pue_window_hours=int(window),
        energy_budget_tce=c.number(d, "energy_budget_tce", path, None),
        products=_products(c, d, path),
        gateways=tuple(_gateway(c, g, f"{path}.gateways[{i}]") for i, g in enumerate(c.seq(d, "gateways", path))),
    )


def _enterprise(c: _Ctx, raw: Any, path: str) -> EnterpriseSpec:
    d = c.mapping(raw, path)
    ent_id = d.get("id")
    if not isinstance(ent_id, str):
        raise c.fail(f"{path}.id", f"must be an 18-character unified social credit code string, got {ent_id!r}")
    why = uscc.problem(ent_id)
    if why is not None:
        raise c.fail(f"{path}.id", f"{ent_id!r} is not a valid unified social credit code (GB 32100-2015): {why}")
    return EnterpriseSpec(
        id=ent_id,
        name=c.req_text(d, "name", path),
        city=cast(City, c.choice(d, "city", path, CITIES)),
        industry=cast(Industry, c.choice(d, "industry", path, INDUSTRIES)),
        sites=tuple(_site(c, s, f"{path}.sites[{i}]") for i, s in enumerate(c.seq(d, "sites", path))),
    )


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
