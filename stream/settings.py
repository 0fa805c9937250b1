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
    worker_state_horizon_days: float = Field(default=740.0, ge=366, description="local days of day totals a site's rule state holds (rebuilt at start from the daily rollups): the annual rules need the current and the previous calendar year (≤ 731 days) and the rolling 12 months; ≈ 24 bytes per meter and day")
    worker_daily_checks: bool = Field(default=True, description="run the once-a-day checks (daily vs monthly totals, consumption anomalies) for each closed local day; one worker of the group at a time")
    worker_daily_grace_s: float = Field(default=3600.0, ge=0, description="a local (Asia/Shanghai) day is checked this long after it ended, so late readings count")
    worker_daily_mismatch_tolerance: float = Field(default=0.05, gt=0, description="register meters: Σ daily consumption vs the month's register difference may differ by this share (national online-monitoring rule: 5 %)")
    worker_daily_mismatch_min_days: int = Field(default=7, ge=1, description="month-to-date windows shorter than this many days are not judged (a complete month always is)")
    worker_anomaly_history_days: int = Field(default=28, ge=5, description="local days of hourly consumption each meter's IsolationForest is trained on (the days before the checked one)")
    worker_anomaly_min_points: int = Field(default=2, ge=1, description="consecutive anomalous hours of the checked day that open a consumption_anomaly alert")
    worker_anomaly_seed: int = Field(default=0, description="random seed of the IsolationForest (same history and seed, same scores)")
    worker_silence_check_s: float = Field(default=60.0, gt=0, description="how often (wall clock) a worker checks its sites' meters for silence (meter_silent after N missed intervals)")
    worker_outbox_interval_s: float = Field(default=2.0, gt=0, description="how often a worker publishes the alert transitions others wrote (acknowledgements from the portal) to the alerts topic")
    worker_fine_horizon_days: float = Field(default=10.0, gt=0, description="days of 15-minute detail in a site's rule state (≈ 2.3 kB per meter and day; rebuilt at start from the raw readings); older days keep only their totals, and a rule window starting in one is apportioned (flagged approximate). Covers the operational PUE window (7 days by default); windows on local midnights (annual, year and month to date, daily) are exact from the totals")
    worker_topic_wait_s: float = Field(default=60.0, gt=0, description="a starting worker waits for its topics to have partitions; after this long it logs an error naming the missing topic (and every this long again) and keeps waiting, never exits for it")
    worker_watchdog_interval_s: float = Field(default=5.0, gt=0, description="how often a worker asks the broker about its topics and group (partitions, end and committed offsets, members) for the consumer watchdog, /readyz and the partition lag metrics")
    worker_no_assignment_s: float = Field(default=60.0, gt=0, description="watchdog: a consumer holding no partition this long while its topics have partitions (and the group no more members than partitions) is closed and recreated")
    worker_not_in_group_s: float = Field(default=15.0, gt=0, description="watchdog: a consumer holding no partition whose member id the broker has not listed in its group this long (expelled while its join hung) is closed and recreated")
    worker_stall_s: float = Field(default=120.0, gt=0, description="watchdog: a consumer whose partitions lag and whose committed offsets did not move this long (with no backend error meanwhile) is closed and recreated; /readyz reports the lag failing")
    worker_metadata_max_age_s: float = Field(default=30.0, gt=0, description="the consumer refreshes its topic metadata at least this often: partitions added to a topic are consumed within about this long")
    worker_health_stall_s: float = Field(default=300.0, gt=0, description="/healthz fails when the worker's loop has not gone round this long (a site-state rebuild runs inside one round: keep it above the longest)")
