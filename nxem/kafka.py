"""Kafka adapter: builds kafka-python producers/consumers with the pipeline's settings and
translates kafka-python's errors into ours (``KafkaUnavailable``). Holds no business rule.

The only module of the pipeline's processes that imports kafka-python (the local service runner
``ops/services/kafka.py`` and the test harness use it for themselves): the collector gets its
producer here, the worker speaks to its consumer through ``GroupConsumer`` (subscription,
rebalance callbacks as plain sets, rebuild) and the loop's calls here (``commit_offsets``,
``rewind_to_committed``, ``partition_lags``); ``ClusterWatch`` asks the broker, from any
thread, what ``nxem.watchdog`` judges."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, Final

from kafka import ConsumerRebalanceListener, KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import OffsetSpec
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.errors import KafkaError, MessageSizeTooLargeError, RecordListTooLargeError
from kafka.partitioner.default import murmur2

from nxem import contract
from nxem.contract import AlertEvent
from nxem.errors import BackendUnavailable, ConfigError
from nxem.watchdog import GroupView

Record = tuple[str, bytes | None, bytes]  # topic, key, value


class KafkaUnavailable(BackendUnavailable):
    """Kafka is down or refused the call (the loop backs off and retries)."""


def _built(cls: Any, config: dict[str, Any]) -> Any:
    """``cls(**config)`` for a kafka-python client. When its constructor fails (a bootstrap
    timeout while Kafka is down), kafka-python 3.0.12 leaves the client's IO thread running:
    measured here, one more thread per failed attempt, so a process retrying through an outage
    would pile them up. Stop what the half-built client started before the error goes on."""
    client = cls.__new__(cls)
    try:
        client.__init__(**config)
    except BaseException:
        for part, stop in (("_client", "close"), ("_net", "stop")):
            started = getattr(client, part, None)
            if started is not None:
                try:
                    getattr(started, stop)()
                except Exception:  # noqa: BLE001 - best effort on a client that failed to start
                    pass
        raise
    return client


def _servers(bootstrap: str) -> list[str]:
    return [s.strip() for s in bootstrap.split(",") if s.strip()]


# -- record size limits: one consistent set ---------------------------------------------------
# The largest record the pipeline makes is the dead letter of a payload at the collector's cap:
# the payload whole (base64 in JSON: 4 bytes per 3) plus a bounded reason, source and ids. A
# bigger payload's dead letter keeps only a prefix with the payload's size and sha256
# (collector/normalise.py), and Mosquitto refuses packets over MQTT_MAX_PACKET_BYTES anyway
# (max_packet_size in deploy/local, deploy/compose and deploy/k8s). The chain, each link
# checked by ``check_record_limits`` when the collector starts:
#   dead_letter_max_bytes(payload cap) <= RECORD_MAX_BYTES  (= producer max_request_size - framing)
#   PRODUCER_MAX_REQUEST_BYTES + BATCH_OVERHEAD_BYTES <= every topic's max.message.bytes
# A record over a topic's max.message.bytes does not just fail: kafka-python 3.0.12 then puts
# an idempotent producer in a fatal state that fails every later send.

MQTT_MAX_PACKET_BYTES: Final = 1024 * 1024  # Mosquitto max_packet_size: no payload is bigger
PRODUCER_MAX_REQUEST_BYTES: Final = 1024 * 1024  # kafka-python max_request_size (also its largest record)
PRODUCER_BATCH_BYTES: Final = 512 * 1024  # kafka-python batch_size (uncompressed, below the request size)
RECORD_OVERHEAD_BYTES: Final = 1024  # what kafka-python adds to a value alone in its batch (header 61 B, key, varints)
RECORD_MAX_BYTES: Final = PRODUCER_MAX_REQUEST_BYTES - RECORD_OVERHEAD_BYTES  # largest value we send
DEAD_LETTER_OVERHEAD_BYTES: Final = 16 * 1024  # all of a dead letter but its original: reason and
# source are at most 1000 printable characters each (<= 4 bytes each in JSON), ids 64, names and
# timestamps a few hundred bytes
BATCH_OVERHEAD_BYTES: Final = 64 * 1024  # lz4 frame on incompressible data (+0.4 %) and batch header
TOPIC_MAX_MESSAGE_BYTES: Final = 2 * 1024 * 1024  # max.message.bytes the topics are created with
TOPIC_MIN_MESSAGE_BYTES: Final = PRODUCER_MAX_REQUEST_BYTES + BATCH_OVERHEAD_BYTES  # required of them
TOPIC_CONFIGS: Final = {"max.message.bytes": str(TOPIC_MAX_MESSAGE_BYTES)}  # at creation, with retention


def dead_letter_max_bytes(payload_cap: int) -> int:
    """The largest dead letter the collector makes for payloads of at most ``payload_cap`` bytes."""
    return 4 * -(-payload_cap // 3) + DEAD_LETTER_OVERHEAD_BYTES


def max_payload_cap() -> int:
    """The largest payload cap whose dead letters still fit ``RECORD_MAX_BYTES``."""
    return (RECORD_MAX_BYTES - DEAD_LETTER_OVERHEAD_BYTES) // 4 * 3


def check_record_limits(payload_cap: int, topic_max_bytes: Mapping[str, int | None],
                        cap_setting: str = "NXEM_COLLECTOR_MAX_PAYLOAD_BYTES",
                        topic_settings: Mapping[str, str] | None = None) -> None:
    """Raise ``ConfigError`` naming the setting when the largest dead letter of a payload at
    ``payload_cap`` would not fit the producer's request size, or a topic (name -> its
    max.message.bytes, None when the topic does not exist) would refuse the producer's largest
    batch. ``topic_settings`` maps a topic to the setting that names it."""
    need = dead_letter_max_bytes(payload_cap)
    if need > RECORD_MAX_BYTES:
        raise ConfigError(
            f"{cap_setting}={payload_cap}: the dead letter of a payload that size is up to {need} bytes, "
            f"over the {RECORD_MAX_BYTES} bytes a record may have (producer max_request_size "
            f"{PRODUCER_MAX_REQUEST_BYTES}, nxem/kafka.py); set it to at most {max_payload_cap()}"
        )
    for topic, limit in topic_max_bytes.items():
        setting = (topic_settings or {}).get(topic, "topic")
        if limit is None:
            raise ConfigError(f"{setting}={topic}: the topic does not exist (create it: `nxem services up` "
                              f"or the kafka-topics job in deploy/)")
        if limit < TOPIC_MIN_MESSAGE_BYTES:
            raise ConfigError(
                f"{setting}={topic}: its max.message.bytes is {limit}, below the {TOPIC_MIN_MESSAGE_BYTES} "
                f"the producer's largest batch needs (max_request_size {PRODUCER_MAX_REQUEST_BYTES} + "
                f"{BATCH_OVERHEAD_BYTES}); a bigger record would make the producer fail every later send. "
                f"Raise it: kafka-configs.sh --alter --entity-type topics --entity-name {topic} "
                f"--add-config max.message.bytes={TOPIC_MAX_MESSAGE_BYTES}"
            )


def topic_max_message_bytes(bootstrap: str, topics: Collection[str], timeout_s: float = 10.0) -> dict[str, int | None]:
    """topic -> its effective max.message.bytes (None: no such topic), read with an admin client."""
    try:
        admin = KafkaAdminClient(bootstrap_servers=_servers(bootstrap), client_id="nxem-limits",
                                 request_timeout_ms=int(timeout_s * 1000),
                                 bootstrap_timeout_ms=int(timeout_s * 1000))
    except KafkaError as err:
        raise BackendUnavailable(f"Kafka admin for {bootstrap}: {err}") from err
    try:
        found = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, t, ["max.message.bytes"]) for t in topics],
            config_filter="all",
        ).get("topic", {})
    except KafkaError as err:
        raise BackendUnavailable(f"Kafka topic configs of {', '.join(topics)}: {err}") from err
    finally:
        admin.close()
    out: dict[str, int | None] = {}
    for t in topics:
        entry = (found.get(t) or {}).get("max.message.bytes")
        out[t] = int(entry["value"]) if entry and entry.get("value") is not None else None
    return out


def is_too_large(err: BaseException) -> bool:
    """True when the producer (client-side check) or the broker refused a record for its size."""
    return isinstance(err, (MessageSizeTooLargeError, RecordListTooLargeError))


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
        # 20 ms: the collector's sends then make ~4x fewer produce requests than at 5 ms, and
        # requests, not bytes, are what the broker's CPU follows (bench.pipeline); the worker's
        # sends flush, so waits nothing for it
        linger_ms=20,
        batch_size=PRODUCER_BATCH_BYTES,
        max_request_size=PRODUCER_MAX_REQUEST_BYTES,
        compression_type="lz4",
        max_block_ms=10_000,
        metrics_enabled=False,  # +5-7 % measured here; our own Prometheus metrics cover it
    )
    config.update(overrides)
    try:
        return _built(KafkaProducer, config)
    except KafkaError as err:
        raise KafkaUnavailable(f"Kafka producer for {bootstrap}: {err}") from err


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
        # a fetch waits for 64 KiB (or 100 ms) instead of answering with the first record: a
        # worker keeping up had made the broker answer hundreds of near-empty fetches a second
        fetch_min_bytes=64 * 1024,
        fetch_max_wait_ms=100,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        metrics_enabled=False,
    )
    config.update(overrides)
    try:
        consumer = _built(KafkaConsumer, config)
    except KafkaError as err:
        raise KafkaUnavailable(f"Kafka consumer for {bootstrap}: {err}") from err
    return consumer


def send_and_wait(producer: KafkaProducer, records: Iterable[Record], what: str, timeout_s: float = 30.0) -> None:
    """Send ``records`` and return once Kafka acknowledged every one of them; any failure
    (including no metadata within ``max_block_ms`` while Kafka is down) is ``BackendUnavailable``."""
    try:
        futures = [producer.send(topic, key=key, value=value) for topic, key, value in records]
        producer.flush(timeout=timeout_s)
        for f in futures:
            f.get(timeout=timeout_s)
    except KafkaError as err:
        raise KafkaUnavailable(f"Kafka produce of {what}: {err}") from err


def alert_record(topic: str, event: AlertEvent) -> Record:
    """An alert transition as a Kafka record, keyed by its identity (one partition per alert)."""
    return topic, event.alert_key.encode(), contract.encode(event)


def alert_publisher(producer: KafkaProducer, topic: str) -> Callable[[Sequence[AlertEvent]], None]:
    """Publishes alert transitions and waits for every ack."""
    def publish(events: Sequence[AlertEvent]) -> None:
        if events:
            send_and_wait(producer, [alert_record(topic, e) for e in events], "alert transitions")
    return publish


def partition_of(key: bytes, partitions: Collection[int]) -> int:
    """The partition a record keyed ``key`` goes to among ``partitions``, as kafka-python's
    default partitioner (Java-compatible murmur2) assigns it when the producer sends it."""
    ordered = sorted(partitions)
    return ordered[(int(murmur2(key)) & 0x7FFFFFFF) % len(ordered)]


def key_owner(consumer: Any, topic: str) -> Callable[[bytes], bool]:
    """key -> True when records keyed so land on a partition of ``topic`` assigned to
    ``consumer`` now (False while it has no metadata for the topic)."""
    def owns(key: bytes) -> bool:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            return False
        mine = {tp.partition for tp in consumer.assignment() if tp.topic == topic}
        return partition_of(key, partitions) in mine

    return owns


# -- the worker's group consumer, its watchdog's eyes, and the loop's calls ---------------------

Consumer = KafkaConsumer  # for annotations elsewhere: kafka-python is imported here only
Producer = KafkaProducer
Partition = tuple[str, int]  # (topic, partition), as nxem.watchdog counts them



def commit_offsets(consumer: KafkaConsumer) -> None:
    """Commit the consumed offsets (after the database has the records)."""
    try:
        consumer.commit()
    except KafkaError as err:
        raise KafkaUnavailable(f"Kafka offset commit: {err}") from err


def rewind_to_committed(consumer: KafkaConsumer) -> None:
    """Seek every held partition back to its committed offset (the beginning when none), so
    polled-but-uncommitted records are fetched again."""
    try:
        for tp in consumer.assignment():
            committed = consumer.committed(tp)
            if committed is None:
                consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, committed)
    except KafkaError as err:
        raise KafkaUnavailable(f"Kafka committed offsets: {err}") from err


def partition_lags(consumer: KafkaConsumer) -> dict[int, int]:
    """partition -> records behind its high watermark, as this consumer last fetched it (no I/O)."""
    out: dict[int, int] = {}
    for tp in consumer.assignment():
        high = consumer.highwater(tp)
        pos = consumer.position(tp) if high is not None else None
        if high is not None and pos is not None:
            out[tp.partition] = max(0, high - pos)
    return out


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, assigned: Callable[[frozenset[Partition]], None],
                 revoked: Callable[[frozenset[Partition]], None]) -> None:
        self._assigned, self._revoked = assigned, revoked

    def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        self._revoked(frozenset((tp.topic, tp.partition) for tp in revoked))

    def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        self._assigned(frozenset((tp.topic, tp.partition) for tp in assigned))


def _ignore(_parts: frozenset[Partition]) -> None:
    return None


def metadata_before_join(consumer: KafkaConsumer, topics: Sequence[str], timeout_s: float = 5.0) -> bool:
    """Fetch the subscribed topics' partitions before the first poll joins the group; True when
    they came within ``timeout_s``. Without them kafka-python 3.0.12's first join assigns
    nothing ("No partition metadata": 32 of 40 worker starts in a CI run) and a second join
    follows at once; that second join hung in about one start in ten until the broker expelled
    the member (see ``nxem/watchdog.py``). kafka-python's fetch has no timeout (it waits for
    Kafka to come back), so it runs on a helper thread, and past the bound the join goes ahead
    as before."""
    done = threading.Event()

    def fetch() -> None:
        try:
            for topic in topics:
                consumer.partitions_for_topic(topic)  # the first call fetches every topic's metadata
            done.set()
        except Exception:  # noqa: BLE001 - an optimisation only: the join copes without it
            pass

    threading.Thread(target=fetch, name="kafka-metadata-before-join", daemon=True).start()
    return done.wait(timeout_s)


class GroupConsumer:
    """A consumer subscribed to ``topics`` in its group that can be built again (the
    watchdog's remedy). The rebalance callbacks get plain ``(topic, partition)`` sets; on a
    rebuild the old consumer's partitions are passed to ``on_revoked`` as in a rebalance (once
    by kafka-python's ``close`` when it can still reach the group, once here in any case:
    ``on_revoked`` must bear being called twice).

    Also what ``key_owner`` needs (``partitions_for_topic``, ``assignment``) of the current
    consumer. Not thread-safe, like the consumer: use it from the loop's thread."""

    def __init__(self, build: Callable[[], KafkaConsumer], topics: Sequence[str],
                 on_assigned: Callable[[frozenset[Partition]], None] = _ignore,
                 on_revoked: Callable[[frozenset[Partition]], None] = _ignore) -> None:
        self._build, self._topics = build, list(topics)
        self._listener = _Listener(on_assigned, on_revoked)
        self._on_revoked = on_revoked
        self._consumer = self._subscribed(build())

    def _subscribed(self, consumer: KafkaConsumer) -> KafkaConsumer:
        consumer.subscribe(self._topics, listener=self._listener)
        metadata_before_join(consumer, self._topics)
        return consumer

    @property
    def consumer(self) -> KafkaConsumer:
        return self._consumer

    def held(self) -> frozenset[Partition]:
        return frozenset((tp.topic, tp.partition) for tp in self._consumer.assignment())

    def member_id(self) -> str:
        """The consumer's id in its group as it believes it ("" before it joined)."""
        return str(self._consumer.group_metadata().member_id or "")

    def assignment(self) -> set[TopicPartition]:
        found: set[TopicPartition] = self._consumer.assignment()
        return found

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        found: set[int] | None = self._consumer.partitions_for_topic(topic)
        return found

    def recreate(self, close_timeout_s: float = 10.0) -> KafkaConsumer:
        """Close the consumer (it leaves the group) and subscribe a new one. The new one is
        built first: when that fails (``BackendUnavailable``) the old one is kept."""
        fresh = self._build()
        old, held = self._consumer, self.held()
        try:
            old.close(autocommit=False, timeout_ms=int(close_timeout_s * 1000))
        except KafkaError:
            pass  # the broker forgets it after the session timeout anyway
        self._on_revoked(held)
        self._consumer = self._subscribed(fresh)
        return self._consumer

    def close(self, timeout_s: float = 10.0) -> None:
        self._consumer.close(autocommit=False, timeout_ms=int(timeout_s * 1000))


