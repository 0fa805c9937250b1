"""Once-a-day checks of a closed Asia/Shanghai day: daily-vs-monthly agreement and anomalies.

The job (adapter: PostgreSQL via psycopg, Kafka via a ``publish`` callable; the rules are pure):

1. read the meters, the active alerts of the two rules (so the lifecycle continues them
   instead of opening duplicates), and the data of the checked day D:
   * every *register* meter: its daily consumption for each local day of the month up to D
     (``storage.read.energy.meter_energy`` grain ``day``) and its first and last reading of
     that month-to-date window (``storage.read.readings.first_and_last``) -> ``quality.month_agreement``
     (interval meters are not judged: both figures are the same sum of values by construction);
   * every meter: hourly consumption of the ``history_days`` local days before D (training)
     and of D (scored) -> ``analytics.anomaly.train`` / ``score_points`` / ``day_evidence``
     -> ``alerts.rules.anomaly.evaluate``;
2. publish the transitions to the alerts topic and wait for Kafka's acks;
3. store them and record D in ``daily_checks`` in ONE transaction (migration 0009).

Every transition's event time is the end of D (00:00 local of the next day), so re-checking a
day yields the same (alert_key, kind, at): the restored lifecycle emits nothing new, storage
ignores a replayed transition, consumers of the topic dedupe on that triple.

Scheduling (``run_due``, from a worker's background thread): one worker of the group at a time
(session advisory lock); the days after the newest *scheduled* row of ``daily_checks`` up to
the last day that ended ``grace`` ago, oldest first, at most ``max_days`` per call. With no
scheduled row yet only the last ended day is checked (earlier history: ``nxem daily-checks``).
"""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final

import psycopg

from alerts import lifecycle
from alerts.lifecycle import Alert
from alerts.rules import anomaly as anomaly_rule
from alerts.rules import quality
from alerts.rules.anomaly import AnomalyInput, AnomalyRule
from alerts.rules.quality import MonthToDate, QualityRule
from analytics.periods import CST, local_start
from nxem.contract import AlertEvent, alert_key
from nxem.errors import BackendUnavailable
from storage import ingest, roles
from storage.read import alerts as read_alerts
from storage.read import energy as read_energy
from storage.read import readings as read_readings
from storage.errors import StorageError
from storage.registry import MeterRow, load_meters
from stream.settings import WorkerSettings

log = logging.getLogger(__name__)

RULES: Final = (quality.DAILY_MONTHLY_MISMATCH, anomaly_rule.RULE)
DAY: Final = timedelta(days=1)
_LOCK: Final = 0x6E786463  # "nxdc": one daily-checks job per database at a time
_CHUNK: Final = 500  # meters per query: bounded memory (29 days × 24 h × 500 ≈ 350 000 rows)

Publish = Callable[[Sequence[AlertEvent]], None]


@dataclass(frozen=True)
class DailyConfig:
    quality: QualityRule = field(default_factory=QualityRule)
    anomaly: AnomalyRule = field(default_factory=AnomalyRule)
    history_days: int = 28  # local days of hourly history per meter before the checked day
    seed: int = 0  # IsolationForest seed

    @classmethod
    def from_settings(cls, s: WorkerSettings) -> DailyConfig:
        return cls(
            quality=QualityRule(daily_monthly_tolerance=s.worker_daily_mismatch_tolerance,
                                daily_monthly_min_days=s.worker_daily_mismatch_min_days),
            anomaly=AnomalyRule(min_points=s.worker_anomaly_min_points),
            history_days=s.worker_anomaly_history_days, seed=s.worker_anomaly_seed)


@dataclass(frozen=True)
class DayResult:
    local_day: date
    transitions: tuple[AlertEvent, ...]
    summary: dict[str, Any]


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """[00:00, next 00:00) of a local day as UTC instants (UTC+8 has no DST since 1991)."""
    start = datetime.combine(day, time(0), tzinfo=CST).astimezone(UTC)
    return start, start + DAY


def last_ended_day(now: datetime, grace: timedelta) -> date:
    """The newest local day that ended at least ``grace`` before ``now``."""
    return (local_start(now - grace, "day") - DAY).astimezone(CST).date()


