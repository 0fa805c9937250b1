"""Load mode: hold a fixed rate of readings per second, cheaply, and report what was achieved.

Cheap by construction (a load generator publishing at full speed takes a core and starves the
pipeline it measures): payloads are pre-built per gateway with fixed-width placeholders, so a
message costs one ``bytes.replace`` for the timestamp plus the seq prefix; messages batch
``meters`` readings each; a token bucket wakes every ``tick_s`` and publishes what is due;
paho's network threads (``loop_start``) of a few connections do the I/O. ``run_load`` is the
programmatic entry point for ``bench/``.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Final

from collector.payload import SCHEMA_ID, topic_for
from simulators import uscc
from simulators.mqtt import close_all, connect_all, unique_tag
from simulators.settings import SimulatorSettings

CST: Final = timezone(timedelta(hours=8))
_TS: Final = b"@@@@@@@@@@@@@@@@@@@@@@@@@@@@@"  # 29 bytes = len("2026-11-24T16:00:00.123+08:00")
LOAD_ENTERPRISE: Final = "91640500MA00L0AD0" + uscc.check_char("91640500MA00L0AD0")

Progress = Callable[[int, int], None]  # (readings sent, readings planned)


@dataclass(frozen=True)
class LoadConfig:
    gateways: int = 1000
    meters: int = 100  # readings per message (one per meter)
    rate: float = 100_000.0  # readings per second
    duration_s: float = 30.0
    connections: int = 4  # paho clients in this process
    tick_s: float = 0.01  # token-bucket wake-up period
    enterprise_id: str = LOAD_ENTERPRISE
    value_kwh: float = 25.0  # interval energy each meter reports


@dataclass(frozen=True)
class LoadResult:
    readings_sent: int
    messages_sent: int
    messages_acked: int
    publish_errors: int
    errors: dict[str, int]
    elapsed_s: float  # from first publish to the last PUBACK
    achieved_rate: float  # readings acknowledged per second
    target_rate: float
    cpu_s: float  # process CPU time (all threads) during the run
    cpu_fraction: float  # cpu_s / elapsed_s: 1.0 = one full core
    extra: dict[str, Any] = field(default_factory=dict)


def gateway_id(i: int) -> str:
    return f"gw-load-{i:05d}"


def meter_code(j: int) -> str:
    return f"m{j:04d}"


def _template(cfg: LoadConfig, g: int) -> bytes:
    """The message body after ``{"seq":N,``, with ``_TS`` where the timestamps go."""
    readings = b",".join(
        b'{"meter":"%s","ts":"%s","value":%r,"unit":"kWh"}' % (meter_code(j).encode(), _TS, cfg.value_kwh)
        for j in range(cfg.meters))
    return (b'"schema":"%s","enterprise":"%s","gateway":"%s","sent_at":"%s","readings":[%s]}'
            % (SCHEMA_ID.encode(), cfg.enterprise_id.encode(), gateway_id(g).encode(), _TS, readings))


def stamp(template: bytes, seq: int, now: datetime) -> bytes:
    """A ready payload: seq and timestamps filled in."""
    ts = now.astimezone(CST).isoformat(timespec="milliseconds").encode()
    return b'{"seq":%d,' % seq + template.replace(_TS, ts)


def load_fleet_document(cfg: LoadConfig) -> dict[str, Any]:
    """A registry document of the load fleet (one site per 100 gateways), for ``registry load``."""
    sites = []
    for s in range(0, cfg.gateways, 100):
        sites.append({
            "code": f"load-{s // 100:03d}", "name": f"负载测试站点 {s // 100}", "kind": "plant", "new_build": False,
            "pue_limit": None, "pue_window_hours": 720, "energy_budget_tce": None, "products": [],
            "gateways": [{"id": gateway_id(g), "meters": [
                {"code": meter_code(j), "carrier": "electricity", "unit": "kWh", "role": "consumed",
                 "kind": "interval", "multiplier": 1, "rollover": 1_000_000_000,
                 "coefficient": "electricity_calorific", "product": None}
                for j in range(cfg.meters)]} for g in range(s, min(s + 100, cfg.gateways))],
        })
    return {"enterprises": [{"id": cfg.enterprise_id, "name": "负载测试企业", "city": "中卫", "industry": "other",
                             "sites": sites}]}


def run_load(cfg: LoadConfig, settings: SimulatorSettings, progress: Progress | None = None,
             ack_timeout_s: float = 60.0) -> LoadResult:
    """Publish ``rate`` readings/s for ``duration_s`` and measure what the broker acknowledged."""
    if cfg.rate <= 0 or cfg.duration_s <= 0 or cfg.gateways < 1 or not 1 <= cfg.meters <= 5000:
        raise ValueError("rate and duration must be positive; 1 ≤ meters ≤ 5000; gateways ≥ 1")
    templates = [_template(cfg, g) for g in range(cfg.gateways)]
    topics = [topic_for(cfg.enterprise_id, gateway_id(g)) for g in range(cfg.gateways)]
    msg_rate = cfg.rate / cfg.meters
    planned = int(msg_rate * cfg.duration_s)
    pubs = connect_all(settings, min(cfg.connections, cfg.gateways), "load-" + unique_tag())
    seqs = [0] * cfg.gateways
    sent = 0
    cpu0, t0 = time.process_time(), time.monotonic()
    try:
        while sent < planned:
            due = min(planned, int((time.monotonic() - t0) * msg_rate) + 1)
            if due > sent:
                now = datetime.now(timezone.utc)
                for n in range(sent, due):
                    g = n % cfg.gateways
                    pubs[g % len(pubs)].publish(topics[g], stamp(templates[g], seqs[g], now))
                    seqs[g] += 1
                sent = due
                if progress is not None:
                    progress(sent * cfg.meters, planned * cfg.meters)
            next_due = t0 + sent / msg_rate
            time.sleep(max(0.0, min(cfg.tick_s, next_due - time.monotonic())))
        deadline = time.monotonic() + ack_timeout_s
        for p in pubs:
            p.wait_acked(max(0.0, deadline - time.monotonic()))
        elapsed = time.monotonic() - t0
        cpu = time.process_time() - cpu0
    finally:
        close_all(pubs)
    acked = sum(p.stats.acked for p in pubs)
    errors: Counter[str] = Counter()
    for p in pubs:
        errors.update(p.stats.errors)
    failed = sum(p.stats.failed for p in pubs) + sum(p.pending for p in pubs)
    if any(p.pending for p in pubs):
        errors["puback:timeout"] += sum(p.pending for p in pubs)
    return LoadResult(
        readings_sent=sent * cfg.meters, messages_sent=sent, messages_acked=acked, publish_errors=failed,
        errors=dict(errors), elapsed_s=elapsed, achieved_rate=acked * cfg.meters / elapsed,
        target_rate=cfg.rate, cpu_s=cpu, cpu_fraction=cpu / elapsed,
        extra={"connections": len(pubs), "message_bytes": len(stamp(templates[0], 0, datetime.now(timezone.utc)))},
    )
