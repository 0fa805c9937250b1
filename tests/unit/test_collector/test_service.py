"""The collector loop's own guarantees, with a stand-in producer: no message stops it, and a
record refused as too large neither loses the message nor poisons the sends after it.

(The same against the real broker: tests/integration/test_collector_limits.py.)"""

from __future__ import annotations

import json
import queue
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from kafka.errors import KafkaTimeoutError, MessageSizeTooLargeError

from collector import metrics as m
from collector.mqtt import Inbound
from collector.payload import topic_for
from collector.service import Collector, Routing, Topics
from nxem import contract

ENT = "91640500MA76L8XK3A"
NOW = datetime(2026, 11, 24, 8, 0, 30, tzinfo=UTC)
TOPICS = Topics("readings", "dead")


@dataclass(frozen=True)
class GW:
    enterprise_id: str
    site_id: int


@dataclass(frozen=True)
class MR:
    meter_id: int
    site_id: int
    enterprise_id: str
    unit: str


ROUTING: Routing = ({"gw-a": GW(ENT, 7)}, {("gw-a", "it"): MR(101, 7, ENT, "kWh")})


class Done:
    """A produce future already completed, as kafka-python calls callbacks added late."""

    def __init__(self, error: Exception | None) -> None:
        self.error = error

    def add_callback(self, fn: Callable[[object], None]) -> Done:
        if self.error is None:
            fn(None)
        return self

    def add_errback(self, fn: Callable[[Exception], None]) -> Done:
        if self.error is not None:
            fn(self.error)
        return self


@dataclass
class Broker:
    """Topics as lists of values; refuses a record over ``max_bytes`` the way Kafka does, and
    a producer that got such a refusal fails every later send (kafka-python's fatal state)."""

    max_bytes: int = 10**9
    limits: dict[str, int] = field(default_factory=dict)  # per topic, else max_bytes
    topics: dict[str, list[bytes]] = field(default_factory=dict)
    producers: list[Producer] = field(default_factory=list)

    def producer(self) -> Producer:
        p = Producer(self)
        self.producers.append(p)
        return p


@dataclass
class Producer:
    broker: Broker
    client_side_max: int | None = None  # kafka-python's own max_request_size check (raises in send)
    fatal: Exception | None = None
    closed: bool = False

    def send(self, topic: str, value: bytes, key: bytes | None = None) -> Done:
        if self.client_side_max is not None and len(value) > self.client_side_max:
            raise MessageSizeTooLargeError(f"{len(value)} bytes")
        if self.fatal is not None:
            return Done(self.fatal)
        if len(value) > self.broker.limits.get(topic, self.broker.max_bytes):
            self.fatal = MessageSizeTooLargeError("MESSAGE_SIZE_TOO_LARGE")
            return Done(self.fatal)
        self.broker.topics.setdefault(topic, []).append(value)
        return Done(None)

    def close(self, timeout: float | None = None) -> None:
        self.closed = True

    def flush(self, timeout: float | None = None) -> None:
        return None


@dataclass
class Acks:
    mids: list[int] = field(default_factory=list)

    def ack(self, mid: int, qos: int) -> None:
        self.mids.append(mid)


def _collector(broker: Broker, routing: Callable[[], Routing] = lambda: ROUTING,
               producer: Callable[[], Producer] | None = None) -> tuple[Collector, queue.Queue[Inbound], Acks]:
    inbox: queue.Queue[Inbound] = queue.Queue()
    acks = Acks()
    c = Collector(cast(Any, acks), inbox, cast(Any, producer or broker.producer), TOPICS, routing,
                  clock=lambda: NOW)
    return c, inbox, acks


def _good(mid: int, value: float) -> Inbound:
    body = {"schema": "nxem.gateway/1", "enterprise": ENT, "gateway": "gw-a", "seq": mid,
            "sent_at": "2026-11-24T16:00:01+08:00",
            "readings": [{"meter": "it", "ts": "2026-11-24T16:00:00+08:00", "value": value}]}
    return Inbound(mid, 1, topic_for(ENT, "gw-a"), json.dumps(body).encode())


def _malformed_of(size: int, mid: int) -> Inbound:
    body = b'{"schema": "nxem.gateway/1", "readings": ['
    return Inbound(mid, 1, topic_for(ENT, "gw-a"), body + b" " * (size - len(body)))


def _dead(broker: Broker) -> list[contract.DeadLetter]:
    return [contract.decode_dead_letter(v) for v in broker.topics.get("dead", [])]


def _values(broker: Broker) -> list[float]:
    return [r.value for v in broker.topics.get("readings", []) for r in contract.decode_batch(v).readings]


