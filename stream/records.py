"""What the worker makes of one poll's Kafka records, each kept with where it came from.

A record of the readings topic is a ``ReadingBatch`` to evaluate and store; one of the
dead-letter topic is a ``DeadLetter`` to store. A record that does not decode as the contract
(malformed, another schema version, an empty value, a naive datetime) is refused: a dead letter
naming its ``topic/partition@offset`` goes to the dead-letter topic, or -- a broken dead letter
-- straight to the table, never re-published (no loop).

Every decoded record keeps its ``Origin`` (Kafka topic, partition, offset) and original bytes,
so one that later cannot be evaluated or stored is dead-lettered or quarantined by that identity;
a replay of the topic therefore re-creates the same dead letter, which storage recognises.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from nxem import contract
from nxem.contract import DeadLetter, ReadingBatch
from nxem.errors import ContractError


@dataclass(frozen=True, slots=True)
class Origin:
    """A Kafka record's identity."""

    topic: str
    partition: int
    offset: int

    @property
    def source(self) -> str:
        return f"{self.topic}/{self.partition}@{self.offset}"


@dataclass(frozen=True, slots=True)
class Batch:
    """A record of the readings topic, decoded."""

    origin: Origin
    original: bytes
    batch: ReadingBatch


@dataclass(frozen=True, slots=True)
class ToStore:
    """A dead letter to store: consumed from the dead-letter topic, or one that broke the contract."""

    origin: Origin
    original: bytes
    dead: DeadLetter


@dataclass(slots=True)
class Intake:
    batches: list[Batch] = field(default_factory=list)
    to_store: list[ToStore] = field(default_factory=list)
    refused: list[tuple[Origin, DeadLetter]] = field(default_factory=list)  # to publish on the dead-letter topic


def refusal(origin: Origin, original: bytes, reason_code: str, reason: str, now: datetime,
            enterprise_id: str | None = None, gateway_id: str | None = None) -> DeadLetter:
    """The worker's dead letter for a record (its identity is the record's, not ``now``)."""
    return DeadLetter(stage="worker", reason_code=reason_code, reason=reason, received_at=now,
                      source=origin.source, original=original, enterprise_id=enterprise_id,
                      gateway_id=gateway_id)


def decode_poll(polled: Mapping[Any, Sequence[Any]], deadletter_topic: str, now: datetime) -> Intake:
    """Sort one poll's records (``TopicPartition -> [ConsumerRecord]``) into an ``Intake``."""
    out = Intake()
    for tp, records in polled.items():
        from_dlq = tp.topic == deadletter_topic
        for rec in records:
            origin = Origin(tp.topic, tp.partition, rec.offset)
            value: bytes = rec.value or b""
            try:
                if rec.value is None:
                    raise ContractError("contract_invalid", "empty record value (a tombstone)")
                if from_dlq:
                    out.to_store.append(ToStore(origin, value, contract.decode_dead_letter(value)))
                else:
                    out.batches.append(Batch(origin, value, contract.decode_batch(value)))
            except ContractError as err:
                refused = refusal(origin, value, err.reason_code, err.message, now)
                if from_dlq:
                    out.to_store.append(ToStore(origin, value, refused))
                else:
                    out.refused.append((origin, refused))
    return out
