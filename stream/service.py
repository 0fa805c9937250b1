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

No record stops a partition (``stream.isolation``): every exception a record can cause is a
dead letter with a reason, a quarantined record, or a backend outage (``BackendUnavailable``:
retried with backoff, nothing committed). Rules that fail on a record dead-letter it
(``internal_error``); data the database refuses (``DataRefused``) is bisected down to the
record(s) responsible, which are quarantined with their topic/partition/offset while the rest
is stored; a dead letter too large for the topic is quarantined instead of published.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import msgspec

from nxem import contract
from nxem.contract import AlertEvent, DeadLetter, ReadingBatch
from nxem.errors import BackendUnavailable, DataRefused
from nxem.kafka import (RECORD_MAX_BYTES, Consumer, Producer, alert_record, commit_offsets, partition_lags,
                        rewind_to_committed, send_and_wait)
from storage.ingest import Quarantined
from stream import isolation
from stream import metrics as m
from stream.records import Batch, Origin, ToStore, decode_poll, refusal

log = logging.getLogger(__name__)


class RuleEngine(Protocol):
    def apply(self, batches: list[ReadingBatch]) -> list[AlertEvent]: ...
    def tick(self, now: datetime) -> list[AlertEvent]: ...
    @property
    def sweeping(self) -> bool: ...
    def reset(self) -> None: ...
    def forget(self, site_id: int) -> None: ...


class Store(Protocol):
    def write(self, rows: list[tuple[int, datetime, float]], alerts: list[AlertEvent], dead: list[DeadLetter],
              relay: Sequence[AlertEvent] = ()) -> Any: ...
    def quarantine(self, items: list[Quarantined]) -> int: ...


