"""The consumer watchdog's judgement, on hand-made broker views (times in seconds)."""

from __future__ import annotations

import pytest

from nxem.watchdog import GroupView, Watchdog, WatchdogConfig

CFG = WatchdogConfig(no_assignment_s=60.0, stall_s=120.0, view_max_age_s=30.0)
R0, R1, R2 = ("r", 0), ("r", 1), ("r", 2)
MINE = frozenset({R0})


def view(at: float, members: int = 2, partitions: int = 3, end: int = 0, committed: int = 0) -> GroupView:
    """Topic r with ``partitions`` partitions; partition 0 ends at ``end``, its committed offset ``committed``."""
    return GroupView(at=at, partitions={"r": partitions}, members=members,
                     end_offsets={R0: end, R1: 0, R2: 0}, committed={R0: committed} if committed else {})


def test_lag_counts_every_partition_from_the_group_commits() -> None:
    v = GroupView(at=0, partitions={"r": 3}, members=1, end_offsets={R0: 10, R1: 5, R2: 0}, committed={R0: 4})
    # (10 - 4) + (5 - 0 never committed) + 0 = 11
    assert v.lag() == 11
    assert v.lag(frozenset({R1})) == 5
    assert v.committed_total(frozenset({R0, R1})) == 4


@pytest.mark.parametrize(("members", "partitions", "idle"), [
    (3, 3, False),  # range assignor: one partition each
    (4, 3, True),   # one member rightly holds none
    (1, 0, True),   # no partitions at all: nobody can hold one
])
def test_idle_by_design(members: int, partitions: int, idle: bool) -> None:
    assert view(0, members=members, partitions=partitions).idle_by_design is idle


def test_no_assignment_for_the_bound_recreates_once_then_starts_again() -> None:
    dog = Watchdog(CFG)
    assert dog.observe(0, frozenset(), view(0)).recreate is None
    v = dog.observe(59, frozenset(), view(59))
    assert v.recreate is None and not v.partitions_ok and "59 s" in v.partitions_detail
    assert dog.observe(60, frozenset(), view(60)).recreate == "no_assignment"
    dog.reset()
    assert dog.observe(61, frozenset(), view(61)).recreate is None  # the new consumer gets its 60 s


def test_holding_a_partition_stops_the_timer() -> None:
    dog = Watchdog(CFG)
    dog.observe(0, frozenset(), view(0))
    assert dog.observe(50, MINE, view(50)).partitions_ok
    assert dog.observe(100, frozenset(), view(100)).recreate is None  # 0 s without, not 100


@pytest.mark.parametrize(("members", "partitions"), [(4, 3), (2, 0)])
def test_no_timer_when_holding_nothing_is_right(members: int, partitions: int) -> None:
    dog = Watchdog(CFG)
    for t in (0, 60, 1000):
        v = dog.observe(t, frozenset(), view(t, members=members, partitions=partitions))
        assert v.recreate is None
    assert v.partitions_ok is (members > partitions > 0)


def test_a_stale_view_decides_nothing_and_the_wait_starts_when_kafka_is_back() -> None:
    dog = Watchdog(CFG)
    dog.observe(0, frozenset(), view(0))
    old = view(0)
    assert dog.observe(100, frozenset(), old).recreate is None  # 100 s old view: Kafka unreachable
    assert dog.observe(101, frozenset(), view(101)).recreate is None
    assert dog.observe(161, frozenset(), view(161)).recreate == "no_assignment"  # 101 + 60


def test_lag_without_commits_for_the_bound_recreates() -> None:
    dog = Watchdog(CFG)
    v = dog.observe(0, MINE, view(0, end=100, committed=40))
    assert v.lag == 60 and v.lag_ok and v.recreate is None
    assert dog.observe(119, MINE, view(119, end=130, committed=40)).recreate is None
    v = dog.observe(120, MINE, view(120, end=130, committed=40))
    # 130 - 40 = 90 behind, nothing committed since t=0
    assert v.recreate == "stalled" and not v.lag_ok
    assert v.lag_detail == "90 records behind and nothing committed for 120 s"


