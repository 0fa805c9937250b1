"""The collector loop: MQTT message -> normalise -> Kafka (acks=all) -> MQTT ack.

At-least-once: an MQTT message is acknowledged only after every Kafka record derived from it
(reading batches and dead letters) was acknowledged by Kafka. A failed produce is retried
with backoff, never dropped; unacknowledged messages stay bounded by the MQTT Receive Maximum.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from kafka import KafkaProducer
from kafka.errors import KafkaError

from collector import metrics as m
from collector.mqtt import Inbound, MqttSubscriber
from collector.normalise import GatewayRouteLike, Limits, MeterRouteLike, normalise
from nxem import contract

log = logging.getLogger(__name__)

Routing = tuple[Mapping[str, GatewayRouteLike], Mapping[tuple[str, str], MeterRouteLike]]


@dataclass(frozen=True)
class Topics:
    readings: str
    deadletter: str


class _Pending:
    """Counts the Kafka acks one MQTT message still waits for."""

    __slots__ = ("msg", "left", "failed", "lock", "started")

    def __init__(self, msg: Inbound, left: int) -> None:
        self.msg, self.left, self.failed = msg, left, False
        self.lock = threading.Lock()
        self.started = time.perf_counter()


class Collector:
    def __init__(
        self,
        subscriber: MqttSubscriber,
        inbox: "queue.Queue[Inbound]",
        producer: KafkaProducer,
        topics: Topics,
        routing: Callable[[], Routing],
        limits: Limits = Limits(),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._sub, self._inbox, self._producer = subscriber, inbox, producer
        self._topics, self._routing, self._limits, self._clock = topics, routing, limits, clock
        self._retry: deque[tuple[float, Inbound, int]] = deque()
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        while not self._stop.is_set():
            self._retry_due()
            try:
                msg = self._inbox.get(timeout=0.2)
            except queue.Empty:
                continue
            self.handle(msg)
            # drain what is already there without waking up per message
            for _ in range(5000):
                try:
                    self.handle(self._inbox.get_nowait())
                except queue.Empty:
                    break
        self._producer.flush(timeout=30)

    def handle(self, msg: Inbound, attempt: int = 0) -> None:
        if attempt == 0:
            m.MESSAGES_IN.inc()
        gateways, meters = self._routing()
        out = normalise(msg.topic, msg.payload, gateways, meters, self._clock(), self._limits)
        records: list[tuple[str, bytes | None, bytes]] = [
            (self._topics.readings, str(b.site_id).encode(), contract.encode(b)) for b in out.batches
        ]
        records += [(self._topics.deadletter, None, contract.encode(d)) for d in out.dead_letters]
        accepted = out.accepted
        if attempt == 0:
            m.READINGS_IN.inc(accepted)
            m.BATCH_SIZE.observe(accepted)
            for d in out.dead_letters:
                m.INVALID.labels(d.reason_code).inc()
        if not records:
            self._sub.ack(msg.mid, msg.qos)
            return
        pending = _Pending(msg, len(records))

        def done(_md: object) -> None:
            with pending.lock:
                pending.left -= 1
                last = pending.left == 0 and not pending.failed
            if last:
                self._sub.ack(msg.mid, msg.qos)
                m.MESSAGES_ACKED.inc()
                m.READINGS_OUT.inc(accepted)
                m.PRODUCE_LATENCY.observe(time.perf_counter() - pending.started)

        def failed(err: Exception) -> None:
            with pending.lock:
                first = not pending.failed
                pending.failed = True
            if first:
                m.PRODUCE_ERRORS.inc()
                log.warning("kafka produce failed, will retry mid=%s attempt=%s err=%s", msg.mid, attempt, err)
                delay = min(30.0, 0.5 * 2**attempt)
                self._retry.append((time.monotonic() + delay, msg, attempt + 1))

        for i, (topic, key, value) in enumerate(records):
            try:
                fut = self._producer.send(topic, value=value, key=key)
            except KafkaError as err:  # metadata unavailable for max_block_ms: Kafka down
                for _ in range(len(records) - i):
                    failed(err)
                return
            fut.add_callback(done)
            fut.add_errback(failed)

    def _retry_due(self) -> None:
        now = time.monotonic()
        for _ in range(len(self._retry)):
            due, msg, attempt = self._retry[0]
            if due > now:
                break
            self._retry.popleft()
            self.handle(msg, attempt)
