"""The collector loop: MQTT message -> normalise -> Kafka (acks=all) -> MQTT ack.

At-least-once: an MQTT message is acknowledged only after every Kafka record derived from it
(reading batches and dead letters) was acknowledged by Kafka. A failed produce is retried
with backoff, never dropped; unacknowledged messages stay bounded by the MQTT Receive Maximum.

No message stops the loop: whatever a message makes the code raise becomes an
``internal_error`` dead letter (logged once per exception type, counted by type). Records
are bounded (``nxem.kafka``'s size limits); should the producer or the broker still refuse a
record as too large, the message is sent again with its dead letters truncated, then as one
truncated ``record_too_large`` dead letter, and a producer a refusal left unusable
(kafka-python fails every later send of an idempotent producer after a non-retriable error)
is replaced.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from collector import metrics as m
from collector.mqtt import Inbound, MqttSubscriber
from collector.normalise import GatewayRouteLike, Limits, MeterRouteLike, clean_text, normalise, truncated
from nxem import contract
from nxem.kafka import RECORD_MAX_BYTES, Producer, dead_letter_max_bytes, is_too_large

log = logging.getLogger(__name__)

Routing = tuple[Mapping[str, GatewayRouteLike], Mapping[tuple[str, str], MeterRouteLike]]
Record = tuple[str, bytes | None, bytes]  # topic, key, value

# How a message is re-sent after a record of it was refused as too large.
WHOLE = 0  # every record as normalised
TRUNCATED = 1  # dead letters keep only a prefix of their original bytes
ONE_DEAD_LETTER = 2  # the message is one truncated record_too_large dead letter


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


@dataclass
class _Built:
    records: list[Record]
    accepted: int
    reasons: list[str]


class Collector:
    def __init__(
        self,
        subscriber: MqttSubscriber,
        inbox: "queue.Queue[Inbound]",
        producer: Callable[[], Producer],
        topics: Topics,
        routing: Callable[[], Routing],
        limits: Limits = Limits(),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        record_max_bytes: int = RECORD_MAX_BYTES,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """``producer`` builds a producer: one now, another when a refusal left it unusable;
        ``monotonic`` is the clock of the retry back-off."""
        self._sub, self._inbox, self._new_producer = subscriber, inbox, producer
        self._producer = producer()
        self._topics, self._routing, self._limits, self._clock = topics, routing, limits, clock
        self._record_max = record_max_bytes
        self._monotonic = monotonic
        self._dead_max = min(record_max_bytes, dead_letter_max_bytes(limits.max_payload_bytes))
        # (due, order, message, attempt, mode): failures arrive from the producer's thread in
        # ``_failed`` (a deque is thread-safe); the loop moves them into the ``_retry`` heap.
        self._failed: deque[tuple[float, Inbound, int, int]] = deque()
        self._retry: list[tuple[float, int, Inbound, int, int]] = []
        self._order = itertools.count()
        self._renew = threading.Event()  # set from the producer's thread
        # Producers are numbered; the first record a producer sees refused as too large is the
        # one that was; what fails on it afterwards was only aborted beside it.
        self._generation = 0
        self._refused: set[int] = set()
        self._lock = threading.Lock()
        self._renew_after = 0.0
        self._logged_types: set[str] = set()
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def close(self, timeout_s: float = 10.0) -> None:
        self._producer.close(timeout=timeout_s)

    def run(self) -> None:
        while not self._stop.is_set():
            self.run_once()
        self._producer.flush(timeout=30)

    def run_once(self, timeout_s: float = 0.2) -> None:
        """One turn of the loop: replace a failed producer, re-send what is due, then handle
        what the inbox holds (waiting up to ``timeout_s`` for the first message)."""
        self._renew_producer()
        self._retry_due()
        try:
            msg = self._inbox.get(timeout=timeout_s) if timeout_s > 0 else self._inbox.get_nowait()
        except queue.Empty:
            return
        self._guarded(msg, 0, WHOLE)
        # drain what is already there without waking up per message
        for _ in range(5000):
            try:
                self._guarded(self._inbox.get_nowait(), 0, WHOLE)
            except queue.Empty:
                break

    def _guarded(self, msg: Inbound, attempt: int, mode: int) -> None:
        try:
            self.handle(msg, attempt, mode)
        except Exception:  # noqa: BLE001 - handle() catches per message; this only guards its bookkeeping
            log.exception("collector: handling mid=%s failed, will retry", msg.mid)
            self._failed.append((self._monotonic() + min(30.0, 0.5 * 2**attempt), msg, attempt + 1, mode))

    def handle(self, msg: Inbound, attempt: int = 0, mode: int = WHOLE) -> None:
        try:
            built = self._build(msg, mode)
        except Exception as err:  # noqa: BLE001 - the last line of defence: a message never stops the collector
            built = self._internal_error(msg, err)
        if attempt == 0:
            m.MESSAGES_IN.inc()
            m.READINGS_IN.inc(built.accepted)
            m.BATCH_SIZE.observe(built.accepted)
            for reason in built.reasons:
                m.INVALID.labels(reason).inc()
        self._send(msg, built, attempt, mode)

    # -- records of one message -----------------------------------------------------------
    def _build(self, msg: Inbound, mode: int) -> _Built:
        gateways, meters = self._routing()
        now = self._clock()
        out = normalise(msg.topic, msg.payload, gateways, meters, now, self._limits)
        reasons = [d.reason_code for d in out.dead_letters]
        if mode >= ONE_DEAD_LETTER:
            return self._too_large(msg, now, "Kafka refused a record of this message as too large even "
                                   "with its dead letters truncated", reasons)
        records: list[Record] = [
            (self._topics.readings, str(b.site_id).encode(), contract.encode(b)) for b in out.batches
        ]
        if any(len(value) > self._record_max for _t, _k, value in records):
            return self._too_large(msg, now, f"a reading batch is over {self._record_max} bytes", reasons)
        for dead in out.dead_letters:
            value = contract.encode(dead)
            if mode >= TRUNCATED or len(value) > self._dead_max:
                value = contract.encode(truncated(dead))
            records.append((self._topics.deadletter, None, value))
        return _Built(records, out.accepted, reasons)

    def _too_large(self, msg: Inbound, now: datetime, why: str, reasons: list[str]) -> _Built:
        dead = contract.DeadLetter(
            stage="collector", reason_code="record_too_large", reason=why, received_at=now,
            source=clean_text(msg.topic), original=msg.payload,
        )
        return _Built([(self._topics.deadletter, None, contract.encode(truncated(dead)))], 0,
                      [*reasons, "record_too_large"])

    def _internal_error(self, msg: Inbound, err: Exception) -> _Built:
        kind = type(err).__name__
        m.INTERNAL_ERRORS.labels(kind).inc()
        if kind not in self._logged_types:  # once per type: a flood of one bad kind is one log line
            self._logged_types.add(kind)
            log.error("collector: unexpected %s on mid=%s topic=%s; dead-lettered as internal_error "
                      "(further ones only counted)", kind, msg.mid, clean_text(msg.topic, 200), exc_info=err)
        dead = contract.DeadLetter(
            stage="collector", reason_code="internal_error",
            reason=clean_text(f"{kind}: {err}"), received_at=datetime.now(UTC),
            source=clean_text(msg.topic), original=msg.payload,
        )
        value = contract.encode(dead)
        if len(value) > self._dead_max:
            value = contract.encode(truncated(dead))
        return _Built([(self._topics.deadletter, None, value)], 0, ["internal_error"])

    # -- Kafka ------------------------------------------------------------------------------
    def _send(self, msg: Inbound, built: _Built, attempt: int, mode: int) -> None:
        records, accepted = built.records, built.accepted
        if not records:
            self._sub.ack(msg.mid, msg.qos)
            return
        pending = _Pending(msg, len(records))

        def done(_md: object) -> None:
            with pending.lock:
                pending.left -= 1
                last = pending.left == 0 and not pending.failed
            if last:
                # counted before the PUBACK goes out: counted after, the broker's next message
                # (Receive Maximum frees a slot) could be counted in before this one is counted
                # acked, and in - acked would read one over the broker's bound
                m.MESSAGES_ACKED.inc()
                self._sub.ack(msg.mid, msg.qos)
                m.READINGS_OUT.inc(accepted)
                m.PRODUCE_LATENCY.observe(time.perf_counter() - pending.started)

        def failed(err: BaseException, in_send: bool = False) -> None:
            with pending.lock:
                first = not pending.failed
                pending.failed = True
            if not first:
                return
            if not getattr(err, "retriable", False):
                self._renew.set()  # an idempotent producer fails every later send after this
            if is_too_large(err):
                with self._lock:  # send() refusing it is about this record; the broker's, once per producer
                    culprit = in_send or generation not in self._refused
                    self._refused.add(generation)
                if culprit:
                    m.OVERSIZE.inc()
                    log.warning("kafka refused a record of mid=%s as too large, sending it smaller err=%s", msg.mid, err)
                    self._failed.append((self._monotonic(), msg, attempt + 1, min(mode + 1, ONE_DEAD_LETTER)))
                else:  # aborted with the producer a refused record failed: again as it was
                    self._failed.append((self._monotonic(), msg, attempt + 1, mode))
                return
            m.PRODUCE_ERRORS.inc()
            log.warning("kafka produce failed, will retry mid=%s attempt=%s err=%s", msg.mid, attempt, err)
            self._failed.append((self._monotonic() + min(30.0, 0.5 * 2**attempt), msg, attempt + 1, mode))

        producer, generation = self._producer, self._generation
        for topic, key, value in records:
            try:
                fut = producer.send(topic, value=value, key=key)
            except Exception as err:  # noqa: BLE001 - Kafka down (no metadata), too large, or a client bug
                failed(err, in_send=True)
                return
            fut.add_callback(done)
            fut.add_errback(failed)

    def _renew_producer(self) -> None:
        if not self._renew.is_set() or self._monotonic() < self._renew_after:
            return
        try:
            fresh = self._new_producer()
        except Exception as err:  # noqa: BLE001 - Kafka unreachable: keep the old one, try again
            log.warning("kafka producer could not be replaced, retrying in 5 s: %s", err)
            self._renew_after = self._monotonic() + 5.0
            return
        self._renew.clear()
        old, self._producer = self._producer, fresh
        self._generation += 1
        m.PRODUCER_RENEWALS.inc()
        log.warning("kafka producer replaced after a non-retriable produce error")
        try:
            old.close(timeout=5)
        except Exception as err:  # noqa: BLE001 - its unsent records fail and are retried on the new one
            log.warning("closing the replaced kafka producer: %s", err)

    def _retry_due(self) -> None:
        while self._failed:
            due, msg, attempt, mode = self._failed.popleft()
            heapq.heappush(self._retry, (due, next(self._order), msg, attempt, mode))
        now = self._monotonic()
        for _ in range(len(self._retry)):  # only those due now, not the ones they reschedule
            if self._retry[0][0] > now:
                break
            _due, _n, msg, attempt, mode = heapq.heappop(self._retry)
            self._guarded(msg, attempt, mode)
