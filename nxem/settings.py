"""Endpoint settings shared by every process (one ``NXEM_`` prefix, frozen, built in __main__).

Each component subclasses ``EndpointSettings`` with its own fields. A missing or invalid value
fails at start-up with the variable's name, before any connection is made. Secrets are never
fields of these objects: they are read from files when a connection is built.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class EndpointSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NXEM_", frozen=True, extra="ignore")

    data_dir: Path = Field(default=REPO_ROOT / ".data", description="service data, logs, pids, secrets")
    mqtt_host: str = Field(default="127.0.0.1", description="Mosquitto host")
    mqtt_port: int = Field(default=11883, ge=1, le=65535, description="Mosquitto port")
    kafka_bootstrap: str = Field(default="127.0.0.1:19092", description="Kafka bootstrap servers (comma-separated)")
    topic_readings: str = Field(default="nxem.readings.v1", description="Kafka topic of reading batches")
    topic_alerts: str = Field(default="nxem.alerts.v1", description="Kafka topic of alert transitions")
    topic_deadletter: str = Field(default="nxem.deadletter.v1", description="Kafka topic of refused input")
    pg_host: str = Field(default="127.0.0.1", description="PostgreSQL host")
    pg_port: int = Field(default=15432, ge=1, le=65535, description="PostgreSQL port")
    pg_db: str = Field(default="nxem", description="PostgreSQL database")
    metrics_host: str = Field(default="127.0.0.1", description="address the Prometheus /metrics endpoint listens on (0.0.0.0 in a container)")
    electricity_basis: Literal["calorific_value", "equivalent_value"] = Field(
        default="calorific_value",
        description="how electricity is valued in kgce: calorific_value (当量值 0.1229 kgce/kWh, GB/T 2589-2020, the "
                    "default for 综合能耗) or equivalent_value (等价值, the year's thermal-power rate: set "
                    "NXEM_ELECTRICITY_EQUIVALENT_KGCE_PER_KWH); selects analytics.coefficients.ElectricityValue, "
                    "validated at start-up. The worker's rules (every meter spec) and the portal's reads (tce, "
                    "unit product, overview, which state the basis beside the figures) value electricity with it; "
                    "the alerts' details still say 0.1229 in their conversion note")
    electricity_equivalent_kgce_per_kwh: float | None = Field(
        default=None, gt=0, lt=1,
        description="等价值 of electricity for NXEM_ELECTRICITY_BASIS=equivalent_value, kgce/kWh (the year's national "
                    "or plant thermal-power standard-coal rate, about 0.30; no default: it changes every year)")

    @model_validator(mode="after")
    def _electricity_rate_given(self) -> Self:
        if self.electricity_basis == "equivalent_value" and self.electricity_equivalent_kgce_per_kwh is None:
            raise ValueError("NXEM_ELECTRICITY_BASIS=equivalent_value needs NXEM_ELECTRICITY_EQUIVALENT_KGCE_PER_KWH")
        return self

    @property
    def secrets_dir(self) -> Path:
        return self.data_dir / "secrets"
