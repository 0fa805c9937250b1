"""MQTT adapter of the collector: a paho-mqtt 2.x subscriber with a persistent session and
manual acknowledgements. The only module that reads paho's return and reason codes.

Messages are handed to the service through a bounded queue; the broker never has more than
``receive_maximum`` unacknowledged messages in flight to us (MQTT 5 Receive Maximum), which
is the collector's backpressure: while Kafka is down nothing is acked, so the broker stops
sending and keeps the rest in its persistent queue.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from nxem.errors import BackendUnavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Inbound:
    mid: int
    qos: int
    topic: str
    payload: bytes


@dataclass(frozen=True)
class MqttOptions:
    host: str
    port: int
    client_id: str
    topic_filter: str
    username: str | None = None
    password_file: Path | None = None
    session_expiry_s: int = 7 * 24 * 3600  # keep our queue at the broker across restarts
    receive_maximum: int = 1000
    keepalive_s: int = 30


class MqttSubscriber:
    def __init__(self, opts: MqttOptions, inbox: "queue.Queue[Inbound]") -> None:
        self._opts = opts
        self._inbox = inbox
        self.connected = threading.Event()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=opts.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        if opts.username:
            password = opts.password_file.read_text().strip() if opts.password_file else None
            self._client.username_pw_set(opts.username, password)
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    # -- paho callbacks (network thread) -------------------------------------------------
    def _on_connect(self, client: mqtt.Client, _u: object, _f: object, rc: ReasonCode, _p: object) -> None:
        if rc.is_failure:
            log.error("mqtt connect refused reason=%s", rc)
            return
        log.info("mqtt connected host=%s port=%s", self._opts.host, self._opts.port)
        result, _mid = client.subscribe(self._opts.topic_filter, qos=1)
        if result != MQTTErrorCode.MQTT_ERR_SUCCESS:
            log.error("mqtt subscribe failed rc=%s", result)

    def _on_subscribe(self, _c: mqtt.Client, _u: object, _mid: int, rcs: list[ReasonCode], _p: object) -> None:
        refused = [rc for rc in rcs if rc.is_failure]
        if refused:
            log.error("mqtt subscription refused filter=%s reason=%s", self._opts.topic_filter, refused[0])
            self.connected.clear()
        else:
            self.connected.set()  # ready only once the broker confirmed the subscription

    def _on_disconnect(self, _c: mqtt.Client, _u: object, _f: object, rc: ReasonCode, _p: object) -> None:
        self.connected.clear()
        log.warning("mqtt disconnected reason=%s (paho reconnects)", rc)

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        # Never block the network thread for long: the queue is sized above receive_maximum.
        self._inbox.put(Inbound(msg.mid, msg.qos, msg.topic, bytes(msg.payload)))

    # -- API --------------------------------------------------------------------------
    def start(self, timeout_s: float = 30.0) -> None:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self._opts.session_expiry_s
        props.ReceiveMaximum = self._opts.receive_maximum
        try:
            rc = self._client.connect(
                self._opts.host, self._opts.port, keepalive=self._opts.keepalive_s,
                clean_start=False, properties=props,
            )
        except OSError as err:
            raise BackendUnavailable(f"MQTT {self._opts.host}:{self._opts.port}: {err}") from err
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise BackendUnavailable(f"MQTT connect rc={rc}")
        self._client.loop_start()
        if not self.connected.wait(timeout_s):
            self._client.loop_stop()
            raise BackendUnavailable(f"MQTT {self._opts.host}:{self._opts.port}: no CONNACK/SUBACK in {timeout_s}s")

    def ack(self, mid: int, qos: int) -> None:
        """Acknowledge one message; safe from any thread with loop_start() (stack facts)."""
        if qos == 0:
            return
        rc = self._client.ack(mid, qos)
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            # Not acked -> the broker redelivers on reconnect; storage is idempotent.
            log.warning("mqtt ack failed mid=%s rc=%s", mid, rc)

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def purge_session(host: str, port: int, client_id: str, username: str | None = None,
                  password: str | None = None, timeout_s: float = 10.0) -> None:
    """Remove a persistent session from the broker (connect with a clean start and session
    expiry 0). A retired collector id must be purged: until its session expires the broker
    queues every reading for it, in memory and in every autosave of its store."""
    done = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    if username:
        client.username_pw_set(username, password)
    client.on_connect = lambda *_a: done.set()
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 0
    try:
        client.connect(host, port, clean_start=True, properties=props)
    except OSError as err:
        raise BackendUnavailable(f"MQTT {host}:{port}: {err}") from err
    client.loop_start()
    try:
        if not done.wait(timeout_s):
            raise BackendUnavailable(f"MQTT {host}:{port}: no CONNACK in {timeout_s}s while purging {client_id}")
    finally:
        client.disconnect()
        client.loop_stop()
