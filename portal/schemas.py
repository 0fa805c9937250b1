"""Pydantic models of the JSON API (they document it in OpenAPI and validate its input)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Severity = Literal["critical", "major", "minor", "warning"]
Period = Literal["15min", "hour", "day", "month", "year", "rolling12"]


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True, from_attributes=True)


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=63)
    password: str = Field(min_length=1, max_length=1024)


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


class PuePoint(_Out):
    period_start: date
    pue: float | None


class PueOut(_Out):
    site_id: int
    pue_limit: float | None
    points: list[PuePoint]


class UnitProductPoint(_Out):
    period_start: date
    kgce_per_t: float | None
    output_t: float | None


class UnitProductOut(_Out):
    site_id: int
    product: str
    quota_levels_kgce_per_t: dict[str, float] = Field(description="level1 advanced, level2 new-build, level3 limit")
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
    note: str = Field(min_length=1, max_length=2000, description="what the inspector did or decided")


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{1,62}$")
    password: str = Field(min_length=12, max_length=1024)
    role: Literal["inspector", "enterprise", "operator"]
    enterprise_id: str | None = Field(None, pattern=r"^[0-9A-Z]{18}$")


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
    groups: list[OverviewGroup]
    pue_grades: list[PueGradeRow]
    quota_status: list[QuotaStatusRow]


class ErrorBody(_Out):
    code: str
    message: str


class ErrorOut(_Out):
    error: ErrorBody