class ClusterWatch:
    """What the broker says about ``topics`` and ``group`` (``nxem.watchdog.GroupView``), asked
    with an admin client of its own: safe from any thread, never the loop's consumer."""

    def __init__(self, bootstrap: str, client_id: str, topics: Sequence[str], group: str | None = None,
                 timeout_s: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._bootstrap, self._client_id = bootstrap, client_id
        self._topics, self._group = list(topics), group
        self._timeout_ms = int(timeout_s * 1000)
        self._clock = clock
        self._admin: KafkaAdminClient | None = None

    def _client(self) -> KafkaAdminClient:
        if self._admin is None:
            self._admin = _built(KafkaAdminClient, dict(
                bootstrap_servers=_servers(self._bootstrap), client_id=self._client_id,
                request_timeout_ms=self._timeout_ms, bootstrap_timeout_ms=self._timeout_ms,
            ))
        return self._admin

    def partitions(self) -> dict[str, int]:
        """topic -> partition count (0: the broker knows no such topic)."""
        try:
            meta = self._client().describe_topics(self._topics)
        except KafkaError as err:
            self.close()
            raise KafkaUnavailable(f"Kafka metadata of {', '.join(self._topics)}: {err}") from err
        found = {str(t["name"]): (len(t["partitions"]) if t["error_code"] == 0 else 0) for t in meta}
        return {t: found.get(t, 0) for t in self._topics}

    def look(self) -> GroupView:
        at = self._clock()
        counts = self.partitions()
        tps = [TopicPartition(t, p) for t in self._topics for p in range(counts[t])]
        member_ids: frozenset[str] = frozenset()
        end: dict[Partition, int] = {}
        committed: dict[Partition, int] = {}
        try:
            admin = self._client()
            if tps:
                latest = admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in tps},
                                                      timeout_ms=self._timeout_ms)
                end = {(tp.topic, tp.partition): int(o.offset) for tp, o in latest.items()}
            if self._group is not None:
                group = admin.describe_groups([self._group]).get(self._group) or {}
                member_ids = frozenset(str(mb.get("member_id", "")) for mb in group.get("members") or [])
                if tps:
                    offsets = admin.list_group_offsets({self._group: tps}).get(self._group) or {}
                    committed = {(tp.topic, tp.partition): int(o.offset) for tp, o in offsets.items()
                                 if o is not None and o.offset >= 0}
        except KafkaError as err:
            self.close()
            raise KafkaUnavailable(f"Kafka offsets of group {self._group}: {err}") from err
        return GroupView(at=at, partitions=counts, members=len(member_ids), member_ids=member_ids, end_offsets=end,
                         committed=committed)

    def close(self) -> None:
        admin, self._admin = self._admin, None
        if admin is not None:
            try:
                admin.close()
            except Exception:  # noqa: BLE001 - closing a broken client: nothing left to do
                pass
