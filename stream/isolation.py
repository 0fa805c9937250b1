"""Keeping one bad record from stopping a partition: find it, set it aside, go on.

Two places a record that decoded fine can still fail, each retried the same way forever if
nothing isolates it (every restarted worker would die on it, uncommitted):

* **rules** -- an unexpected exception while a site's rules evaluate a batch (a bug, or a value
  the arithmetic cannot take: a reading at 9999-12-31T23:59Z overflows the local-day maths).
  ``apply_rules`` re-runs the poll site by site, then the failing site batch by batch, from
  state rebuilt from the database, and returns the batches that still fail: the worker
  dead-letters them (``internal_error``), their readings are not stored, the rest go on.
* **storage** -- the database refuses the data itself (``DataRefused``: a value a column cannot
  hold, a constraint). ``bisect`` writes halves of the poll, recursively, each in its own
  transaction, until every unit (one Kafka record, or one alert transition) is either stored
  or refused on its own: about 2·log2(n) transactions for one bad record among n. Every write
  is idempotent and the offsets are committed only after all of them, so a crash half-way
  replays the poll harmlessly.

``BackendUnavailable`` always propagates: an outage is retried with backoff, never isolated.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from nxem.contract import AlertEvent, DeadLetter, ReadingBatch
from nxem.errors import BackendUnavailable, DataRefused
from stream.records import Batch, Origin

log = logging.getLogger(__name__)

Row = tuple[int, datetime, float]
R = TypeVar("R")


class Rules(Protocol):
    def apply(self, batches: list[ReadingBatch]) -> list[AlertEvent]: ...
    def reset(self) -> None: ...
    def forget(self, site_id: int) -> None: ...


def _apply(rules: Rules, batches: list[Batch]) -> list[AlertEvent]:
    return rules.apply([b.batch for b in batches])


def apply_rules(rules: Rules, batches: list[Batch]) -> tuple[list[AlertEvent], list[tuple[Batch, Exception]]]:
    """(transitions, batches whose rules failed with the exception), the poll's order kept."""
    try:
        return _apply(rules, batches), []
    except BackendUnavailable:
        raise
    except Exception:  # noqa: BLE001 - isolated below, logged once per failing record
        pass
    rules.reset()  # the failed pass may have left any site's state half-updated
    by_site: dict[int, list[Batch]] = {}
    for b in batches:
        by_site.setdefault(b.batch.site_id, []).append(b)
    events: list[AlertEvent] = []
    failed: list[tuple[Batch, Exception]] = []
    for site_id, group in by_site.items():
        try:
            events += _apply(rules, group)
            continue
        except BackendUnavailable:
            raise
        except Exception:  # noqa: BLE001 - this site: batch by batch below
            rules.forget(site_id)
        good: list[Batch] = []
        site_events: list[AlertEvent] = []
        for b in group:
            try:
                site_events += _apply(rules, [b])
                good.append(b)
                continue
            except BackendUnavailable:
                raise
            except Exception as err:  # noqa: BLE001 - the record is dead-lettered by the caller
                failed.append((b, err))
                log.error("rules failed on a record, dead-lettered (internal_error) source=%s site_id=%s: %s: %s",
                          b.origin.source, site_id, type(err).__name__, err, exc_info=err)
            # the site's state may hold part of the failed batch: rebuild it from the database
            # and the batches of this poll that went through
            rules.forget(site_id)
            try:
                site_events = _apply(rules, good) if good else []
            except BackendUnavailable:
                raise
            except Exception as err:  # noqa: BLE001 - together they fail: refuse them all
                failed += [(g, err) for g in good]
                rules.forget(site_id)
                good, site_events = [], []
        events += site_events
    return events, failed


@dataclass(frozen=True, slots=True)
class Unit:
    """What bisection keeps or sets aside as a whole: one Kafka record's readings or dead letter
    (``origin`` set), or one alert transition the worker computed (``origin`` None)."""

    origin: Origin | None
    original: bytes
    rows: tuple[Row, ...] = ()
    alerts: tuple[AlertEvent, ...] = ()
    dead: tuple[DeadLetter, ...] = ()


@dataclass(frozen=True, slots=True)
class Bisected(Generic[R]):
    results: list[R]  # of the writes that went through, in order
    refused: list[tuple[Unit, DataRefused]]  # units refused on their own, in order
    writes: int  # transactions tried


def bisect(units: Sequence[Unit], write: Callable[[list[Row], list[AlertEvent], list[DeadLetter]], R],
           known_bad: bool = True) -> Bisected[R]:
    """Write ``units`` in halves until each is stored or refused alone. ``known_bad``: the
    whole was just refused, so start by splitting it."""
    results: list[R] = []
    refused: list[tuple[Unit, DataRefused]] = []
    writes = 0

    def go(part: Sequence[Unit], skip: bool, err: DataRefused | None) -> None:
        nonlocal writes
        if not skip:
            writes += 1
            try:
                results.append(write([r for u in part for r in u.rows], [a for u in part for a in u.alerts],
                                     [d for u in part for d in u.dead]))
                return
            except DataRefused as e:
                err = e
        if len(part) == 1:
            assert err is not None
            refused.append((part[0], err))
            return
        mid = len(part) // 2
        go(part[:mid], False, None)
        go(part[mid:], False, None)

    if units:
        go(units, known_bad and len(units) > 1, None)
    return Bisected(results, refused, writes)
