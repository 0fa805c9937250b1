"""Scenario files: the registry format plus ``sim:`` blocks, ``simulation:`` and ``faults:``.

A scenario is a registry document (the one ``nxem registry load`` reads; it ignores every
``sim`` key and the top-level ``simulation`` and ``faults`` blocks) extended with what the
simulators need. ``parse_scenario`` is pure (``now`` is passed in); ``load_scenario`` reads a
YAML file. See ``simulators/README.md`` for the format with an example.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Final, Literal, cast, get_args

import yaml

from simulators import uscc
from simulators.reference import COEFFICIENTS, QUOTAS, QuotaLevel
from simulators.sites import DataCentreSim, PlantSim

Role = Literal["consumed", "exported", "product_output", "it_load", "total_facility"]
MeterKind = Literal["register", "interval"]
SiteKind = Literal["data_centre", "plant"]
TimeMode = Literal["realtime", "accelerated", "backfill"]
FaultKind = Literal[
    "offline", "stuck", "counter_reset", "rollover", "spike", "negative", "clock_skew",
    "duplicate", "out_of_order", "malformed", "reconnect_storm",
]
CITIES: Final = ("银川", "石嘴山", "吴忠", "固原", "中卫", "宁东")
INDUSTRIES: Final = ("data_centre", "calcium_carbide", "methanol", "coke", "ferroalloy", "aluminium", "cement", "other")
GATEWAY_ONLY_FAULTS: Final = frozenset({"duplicate", "out_of_order", "malformed", "reconnect_storm"})
REGISTER_ONLY_FAULTS: Final = frozenset({"counter_reset", "rollover"})
MALFORMED_VARIANTS: Final = ("truncated", "not_utf8", "bad_schema", "bad_reading")


class ScenarioError(ValueError):
    """The scenario document is invalid; the message names the offending key."""


@dataclass(frozen=True, slots=True)
class Fault:
    """One fault on a gateway (``meter`` None: all its meters) during [start, end)."""

    kind: FaultKind
    gateway: str
    meter: str | None
    start: datetime
    end: datetime
    factor: float = 10.0  # spike: multiple of the normal value/increment
    skew_s: float = 0.0  # clock_skew: seconds added to ts (negative: late clock)
    count: int = 1  # duplicate: extra copies; reconnect_storm: reconnects per interval
    probability: float = 1.0  # share of the window's intervals affected (seeded)
    variant: str | None = None  # malformed: one of MALFORMED_VARIANTS (None: rotate)

    def active(self, t: datetime) -> bool:
        return self.start <= t < self.end


@dataclass(frozen=True, slots=True)
class Meter:
    code: str
    carrier: str
    unit: str
    role: Role
    kind: MeterKind
    multiplier: float
    rollover: float
    coefficient: str | None
    product: str | None
    source: str  # which site quantity it reads (see sites.py)
    share: float = 1.0
    initial: float = 0.0  # register start value, register units
    resolution: float = 0.01  # register/interval resolution, register units
    #: its reading interval (registry ``interval``): the meter reports at every tick that is a
    #: whole number of its intervals after the start (an interval meter the quantity since its
    #: last report); ``None``: every tick of the simulation
    interval: timedelta | None = None

    def due(self, start: datetime, tick: datetime) -> bool:
        return self.interval is None or (tick - start) % self.interval == timedelta(0)


@dataclass(frozen=True, slots=True)
class Gateway:
    id: str
    meters: tuple[Meter, ...]
    faults: tuple[Fault, ...] = ()


@dataclass(frozen=True, slots=True)
class Site:
    code: str
    name: str
    kind: SiteKind
    new_build: bool
    pue_limit: float | None
    pue_window_hours: float
    energy_budget_tce: float | None
    products: tuple[str, ...]
    model: DataCentreSim | PlantSim | None
    gateways: tuple[Gateway, ...]


@dataclass(frozen=True, slots=True)
class Enterprise:
    id: str
    name: str
    city: str
    industry: str
    sites: tuple[Site, ...]


@dataclass(frozen=True, slots=True)
class Simulation:
    start: datetime
    end: datetime
    interval: timedelta = timedelta(minutes=15)
    mode: TimeMode = "backfill"
    speed: float = 60.0  # accelerated: simulated seconds per wall second
    seed: int = 0

    @property
    def ticks(self) -> int:
        """Number of intervals; one report at the end of each: start+interval, …, end."""
        return int((self.end - self.start) // self.interval)


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    enterprises: tuple[Enterprise, ...]
    simulation: Simulation
    document: Mapping[str, Any] = field(repr=False, default_factory=dict)  # as loaded (for dumping)

    def gateways(self) -> list[tuple[Enterprise, Site, Gateway]]:
        return [(e, s, g) for e in self.enterprises for s in e.sites for g in s.gateways]


_DURATION = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(s|m|min|h|d|w|y)\s*$")
_UNIT_S: Final = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}


def parse_duration(value: object, key: str) -> timedelta:
    """``15m``, ``2h``, ``30d``, ``1y`` (365 d) or a number of seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=float(value))
    if isinstance(value, str) and (m := _DURATION.match(value)):
        return timedelta(seconds=float(m.group(1)) * _UNIT_S[m.group(2)])
    raise ScenarioError(f"{key}: {value!r} is not a duration like 15m, 2h, 30d, 1y")