def _chunks(rows: Sequence[MeterRow]) -> Iterator[Sequence[MeterRow]]:
    for i in range(0, len(rows), _CHUNK):
        yield rows[i:i + _CHUNK]


def _restore(conn: psycopg.Connection[Any], site_ids: set[int]) -> dict[str, Alert]:
    """Active alerts of the two rules, rebuilt for the lifecycle."""
    events = [e for site in sorted(site_ids) for e in read_alerts.active_alert_events(conn, site) if e.rule in RULES]
    return lifecycle.restore(events)


class _Run(lifecycle.Run):
    """The lifecycle's pass, plus what the day's summary counts."""

    def __init__(self, active: Mapping[str, Alert]) -> None:
        super().__init__(active)
        self.counts: Counter[str] = Counter()


def _mismatch(conn: psycopg.Connection[Any], run: _Run, meters: Sequence[MeterRow], start: datetime,
              end: datetime, rule: QualityRule) -> None:
    month_start = local_start(start, "month")
    registers = [m for m in meters if m.kind == "register"]
    if len(registers) < len(meters):
        run.counts["mismatch_not_judged_interval_meter"] += len(meters) - len(registers)
    for chunk in _chunks(registers):
        ids = [m.id for m in chunk]
        daily: dict[int, list[float]] = defaultdict(list)
        for e in read_energy.meter_energy(conn, ids, month_start, end, "day"):
            daily[e.meter_id].append(e.energy)
        ends = read_readings.first_and_last(conn, ids, month_start, end)
        for m in chunk:
            if m.id not in ends:
                run.counts["mismatch_skipped_no_readings_in_month"] += 1
                continue
            first, last = ends[m.id]
            inp = MonthToDate(m.id, m.enterprise_id, month_start, end, tuple(daily[m.id]), first, last,
                              m.multiplier, m.rollover, m.unit)
            key = alert_key("meter", m.id, quality.DAILY_MONTHLY_MISMATCH)
            before = len(run.events)
            run.set(key, quality.month_agreement(rule, run.get(key), inp, end))
            run.counts["mismatch_judged"] += 1
            run.counts["mismatch_transitions"] += len(run.events) - before


def _anomalies(conn: psycopg.Connection[Any], run: _Run, meters: Sequence[MeterRow], start: datetime,
               end: datetime, cfg: DailyConfig) -> None:
    # numpy + scikit-learn cost ~2 s and ~150 MB per process: loaded only by the worker that
    # actually checks a day, not by every worker at start-up
    from analytics import anomaly

    hist_start = start - cfg.history_days * DAY
    for chunk in _chunks(meters):
        points: dict[int, list[tuple[datetime, float]]] = defaultdict(list)
        # 1-hour buckets: the energy of a bucket is the quantity per hour
        for e in read_energy.meter_energy(conn, [m.id for m in chunk], hist_start, end, "hour"):
            points[e.meter_id].append((e.bucket, e.energy))
        for m in chunk:
            history = [p for p in points[m.id] if p[0] < start]
            day = [p for p in points[m.id] if p[0] >= start]
            if not day:
                run.counts["anomaly_skipped_no_data_on_day"] += 1
                continue
            try:
                model = anomaly.train(m.id, history, seed=cfg.seed)
            except ValueError as err:  # too little history: counted, reported in the summary
                log.debug("anomaly model skipped meter=%s: %s", m.id, err)
                run.counts["anomaly_skipped_short_history"] += 1
                continue
            scored = anomaly.score_points(model, day)
            evidence = anomaly.day_evidence(scored, cfg.anomaly.min_points, cfg.anomaly.threshold)
            inp = AnomalyInput(m.id, m.enterprise_id, evidence, cfg.seed, model.trained_points)
            key = alert_key("meter", m.id, anomaly_rule.RULE)
            before = len(run.events)
            run.set(key, anomaly_rule.evaluate(cfg.anomaly, run.get(key), inp, end))
            run.counts["anomaly_scored"] += 1
            run.counts["anomaly_points_above_threshold"] += sum(1 for p in scored if p[2] > cfg.anomaly.threshold)
            run.counts["anomaly_transitions"] += len(run.events) - before