def test_an_unexpected_exception_is_an_internal_error_dead_letter_and_the_next_message_goes_through() -> None:
    broker = Broker()
    calls = iter([RuntimeError("boom\x00"), None])

    def routing() -> Routing:
        err = next(calls, None)
        if err is not None:
            raise err
        return ROUTING

    c, inbox, acks = _collector(broker, routing)
    before = m.INTERNAL_ERRORS.labels("RuntimeError")._value.get()
    inbox.put(_good(1, 1.0))
    inbox.put(_good(2, 2.0))
    c.run_once(0)
    (dead,) = _dead(broker)
    assert dead.reason_code == "internal_error" and dead.reason == "RuntimeError: boom\\x00"
    assert dead.original == _good(1, 1.0).payload
    assert _values(broker) == [2.0] and acks.mids == [1, 2]
    assert m.INTERNAL_ERRORS.labels("RuntimeError")._value.get() == before + 1


def test_a_record_the_broker_refuses_as_too_large_is_sent_truncated_on_a_new_producer() -> None:
    # the broker takes at most 100 000 bytes; a 200 000-byte malformed payload's dead letter is
    # ~266 700 bytes (base64), so it is refused and the producer fails from then on
    broker = Broker(max_bytes=100_000)
    c, inbox, acks = _collector(broker)
    inbox.put(_malformed_of(200_000, 1))
    beside = _good(2, 2.0)  # with a reading of an unknown meter whose dead letter is ~8 KB
    body = json.loads(beside.payload)
    body["readings"].append({"meter": "ghost", "ts": "2026-11-24T16:00:00+08:00", "value": 1.0, "unit": "u" * 6000})
    inbox.put(Inbound(2, 1, beside.topic, json.dumps(body).encode()))
    c.run_once(0)
    first = broker.producers[0]
    assert first.fatal is not None and acks.mids == []  # message 2 failed on the poisoned producer too
    c.run_once(0)  # replaces the producer, re-sends both: 1 with its dead letter truncated
    assert first.closed and len(broker.producers) == 2
    big, ghost = sorted(_dead(broker), key=lambda d: d.reason_code)
    assert big.reason_code == "malformed_json" and big.original == _malformed_of(200_000, 1).payload[:4096]
    assert "original 200000 bytes, sha256 " in big.reason
    # message 2 was only aborted beside it: sent again as it was, its dead letter whole
    assert ghost.reason_code == "unknown_meter" and len(ghost.original) > 6000
    assert _values(broker) == [2.0] and sorted(acks.mids) == [1, 2]
    inbox.put(_good(3, 3.0))
    c.run_once(0)
    assert _values(broker) == [2.0, 3.0] and acks.mids[-1] == 3


def test_a_record_the_client_refuses_as_too_large_is_sent_truncated() -> None:
    broker = Broker()
    made: list[Producer] = []

    def producer() -> Producer:
        p = Producer(broker, client_side_max=100_000)
        made.append(p)
        return p

    c, inbox, acks = _collector(broker, producer=producer)
    inbox.put(_malformed_of(200_000, 1))
    c.run_once(0)
    assert acks.mids == []
    c.run_once(0)
    (dead,) = _dead(broker)
    assert len(dead.original) == 4096 and acks.mids == [1]


def test_a_batch_refused_even_after_truncating_becomes_one_record_too_large_dead_letter() -> None:
    # a readings topic that takes at most 100 bytes refuses the ~190-byte batch whole and again
    # with the dead letters truncated; the message then ends as one record_too_large dead letter
    # (its readings with it: only a topic configured below the checked limits does this)
    broker = Broker(limits={"readings": 100})
    c, inbox, acks = _collector(broker)
    inbox.put(_good(1, 1.0))
    for _ in range(3):
        c.run_once(0)
    (dead,) = _dead(broker)
    assert dead.reason_code == "record_too_large" and dead.original == _good(1, 1.0).payload
    assert acks.mids == [1] and len(broker.producers) == 3  # two refusals, two new producers
    inbox.put(_good(2, 2.0))  # and the loop goes on, the next message the same way
    for _ in range(3):
        c.run_once(0)
    assert [d.reason_code for d in _dead(broker)] == ["record_too_large", "record_too_large"]
    assert acks.mids == [1, 2]


def test_kafka_down_is_retried_with_back_off_on_the_same_producer_not_dead_lettered() -> None:
    broker = Broker()
    failing = [True]
    clock = [100.0]

    class Flaky(Producer):
        def send(self, topic: str, value: bytes, key: bytes | None = None) -> Done:
            if failing[0]:
                raise KafkaTimeoutError("no metadata")  # what send raises while Kafka is down
            return super().send(topic, value, key)

    made: list[Producer] = []

    def producer() -> Producer:
        made.append(Flaky(broker))
        return made[-1]

    inbox: queue.Queue[Inbound] = queue.Queue()
    acks = Acks()
    c = Collector(cast(Any, acks), inbox, cast(Any, producer), TOPICS, lambda: ROUTING, clock=lambda: NOW,
                  monotonic=lambda: clock[0])
    inbox.put(_good(1, 1.0))
    c.run_once(0)
    failing[0] = False
    c.run_once(0)  # not due yet: the first retry waits 0.5 s
    assert acks.mids == [] and _values(broker) == []
    clock[0] += 0.5
    c.run_once(0)
    assert _values(broker) == [1.0] and acks.mids == [1] and _dead(broker) == [] and len(made) == 1
