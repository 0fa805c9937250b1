from __future__ import annotations

from collections.abc import Sequence

from datetime import UTC, datetime, timedelta

from alerts.lifecycle import Alert
from alerts.rules.pue import PueInput, PueRule, PueSample, evaluate, sample_ends
from nxem.contract import AlertEvent

T = datetime(2026, 1, 1, tzinfo=UTC)
RULE = PueRule(limit=1.2, clear_margin=0.02, min_duration=timedelta(minutes=30), window=timedelta(hours=1))


def samples(*pues: float | None, coverage: float = 1.0) -> PueInput:
    out = []
    for k, p in enumerate(pues):
        end = T + timedelta(minutes=15 * k)
        it = 1000.0 if p is not None else 0.0
        out.append(PueSample(end - RULE.window, end, (p or 0.0) * 1000.0, it, coverage))
    return PueInput(5, "91640500MA76L8XK3Q", out)


def run(series: Sequence[tuple[float | None, ...]]) -> list[AlertEvent]:
    state: Alert | None = None
    events: list[AlertEvent] = []
    for k, pues in enumerate(series):
        state, ev = evaluate(RULE, state, samples(*pues), T + timedelta(minutes=15 * k))
        events += ev
    return events


def test_sample_ends_span_the_minimum_duration() -> None:
    assert sample_ends(RULE, T) == [T - timedelta(minutes=30), T - timedelta(minutes=15), T]


def test_opens_only_when_every_sample_is_above_the_limit() -> None:
    assert run([(1.19, 1.25, 1.25)]) == []
    ev = run([(1.25, 1.25, 1.25)])
    assert [e.kind for e in ev] == ["opened"]
    d = ev[0].details
    # facility 1 250 kWh / IT 1 000 kWh = 1.25 > 1.2
    # a short window is the operational warning (the annual PUE is the major, compliance alert)
    assert ev[0].value == 1.25 and ev[0].threshold == 1.2 and ev[0].severity == "warning"
    assert d["facility_kwh"] == 1250.0 and d["it_kwh"] == 1000.0 and d["gb40879_grade"] == "2级"
    assert "PUE" in d["formula"] and "GB 40879-2021" in d["standard"] and d["window_start"] and d["window_end"]


def test_hysteresis_no_flapping_around_the_limit() -> None:
    # opened at 1.21, then hovering 1.19 .. 1.21: stays open (clears only below 1.20 − 0.02 = 1.18)
    # and emits no updates (moves of 1.7 % are below the 2 % step)
    series = [(1.21, 1.21, 1.21)] + [(1.21, 1.19, 1.21), (1.19, 1.21, 1.19)] * 5
    assert [e.kind for e in run(series)] == ["opened"]
    # it clears once every sample is below 1.18, and re-opens only when every sample is above 1.2
    assert [e.kind for e in run(series + [(1.17, 1.17, 1.17), (1.19, 1.21, 1.21)])] == ["opened", "cleared"]


def test_a_material_move_updates() -> None:
    ev = run([(1.21, 1.21, 1.21), (1.21, 1.30, 1.35)])
    assert [(e.kind, e.value) for e in ev] == [("opened", 1.21), ("updated", 1.35)]


def test_no_value_makes_no_transition() -> None:
    assert run([(None, None, None)]) == []
    ev = run([(1.3, 1.3, 1.3), (1.3, 1.3, None)])  # IT energy missing now: hold, no clear
    assert [e.kind for e in ev] == ["opened"]
    # coverage below the minimum: no value either
    state, ev2 = evaluate(RULE, None, samples(1.5, 1.5, 1.5, coverage=0.5), T)
    assert state is None and ev2 == []
