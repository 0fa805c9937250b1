"""Anomalies in a meter's consumption profile with scikit-learn's IsolationForest.

The only domain module allowed to import numpy/scikit-learn. Trained per meter on a history
given as plain data (interval start, quantity per hour), with time-of-day features and the deviation
from the meter's normal rate for that local (Asia/Shanghai) hour and weekday/weekend, so a
night-time load at daytime level stands out. Seeded:
the same history and seed give the same model and the same scores.
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
