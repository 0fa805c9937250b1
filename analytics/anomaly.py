"""Anomalies in a meter's consumption profile with scikit-learn's IsolationForest.

The only domain module allowed to import numpy/scikit-learn. Trained per meter on a history
given as plain data (interval start, quantity per hour), with time-of-day features and the deviation
from the meter's normal rate for that local (Asia/Shanghai) hour and weekday/weekend, so a
night-time load at daytime level stands out. Seeded:
the same history and seed give the same model and the same scores. ``day_evidence`` sums up a
whole scored day for the consumption-anomaly alert (the daily job, ``stream/daily.py``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from numpy.typing import NDArray
from sklearn.ensemble import IsolationForest

from analytics.periods import CST

Point = tuple[datetime, float]  # (interval start, quantity per hour in the meter's unit)
Profile = dict[tuple[int, bool], float]  # (local hour, weekend) -> median rate


def _slot(ts: datetime) -> tuple[int, bool]:
    loc = ts.astimezone(CST)
    return loc.hour, loc.weekday() >= 5


def profile_of(history: Sequence[Point]) -> Profile:
    """Median rate per (local hour, weekend) of the history: the meter's normal day."""
    by: dict[tuple[int, bool], list[float]] = {}
    for ts, rate in history:
        by.setdefault(_slot(ts), []).append(rate)
    return {k: float(np.median(v)) for k, v in by.items()}


def features(points: Sequence[Point], profile: Profile, scale: float) -> NDArray[np.float64]:
    """Rows of [sin/cos local time of day, rate, rate − normal rate for that hour], scaled."""
    overall = float(np.median(list(profile.values()))) if profile else 0.0
    rows = []
    for ts, rate in points:
        loc = ts.astimezone(CST)
        h = (loc.hour * 3600 + loc.minute * 60 + loc.second) / 86400 * 2 * math.pi
        expected = profile.get(_slot(ts), overall)
        rows.append([math.sin(h), math.cos(h), rate / scale, (rate - expected) / scale])
    return np.asarray(rows, dtype=np.float64).reshape(-1, 4)


@dataclass(frozen=True)
class AnomalyModel:
    meter_id: int
    forest: IsolationForest
    profile: Profile
    scale: float  # quantity scale used to normalise the rate features
    threshold: float  # raw anomaly score above which a point is anomalous
    trained_points: int
    seed: int


def train(meter_id: int, history: Sequence[Point], seed: int = 0, contamination: float = 0.005,
          n_estimators: int = 200) -> AnomalyModel:
    """Fit a seeded IsolationForest on the meter's history (at least 96 points). The threshold
    is the (1 − contamination) quantile of the history's own scores."""
    if len(history) < 96:
        raise ValueError(f"meter {meter_id}: need at least 96 points of history, got {len(history)}")
    scale = float(np.percentile(np.abs([r for _, r in history]), 95)) or 1.0
    profile = profile_of(history)
    x = features(history, profile, scale)
    forest = IsolationForest(n_estimators=n_estimators, random_state=seed)
    forest.fit(x)
    threshold = float(np.quantile(-forest.score_samples(x), 1.0 - contamination))
    return AnomalyModel(meter_id, forest, profile, scale, threshold, len(history), seed)


def score(model: AnomalyModel, points: Sequence[Point]) -> list[float]:
    """Anomaly score per point relative to the model's threshold: > 0 is anomalous."""
    if not points:
        return []
    x = features(points, model.profile, model.scale)
    return [float(v) - model.threshold for v in -model.forest.score_samples(x)]


Scored = tuple[datetime, float, float]  # (interval start, quantity per hour, score: > 0 anomalous)


def score_points(model: AnomalyModel, points: Sequence[Point]) -> tuple[Scored, ...]:
    """The points in time order with their scores (``score``)."""
    ordered = sorted(points, key=lambda p: p[0])
    return tuple((ts, rate, s) for (ts, rate), s in zip(ordered, score(model, ordered), strict=True))


def anomalous_runs(scored: Sequence[Scored], threshold: float = 0.0) -> list[tuple[Scored, ...]]:
    """Maximal runs of consecutive points (in the given order) scoring above ``threshold``."""
    runs: list[tuple[Scored, ...]] = []
    cur: list[Scored] = []
    for p in scored:
        if p[2] > threshold:
            cur.append(p)
        elif cur:
            runs.append(tuple(cur))
            cur = []
    if cur:
        runs.append(tuple(cur))
    return runs


def day_evidence(scored: Sequence[Scored], min_points: int, threshold: float = 0.0) -> tuple[Scored, ...]:
    """What a whole scored day says, as the points for ``alerts.rules.anomaly.evaluate`` (which
    judges the newest ``min_points`` points: all above the threshold opens/updates, the newest at
    or below it clears, anything else leaves the alert as it is):

    * anomalous day -- a run of at least ``min_points`` anomalous points: the run with the
      highest peak score (ties: the earliest), so the alert carries that run's scores;
    * clean day -- no point above ``threshold``: the whole day (its newest point clears);
    * neither -- anomalous points, but fewer than ``min_points`` in a row: the single highest
      one (too short to open, anomalous so it does not clear: the alert stays as it is);
    * no points at all: ``()`` (the rule does nothing).
    """
    if min_points < 1:
        raise ValueError(f"min_points must be ≥ 1, got {min_points}")
    runs = anomalous_runs(scored, threshold)
    long_runs = [r for r in runs if len(r) >= min_points]
    if long_runs:
        return max(long_runs, key=lambda r: max(p[2] for p in r))  # max keeps the first of equals
    if runs:
        return (max((p for r in runs for p in r), key=lambda p: p[2]),)
    return tuple(scored)
