"""Settings of a stream worker process (env prefix NXEM_)."""

from __future__ import annotations

from pydantic import Field

from nxem.settings import EndpointSettings


class WorkerSettings(EndpointSettings):
    worker_id: str = Field(default="nxem-worker-1", description="Kafka client id (and static group membership id)")
    worker_group: str = Field(default="nxem-workers", description="Kafka consumer group of the workers")
    worker_metrics_port: int = Field(default=9102, ge=0, le=65535, description="Prometheus /metrics port of the worker (0 = off)")
    worker_max_poll_records: int = Field(default=500, ge=1, description="Kafka records (gateway batches) per poll and DB transaction")
    worker_registry_refresh_s: float = Field(default=30.0, gt=0, description="registry refresh period")
    worker_rollup_interval_s: float = Field(default=60.0, gt=0, description="how often a worker closes ended days into the daily rollup (plain PostgreSQL)")
    worker_state_horizon_days: float = Field(default=35.0, gt=0, description="history replayed to rebuild a site's rule state")