def evaluate_day(conn: psycopg.Connection[Any], day: date, cfg: DailyConfig) -> tuple[list[AlertEvent], dict[str, Any]]:
    """Read what the checks of ``day`` need and run them (no writes): transitions, summary."""
    start, end = day_bounds(day)
    meters = sorted(load_meters(conn).values(), key=lambda m: m.id)
    run = _Run(_restore(conn, {m.site_id for m in meters}))
    _mismatch(conn, run, meters, start, end, cfg.quality)
    _anomalies(conn, run, meters, start, end, cfg)
    summary: dict[str, Any] = {"meters": len(meters), "transitions": len(run.events), **dict(sorted(run.counts.items())),
                               "active": dict(Counter(a.rule for a in run.active.values()))}
    return run.events, summary


_RECORD: Final = """
INSERT INTO daily_checks (local_day, scheduled, checked_at, summary) VALUES (%s, %s, %s, %s)
ON CONFLICT (local_day) DO UPDATE SET scheduled = daily_checks.scheduled OR EXCLUDED.scheduled,
  checked_at = EXCLUDED.checked_at, summary = EXCLUDED.summary"""


def run_day(conn: psycopg.Connection[Any], day: date, cfg: DailyConfig, publish: Publish, *,
            scheduled: bool, checked_at: datetime) -> DayResult:
    """Check one local day: evaluate, publish, then store the transitions and record the day
    in one transaction. ``conn`` must be in autocommit mode and hold the job's lock."""
    with conn.transaction():
        events, summary = evaluate_day(conn, day, cfg)
    publish(events)
    with conn.transaction():
        ingest.write_batch(conn, [], events, [])
        conn.execute(_RECORD, (day, scheduled, checked_at, json.dumps(summary)))
    return DayResult(day, tuple(events), summary)


def _connect(dsn: str) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(dsn, autocommit=True, connect_timeout=10, application_name="nxem-daily")
    except psycopg.Error as err:
        raise BackendUnavailable(f"PostgreSQL connect (daily checks): {err}") from err


def run_due(dsn: str, now: datetime, cfg: DailyConfig, publish: Publish, grace: timedelta,
            max_days: int = 3) -> list[DayResult] | None:
    """Check the local days due by ``now`` (see the module doc); ``None`` when another worker
    holds the job. Raises ``BackendUnavailable`` (retry later) or ``StorageError``."""
    try:
        with _connect(dsn) as conn:
            got = conn.execute("SELECT pg_try_advisory_lock(%s)", (_LOCK,)).fetchone()
            if not got or not got[0]:
                return None  # released with the session, also when the job fails
            last = last_ended_day(now, grace)
            row = conn.execute("SELECT max(local_day) FROM daily_checks WHERE scheduled").fetchone()
            day: date = row[0] + DAY if row and row[0] is not None else last
            done: list[DayResult] = []
            while day <= last and len(done) < max_days:
                done.append(run_day(conn, day, cfg, publish, scheduled=True, checked_at=now))
                day += DAY
            return done
    except psycopg.OperationalError as err:
        raise BackendUnavailable(f"PostgreSQL daily checks: {err}") from err
    except psycopg.Error as err:
        raise StorageError(f"daily checks: {err}") from err


def run_once(dsn: str, day: date, now: datetime, cfg: DailyConfig, publish: Publish) -> DayResult:
    """Check ``day`` on demand (waits while the scheduled job runs); the schedule is not moved.
    Re-checking a past day acts on the *current* active alerts (a repair tool)."""
    _, end = day_bounds(day)
    if end > now:
        raise ValueError(f"local day {day} has not ended yet (it ends {end.isoformat()})")
    try:
        with _connect(dsn) as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK,))
            return run_day(conn, day, cfg, publish, scheduled=False, checked_at=now)
    except psycopg.OperationalError as err:
        raise BackendUnavailable(f"PostgreSQL daily checks: {err}") from err
    except psycopg.Error as err:
        raise StorageError(f"daily checks: {err}") from err


def scheduled_job(s: WorkerSettings, publish: Publish) -> Callable[[datetime], list[DayResult] | None]:
    """What the worker's background thread calls with the current time: ``run_due`` with the
    worker's settings, publishing through the worker's own producer."""
    dsn = roles.dsn_for("nxem_ingest", s)
    cfg = DailyConfig.from_settings(s)
    grace = timedelta(seconds=s.worker_daily_grace_s)
    return lambda now: run_due(dsn, now, cfg, publish, grace)
