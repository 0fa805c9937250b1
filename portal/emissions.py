"""tCO₂ beside tce in the portal: the emission-factors file and its use on a site's series.

Owns (1) ``load_factors``: the CSV named by ``NXEM_EMISSION_FACTORS_FILE``, read once at
start-up, every bad row a ``ConfigError`` naming the file and line; and (2) ``beside_tce``:
the tCO₂ of each period of a site's energy series, from the same per-meter quantities the tce
is summed from, converted by ``analytics.emissions.tco2`` (the formula lives only there).

File format (UTF-8, a header, one factor per line; lines starting with ``#`` are comments)::

    key,tco2_per_unit,unit,source
    electricity,0.5366,MWh,"<guideline, year, region>"

* ``key``: a coefficient id of ``analytics.coefficients`` (``electricity_calorific``,
  ``natural_gas_gasfield``, …) or a carrier (``electricity``, ``heat``, …). A meter uses the
  factor of its coefficient id if there is one, else that of its carrier;
* ``tco2_per_unit``: tonnes of CO₂ per one ``unit``; ≥ 0 and finite;
* ``unit``: a meter unit known to ``analytics.coefficients.scale_unit`` (kWh, MWh, m3, MJ,
  GJ, kg, t, …) whose base unit (kWh, m3, MJ, kg) is the one the key is metered in: a gas
  factor per kWh is refused. It is stored per base unit (0.5366 t/MWh -> 0.0005366 t/kWh);
* ``source``: mandatory, the guideline and year the number comes from.

No factor is built in and none is loaded unless the setting names a file: without one the
series carry ``tco2 = null`` and say so; a counted meter without a factor gives ``null`` with
the reason, never 0.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Final

from analytics.coefficients import COEFFICIENTS, ConversionError, scale_unit
from analytics.emissions import EmissionFactor, EmissionFactorError, factor_for, tco2
from analytics.site_energy import MeterSpec, WindowEnergy
from nxem.errors import ConfigError
from nxem.localtime import LOCAL_TZ

SETTING: Final = "NXEM_EMISSION_FACTORS_FILE"
HEADER: Final = ("key", "tco2_per_unit", "unit", "source")
NOT_CONFIGURED: Final = "no emission factors configured"
_LOCAL: Final = LOCAL_TZ


def _key_base_units() -> dict[str, frozenset[str]]:
    """Key -> base units it may be given in: a coefficient id has exactly its row's; a carrier
    those of its rows (steam also MJ: steam metered as heat is booked with the heat row)."""
    out: dict[str, set[str]] = {}
    for row in COEFFICIENTS.values():
        out.setdefault(row.key, set()).add(row.base_unit)
        out.setdefault(row.carrier, set()).add(row.base_unit)
    out.setdefault("steam", set()).add("MJ")
    return {k: frozenset(v) for k, v in out.items()}


KEY_BASE_UNITS: Final = _key_base_units()


@dataclass(frozen=True, slots=True)
class FactorRow:
    """One line of the file: the factor per base unit, and what was written."""

    key: str
    factor: EmissionFactor  # tCO₂ per base unit
    base_unit: str
    value: float  # as written, tCO₂ per ``unit``
    unit: str
    line: int


@dataclass(frozen=True)
class EmissionFactors:
    """The loaded file: factors by key."""

    path: Path
    rows: Mapping[str, FactorRow]

    def for_meter(self, spec: MeterSpec) -> FactorRow | None:
        """The row ``analytics.emissions.tco2`` uses for ``spec`` (the same ``factor_for``)."""
        return factor_for(self.rows, spec)

    def mapping(self) -> dict[str, EmissionFactor]:
        return {k: r.factor for k, r in self.rows.items()}


def _row(path: Path, line: int, fields: list[str]) -> FactorRow:
    where = f"{SETTING}: {path.name}:{line}"
    if len(fields) != len(HEADER):
        raise ConfigError(f"{where}: expected {len(HEADER)} fields ({','.join(HEADER)}), got {len(fields)}")
    key, raw_value, unit, source = (f.strip() for f in fields)
    allowed = KEY_BASE_UNITS.get(key)
    if allowed is None:
        raise ConfigError(f"{where}: unknown key {key!r}: not a coefficient id or carrier of analytics.coefficients")
    try:
        value = float(raw_value)
    except ValueError:
        raise ConfigError(f"{where}: tco2_per_unit {raw_value!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"{where}: tco2_per_unit must be a finite number >= 0, got {raw_value!r}")
    try:
        base, scale = scale_unit(unit)
    except ConversionError as err:
        raise ConfigError(f"{where}: {err}") from None
    if base not in allowed:
        raise ConfigError(f"{where}: unit {unit!r} (per {base}) does not fit {key!r}, which is metered per "
                          f"{' or '.join(sorted(allowed))}")
    if not source:
        raise ConfigError(f"{where}: source is empty: name the guideline and year the factor comes from")
    return FactorRow(key, EmissionFactor(value / scale, source), base, value, unit, line)


def load_factors(path: Path) -> EmissionFactors:
    """Read and check the factors file; ``ConfigError`` (file and line) on the first bad row."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as err:
        raise ConfigError(f"{SETTING}: cannot read {path}: {err.strerror or err}") from err
    except UnicodeDecodeError as err:
        raise ConfigError(f"{SETTING}: {path} is not UTF-8: {err}") from err
    reader = csv.reader(text.splitlines())
    rows: dict[str, FactorRow] = {}
    header_seen = False
    for fields in reader:
        line = reader.line_num
        if not fields or not "".join(fields).strip() or fields[0].lstrip().startswith("#"):
            continue
        if not header_seen:
            if tuple(f.strip() for f in fields) != HEADER:
                raise ConfigError(f"{SETTING}: {path.name}:{line}: header must be {','.join(HEADER)},"
                                  f" got {','.join(fields)}")
            header_seen = True
            continue
        row = _row(path, line, fields)
        first = rows.get(row.key)
        if first is not None:
            raise ConfigError(f"{SETTING}: {path.name}:{line}: duplicate key {row.key!r} (first on line {first.line})")
        rows[row.key] = row
    if not rows:
        raise ConfigError(f"{SETTING}: {path.name} holds no factors")
    return EmissionFactors(path, rows)