@dataclass(frozen=True)
class _Isolated:
    """What the poll's writes returned once the refused records were set aside."""

    conflicts: tuple[Any, ...]


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
        ticked = self._tick()
        if not polled and not ticked:
            return 0
        t0 = time.perf_counter()
        polled_at = datetime.now(UTC)
        now = self._clock()
        intake = decode_poll(polled, self._topics.deadletter, now)
        applied, failed = isolation.apply_rules(self._engine, intake.batches)
        good = intake.batches
        sent: list[tuple[Origin | None, DeadLetter]] = list(intake.refused)
        if failed:
            bad = {id(b) for b, _ in failed}
            good = [b for b in good if id(b) not in bad]
            sent += [(b.origin, refusal(b.origin, b.original, "internal_error",
                                        f"rules failed on this record: {type(err).__name__}: {err}", now,
                                        b.batch.enterprise_id, b.batch.gateway_id)) for b, err in failed]
        batches = [b.batch for b in good]
        rows = [(r.meter_id, r.ts, r.value) for b in batches for r in b.readings]
        alerts = ticked + applied
        # Wall-clock transitions (silent meters) are not published before the transaction, as the
        # readings' are: a poll that fails is evaluated again at another wall-clock time, so a
        # send that Kafka took late would stand on the topic for a transition never stored. They
        # are stored unpublished and the outbox relay publishes them after the commit.
        quarantine = self._publish(applied, sent)
        t1 = time.perf_counter()
        result, refused = self._write(good, applied, intake.to_store, rows, relay=ticked)
        if refused:
            quarantine += refused
            gone = {(q.topic, q.partition, q.offset) for q in refused}
            batches = [b.batch for b in good if (b.origin.topic, b.origin.partition, b.origin.offset) not in gone]
            rows = [(r.meter_id, r.ts, r.value) for b in batches for r in b.readings]
        t2 = time.perf_counter()
        conflicting = self._conflicts(getattr(result, "conflicts", ()), batches, now)
        if conflicting:  # after the DB commit, before the offsets: a crash here replays and finds them again
            quarantine += self._publish([], [(None, c) for c in conflicting])
            sent += [(None, c) for c in conflicting]
        if quarantine:  # before the offsets too: the partition moves on only once they are kept
            self._quarantine(quarantine)
        dead = [d for _, d in sent]
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

    def _tick(self) -> list[AlertEvent]:
        """Wall-clock rules (silent meters): they ride on this poll's publish, transaction and
        commit; a sweep over many meters is spread over several polls."""
        if not (self._engine.sweeping or time.monotonic() >= self._next_tick):
            return []
        if not self._engine.sweeping:
            self._next_tick = time.monotonic() + self._tick_s
        try:
            return self._engine.tick(self._clock())
        except BackendUnavailable:
            raise
        except Exception as err:  # noqa: BLE001 - no record to blame: log once, rebuild, go on
            log.error("silence sweep failed, rule state rebuilt: %s: %s", type(err).__name__, err, exc_info=err)
            self._engine.reset()
            return []

    def _write(self, good: list[Batch], alerts: list[AlertEvent], to_store: list[ToStore],
               rows: list[tuple[int, datetime, float]], relay: list[AlertEvent]) -> tuple[Any, list[Quarantined]]:
        """The poll in one transaction; if the database refuses its data, bisected (see
        ``stream.isolation``) and the records refused on their own returned for quarantine.
        ``relay``: transitions stored unpublished, for the outbox."""
        try:
            return self._store.write(rows, alerts, [t.dead for t in to_store], relay), []
        except DataRefused as err:
            log.warning("the database refused a poll, isolating the record(s) responsible: %s", err)
        # bisected, the relayed transitions are published now and written as the others: the
        # database, not Kafka, refused this poll
        self._publish(relay, [])
        alerts = alerts + relay
        units = [isolation.Unit(b.origin, b.original, rows=tuple((r.meter_id, r.ts, r.value) for r in b.batch.readings))
                 for b in good]
        units += [isolation.Unit(t.origin, t.original, dead=(t.dead,)) for t in to_store]
        # in time order: a half written before another must not put an update before its opening
        units += [isolation.Unit(None, contract.encode(a), alerts=(a,)) for a in sorted(alerts, key=lambda a: a.at)]
        out = isolation.bisect(units, self._store.write)
        if any(u.rows for u, _ in out.refused):
            self._engine.reset()  # its state holds readings that are not stored: rebuild from the database
        quarantined = [
            Quarantined(u.origin.topic, u.origin.partition, u.origin.offset, "storage_refused", str(err), u.original)
            if u.origin is not None else
            Quarantined(self._topics.alerts, None, None, "storage_refused", str(err), u.original)
            for u, err in out.refused
        ]
        log.info("poll isolated in %d writes: %d record(s) refused", out.writes, len(out.refused))
        return _Isolated(tuple(c for r in out.results for c in getattr(r, "conflicts", ()))), quarantined

    def _quarantine(self, items: list[Quarantined]) -> None:
        self._store.quarantine(items)  # refused too: BackendUnavailable, nothing committed
        for q in items:
            m.QUARANTINED.labels(q.reason_code).inc()
            log.error("quarantined topic=%s partition=%s offset=%s reason_code=%s: %s",
                      q.topic, q.partition, q.offset, q.reason_code, q.reason)

    def _publish(self, alerts: list[AlertEvent], dead: list[tuple[Origin | None, DeadLetter]]) -> list[Quarantined]:
        """Publish and wait for the acks; a dead letter over ``RECORD_MAX_BYTES`` (nxem/kafka.py's
        record limit) is not sent but returned for quarantine: the producer would refuse it and
        the whole send with it, every time the poll is retried. A dead letter carries its record
        base64-encoded (x 4/3), so an undecodable record near the limit makes one over it."""
        if not alerts and not dead:
            return []
        records = [alert_record(self._topics.alerts, a) for a in alerts]
        too_large: list[Quarantined] = []
        for origin, d in dead:
            data = contract.encode(d)
            if len(data) <= RECORD_MAX_BYTES:
                records.append((self._topics.deadletter, None, data))
                continue
            reason = f"{d.reason_code}: {d.reason} (dead letter of {len(data)} bytes, over {RECORD_MAX_BYTES})"
            if origin is None:
                too_large.append(Quarantined(self._topics.readings, None, None, "dead_letter_too_large", reason,
                                             d.original))
            else:
                too_large.append(Quarantined(origin.topic, origin.partition, origin.offset, "dead_letter_too_large",
                                             reason, d.original))
        if records:
            send_and_wait(self._producer, records, "alerts/dead letters")
        return too_large

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
