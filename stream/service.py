"""The stream worker loop: Kafka poll -> rules -> alerts to Kafka -> one DB transaction -> offsets.

Order of effects per poll, and why:
1. decode the reading batches (a record that breaks the contract becomes a dead letter);
2. feed the readings to the per-site rule state and collect alert transitions (pure domain);
3. produce the transitions to the alerts topic and wait for Kafka's acks;
4. write readings, alerts, transitions and dead letters in ONE database transaction;
5. commit the Kafka offsets.
A crash anywhere replays the poll: storage ignores duplicate readings and transitions
(unique keys), and a replayed transition has the same (alert_key, kind, at), so consumers of
the alerts topic dedupe on it. Nothing is committed to Kafka before the database has it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import msgspec

from nxem import contract
from nxem.contract import AlertEvent, DeadLetter, ReadingBatch
from nxem.errors import BackendUnavailable, ContractError
from nxem.kafka import (Consumer, Producer, alert_record, commit_offsets, partition_lags, rewind_to_committed,
                        send_and_wait)
from stream import metrics as m

log = logging.getLogger(__name__)


class RuleEngine(Protocol):
    def apply(self, batches: list[ReadingBatch]) -> list[AlertEvent]: ...
    def tick(self, now: datetime) -> list[AlertEvent]: ...
    @property
    def sweeping(self) -> bool: ...
    def reset(self) -> None: ...


class Store(Protocol):
    def write(self, rows: list[tuple[int, datetime, float]], alerts: list[AlertEvent], dead: list[DeadLetter]) -> Any: ...


Supervise = Callable[[BackendUnavailable | None], Consumer]
"""Called after every loop iteration with its backend error (None: it went through); returns
the consumer to poll next (a watchdog may have replaced the old one)."""


@dataclass(frozen=True)
class WorkerTopics:
    readings: str
    alerts: str
    deadletter: str


class Worker:
    def __init__(
        self,
        consumer: Consumer,
        producer: Producer,
        topics: WorkerTopics,
        engine: RuleEngine,
        store: Store,
        max_records: int = 2000,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        tick_s: float = 60.0,
        supervise: Supervise | None = None,
    ) -> None:
        self._consumer, self._producer, self._topics = consumer, producer, topics
        self._engine, self._store, self._max_records, self._clock = engine, store, max_records, clock
        self._tick_s = tick_s
        self._supervise = supervise
        self._next_tick = time.monotonic() + tick_s
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        backoff = 0.5
        rewind = False
        while not self._stop.is_set():
            error: BackendUnavailable | None = None
            try:
                if rewind:
                    self._rewind()
                    rewind = False
                self.step()
                backoff = 0.5
            except BackendUnavailable as err:
                # Do not commit, do not poll on: seek back to the committed offsets (which may
                # itself need Kafka, so it is retried here too) and try again after a backoff.
                # Nothing is buffered meanwhile: memory stays at one poll's records.
                error = err
                m.BACKEND_ERRORS.inc()
                log.warning("backend unavailable, retrying in %.1fs: %s", backoff, err)
                rewind = True
                self._stop.wait(backoff)
                backoff = min(30.0, backoff * 2)
            if self._supervise is not None:
                consumer = self._supervise(error)
                if consumer is not self._consumer:
                    # replaced by the watchdog: the new consumer starts at the committed offsets
                    # (nothing to rewind) and its assignment rebuilds the rule state
                    self._consumer, rewind = consumer, False

    def _rewind(self) -> None:
        """Forget the polled-but-uncommitted records so they are fetched again."""
        self._engine.reset()  # rule state is rebuilt from the database, which did not change
        rewind_to_committed(self._consumer)

    def step(self) -> int:
        polled = self._consumer.poll(timeout_ms=200, max_records=self._max_records)
        ticked: list[AlertEvent] = []
        if self._engine.sweeping or time.monotonic() >= self._next_tick:
            # wall-clock rules (silent meters) ride on this poll's publish, transaction and
            # commit; a sweep over many meters is spread over several polls
            if not self._engine.sweeping:
                self._next_tick = time.monotonic() + self._tick_s
            ticked = self._engine.tick(self._clock())
        if not polled and not ticked:
            return 0
        t0 = time.perf_counter()
        polled_at = datetime.now(UTC)
        batches: list[ReadingBatch] = []
        dead: list[DeadLetter] = []  # refused here: published to the dead-letter topic
        stored_dead: list[DeadLetter] = []  # consumed from the dead-letter topic: into the table
        now = self._clock()
        for tp, records in polled.items():
            from_dlq = tp.topic == self._topics.deadletter
            for rec in records:
                try:
                    if from_dlq:
                        stored_dead.append(contract.decode_dead_letter(rec.value))
                    else:
                        batches.append(contract.decode_batch(rec.value))
                except ContractError as err:
                    refused = DeadLetter(
                        stage="worker", reason_code=err.reason_code, reason=err.message,
                        received_at=now, source=f"{tp.topic}/{tp.partition}@{rec.offset}",
                        original=rec.value or b"",
                    )
                    # a broken dead letter is stored directly, never re-published (no loop)
                    (stored_dead if from_dlq else dead).append(refused)
        rows = [(r.meter_id, r.ts, r.value) for b in batches for r in b.readings]
        alerts = ticked + self._engine.apply(batches)
        self._publish(alerts, dead)
        t1 = time.perf_counter()
        result = self._store.write(rows, alerts, stored_dead)
        t2 = time.perf_counter()
        conflicting = self._conflicts(getattr(result, "conflicts", ()), batches, now)
        if conflicting:  # after the DB commit, before the offsets: a crash here replays and finds them again
            self._publish([], conflicting)
            dead += conflicting
        # A failure is BackendUnavailable: the DB has the rows, and a replay after a rebalance
        # is harmless (idempotent storage).
        commit_offsets(self._consumer)
        stored = datetime.now(UTC)
        self._observe(batches, rows, alerts, dead, stored, t0, t1, t2)
        m.POLL_TO_STORED.observe((stored - polled_at).total_seconds())
        for b in batches:
            m.GATEWAY_TO_COLLECTOR.observe((b.received_at - b.sent_at).total_seconds())
            m.COLLECTOR_TO_POLL.observe((polled_at - b.received_at).total_seconds())
        return len(rows)

    def _conflicts(self, conflicts: Any, batches: list[ReadingBatch], now: datetime) -> list[DeadLetter]:
        """A reading whose (meter, ts) is stored with another value is refused, never dropped
        silently: it becomes a ``conflicting_duplicate`` dead letter (the first value stays)."""
        if not conflicts:
            return []
        owner = {r.meter_id: (b.enterprise_id, b.gateway_id) for b in batches for r in b.readings}
        out = []
        for c in conflicts:
            ent, gw = owner.get(c.meter_id, (None, None))
            original = msgspec.json.encode({"meter_id": c.meter_id, "ts": c.ts, "value": c.refused_value,
                                             "stored_value": c.stored_value})
            out.append(DeadLetter(
                stage="worker", reason_code="conflicting_duplicate",
                reason=f"meter {c.meter_id} at {c.ts.isoformat()}: value {c.refused_value!r} differs from the "
                       f"stored {c.stored_value!r} (first value kept)",
                received_at=now, source=self._topics.readings, original=original,
                enterprise_id=ent, gateway_id=gw,
            ))
        return out

    def _publish(self, alerts: list[AlertEvent], dead: list[DeadLetter]) -> None:
        if not alerts and not dead:
            return
        records = [alert_record(self._topics.alerts, a) for a in alerts]
        records += [(self._topics.deadletter, None, contract.encode(d)) for d in dead]
        send_and_wait(self._producer, records, "alerts/dead letters")

    def _observe(
        self, batches: list[ReadingBatch], rows: list[Any], alerts: list[AlertEvent],
        dead: list[DeadLetter], stored: datetime, t0: float, t1: float, t2: float,
    ) -> None:
        m.RECORDS_IN.inc(len(batches) + len(dead))
        m.READINGS_STORED.inc(len(rows))
        m.POLL_READINGS.observe(len(rows))
        m.RULES_SECONDS.observe(t1 - t0)
        m.WRITE_SECONDS.observe(t2 - t1)
        for d in dead:
            m.INVALID.labels(d.reason_code).inc()
        for a in alerts:
            m.ALERTS.labels(a.rule, a.kind).inc()
        for b in batches:
            m.READING_TO_STORED.observe((stored - b.sent_at).total_seconds())
        if alerts:
            # The alert was published before the DB commit; its latency is bounded by this.
            newest = max(b.sent_at for b in batches) if batches else stored
            m.READING_TO_ALERT.observe((stored - newest).total_seconds())
        for partition, lag in partition_lags(self._consumer).items():
            m.LAG.labels(str(partition)).set(lag)