# ----------------------------------------------------------------- a site's series


@dataclass(frozen=True)
class SiteEmissions:
    """tCO₂ per period start (``None`` with ``note`` when it cannot be given) and the factors
    used, per counted meter."""

    tco2: Mapping[date, float] | None
    note: str | None
    used: Sequence[dict[str, Any]]


def meter_spec(m: Mapping[str, Any]) -> MeterSpec:
    """MeterSpec of a ``meters`` row (``queries.tce_meters``)."""
    return MeterSpec(meter_id=int(m["id"]), site_id=int(m["site_id"]), carrier=str(m["carrier"]), unit=str(m["unit"]),
                     role=m["role"], kind=m["kind"], multiplier=float(m["multiplier"]),
                     coefficient=m["coefficient"], product=m["product"])


def _window(start: date, qty: Mapping[int, float]) -> WindowEnergy:
    """A WindowEnergy carrying only the per-meter quantities (all ``tco2`` reads); the kgce
    fields stay 0 because the tce beside it comes from the SQL sum, not from here."""
    t = datetime.combine(start, time(), _LOCAL)
    return WindowEnergy(t, t, 0.0, 0.0, 0.0, 0.0, 0.0, {}, {}, {}, qty, {}, {}, False)


def beside_tce(periods: Sequence[date], meters: Sequence[Mapping[str, Any]],
               quantities: Sequence[Mapping[str, Any]], factors: EmissionFactors | None) -> SiteEmissions:
    """tCO₂ of each period start in ``periods``.

    ``meters``: the site's meters that its tce counts (``queries.tce_meters``); ``quantities``:
    rows ``{period_start, meter_id, qty}`` in the meter's unit × multiplier
    (``queries.energy_by_meter``), the quantities the tce is summed from.
    """
    if factors is None:
        return SiteEmissions(None, NOT_CONFIGURED, ())
    specs = {s.meter_id: s for s in map(meter_spec, meters)}
    codes = {int(m["id"]): str(m.get("code") or m["id"]) for m in meters}
    used: list[dict[str, Any]] = []
    for mid, spec in specs.items():
        row = factors.for_meter(spec)
        name = f"meter {codes[mid]} ({spec.coefficient or spec.carrier}, {spec.unit})"
        if row is None:
            return SiteEmissions(None, f"no emission factor for {name} in {factors.path.name}", ())
        try:
            base = scale_unit(spec.unit)[0]
        except ConversionError as err:
            return SiteEmissions(None, f"{name}: {err}", ())
        if base != row.base_unit:
            return SiteEmissions(None, f"emission factor {row.key!r} is per {row.base_unit} but {name} is metered"
                                       f" per {base}", ())
        used.append({"meter_id": mid, "meter_code": codes[mid], "key": row.key, "tco2_per_unit": row.value,
                     "unit": row.unit, "source": row.factor.source})
    by_period: dict[date, dict[int, float]] = {p: {} for p in periods}
    for q in quantities:
        if q["qty"] is not None and int(q["meter_id"]) in specs:
            per = by_period.setdefault(q["period_start"], {})
            per[int(q["meter_id"])] = per.get(int(q["meter_id"]), 0.0) + float(q["qty"])
    mapping = factors.mapping()
    try:
        out = {p: tco2(_window(p, qty), specs, mapping) for p, qty in by_period.items()}
    except (EmissionFactorError, ConversionError) as err:  # checked above; kept as the last word
        return SiteEmissions(None, str(err), ())
    return SiteEmissions(out, None, used)
