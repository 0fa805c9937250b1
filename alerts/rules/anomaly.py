"""Anomaly alert: a meter's recent consumption scored anomalous by ``analytics.anomaly``.

Low severity (``warning``) with its score; clears when a later score is back below the
threshold. The caller scores with a model trained on stored history and passes the scores in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from alerts import lifecycle
from alerts.lifecycle import Alert
from nxem.contract import AlertEvent, Severity

RULE = "consumption_anomaly"


@dataclass(frozen=True)
class AnomalyRule:
    threshold: float = 0.0  # score above which a point is anomalous (IsolationForest: > 0)
    min_points: int = 2  # consecutive anomalous points before it opens
    severity: Severity = "warning"


@dataclass(frozen=True)
class AnomalyInput:
    meter_id: int
    enterprise_id: str
    points: tuple[tuple[datetime, float, float], ...]  # (interval start, rate, score), oldest first
    model_seed: int
    trained_points: int


def evaluate(rule: AnomalyRule, state: Alert | None, inp: AnomalyInput, now: datetime) -> tuple[Alert | None, list[AlertEvent]]:
    if not inp.points:
        return state, []
    recent = inp.points[-rule.min_points:]
    _, rate, last_score = inp.points[-1]
    if len(recent) >= rule.min_points and all(s > rule.threshold for _, _, s in recent):
        return lifecycle.trigger(
            state, source_kind="meter", source_id=inp.meter_id, enterprise_id=inp.enterprise_id, rule=RULE,
            severity=rule.severity, at=now, value=round(last_score, 4), threshold=rule.threshold,
            details={"points": [{"ts": t.isoformat(), "rate_per_h": r, "score": round(s, 4)} for t, r, s in recent],
                     "method": "IsolationForest on time-of-day/weekday profile (scikit-learn)",
                     "model_seed": inp.model_seed, "trained_points": inp.trained_points},
            policy=lifecycle.UpdatePolicy(min_relative_step=0.5))
    if last_score <= rule.threshold:
        return lifecycle.clear(state, now, {"cleared_score": round(last_score, 4), "rate_per_h": rate})
    return state, []
