"""The simulators' MQTT adapter: paho-mqtt 2.x publishers, the one place paho codes are checked.

A ``Publisher`` is one MQTT 5 connection (``CallbackAPIVersion.VERSION2``) driven by paho's
own network thread (``loop_start``), publishing at QoS 1. A message counts as published only
when its PUBACK arrives with a success reason code; ``publish`` blocks once ``max_pending``
messages await their PUBACK (backpressure instead of unbounded memory). paho reconnects with
exponential backoff (1 s → 30 s) and resends unacknowledged messages itself.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from nxem.errors import NxemError
from simulators.settings import SimulatorSettings

log = logging.getLogger(__name__)


class PublishError(NxemError):
    """The broker could not be reached, refused us, or did not acknowledge every message."""


@dataclass
class PublishStats:
    """Counters of one publisher (read them after ``wait_acked``)."""

    sent: int = 0
    acked: int = 0
    failed: int = 0  # PUBACK with a failure reason code, or refused by paho at publish time
    disconnects: int = 0
    errors: Counter[str] = field(default_factory=Counter)  # reason -> count


def _password(settings: SimulatorSettings) -> str | None:
    if settings.mqtt_password_file is None:
        return None
    try:
        return settings.mqtt_password_file.read_text(encoding="utf-8").strip()
    except OSError as err:
        raise PublishError(f"cannot read NXEM_MQTT_PASSWORD_FILE ({settings.mqtt_password_file}): "
                           f"{err.strerror}") from err


class Publisher:
    """One MQTT connection publishing QoS 1 messages and counting their PUBACKs."""

    def __init__(self, settings: SimulatorSettings, client_id: str, max_pending: int | None = None) -> None:
        self.settings = settings
        self.client_id = client_id
        self.stats = PublishStats()
        self._max_pending = max_pending or 4 * settings.sim_max_inflight
        self._cond = threading.Condition()
        self._connected = False
        self._refused: str | None = None
        c = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
        c.max_inflight_messages_set(settings.sim_max_inflight)
        c.max_queued_messages_set(0)  # unbounded: ``max_pending`` bounds it instead
        c.reconnect_delay_set(min_delay=1, max_delay=30)
        if settings.mqtt_username is not None:
            c.username_pw_set(settings.mqtt_username, _password(settings))
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_publish = self._on_publish
        self._client = c

    # -- paho callbacks (network thread) -------------------------------------------------
    def _on_connect(self, _c: paho.Client, _u: object, _f: object, rc: ReasonCode,
                    _p: Properties | None) -> None:
        with self._cond:
            if rc.is_failure:
                self._refused = str(rc)
                self.stats.errors[f"connack:{rc}"] += 1
            else:
                self._connected = True
            self._cond.notify_all()

    def _on_disconnect(self, _c: paho.Client, _u: object, _f: object, rc: ReasonCode,
                       _p: Properties | None) -> None:
        with self._cond:
            self._connected = False
            self.stats.disconnects += 1
            if rc.is_failure:
                self.stats.errors[f"disconnect:{rc}"] += 1
            self._cond.notify_all()

    def _on_publish(self, _c: paho.Client, _u: object, _mid: int, rc: ReasonCode, _p: Properties | None) -> None:
        with self._cond:
            # MQTT 5 PUBACK: 0x00 success, 0x10 "no matching subscribers" is also a success.
            if rc.is_failure:
                self.stats.failed += 1
                self.stats.errors[f"puback:{rc}"] += 1
            else:
                self.stats.acked += 1
            self._cond.notify_all()

    # -- caller side ----------------------------------------------------------------------
    @property
    def pending(self) -> int:
        return self.stats.sent - self.stats.acked - self.stats.failed

    def connect(self, timeout_s: float = 30.0) -> None:
        s = self.settings
        try:
            self._client.connect_async(s.mqtt_host, s.mqtt_port, keepalive=30, clean_start=True)
        except (OSError, ValueError) as err:
            raise PublishError(f"MQTT connect to {s.mqtt_host}:{s.mqtt_port} failed: {err}") from err
        self._client.loop_start()
        self._wait_connected(timeout_s)

    def _wait_connected(self, timeout_s: float) -> None:
        s = self.settings
        with self._cond:
            ok = self._cond.wait_for(lambda: self._connected or self._refused is not None, timeout_s)
            if self._refused is not None:
                refused, self._refused = self._refused, None
                self.close()
                raise PublishError(f"broker {s.mqtt_host}:{s.mqtt_port} refused client {self.client_id}: {refused}")
        if not ok:
            self.close()
            raise PublishError(f"no MQTT connection to {s.mqtt_host}:{s.mqtt_port} within {timeout_s:.0f} s")

    def publish(self, topic: str, payload: bytes) -> None:
        """Queue one QoS 1 message; blocks while ``max_pending`` messages await their PUBACK."""
        with self._cond:
            if self.pending >= self._max_pending:
                self._cond.wait_for(lambda: self.pending < self._max_pending)
            self.stats.sent += 1
        info = self._client.publish(topic, payload, qos=1)
        # NO_CONN: paho keeps QoS 1 messages and sends them after it reconnects.
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            with self._cond:
                self.stats.failed += 1
                self.stats.errors[f"publish:{paho.error_string(info.rc)}"] += 1
                self._cond.notify_all()

    def wait_acked(self, timeout_s: float) -> bool:
        """Wait until every message sent so far is acknowledged (or failed); False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self.pending <= 0, timeout_s)

    def reconnect(self, timeout_s: float = 30.0) -> None:
        """Drop the connection and open it again (a reconnect storm is a loop of these)."""
        self._client.disconnect()
        self._stop_loop()
        with self._cond:
            self._connected = False
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.connect(timeout_s)

    def _stop_loop(self) -> None:
        self._client.loop_stop()
        # paho 2.2's loop_start() makes a new wake-up socket pair without closing the old one:
        # close it here so a reconnect storm does not leak two sockets per reconnect.
        self._client._reset_sockets(sockpair_only=True)

    def close(self) -> None:
        self._client.disconnect()
        self._stop_loop()


def connect_all(settings: SimulatorSettings, n: int, tag: str, timeout_s: float = 30.0) -> list[Publisher]:
    """``n`` connected publishers with client ids ``<prefix>-<tag>-<i>``."""
    pubs: list[Publisher] = []
    try:
        for i in range(n):
            p = Publisher(settings, f"{settings.sim_client_prefix}-{tag}-{i}")
            p.connect(timeout_s)
            pubs.append(p)
    except PublishError:
        close_all(pubs)
        raise
    log.info("connected publishers=%d host=%s port=%d", n, settings.mqtt_host, settings.mqtt_port)
    return pubs


def close_all(pubs: list[Publisher]) -> None:
    for p in pubs:
        p.close()


def unique_tag() -> str:
    """A short tag so two runs never share MQTT client ids (the broker would kick one out)."""
    return f"{int(time.time() * 1000) % 10**9:x}"
