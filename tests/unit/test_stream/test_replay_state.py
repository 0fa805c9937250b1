"""Replaying stored readings through the worker's rule engine adds no transition: a site's
rule state is restored with its evaluation watermark (the newest stored reading), so a topic
replayed from the start over the same database evaluates no old edge again. No Kafka, no
database: the stored readings and active alert are handed over as the database returns them."""

from __future__ import annotations

from datetime import datetime

from nxem.contract import AlertEvent, Reading, ReadingBatch
from stream.sites import SiteEngine
from tests.stream_rows import ENT, Q, T0, dc_batches, dc_registry, engine



def _engine(history: list[tuple[int, datetime, float]] | None = None,
            active: list[AlertEvent] | None = None) -> SiteEngine:
    return engine(dc_registry(), history, active)


_dc = dc_batches


def test_a_replay_of_stored_readings_adds_no_transition() -> None:
    # 8 quarters at PUE 1.3 then 8 at 1.5: opened, then updated (1.3 -> 1.5 is +15 %, over 2 %)
    batches = _dc([1.3] * 8 + [1.5] * 8)
    live = _engine()
    events = [e for b in batches for e in live.apply([b])]
    kinds = [e.kind for e in events if e.rule == "pue_above_limit"]
    assert kinds[0] == "opened" and "updated" in kinds
    # a new worker replays the topic from the start over the database that stored all of it:
    # the stored readings and the active alert as the database keeps it (its latest value)
    stored = [(r.meter_id, r.ts, r.value) for b in batches for r in b.readings]
    latest = [e for e in events if e.rule == "pue_above_limit"][-1]
    active = AlertEvent(alert_key=latest.alert_key, source_kind="site", source_id=7, enterprise_id=ENT,
                        rule=latest.rule, kind="opened", severity=latest.severity,
                        at=T0 + 8 * Q, value=latest.value, threshold=latest.threshold, details=dict(latest.details))
    replay = _engine(history=stored, active=[active])
    assert [e for b in batches for e in replay.apply([b])] == []
    # and the next new reading is evaluated as if the worker had never stopped: quarter 17 at
    # PUE 2.0 makes the 1-hour window (3 × 1.5 + 2.0) / 4 = 1.625, +8 % on the last 1.5: updated
    nxt = ReadingBatch(enterprise_id=ENT, site_id=7, gateway_id="gw", seq=17, sent_at=T0 + 17 * Q,
                       received_at=T0 + 17 * Q,
                       readings=[Reading(1, T0 + 17 * Q, 17 * 500.0),
                                 Reading(2, T0 + 17 * Q, 8 * 650.0 + 8 * 750.0 + 1000.0)])
    after_replay, after_live = replay.apply([nxt]), live.apply([nxt])
    assert [(e.kind, e.at, e.value) for e in after_replay] == [("updated", T0 + 17 * Q, 1.625)]
    assert after_replay == after_live
