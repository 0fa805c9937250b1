"""Kafka adapter: builds kafka-python producers/consumers with the pipeline's settings and
translates kafka-python's errors into ours. Holds no business rule."""

from __future__ import annotations

from typing import Any

from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError

from nxem.errors import BackendUnavailable


def _servers(bootstrap: str) -> list[str]:
    return [s.strip() for s in bootstrap.split(",") if s.strip()]


def make_producer(bootstrap: str, client_id: str, **overrides: Any) -> KafkaProducer:
    """An idempotent acks=all producer tuned for batched records (lz4, short linger)."""
    config: dict[str, Any] = dict(
        bootstrap_servers=_servers(bootstrap),
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        retries=2**31 - 1,
        delivery_timeout_ms=120_000,
        max_in_flight_requests_per_connection=5,
        linger_ms=5,
        batch_size=512 * 1024,
        max_request_size=4 * 1024 * 1024,
        compression_type="lz4",
        max_block_ms=10_000,
        metrics_enabled=False,  # +5-7 % measured here; our own Prometheus metrics cover it
    )
    config.update(overrides)
    try:
        return KafkaProducer(**config)
    except KafkaError as err:
        raise BackendUnavailable(f"Kafka producer for {bootstrap}: {err}") from err


def make_consumer(bootstrap: str, group_id: str, client_id: str, **overrides: Any) -> KafkaConsumer:
    """A group consumer that never auto-commits: offsets follow the database commit."""
    config: dict[str, Any] = dict(
        bootstrap_servers=_servers(bootstrap),
        group_id=group_id,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=2000,
        max_poll_interval_ms=300_000,
        session_timeout_ms=10_000,
        heartbeat_interval_ms=3_000,
        fetch_max_wait_ms=50,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        metrics_enabled=False,
    )
    config.update(overrides)
    try:
        consumer = KafkaConsumer(**config)
    except KafkaError as err:
        raise BackendUnavailable(f"Kafka consumer for {bootstrap}: {err}") from err
    return consumer
