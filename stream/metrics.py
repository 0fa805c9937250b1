"""Prometheus metrics of the stream workers."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

_LAT = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)

RECORDS_IN = Counter("nxem_worker_records_in_total", "Kafka records consumed")
READINGS_STORED = Counter("nxem_worker_readings_written_total", "readings written (duplicates included)")
DUPLICATES = Counter("nxem_worker_duplicate_readings_total", "readings already stored (replays, redeliveries)")
INVALID = Counter("nxem_worker_invalid_total", "records dead-lettered by the worker, by reason", ["reason"])
QUARANTINED = Counter(
    "nxem_worker_quarantined_total",
    "records the worker could not store, not even as a dead letter, kept in the quarantine table, by reason",
    ["reason"],
)
ALERTS = Counter("nxem_worker_alert_transitions_total", "alert transitions emitted", ["rule", "kind"])
BACKEND_ERRORS = Counter("nxem_worker_backend_errors_total", "Kafka or PostgreSQL unavailable (retried)")
POLL_READINGS = Histogram(
    "nxem_worker_poll_readings", "readings per poll / DB transaction",
    buckets=(10, 100, 500, 1000, 5000, 10_000, 50_000, 100_000, 200_000),
)
RULES_SECONDS = Histogram("nxem_worker_rules_seconds", "decode + rule evaluation + alert publish per poll", buckets=_LAT)
WRITE_SECONDS = Histogram("nxem_worker_write_seconds", "database transaction per poll", buckets=_LAT)
READING_TO_STORED = Histogram(
    "nxem_worker_reading_to_stored_seconds", "gateway send time to database commit, per gateway batch", buckets=_LAT,
)
GATEWAY_TO_COLLECTOR = Histogram(
    "nxem_worker_gateway_to_collector_seconds", "hop: gateway send time to collector receipt (MQTT), per gateway batch",
    buckets=_LAT,
)
COLLECTOR_TO_POLL = Histogram(
    "nxem_worker_collector_to_poll_seconds", "hop: collector receipt to worker poll (Kafka), per gateway batch", buckets=_LAT,
)
POLL_TO_STORED = Histogram("nxem_worker_poll_to_stored_seconds", "hop: worker poll to DB commit, per poll", buckets=_LAT)
READING_TO_ALERT = Histogram(
    "nxem_worker_reading_to_alert_seconds", "gateway send time to alert published, per poll with alerts", buckets=_LAT,
)
LAG = Gauge("nxem_worker_consumer_lag_records", "records behind the partition's high watermark", ["partition"])
SITES = Gauge("nxem_worker_sites_in_memory", "sites whose rule state is held by this worker")
READY = Gauge("nxem_worker_ready", "1 once the worker holds a partition assignment")
CONSUMER_RECREATED = Counter(
    "nxem_worker_consumer_recreated_total", "consumers closed and recreated by the watchdog, by reason", ["reason"],
)
PARTITION_LAG = Gauge(
    "nxem_worker_partition_lag_records",
    "records behind the end of each partition of the worker's topics, from the group's committed offsets (the "
    "broker's view: every worker reports every partition, held or not)", ["topic", "partition"],
)
PARTITION_COMMITTED = Gauge(
    "nxem_worker_partition_committed_offset", "the group's committed offset of each partition (broker's view)",
    ["topic", "partition"],
)
GROUP_MEMBERS = Gauge("nxem_worker_group_members", "members of the worker's consumer group (broker's view)")
