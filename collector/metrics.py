"""Prometheus metrics of the collector (throughput and errors are metrics, not log lines)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MESSAGES_IN = Counter("nxem_collector_messages_in_total", "MQTT messages received")
MESSAGES_ACKED = Counter("nxem_collector_messages_acked_total", "MQTT messages acknowledged after Kafka acked them")
READINGS_IN = Counter("nxem_collector_readings_accepted_total", "readings accepted into the contract")
READINGS_OUT = Counter("nxem_collector_readings_produced_total", "readings acknowledged by Kafka")
INVALID = Counter("nxem_collector_invalid_total", "messages or readings dead-lettered, by reason", ["reason"])
PRODUCE_ERRORS = Counter("nxem_collector_produce_errors_total", "Kafka produce failures (retried)")
OVERSIZE = Counter("nxem_collector_oversize_records_total", "records Kafka refused as too large (their message re-sent truncated)")
PRODUCER_RENEWALS = Counter("nxem_collector_producer_renewals_total", "Kafka producers replaced after a non-retriable produce error")
INTERNAL_ERRORS = Counter(
    "nxem_collector_internal_errors_total", "messages that raised an unexpected exception (dead-lettered as internal_error)", ["type"],
)
BATCH_SIZE = Histogram(
    "nxem_collector_batch_readings", "accepted readings per MQTT message",
    buckets=(0, 1, 5, 10, 20, 50, 100, 200, 500, 1000, 5000),
)
PRODUCE_LATENCY = Histogram(
    "nxem_collector_produce_seconds", "MQTT receipt to Kafka ack of all its records",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
INBOX = Gauge("nxem_collector_inbox_messages", "MQTT messages received and not yet handled")
REGISTRY_VERSION = Gauge("nxem_collector_registry_version", "registry version of the routing snapshot in use")
READY = Gauge("nxem_collector_ready", "1 once connected and subscribed")
