"""Kafka clients built by the adapter against a broker that is not there: a clear error of
ours, and nothing left running (kafka-python 3.0.12 leaves a failed client's IO thread)."""

from __future__ import annotations

import gc
import logging
import socket
import threading
import warnings

import pytest

from nxem.errors import BackendUnavailable
from nxem.kafka import ClusterWatch, KafkaUnavailable, make_consumer, metadata_before_join


def _closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"  # nothing listens there once closed


def _io_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("kafka-io")]


def test_failed_clients_leave_no_thread_behind(caplog: pytest.LogCaptureFixture) -> None:
    # kafka-python logs each refused connection with the connection object as an argument: a
    # captured record would keep its socket alive past this test
    caplog.set_level(logging.CRITICAL, logger="kafka")
    before = _io_threads()
    bootstrap = _closed_port()
    watch = ClusterWatch(bootstrap, "nxem-test-watch", ["nxem.readings.v1"], "g", timeout_s=0.5)
    with warnings.catch_warnings():
        # the sockets of a failed bootstrap are left to the garbage collector by kafka-python
        warnings.simplefilter("ignore", ResourceWarning)
        for _ in range(2):  # a retry builds a new client: neither may stay
            with pytest.raises(KafkaUnavailable, match="Kafka metadata of nxem.readings.v1"):
                watch.partitions()
        with pytest.raises(BackendUnavailable, match=f"Kafka consumer for {bootstrap}"):
            make_consumer(bootstrap, "g", "nxem-test", bootstrap_timeout_ms=500, request_timeout_ms=400,
                          fetch_max_wait_ms=50)
        for t in threading.enumerate():  # a stopped IO thread ends on its own, promptly
            if t.name.startswith("kafka-io") and t.name not in before:
                t.join(5)
        gc.collect()
    assert _io_threads() == before


class _Metadata:
    """Stands in for a KafkaConsumer's ``partitions_for_topic`` (the only call made)."""

    def __init__(self, release: threading.Event | None = None, fail: bool = False) -> None:
        self.asked: list[str] = []
        self._release, self._fail = release, fail

    def partitions_for_topic(self, topic: str) -> set[int]:
        self.asked.append(topic)
        if self._fail:
            raise OSError("broker gone")
        if self._release is not None:
            self._release.wait(10)  # kafka-python's fetch waits for Kafka without a timeout
        return {0, 1, 2}


def test_metadata_before_join_asks_for_every_topic() -> None:
    fake = _Metadata()
    assert metadata_before_join(fake, ["r", "d"], timeout_s=5) is True
    assert fake.asked == ["r", "d"]


def test_metadata_before_join_gives_up_at_its_bound_and_on_errors() -> None:
    release = threading.Event()
    try:
        assert metadata_before_join(_Metadata(release), ["r"], timeout_s=0.2) is False
    finally:
        release.set()  # the helper thread ends
    assert metadata_before_join(_Metadata(fail=True), ["r"], timeout_s=1) is False
