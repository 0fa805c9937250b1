"""The worker's notion of which sites are its own follows the partitions the collector's
producer actually sends each site's readings to."""

from __future__ import annotations

from dataclasses import dataclass, field

from kafka.partitioner.default import DefaultPartitioner
from kafka.structs import TopicPartition

from nxem.kafka import key_owner, partition_of

TOPIC = "nxem.readings.v1"


@dataclass
class _Cluster:
    partitions: set[int]

    def topics(self) -> set[str]:
        return {TOPIC}

    def partitions_for_topic(self, _topic: str) -> set[int]:
        return self.partitions

    def available_partitions_for_topic(self, _topic: str) -> set[int]:
        return self.partitions


def test_partition_of_agrees_with_the_producers_default_partitioner() -> None:
    for n in (1, 3, 6, 12):
        cluster = _Cluster(set(range(n)))
        for site_id in range(1, 500):
            key = str(site_id).encode()
            expected = DefaultPartitioner().partition(TOPIC, key, key, None, None, cluster)
            assert partition_of(key, cluster.partitions) == expected


@dataclass
class _Consumer:
    partitions: set[int]
    mine: set[int]
    others: list[TopicPartition] = field(default_factory=list)

    def partitions_for_topic(self, _topic: str) -> set[int]:
        return self.partitions

    def assignment(self) -> set[TopicPartition]:
        # the dead-letter topic's partitions carry the same numbers: they must not count
        return {TopicPartition(TOPIC, p) for p in self.mine} | {TopicPartition("nxem.deadletter.v1", p)
                                                                for p in self.partitions}


def test_a_worker_owns_exactly_the_keys_of_its_assigned_partitions() -> None:
    keys = [str(site).encode() for site in range(1, 200)]
    owns = key_owner(_Consumer(set(range(6)), {0, 3}), TOPIC)
    assert {k for k in keys if owns(k)} == {k for k in keys if partition_of(k, range(6)) in (0, 3)}
    assert 0 < sum(map(owns, keys)) < len(keys)  # some, not all: 2 of 6 partitions
    assert not key_owner(_Consumer(set(), set()), TOPIC)(b"1")  # no metadata yet: nothing is owned
