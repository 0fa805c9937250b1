"""Isolating the record that fails: bisection of a refused write, rules that fail on one
record (fakes for the store; the real rule engine for the overflow). No Kafka, no database."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from nxem.contract import AlertEvent, DeadLetter, Reading, ReadingBatch
from nxem.errors import BackendUnavailable, DataRefused
from stream.isolation import Row, Unit, apply_rules, bisect
from stream.records import Batch, Origin
from stream.sites import SiteEngine
from tests.stream_rows import ENT, Q, T0, dc_batches, dc_registry, engine



def _unit(n: int, poison: bool = False) -> Unit:
    # a poison unit carries meter id -1: the fake store refuses any write holding one
    return Unit(Origin("readings", 0, n), f"record {n}".encode(), rows=((-1 if poison else n, T0, 1.0),))


class FakeStore:
    def __init__(self, refuse: Any) -> None:
        self.refuse = refuse
        self.writes: list[list[int]] = []

    def __call__(self, rows: list[Row], alerts: list[AlertEvent], dead: list[DeadLetter]) -> list[int]:
        ids = [r[0] for r in rows]
        self.writes.append(ids)
        if self.refuse(ids):
            raise DataRefused(f"refused {ids}")
        return ids


def test_one_poison_record_among_eight_is_found_in_six_writes() -> None:
    units = [_unit(n, poison=n == 5) for n in range(8)]
    store = FakeStore(lambda ids: -1 in ids)
    out = bisect(units, store)  # the whole (8) was refused: split first
    # [0..3] ok, [4..7] refused -> [4,5] refused -> [4] ok, [5] refused -> [6,7] ok: 6 writes
    assert store.writes == [[0, 1, 2, 3], [4, -1, 6, 7], [4, -1], [4], [-1], [6, 7]]
    assert out.writes == 6
    assert out.results == [[0, 1, 2, 3], [4], [6, 7]]  # every good record stored, in order
    assert [(u.origin, str(err)) for u, err in out.refused] == [(Origin("readings", 0, 5), "refused [-1]")]


def test_records_refused_only_together_are_all_stored_apart() -> None:
    # a limit on the whole write (e.g. more than 3 rows), not on any one record
    store = FakeStore(lambda ids: len(ids) > 3)
    out = bisect([_unit(n) for n in range(6)], store)
    assert out.results == [[0, 1, 2], [3, 4, 5]] and out.refused == []


def test_a_lone_refused_record_is_tried_once_more_for_its_own_reason() -> None:
    store = FakeStore(lambda ids: True)
    out = bisect([_unit(0, poison=True)], store)
    assert store.writes == [[-1]] and len(out.refused) == 1


def test_an_outage_during_bisection_is_not_isolated() -> None:
    def write(rows: list[Row], alerts: list[AlertEvent], dead: list[DeadLetter]) -> None:
        raise BackendUnavailable("connection lost")

    with pytest.raises(BackendUnavailable):
        bisect([_unit(0), _unit(1)], write)


@dataclass
class FakeRules:
    """Returns one transition per batch applied; raises on batches whose seq is in ``bad``."""

    bad: set[int]
    calls: list[Any] = field(default_factory=list)

    def apply(self, batches: list[ReadingBatch]) -> list[AlertEvent]:
        self.calls.append(("apply", [b.seq for b in batches]))
        if any(b.seq in self.bad for b in batches):
            raise ZeroDivisionError("a bug")
        return [AlertEvent(alert_key=f"site:{b.site_id}:x", source_kind="site", source_id=b.site_id,
                           enterprise_id=ENT, rule="x", kind="opened", severity="minor", at=T0 + b.seq * Q)
                for b in batches]

    def reset(self) -> None:
        self.calls.append(("reset",))

    def forget(self, site_id: int) -> None:
        self.calls.append(("forget", site_id))


def _batch(site: int, seq: int, ts: datetime = T0, readings: list[Reading] | None = None) -> Batch:
    rb = ReadingBatch(enterprise_id=ENT, site_id=site, gateway_id="gw", seq=seq, sent_at=T0, received_at=T0,
                      readings=readings if readings is not None else [Reading(1, ts, 1.0)])
    return Batch(Origin("readings", site % 3, seq), b"", rb)


def test_rules_failing_on_one_record_cost_only_that_record() -> None:
    rules = FakeRules(bad={2})
    # site 7: seq 1 (good), 2 (bad), 3 (good); site 8: seq 4
    batches = [_batch(7, 1), _batch(7, 2), _batch(8, 4), _batch(7, 3)]
    events, failed = apply_rules(rules, batches)
    assert [(b.batch.seq, type(err).__name__) for b, err in failed] == [(2, "ZeroDivisionError")]
    # site 7 ends with the transitions of its good batches re-applied after the failure (1, 3)
    assert sorted(e.at for e in events) == [T0 + Q, T0 + 3 * Q, T0 + 4 * Q]
    assert rules.calls == [
        ("apply", [1, 2, 4, 3]),  # the whole poll fails
        ("reset",),  # any site may be half-updated
        ("apply", [1, 2, 3]), ("forget", 7),  # site 7 fails: batch by batch
        ("apply", [1]), ("apply", [2]), ("forget", 7), ("apply", [1]),  # 2 fails: 7 rebuilt with 1
        ("apply", [3]),
        ("apply", [4]),  # site 8 as a whole
    ]


def test_rules_that_go_through_are_called_once() -> None:
    rules = FakeRules(bad=set())
    events, failed = apply_rules(rules, [_batch(7, 1), _batch(8, 2)])
    assert failed == [] and len(events) == 2 and rules.calls == [("apply", [1, 2])]


def _engine(history: list[tuple[int, datetime, float]] | None = None,
            active: list[AlertEvent] | None = None) -> SiteEngine:
    return engine(dc_registry(), history, active)


_dc = dc_batches


def test_a_reading_the_rules_cannot_take_is_isolated_and_the_site_goes_on() -> None:
    engine = _engine()
    good = [Batch(Origin("readings", 0, b.seq), b"", b) for b in _dc([1.3] * 8)]
    far = ReadingBatch(enterprise_id=ENT, site_id=7, gateway_id="gw", seq=99, sent_at=T0, received_at=T0,
                       readings=[Reading(1, datetime(9999, 12, 31, 23, 59, tzinfo=UTC), 1.0)])
    poll = good[:5] + [Batch(Origin("readings", 0, 99), b"", far)] + good[5:]
    events, failed = apply_rules(engine, poll)
    # 9999-12-31T23:59Z + 8 h (Asia/Shanghai) is past year 9999
    assert [(b.batch.seq, type(err).__name__) for b, err in failed] == [(99, "OverflowError")]
    # the site still evaluates the rest: 8 quarters at PUE 1.3 > 1.2 open the PUE alert
    assert [e.kind for e in events if e.rule == "pue_above_limit"] == ["opened"]
