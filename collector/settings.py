"""Settings of the collector process (env prefix NXEM_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from collector.payload import MAX_PAYLOAD_BYTES
from nxem.settings import EndpointSettings


class CollectorSettings(EndpointSettings):
    collector_id: str = Field(default="nxem-collector-1", description="MQTT client id (persistent session) and Kafka client id")
    collector_metrics_port: int = Field(default=9101, ge=0, le=65535, description="Prometheus /metrics port of the collector (0 = off)")
    collector_mqtt_username: str | None = Field(default=None, description="MQTT username of the collector")
    collector_mqtt_password_file: Path | None = Field(default=None, description="file holding the collector's MQTT password")
    collector_shared_group: str | None = Field(default=None, description="MQTT shared-subscription group to spread gateways over several collectors")
    collector_session_expiry_s: int = Field(default=7 * 24 * 3600, ge=0, description="MQTT session expiry: how long the broker queues for a stopped collector")
    collector_receive_maximum: int = Field(default=1000, ge=1, le=65535, description="MQTT 5 Receive Maximum: unacked messages in flight to the collector")
    collector_routing_refresh_s: float = Field(default=30.0, gt=0, description="registry routing refresh period")
    collector_max_future_s: float = Field(default=300.0, ge=0, description="readings further in the future are dead-lettered")
    collector_max_age_days: float = Field(default=400.0, gt=0, description="readings older than this are dead-lettered")
    collector_max_payload_bytes: int = Field(
        default=MAX_PAYLOAD_BYTES, ge=4096,
        description="largest gateway payload accepted whole; a bigger one is dead-lettered with its first 4 KiB, size and sha256 (checked at start against the Kafka record limits)",
    )