def _aware(value: object, key: str, base: datetime | None = None) -> datetime:
    """A timezone-aware datetime, or ``+<duration>`` after ``base`` (the simulation start)."""
    if isinstance(value, str) and value.strip().startswith("+") and base is not None:
        return base + parse_duration(value.strip()[1:], key)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError as err:
            raise ScenarioError(f"{key}: {value!r} is not an ISO 8601 datetime") from err
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ScenarioError(f"{key}: {value.isoformat()} has no UTC offset (write +08:00)")
        return value
    raise ScenarioError(f"{key}: {value!r} is not a datetime")


def _floor(t: datetime, step: timedelta) -> datetime:
    epoch = datetime(2000, 1, 1, tzinfo=timezone.utc)
    return epoch + ((t - epoch) // step) * step


def _choice(value: object, allowed: tuple[str, ...], key: str) -> str:
    if value not in allowed:
        raise ScenarioError(f"{key}: {value!r} is not one of {', '.join(allowed)}")
    return str(value)


def _num(d: Mapping[str, Any], name: str, key: str, default: float | None = None) -> float:
    v = d.get(name, default)
    if v is None or isinstance(v, bool) or not isinstance(v, int | float):
        raise ScenarioError(f"{key}.{name}: {v!r} is not a number")
    return float(v)


def parse_simulation(d: Mapping[str, Any], now: datetime) -> Simulation:
    interval = parse_duration(d.get("interval", "15m"), "simulation.interval")
    if interval <= timedelta(0):
        raise ScenarioError("simulation.interval must be positive")
    mode = cast(TimeMode, _choice(d.get("mode", "backfill"), get_args(TimeMode), "simulation.mode"))
    duration = parse_duration(d["duration"], "simulation.duration") if "duration" in d else None
    if "start" in d:
        start = _aware(d["start"], "simulation.start")
    elif mode == "realtime":
        start = _floor(now, interval)
    elif duration is not None:  # backfill/accelerated: end at the last full interval before now
        start = _floor(now, interval) - duration
    else:
        raise ScenarioError("simulation: give start, or duration")
    if "end" in d:
        end = _aware(d["end"], "simulation.end", start)
    elif duration is not None:
        end = start + duration
    else:
        raise ScenarioError("simulation: give end or duration")
    if end < start:
        raise ScenarioError("simulation.end is before simulation.start")
    speed = _num(d, "speed", "simulation", 60.0)
    return Simulation(start, end, interval, mode, speed, int(d.get("seed", 0)))


def _fault(d: Mapping[str, Any], gateway: str, meter: str | None, sim: Simulation, key: str) -> Fault:
    kind = cast(FaultKind, _choice(d.get("kind"), get_args(FaultKind), f"{key}.kind"))
    start = _aware(d.get("start", sim.start), f"{key}.start", sim.start)
    if "end" in d:
        end = _aware(d["end"], f"{key}.end", start)
    elif "duration" in d:
        end = start + parse_duration(d["duration"], f"{key}.duration")
    else:
        end = start + sim.interval  # one interval
    meter = d.get("meter", meter)
    if kind in GATEWAY_ONLY_FAULTS and meter is not None:
        raise ScenarioError(f"{key}: a {kind} fault applies to a whole gateway, not meter {meter!r}")
    variant = d.get("variant")
    if variant is not None:
        _choice(variant, MALFORMED_VARIANTS, f"{key}.variant")
    probability = _num(d, "probability", key, 1.0)
    if not 0.0 <= probability <= 1.0:
        raise ScenarioError(f"{key}.probability must be within 0..1")
    return Fault(kind, gateway, meter, start, end, factor=_num(d, "factor", key, 10.0),
                 skew_s=_num(d, "skew_s", key, 0.0), count=int(d.get("count", 1)),
                 probability=probability, variant=variant)


def _source(site_kind: str, role: str, carrier: str, coefficient: str | None, key: str) -> str:
    if role == "it_load":
        return "it"
    if role == "total_facility":
        return "facility"
    if role == "product_output":
        return "product"
    if site_kind == "data_centre" and role == "consumed" and carrier == "electricity":
        return "facility"
    if coefficient is None or coefficient not in COEFFICIENTS:
        raise ScenarioError(f"{key}.coefficient: {coefficient!r} is not one of {', '.join(COEFFICIENTS)}")
    return f"{role}:{coefficient}"


def _meter(d: Mapping[str, Any], site_kind: str, gw: str, sim: Simulation, key: str) -> tuple[Meter, list[Fault]]:
    s = d.get("sim") or {}
    role = _choice(d.get("role"), get_args(Role), f"{key}.role")
    carrier = str(d.get("carrier", ""))
    coefficient = d.get("coefficient")
    code = d.get("code")
    if not isinstance(code, str) or not 1 <= len(code) <= 64:
        raise ScenarioError(f"{key}.code: {code!r} must be 1..64 characters")
    if not d.get("unit"):
        raise ScenarioError(f"{key}.unit: missing (kWh, t, m3, GJ …)")
    source = s.get("source") or _source(site_kind, role, carrier, coefficient, key)
    interval = parse_duration(d["interval"], f"{key}.interval") if d.get("interval") is not None else None
    if interval is not None and (interval <= timedelta(0) or interval % sim.interval):
        raise ScenarioError(f"{key}.interval: {d['interval']!r} must be a positive multiple of the simulation"
                            f" interval ({sim.interval})")
    meter = Meter(
        code=code, carrier=carrier, unit=str(d.get("unit", "")), role=cast(Role, role),
        kind=cast(MeterKind, _choice(d.get("kind", "register"), get_args(MeterKind), f"{key}.kind")),
        multiplier=_num(d, "multiplier", key, 1.0), rollover=_num(d, "rollover", key, 1e9),
        coefficient=coefficient, product=d.get("product"), source=source,
        share=_num(s, "share", f"{key}.sim", 1.0), initial=_num(s, "initial", f"{key}.sim", 0.0),
        resolution=_num(s, "resolution", f"{key}.sim", 0.01), interval=interval,
    )
    if meter.multiplier <= 0 or meter.rollover <= 0 or meter.resolution <= 0:
        raise ScenarioError(f"{key}: multiplier, rollover and sim.resolution must be positive")
    faults = [_fault(f, gw, code, sim, f"{key}.sim.faults[{i}]") for i, f in enumerate(s.get("faults") or [])]
    for f in faults:
        if f.kind in GATEWAY_ONLY_FAULTS:
            raise ScenarioError(f"{key}.sim.faults: {f.kind} belongs on a gateway or in top-level faults")
        if f.kind in REGISTER_ONLY_FAULTS and meter.kind != "register":
            raise ScenarioError(f"{key}.sim.faults: {f.kind} needs a register meter")
    return meter, faults


def _model(d: Mapping[str, Any], kind: str, products: tuple[str, ...], key: str) -> DataCentreSim | PlantSim | None:
    s = d.get("sim")
    if not s:
        return None
    if kind == "data_centre":
        names = DataCentreSim.__slots__
        extra = set(s) - set(names)
        if extra:
            raise ScenarioError(f"{key}.sim: unknown keys {sorted(extra)}")
        if "it_capacity_mw" not in s:
            raise ScenarioError(f"{key}.sim.it_capacity_mw: missing")
        values: dict[str, Any] = {k: (float(v) if v is not None else None) for k, v in s.items()}
        return DataCentreSim(**values)
    product = s.get("product") or (products[0] if products else None)
    if product not in QUOTAS:
        raise ScenarioError(f"{key}.sim.product: {product!r} is not one of {', '.join(QUOTAS)}")
    level = s.get("level", "compliant")
    if level is not None:
        _choice(level, ("advanced", "compliant", "marginal", "violating"), f"{key}.sim.level")
    shares = s.get("carrier_shares")
    return PlantSim(
        product=product, output_t_per_h=_num(s, "output_t_per_h", f"{key}.sim"),
        level=cast(QuotaLevel | None, level), specific_kgce_per_t=s.get("specific_kgce_per_t"),
        carrier_shares=tuple((str(k), float(v)) for k, v in shares.items()) if shares else None,
        export_kgce_per_t=s.get("export_kgce_per_t"), daily_swing=float(s.get("daily_swing", 0.0)),
    )


def parse_scenario(doc: Mapping[str, Any], now: datetime, name: str = "scenario") -> Scenario:
    """Validate a scenario document; ``now`` fills a missing start (pure: no clock read)."""
    if "simulation" not in doc:
        raise ScenarioError("simulation: missing (start/end or duration, interval, mode)")
    sim = parse_simulation(doc["simulation"], now)
    enterprises: list[Enterprise] = []
    gw_faults: dict[str, list[Fault]] = {}
    meters_of: dict[str, set[str]] = {}
    for ei, e in enumerate(doc.get("enterprises") or []):
        ek = f"enterprises[{ei}]"
        eid = str(e.get("id"))
        if not uscc.is_valid(eid):
            hint = f" (check character should be {uscc.check_char(eid[:17])!r})" if len(eid) == 18 and all(
                c in uscc.CHARSET for c in eid) else ""
            raise ScenarioError(f"{ek}.id: {eid!r} is not a valid unified social credit code (GB 32100-2015){hint}")
        sites: list[Site] = []
        for si, s in enumerate(e.get("sites") or []):
            sk = f"{ek}.sites[{si}]"
            kind = _choice(s.get("kind"), ("data_centre", "plant"), f"{sk}.kind")
            products = tuple(str(p["product"]) for p in s.get("products") or [])
            gateways: list[Gateway] = []
            for gi, g in enumerate(s.get("gateways") or []):
                gk = f"{sk}.gateways[{gi}]"
                gid = str(g.get("id"))
                if gid in gw_faults:
                    raise ScenarioError(f"{gk}.id: gateway {gid!r} appears twice")
                faults = gw_faults.setdefault(gid, [])
                meters: list[Meter] = []
                for mi, m in enumerate(g.get("meters") or []):
                    meter, mf = _meter(m, kind, gid, sim, f"{gk}.meters[{mi}]")
                    if meter.code in {x.code for x in meters}:
                        raise ScenarioError(f"{gk}.meters[{mi}].code: {meter.code!r} appears twice")
                    meters.append(meter)
                    faults.extend(mf)
                meters_of[gid] = {m.code for m in meters}
                faults.extend(_fault(f, gid, None, sim, f"{gk}.sim.faults[{i}]")
                              for i, f in enumerate((g.get("sim") or {}).get("faults") or []))
                gateways.append(Gateway(gid, tuple(meters)))
            window = s.get("pue_window_hours")
            sites.append(Site(
                code=str(s.get("code")), name=str(s.get("name", s.get("code"))), kind=cast(SiteKind, kind),
                new_build=bool(s.get("new_build", False)),
                pue_limit=float(s["pue_limit"]) if s.get("pue_limit") is not None else None,
                pue_window_hours=float(window) if window is not None else 168.0,  # the registry's default
                energy_budget_tce=float(s["energy_budget_tce"]) if s.get("energy_budget_tce") is not None else None,
                products=products, model=_model(s, kind, products, sk), gateways=tuple(gateways),
            ))
        enterprises.append(Enterprise(
            id=eid, name=str(e.get("name", eid)), city=_choice(e.get("city"), CITIES, f"{ek}.city"),
            industry=_choice(e.get("industry", "other"), INDUSTRIES, f"{ek}.industry"), sites=tuple(sites),
        ))
    for i, f in enumerate(doc.get("faults") or []):
        gid = f.get("gateway")
        if gid not in gw_faults:
            raise ScenarioError(f"faults[{i}].gateway: {gid!r} is not a gateway of this scenario")
        fault = _fault(f, gid, None, sim, f"faults[{i}]")
        if fault.meter is not None and fault.meter not in meters_of[gid]:
            raise ScenarioError(f"faults[{i}].meter: {fault.meter!r} is not a meter of gateway {gid}")
        gw_faults[gid].append(fault)
    enterprises = [
        Enterprise(e.id, e.name, e.city, e.industry, tuple(
            Site(s.code, s.name, s.kind, s.new_build, s.pue_limit, s.pue_window_hours, s.energy_budget_tce,
                 s.products, s.model, tuple(Gateway(g.id, g.meters, tuple(gw_faults[g.id])) for g in s.gateways))
            for s in e.sites))
        for e in enterprises
    ]
    return Scenario(str(doc.get("name", name)), tuple(enterprises), sim, doc)


def load_scenario(path: str | Path, now: datetime | None = None) -> Scenario:
    """Read and validate a YAML scenario file."""
    p = Path(path)
    with p.open(encoding="utf-8") as fh:
        doc = yaml.safe_load(fh)
    if not isinstance(doc, dict):
        raise ScenarioError(f"{p}: the top level must be a mapping")
    return parse_scenario(doc, now or datetime.now(timezone.utc), name=p.stem)


def dump_scenario(doc: Mapping[str, Any]) -> str:
    """YAML text of a scenario document (Chinese names kept readable)."""
    return yaml.safe_dump(dict(doc), allow_unicode=True, sort_keys=False, width=120)


def data_centre_document(
    enterprise_id: str, site_code: str, gateway_id: str, pue: float, it_kw: float,
    start: datetime, hours: float, interval_minutes: int = 15, pue_limit: float = 1.2,
    city: str | None = None,
) -> dict[str, Any]:
    """The scenario document of one data centre at a fixed IT load and PUE (see below)."""
    if city is None:
        division = enterprise_id[2:8]
        city = next((c for c, d in uscc.DIVISIONS.items() if d == division), "中卫")
    return {
        "name": f"dc-{site_code}",
        "simulation": {"start": start.isoformat(), "duration": f"{hours}h",
                       "interval": f"{interval_minutes}m", "mode": "backfill"},
        "enterprises": [{
            "id": enterprise_id, "name": f"模拟数据中心 {site_code}", "city": city, "industry": "data_centre",
            "sites": [{
                "code": site_code, "name": f"数据中心 {site_code}", "kind": "data_centre", "new_build": False,
                "pue_limit": pue_limit, "pue_window_hours": 720, "energy_budget_tce": None, "products": [],
                "sim": {"it_capacity_mw": it_kw / 1000.0, "utilisation": 1.0, "pue": pue},
                "gateways": [{"id": gateway_id, "meters": [
                    {"code": "it-main", "carrier": "electricity", "unit": "kWh", "role": "it_load",
                     "kind": "register", "multiplier": 1, "rollover": 1_000_000_000,
                     "coefficient": "electricity_calorific", "product": None},
                    {"code": "facility-main", "carrier": "electricity", "unit": "kWh", "role": "total_facility",
                     "kind": "register", "multiplier": 1, "rollover": 1_000_000_000,
                     "coefficient": "electricity_calorific", "product": None},
                ]}],
            }],
        }],
    }


def data_centre_scenario(
    enterprise_id: str, site_code: str, gateway_id: str, pue: float, it_kw: float,
    start: datetime, hours: float, interval_minutes: int = 15, pue_limit: float = 1.2,
) -> Scenario:
    """One data centre with meters ``it-main`` and ``facility-main`` (registers, kWh).

    IT load is constant ``it_kw`` (utilisation 1, no daily swing) and PUE is exactly ``pue``,
    so over ``hours`` the IT register advances ``it_kw × hours`` kWh and the facility register
    ``it_kw × hours × pue`` kWh. The city follows the code's division (中卫 by default).
    """
    doc = data_centre_document(enterprise_id, site_code, gateway_id, pue, it_kw, start, hours,
                               interval_minutes, pue_limit)
    return parse_scenario(doc, now=start, name=str(doc["name"]))
