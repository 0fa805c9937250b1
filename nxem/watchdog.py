"""The consumer watchdog's judgement: when has a group consumer stopped doing its job?

Pure (no Kafka, no clock: ``now`` is passed in). The Kafka adapter (``nxem.kafka``) looks up
what the broker says (``GroupView``), the worker's loop says what its consumer holds, and this
module decides, for the loop to act on and the readiness probe to show:

* **no assignment**: the consumer holds no partition although its topics have partitions and
  the group has no more members than the largest topic has partitions (kafka-python's default
  range assignor then gives every member at least one). Seen with kafka-python 3.0.x after a
  join that raced the topic's creation or a broker restart: the consumer sat in its group with
  nothing for good. Held for ``no_assignment_s`` -> recreate the consumer.
* **not in its group**: the consumer holds no partition, has a member id, and the broker's
  member list has not had that id for ``not_in_group_s``. Seen with kafka-python 3.0.12 (about
  one worker start in ten in CI): the leader's SyncGroup never completed, its heartbeats were
  off for the join, the broker expelled it after the session timeout, and the client went on
  waiting (its request timeout is 305 s). Recreated after ``not_in_group_s`` instead of
  ``no_assignment_s``; a healthy member is listed from its join to its leaving, and one that
  learns it was expelled drops its id and joins again.
* **stalled**: the consumer holds partitions whose lag (broker end offset - the group's committed
  offset) is above zero, and no committed offset of them moved for ``stall_s``, while the loop
  met no backend error in that time (an outage of PostgreSQL also stops the commits, and a new
  consumer would not help: that is the database check's business). -> recreate the consumer.

Members beyond the partitions are idle by design: no timer runs for them and they are ready.
A view older than ``view_max_age_s`` (Kafka unreachable) decides nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

Partition = tuple[str, int]  # (topic, partition)
Reason = Literal["no_assignment", "not_in_group", "stalled"]


@dataclass(frozen=True)
class GroupView:
    """What the broker said about a consumer group's topics at monotonic time ``at``."""

    at: float
    partitions: Mapping[str, int]  # topic -> partition count (0: no such topic yet)
    members: int  # members of the consumer group
    member_ids: frozenset[str] = frozenset()  # their ids, as the broker lists them
    end_offsets: Mapping[Partition, int] = field(default_factory=dict)
    committed: Mapping[Partition, int] = field(default_factory=dict)  # absent: never committed

    def lag(self, partitions: frozenset[Partition] | None = None) -> int:
        """Records behind the end of ``partitions`` (default: all), from the group's commits."""
        parts = self.end_offsets.keys() if partitions is None else partitions
        return sum(max(0, self.end_offsets.get(p, 0) - self.committed.get(p, 0)) for p in parts)

    def committed_total(self, partitions: frozenset[Partition]) -> int:
        return sum(self.committed.get(p, 0) for p in partitions)

    @property
    def has_partitions(self) -> bool:
        return any(n > 0 for n in self.partitions.values())

    @property
    def idle_by_design(self) -> bool:
        """More members than any topic has partitions: some member rightly holds none."""
        return self.members > max(self.partitions.values(), default=0)


@dataclass(frozen=True)
class WatchdogConfig:
    no_assignment_s: float
    stall_s: float
    view_max_age_s: float
    not_in_group_s: float = 15.0


@dataclass(frozen=True)
class Verdict:
    recreate: Reason | None
    partitions_ok: bool
    partitions_detail: str
    lag_ok: bool
    lag_detail: str
    lag: int | None  # records behind on the held partitions (None: unknown)


class Watchdog:
    """Call ``observe`` once per loop iteration; recreate the consumer when it says so, then
    ``reset``."""

    def __init__(self, config: WatchdogConfig) -> None:
        self._cfg = config
        self._unassigned_since: float | None = None
        self._absent_since: float | None = None
        self._held: frozenset[Partition] = frozenset()
        self._stall_since: float | None = None
        self._committed: int | None = None
        self._last_backend_error: float | None = None

    def reset(self) -> None:
        """A new consumer: every timer starts again."""
        self._unassigned_since = None
        self._absent_since = None
        self._held = frozenset()
        self._stall_since = None
        self._committed = None

    def observe(self, now: float, held: frozenset[Partition], view: GroupView | None,
                backend_error: bool = False, member_id: str = "") -> Verdict:
        """``held``: the partitions the consumer holds now; ``backend_error``: this loop
        iteration failed on Kafka or the database (and will retry); ``member_id``: the
        consumer's id in its group ("" before it joined)."""
        cfg = self._cfg
        if backend_error:
            self._last_backend_error = now
        fresh = view if view is not None and now - view.at <= cfg.view_max_age_s else None
        recreate: Reason | None = None

        # -- expelled: the broker no longer lists the member the consumer thinks it is
        absent = (not held and fresh is not None and fresh.has_partitions and bool(member_id)
                  and member_id not in fresh.member_ids)
        if not absent:
            self._absent_since = None
        elif self._absent_since is None:
            self._absent_since = now
        gone = 0.0 if self._absent_since is None else now - self._absent_since
        if gone >= cfg.not_in_group_s:
            recreate = "not_in_group"

        # -- no assignment
        if held:
            self._unassigned_since = None
            part_ok, part_detail = True, f"{len(held)} partition(s) held"
        elif fresh is None:
            self._unassigned_since = None  # Kafka unreachable: a new consumer would not help
            part_ok, part_detail = False, "no partition held (the broker's view is unknown)"
        elif not fresh.has_partitions:
            self._unassigned_since = None
            part_ok, part_detail = False, "no partition held: the topics have no partitions"
        elif fresh.idle_by_design:
            self._unassigned_since = None
            part_ok = True
            part_detail = (f"idle by design: {fresh.members} members for at most "
                           f"{max(fresh.partitions.values())} partitions a topic")
        else:
            if self._unassigned_since is None:
                self._unassigned_since = now
            waited = now - self._unassigned_since
            part_ok = False
            part_detail = f"no partition held for {waited:.0f} s while the topics have partitions"
            if waited >= cfg.no_assignment_s and recreate is None:
                recreate = "no_assignment"
        if self._absent_since is not None:
            part_ok = False
            part_detail = (f"no partition held, and the broker has not listed this member ({member_id}) "
                           f"for {gone:.0f} s: expelled from its group")

        # -- stalled
        if held != self._held:  # a rebalance: judge the new set from scratch
            self._held, self._stall_since, self._committed = held, None, None
        lag: int | None = None
        lag_ok, lag_detail = True, "no partition held"
        if held and fresh is not None:
            lag = fresh.lag(held)
            committed = fresh.committed_total(held)
            progressed = self._committed is None or committed > self._committed
            self._committed = committed if self._committed is None else max(committed, self._committed)
            if lag == 0:
                self._stall_since = None
            elif progressed or self._stall_since is None:
                self._stall_since = now  # behind, and the window without progress starts now
            stalled = 0.0 if self._stall_since is None else now - self._stall_since
            if stalled >= cfg.stall_s:
                lag_ok = False
                lag_detail = f"{lag} records behind and nothing committed for {stalled:.0f} s"
                quiet = self._last_backend_error is None or now - self._last_backend_error >= cfg.stall_s
                if quiet and recreate is None:
                    recreate = "stalled"
            else:
                lag_detail = f"{lag} records behind"
        elif held:
            self._stall_since = None  # Kafka unreachable: the window starts when it is back
            lag_detail = "unknown (the broker's view is unknown)"
        return Verdict(recreate, part_ok, part_detail, lag_ok, lag_detail, lag)
