"""Pydantic models and parameter types of the JSON API: they document it in OpenAPI and
validate its input, so nothing out of range reaches SQL -- ids within their column's integer
type, days within 2000-01-01..2100-12-31 written as YYYY-MM-DD, no NUL (which PostgreSQL text
cannot hold) in any text, every length bounded -- and every such limit is in the schema."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Final, Literal

from fastapi import Path, Query
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from portal.roles import Role
from portal.views import MAX_RANGE_DAYS as MAX_RANGE_DAYS  # longer start..end: 400 (views.date_range)

Severity = Literal["critical", "major", "minor", "warning"]
Period = Literal["15min", "hour", "day", "month", "year", "rolling12"]

#: Largest value of PostgreSQL ``integer`` (``serial`` ids: sites, meters) and ``bigint``
#: (``bigserial`` ids: alerts, transitions).
INT4_MAX: Final = 2**31 - 1
INT8_MAX: Final = 2**63 - 1
#: The days the portal answers for; a day outside is refused (422), never turned into a date.
FIRST_DAY: Final = date(2000, 1, 1)
LAST_DAY: Final = date(2100, 12, 31)
#: Text without NUL (PostgreSQL text cannot hold it; the database would refuse it with an error).
NO_NUL: Final = r"^[^\x00]*$"
#: Unified social credit code (GB 32100-2015): 18 characters, no I, O, S, V, Z.
USCC: Final = r"^[0-9A-HJ-NP-RTUWXY]{18}$"
_DAY_PATTERN: Final = r"^(20[0-9]{2}|2100)-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"
_DAY_RE: Final = re.compile(_DAY_PATTERN)


def _day_text(value: object) -> object:
    if isinstance(value, str) and not _DAY_RE.fullmatch(value):
        raise ValueError(f"a day is written YYYY-MM-DD, from {FIRST_DAY} to {LAST_DAY}")
    if not isinstance(value, (str, date)) or isinstance(value, datetime):
        raise ValueError("a day is written YYYY-MM-DD")
    return value


def _day_range(value: date) -> date:
    if not FIRST_DAY <= value <= LAST_DAY:
        raise ValueError(f"a day from {FIRST_DAY} to {LAST_DAY}")
    return value


#: A local (Asia/Shanghai) day, ``YYYY-MM-DD`` within ``FIRST_DAY``..``LAST_DAY`` (no
#: timestamps: ``0`` is not 1970-01-01).
Day = Annotated[date, BeforeValidator(_day_text), AfterValidator(_day_range),
                WithJsonSchema({"type": "string", "format": "date", "pattern": _DAY_PATTERN,
                                "description": f"a day, YYYY-MM-DD, {FIRST_DAY} to {LAST_DAY}"})]

_RANGE_NOTE: Final = (f" Days from {FIRST_DAY} to {LAST_DAY}; start after end, or a range longer than"
                      f" {MAX_RANGE_DAYS} days, is refused with 400.")
Start = Annotated[Day | None, Query(description="first local (Asia/Shanghai) day, default: six days before end."
                                                + _RANGE_NOTE)]
End = Annotated[Day | None, Query(description="last local day, inclusive; default: today." + _RANGE_NOTE)]

SiteId = Annotated[int, Path(ge=1, le=INT4_MAX, description="site id")]
MeterId = Annotated[int, Path(ge=1, le=INT4_MAX, description="meter id")]
AlertId = Annotated[int, Path(ge=1, le=INT8_MAX, description="alert id")]
SiteFilter = Annotated[int | None, Query(ge=1, le=INT4_MAX, description="only this site")]
MeterFilter = Annotated[int | None, Query(ge=1, le=INT4_MAX, description="this meter")]
EnterpriseFilter = Annotated[str | None, Query(
    pattern=r"^([0-9A-HJ-NP-RTUWXY]{18})?$", description="only this enterprise (unified social credit code,"
    " GB 32100-2015); an enterprise user may name only its own (403)")]
City = Annotated[str | None, Query(max_length=64, pattern=NO_NUL, description="only enterprises in this city")]
Industry = Annotated[str | None, Query(max_length=64, pattern=NO_NUL, description="only enterprises of this industry")]
Rule = Annotated[str | None, Query(max_length=64, pattern=NO_NUL, description="only alerts of this rule")]
SeverityFilter = Annotated[str | None, Query(pattern="^(critical|major|minor|warning)?$",
                                             description="only alerts of this severity")]
StatusFilter = Annotated[str | None, Query(pattern="^(active|cleared|unacknowledged|acknowledged)?$",
                                           description="only active, cleared, unacknowledged or acknowledged alerts")]
Product = Annotated[str, Query(min_length=1, max_length=64, pattern=NO_NUL,
                               description="product of the quota (e.g. calcium_carbide)")]
Indicator = Annotated[str | None, Query(max_length=64, pattern=NO_NUL,
                                        description="a quota indicator of the product (analytics/data/quotas.csv,"
                                                    " e.g. kgce_per_t); default: the first the site declares")]


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True, from_attributes=True)


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=63, pattern=NO_NUL)
    password: str = Field(min_length=1, max_length=1024, pattern=NO_NUL)


class TokenOut(_Out):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_at: datetime
    role: str
    enterprise_id: str | None


class MeOut(_Out):
    username: str
    role: str
    enterprise_id: str | None
    csrf_token: str | None = Field(None, description="send as X-CSRF-Token with cookie-authenticated POSTs")


class EnterpriseOut(_Out):
    id: str = Field(description="18-character unified social credit code")
    name: str
    city: str
    industry: str


class SiteOut(_Out):
    id: int
    enterprise_id: str
    code: str
    name: str
    kind: str
    city: str
    industry: str
    pue_limit: float | None = None


class MeterOut(_Out):
    id: int
    site_id: int
    code: str
    carrier: str
    unit: str
    role: str
    kind: str


class ReadingPoint(_Out):
    ts: datetime = Field(description="start of the bucket, UTC")
    avg: float
    min: float
    max: float
    n: int


class ReadingsOut(_Out):
    meter_id: int
    unit: str
    bucket_s: int = Field(description="downsampling bucket width in seconds")
    points: list[ReadingPoint]


class EnergyPoint(_Out):
    period_start: datetime | date = Field(
        description="15min, hour: start of the quarter-hour or hour, local time (+08:00); day, month, year: the"
                    " local (Asia/Shanghai) day, month or year start; rolling12: the local day the rolling 12"
                    " months end at (inclusive)")
    tce: float | None = Field(description="comprehensive energy consumption, tonnes of standard coal; null when a"
                                          " counted meter's carrier/unit has no GB/T 2589 conversion (never a"
                                          " smaller number)")
    tco2: float | None = Field(None, description="CO₂ emissions of the same meters and quantities, tonnes, from the"
                                                 " configured emission factors; null when none are configured or"
                                                 " a counted meter has no factor (see tco2_note), never 0 for that")
    tco2_note: str | None = Field(None, description="why tco2 is null")
    window_start: date | None = Field(None, description="rolling12 only: first local day of the window (365 local"
                                                        " days up to and including period_start, as the data-centre"
                                                        " 10 000 tce rule dc_annual_tce counts them)")
    data_from: date | None = Field(None, description="rolling12 only: first local day in the window with data; after"
                                                     " window_start the sum is over the data held, a lower bound")


class EmissionFactorUsed(_Out):
    meter_id: int
    meter_code: str
    key: str = Field(description="coefficient id or carrier the factor is given for")
    tco2_per_unit: float = Field(description="tonnes of CO₂ per unit, as configured")
    unit: str
    source: str = Field(description="the guideline and year the factor comes from")


class EnergyOut(_Out):
    site_id: int
    period: Period
    points: list[EnergyPoint]
    tco2_note: str | None = Field(None, description="why tco2 is null (the same for every point of the site)")
    emission_factors: list[EmissionFactorUsed] = Field(
        default_factory=list, description="the factor applied to each meter the tce counts (empty without tco2)")
    electricity: str = Field(description="how electricity is valued in the tce (NXEM_ELECTRICITY_BASIS: 当量值 or"
                                         " 等价值, GB/T 2589-2020)")


class PuePoint(_Out):
    period_start: date
    pue: float | None


class PueOut(_Out):
    site_id: int
    pue_limit: float | None
    points: list[PuePoint]


class UnitProductPoint(_Out):
    period_start: date
    value: float | None = Field(description="the indicator's unit consumption, in its unit; null below the quota"
                                            " rule's minimum output")
    energy: float = Field(description="numerator: the product's own energy, kgce (kWh for 电耗 indicators), its"
                                      " meters weighted by their shares")
    output: float = Field(description="denominator: the product's output in the indicator's output unit")
    coverage: float = Field(description="smallest share of the day its meters' data cover (the rule judges ≥ 0.9)")


class UnitProductOut(_Out):
    site_id: int
    product: str
    indicator: str | None = Field(None, description="the quota indicator (analytics/data/quotas.csv)")
    indicators: list[str] = Field(default_factory=list, description="the product's indicators the site declares")
    indicator_cn: str | None = None
    unit: str | None = Field(None, description="unit of value and levels: kgce/t, kWh/t, kgce/kg, kgce/m3, kgce/toe")
    numerator: str | None = Field(None, description="energy | energy_excl_feedstock | electricity | coal")
    output_unit: str | None = None
    standard: str | None = Field(None, description="the quota standard, edition and table")
    quota_levels: dict[str, float] = Field(default_factory=dict, description="level1 advanced, level2 new-build,"
                                           " level3 limit, in unit, after the standard's corrections")
    threshold: float | None = Field(None, description="the level judged: 2级 for a new-build plant, else 3级")
    corrections: list[str] = Field(default_factory=list, description="the standard's corrections applied")
    numerator_meters: dict[str, float] = Field(default_factory=dict, description="meter code -> share of its energy"
                                               " charged to the product (tagged 1, declared shares, or 1 at a"
                                               " one-product site)")
    not_judged: str | None = Field(None, description="why there is no figure (an ambiguous allocation, a missing"
                                                     " meter, no quota indicator declared)")
    electricity: str = Field(description="how electricity is valued in kgce (NXEM_ELECTRICITY_BASIS)")
    points: list[UnitProductPoint]


class AlertOut(_Out):
    id: int
    alert_key: str
    source_kind: str
    source_id: int
    enterprise_id: str
    enterprise_name: str | None = None
    site_id: int | None = None
    site_name: str | None = None
    city: str | None = None
    industry: str | None = None
    rule: str
    severity: str
    started_at: datetime
    updated_at: datetime
    acknowledged: bool
    acknowledged_at: datetime | None = None
    cleared: bool
    cleared_at: datetime | None = None
    value: float | None = None
    threshold: float | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class TransitionOut(_Out):
    id: int
    alert_id: int
    kind: str
    at: datetime
    severity: str | None = None
    value: float | None = None
    threshold: float | None = None
    note: str | None = None
    actor: str | None = None


class AlertDetailOut(_Out):
    alert: AlertOut
    transitions: list[TransitionOut]


class AckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field(min_length=1, max_length=2000, pattern=r"^[^\x00]*[^\x00\s][^\x00]*$",
                      description="what the inspector did or decided (not blank)")


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{1,62}$")
    password: str = Field(min_length=12, max_length=1024, pattern=NO_NUL)
    role: Role = Field(description="at most the creating user's own role (portal.roles.can_grant)")
    enterprise_id: str | None = Field(None, pattern=USCC, description="required for the enterprise role, else"
                                                                      " absent; must be in the registry")


class UserOut(_Out):
    id: int
    username: str
    role: str
    enterprise_id: str | None
    disabled: bool


class OverviewGroup(_Out):
    city: str
    industry: str
    enterprises: int
    key_users: int = Field(description="enterprises at or above the key-user threshold so far this year")
    sites: int
    annual_tce: float


class PueGradeRow(_Out):
    grade: str
    sites: int


class QuotaStatusRow(_Out):
    status: str
    sites: int


class OverviewOut(_Out):
    year: int
    key_user_threshold_tce: float
    electricity: str = Field(description="how electricity is valued in the tce (NXEM_ELECTRICITY_BASIS)")
    groups: list[OverviewGroup]
    pue_grades: list[PueGradeRow]
    quota_status: list[QuotaStatusRow]


class ErrorBody(_Out):
    code: str
    message: str


class ErrorOut(_Out):
    error: ErrorBody