def test_a_commit_restarts_the_window() -> None:
    dog = Watchdog(CFG)
    dog.observe(0, MINE, view(0, end=100, committed=40))
    dog.observe(100, MINE, view(100, end=100, committed=50))  # progress at t=100
    assert dog.observe(219, MINE, view(219, end=100, committed=50)).recreate is None
    assert dog.observe(220, MINE, view(220, end=100, committed=50)).recreate == "stalled"


def test_caught_up_is_never_stalled() -> None:
    dog = Watchdog(CFG)
    for t in (0, 200, 400):
        v = dog.observe(t, MINE, view(t, end=40, committed=40))
        assert v.recreate is None and v.lag_ok and v.lag == 0


def test_a_backend_outage_is_not_the_consumers_fault() -> None:
    dog = Watchdog(CFG)
    dog.observe(0, MINE, view(0, end=100, committed=40))
    dog.observe(100, MINE, view(100, end=100, committed=40), backend_error=True)  # PostgreSQL down
    v = dog.observe(150, MINE, view(150, end=100, committed=40))
    assert v.recreate is None and not v.lag_ok  # not ready (behind), but a new consumer would not help
    # 120 s after the last backend error, still no commit: the consumer is the problem now
    assert dog.observe(219, MINE, view(219, end=100, committed=40)).recreate is None
    assert dog.observe(220, MINE, view(220, end=100, committed=40)).recreate == "stalled"


def test_a_rebalance_judges_the_new_partitions_from_scratch() -> None:
    dog = Watchdog(CFG)
    dog.observe(0, MINE, view(0, end=100, committed=40))
    both = frozenset({R0, R1})
    assert dog.observe(119, both, view(119, end=100, committed=40)).recreate is None
    assert dog.observe(200, both, view(200, end=100, committed=40)).recreate is None  # 81 s since the move
    assert dog.observe(239, both, view(239, end=100, committed=40)).recreate == "stalled"


def listed(at: float, *ids: str) -> GroupView:
    """Topic r with 3 partitions; the broker lists the group members ``ids``."""
    return GroupView(at=at, partitions={"r": 3}, members=len(ids), member_ids=frozenset(ids))


def test_a_member_the_broker_stopped_listing_is_recreated_after_the_bound_not_the_60_s() -> None:
    # kafka-python's join hung: the broker expelled "w-1" after the session timeout (10 s), the
    # client still believes it is "w-1". CFG: not_in_group_s = 15 s (the default), no_assignment_s = 60 s.
    dog = Watchdog(CFG)
    assert dog.observe(0, frozenset(), listed(0, "w-1"), member_id="w-1").recreate is None  # joined, syncing
    v = dog.observe(10, frozenset(), listed(10), member_id="w-1")  # expelled: the timer starts at 10 s
    assert v.recreate is None and not v.partitions_ok and "expelled" in v.partitions_detail
    assert dog.observe(24, frozenset(), listed(24), member_id="w-1").recreate is None  # 14 s < 15 s
    assert dog.observe(25, frozenset(), listed(25), member_id="w-1").recreate == "not_in_group"  # 15 s
    dog.reset()
    assert dog.observe(26, frozenset(), listed(26), member_id="").recreate is None  # the new one has not joined


def test_being_listed_again_or_holding_a_partition_stops_the_absence_timer() -> None:
    dog = Watchdog(CFG)
    dog.observe(0, frozenset(), listed(0, "other"), member_id="w-1")
    dog.observe(10, frozenset(), listed(10, "other", "w-1"), member_id="w-1")  # listed: timer off
    assert dog.observe(20, frozenset(), listed(20, "other"), member_id="w-1").recreate is None  # 0 s again
    assert dog.observe(34, frozenset(), listed(34, "other"), member_id="w-1").recreate is None  # 14 s
    assert dog.observe(40, MINE, listed(40, "other"), member_id="w-1").recreate is None  # holds a partition


def test_no_absence_before_the_first_join() -> None:
    dog = Watchdog(CFG)
    for t in (0, 20, 40):  # no id yet: the broker cannot list it (the 60 s rule still runs)
        assert dog.observe(t, frozenset(), listed(t), member_id="").recreate is None


def test_a_stale_view_decides_no_absence() -> None:
    dog = Watchdog(CFG)
    for t in (31, 50, 70):  # a view taken at 0 s is older than view_max_age_s (30 s): Kafka unreachable
        assert dog.observe(t, frozenset(), listed(0), member_id="w-1").recreate is None
