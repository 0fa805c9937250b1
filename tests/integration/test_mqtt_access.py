"""MQTT access from the registry, on a real Mosquitto with the generated password file and ACL.

A second broker of our own (its own data folder and port, started by the project's runner) is
secured with ``collector.access.write_access``; the pipeline's collector reads from it with its
own credentials. Two enterprises, one gateway each:
* gateway A publishing under its own topic is stored;
* gateway A publishing under B's topic is refused by the broker (PUBACK "Not authorized") and
  nothing of it reaches Kafka: the readings topic carries only A's batch, the dead-letter topic
  nothing, B's meters no reading;
* A receives none of B's readings, anonymous and wrong-password clients are refused, and A cannot
  take over B's session by claiming B's client id;
* no password (MQTT or database) appears in the collector's or worker's log, the broker's log or
  config, or the metrics pages.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from collector.access import gateway_accounts, password_path, write_access
from collector.payload import topic_for
from nxem import contract
from tests.harness import Pipeline, consume_all, free_port, pipeline, wait_for
from ops.services import ServiceSettings, mosquitto
from simulators.scenario import data_centre_document

pytestmark = pytest.mark.integration

ENT_A, ENT_B = "91640500MA76L8XK3A", "91640500MA76L8XL15"
GW_A, GW_B = "gw-acl-a", "gw-acl-b"


@dataclass
class Secured:
    p: Pipeline
    broker: ServiceSettings
    secrets: Path
    collector_user: str


@dataclass
class Client:
    """A paho MQTT 5 client that records every reason code the broker sends back."""

    broker: ServiceSettings
    client_id: str
    username: str | None = None
    password: str | None = None
    connack: ReasonCode | None = None
    pubacks: dict[int, ReasonCode] = field(default_factory=dict)
    subacks: list[ReasonCode] = field(default_factory=list)
    disconnects: list[ReasonCode] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)

    def __post_init__(self) -> None:
        c = paho.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=paho.MQTTv5)
        if self.username is not None:
            c.username_pw_set(self.username, self.password)
        c.on_connect = lambda _c, _u, _f, rc, _p: self._note("connack", rc)
        c.on_publish = lambda _c, _u, mid, rc, _p: self._note("puback", rc, mid)
        c.on_subscribe = lambda _c, _u, _mid, rcs, _p: self._note("suback", rcs)
        c.on_disconnect = lambda _c, _u, _f, rc, _p: self._note("disconnect", rc)
        self.c = c

    def _note(self, kind: str, rc: Any, mid: int = 0) -> None:
        with self.cond:
            if kind == "connack":
                self.connack = rc
            elif kind == "puback":
                self.pubacks[mid] = rc
            elif kind == "suback":
                self.subacks.extend(rc)
            else:
                self.disconnects.append(rc)
            self.cond.notify_all()

    def connect(self) -> ReasonCode:
        self.c.connect(self.broker.mqtt_host, self.broker.mqtt_port)
        self.c.loop_start()
        with self.cond:
            assert self.cond.wait_for(lambda: self.connack is not None, 10), "no CONNACK"
        assert self.connack is not None
        return self.connack

    def publish(self, topic: str, payload: bytes) -> ReasonCode:
        info = self.c.publish(topic, payload, qos=1)
        with self.cond:
            assert self.cond.wait_for(lambda: info.mid in self.pubacks, 10), "no PUBACK"
            return self.pubacks[info.mid]

    def subscribe(self, topic: str) -> ReasonCode:
        self.c.subscribe(topic, qos=1)
        with self.cond:
            assert self.cond.wait_for(lambda: bool(self.subacks), 10), "no SUBACK"
            return self.subacks[-1]

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def _message(ent: str, gw: str, ts: datetime, value: float) -> bytes:
    return json.dumps({"schema": "nxem.gateway/1", "enterprise": ent, "gateway": gw, "seq": 1,
                       "sent_at": ts.isoformat(), "readings": [{"meter": "it-main", "ts": ts.isoformat(),
                                                                 "value": value}]}).encode()



@pytest.fixture(scope="module")
def secured(services: ServiceSettings) -> Iterator[Secured]:
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
    with pipeline(services) as p, tempfile.TemporaryDirectory(prefix="nxem-mqtt-auth-") as tmp:
        p.register(*(data_centre_document(ent, code, gw, 1.1, 100.0, start, 1)
                     for ent, code, gw in ((ENT_A, "acl-dc-a", GW_A), (ENT_B, "acl-dc-b", GW_B))))
        with psycopg.connect(p.admin_dsn) as conn:
            gateways = gateway_accounts(conn)
        broker = ServiceSettings(data_dir=Path(tmp) / "data", mqtt_port=free_port(), mqtt_anonymous=False)
        secrets = Path(tmp) / "secrets"
        user = f"collector-{p.suffix}"
        write_access(mosquitto.mosquitto_dir(broker), secrets, gateways, [user])
        mosquitto.start(broker)
        try:
            p.start_collector(NXEM_MQTT_PORT=str(broker.mqtt_port), NXEM_COLLECTOR_ID=user,
                              NXEM_COLLECTOR_MQTT_USERNAME=user,
                              NXEM_COLLECTOR_MQTT_PASSWORD_FILE=str(password_path(secrets, user)))
            p.start_worker()
            yield Secured(p, broker, secrets, user)
        finally:
            for proc in p.procs:
                proc.kill()
            mosquitto.stop(broker)


def _password(s: Secured, user: str) -> str:
    return password_path(s.secrets, user).read_text().strip()


def test_a_gateway_publishing_under_another_enterprise_is_refused_and_nothing_reaches_kafka(secured: Secured) -> None:
    s, p = secured, secured.p
    ts = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
    a = Client(s.broker, GW_A, GW_A, _password(s, GW_A))
    assert not a.connect().is_failure
    try:
        spoof = a.publish(topic_for(ENT_B, GW_B), _message(ENT_B, GW_B, ts, 777.0))
        own = a.publish(topic_for(ENT_A, GW_A), _message(ENT_A, GW_A, ts, 555.0))
    finally:
        a.close()
    assert spoof.is_failure and str(spoof) == "Not authorized"
    assert not own.is_failure

    def stored(gw: str) -> list[tuple[Any, ...]]:
        return p.sql("SELECT r.value FROM readings r JOIN meters m ON m.id = r.meter_id WHERE m.gateway_id = %s", (gw,))

    assert wait_for(lambda: stored(GW_A), 30, "A's own reading stored") == [(555.0,)]
    time.sleep(1.0)  # the spoof was published first: anything of it would be there by now
    assert stored(GW_B) == []
    batches = [contract.decode_batch(v) for v in consume_all(p.topics["readings"], p.settings.kafka_bootstrap)]
    assert [(b.enterprise_id, b.gateway_id, [r.value for r in b.readings]) for b in batches] == [(ENT_A, GW_A, [555.0])]
    assert consume_all(p.topics["deadletter"], p.settings.kafka_bootstrap) == []


def test_a_gateway_receives_no_other_gateways_readings(secured: Secured) -> None:
    """Mosquitto 2.0 grants the SUBSCRIBE itself but delivers nothing without read access: A's
    subscription stays empty while B publishes (and the collector, which may read, gets it)."""
    s = secured
    received: list[str] = []
    a = Client(s.broker, GW_A, GW_A, _password(s, GW_A))
    a.c.on_message = lambda _c, _u, msg: received.append(msg.topic)
    b = Client(s.broker, GW_B, GW_B, _password(s, GW_B))
    assert not a.connect().is_failure and not b.connect().is_failure
    try:
        a.subscribe("nxem/v1/#")
        ts = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=3)
        assert not b.publish(topic_for(ENT_B, GW_B), _message(ENT_B, GW_B, ts, 888.0)).is_failure
        wait_for(lambda: s.p.sql("SELECT 1 FROM readings WHERE value = 888.0"), 30, "B's reading stored")
        time.sleep(0.5)
    finally:
        a.close()
        b.close()
    assert received == []


@pytest.mark.parametrize("username,password", [(None, None), (GW_A, "not-the-password"), ("gw-unknown", "x")])
def test_anonymous_wrong_password_and_unknown_users_are_refused(
    secured: Secured, username: str | None, password: str | None,
) -> None:
    c = Client(secured.broker, f"intruder-{secured.p.suffix}", username, password)
    try:
        rc = c.connect()
    finally:
        c.close()
    assert rc.is_failure and str(rc) in ("Not authorized", "Bad user name or password")


def test_a_gateway_cannot_take_over_another_gateways_session(secured: Secured) -> None:
    b = Client(secured.broker, GW_B, GW_B, _password(secured, GW_B))
    assert not b.connect().is_failure
    # A claims B's client id: with use_username_as_clientid the broker names it "gw-acl-a"
    a = Client(secured.broker, GW_B, GW_A, _password(secured, GW_A))
    try:
        assert not a.connect().is_failure
        time.sleep(1.0)
        assert b.disconnects == []  # a takeover would have disconnected B ("Session taken over")
        assert not b.publish(topic_for(ENT_B, GW_B), _message(ENT_B, GW_B, datetime.now(UTC), 1.0)).is_failure
    finally:
        a.close()
        b.close()


def test_no_password_appears_in_logs_or_metrics(secured: Secured) -> None:
    s = secured
    passwords = [f.read_text().strip() for f in s.secrets.glob("*.password")]
    assert len(passwords) == 3  # the collector and the two gateways
    # and the database roles' passwords the collector and worker connect with
    pg_secrets = sorted((s.p.settings.resolved_data_dir() / "secrets").glob("*.password"))
    assert len(pg_secrets) >= 2
    passwords += [f.read_text().strip() for f in pg_secrets]
    collector = next(proc for proc in s.p.procs if proc.module == "collector")
    worker = next(proc for proc in s.p.procs if proc.module == "stream")
    texts = {
        "collector log": collector.log.read_text(errors="replace"),
        "worker log": worker.log.read_text(errors="replace"),
        "worker metrics": urllib.request.urlopen(f"http://127.0.0.1:{worker.metrics_port}/metrics",
                                                 timeout=5).read().decode(),
        "broker log": mosquitto.log_path(s.broker).read_text(errors="replace"),
        "broker config": mosquitto.config_path(s.broker).read_text(),
        "password file": (mosquitto.mosquitto_dir(s.broker) / "passwd").read_text(),
        "metrics": urllib.request.urlopen(f"http://127.0.0.1:{collector.metrics_port}/metrics", timeout=5).read().decode(),
    }
    assert "connected" in texts["collector log"] and "worker running" in texts["worker log"]  # really there
    for name, text in texts.items():
        for pw in passwords:
            assert pw not in text, f"a password appears in the {name}"
