"""The record size limits are one consistent set: the collector's payload cap, the largest dead
letter and reading batch, the producer's max_request_size, the topics' max.message.bytes and
Mosquitto's packet limit (in every deploy shape)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from collector.payload import MAX_ID_LEN, MAX_PAYLOAD_BYTES, MAX_READINGS
from nxem import contract
from nxem.errors import ConfigError
from nxem.kafka import (
    MQTT_MAX_PACKET_BYTES,
    PRODUCER_MAX_REQUEST_BYTES,
    RECORD_MAX_BYTES,
    TOPIC_CONFIGS,
    TOPIC_MIN_MESSAGE_BYTES,
    check_record_limits,
    dead_letter_max_bytes,
    max_payload_cap,
)
from nxem.settings import REPO_ROOT

TOPICS = {"nxem.readings.v1": "NXEM_TOPIC_READINGS", "nxem.deadletter.v1": "NXEM_TOPIC_DEADLETTER"}


def test_the_numbers_of_the_chain() -> None:
    # 262 144 bytes -> ceil(262 144 / 3) = 87 382 groups of base64 -> 349 528 bytes, + 16 384
    assert dead_letter_max_bytes(262_144) == 365_912
    # 1 048 576 - 1 024 = 1 047 552 bytes a value may have; (1 047 552 - 16 384) // 4 * 3 = 773 376
    assert RECORD_MAX_BYTES == 1_047_552 and max_payload_cap() == 773_376
    assert dead_letter_max_bytes(773_376) == 1_047_552  # the largest cap fills a record exactly
    # the topics need the producer's request size + 64 KiB: 1 048 576 + 65 536 = 1 114 112,
    # and are created with 2 MiB; the broker's default (1 048 588) is below it
    assert TOPIC_MIN_MESSAGE_BYTES == 1_114_112 and TOPIC_CONFIGS == {"max.message.bytes": "2097152"}


def test_the_default_cap_and_topics_made_by_the_runner_pass() -> None:
    check_record_limits(MAX_PAYLOAD_BYTES, {t: 2_097_152 for t in TOPICS}, topic_settings=TOPICS)
    check_record_limits(773_376, {t: 1_114_112 for t in TOPICS}, topic_settings=TOPICS)


def test_a_cap_whose_dead_letters_do_not_fit_fails_naming_the_setting() -> None:
    with pytest.raises(ConfigError, match=r"NXEM_COLLECTOR_MAX_PAYLOAD_BYTES=773377: .* at most 773376"):
        check_record_limits(773_377, {})
    # a payload just under Mosquitto's packet limit accepted whole would not fit either
    with pytest.raises(ConfigError, match="NXEM_COLLECTOR_MAX_PAYLOAD_BYTES=1048000"):
        check_record_limits(1_048_000, {})


@pytest.mark.parametrize(
    ("limit", "message"),
    [
        (1_048_588, r"NXEM_TOPIC_DEADLETTER=nxem.deadletter.v1: its max.message.bytes is 1048588, below the 1114112"),
        (1_114_111, r"max.message.bytes is 1114111"),
        (None, r"NXEM_TOPIC_DEADLETTER=nxem.deadletter.v1: the topic does not exist"),
    ],
)
def test_a_topic_below_the_producer_fails_naming_its_setting(limit: int | None, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        check_record_limits(MAX_PAYLOAD_BYTES, {"nxem.readings.v1": 2_097_152, "nxem.deadletter.v1": limit},
                            topic_settings=TOPICS)


def test_the_largest_reading_batch_fits_a_record() -> None:
    """5 000 readings (the cap per message) with the longest encodings of each field."""
    batch = contract.ReadingBatch(
        enterprise_id="E" * MAX_ID_LEN, site_id=-(2**63), gateway_id="\U0001d11e" * MAX_ID_LEN, seq=2**63 - 1,
        sent_at=datetime(2099, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        received_at=datetime(2099, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        readings=[contract.Reading(-(2**63), datetime(2099, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
                                   - timedelta(microseconds=i), -1.2345678901234567e-300)
                  for i in range(MAX_READINGS)],
    )
    # each reading [-9223372036854775808,"2099-12-31T23:59:59.999999Z",-1.2345678901234567e-300]
    # is 20 + 29 + 24 + 4 punctuation = 77 bytes (+1 comma): 5 000 x 78 = 390 000
    assert len(contract.encode(batch)) < 395_000 < RECORD_MAX_BYTES


def _number(path: str, pattern: str) -> list[int]:
    return [int(n) for n in re.findall(pattern, (REPO_ROOT / path).read_text())]


@pytest.mark.parametrize(
    "path", ["deploy/local/mosquitto.conf.tmpl", "deploy/compose/mosquitto/mosquitto.conf", "deploy/k8s/22-mosquitto.yaml"],
)
def test_every_broker_config_refuses_what_the_limits_assume(path: str) -> None:
    # a bigger MQTT packet would still be refused by the cap (a 4 KiB dead letter), but the
    # constant documents what reaches the collector at all
    assert _number(path, r"max_packet_size\s+(\d+)") == [MQTT_MAX_PACKET_BYTES]


@pytest.mark.parametrize("path", ["deploy/compose/compose.yaml", "deploy/k8s/21-kafka.yaml"])
def test_the_deploy_topics_the_collector_writes_take_the_producers_largest_batch(path: str) -> None:
    text = (REPO_ROOT / path).read_text()
    for topic in ("nxem.readings.v1", "nxem.deadletter.v1"):
        line = next(ln for ln in text.split("--topic ")[1:] if ln.startswith(topic))
        (limit,) = _number_in(line, r"max\.message\.bytes=(\d+)")
        assert limit >= TOPIC_MIN_MESSAGE_BYTES > PRODUCER_MAX_REQUEST_BYTES


def _number_in(text: str, pattern: str) -> list[int]:
    return [int(n) for n in re.findall(pattern, text)]
