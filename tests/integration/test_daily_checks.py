"""The once-a-day checks on real PostgreSQL and Kafka (stream/daily.py).

One data centre, two register meters (kWh), hourly readings at local hh:00; a reading at t
adds the consumption of the hour [t − 1 h, t) to the register, and a reading closes the
interval before it (analytics.energy_definition), so the hourly energy bucket starting at
t − 1 h is that hour's consumption. Checked day D = 2026-03-10 (Asia/Shanghai), readings up to
its 23:00; the anomaly model trains on 2026-02-10 .. 03-09 (28 days).

* ``facility-main`` constant 120 kWh/h, silent from 02-27 00:00 until 03-04 00:00 (first
  March reading 03-04 00:00): the register's step across the gap, 02-26 23:00 → 03-04 00:00,
  121 h × 120 = 14 520 kWh, is shared by time, so March's daily figures hold its 72 h from
  03-01 00:00; the register difference of March starts at 03-04 00:00 ->
  Σ daily 03-01..10 = 72 h + (03-04 00:00 → 03-10 23:00: 167 h) = 239 h × 120 = 28 680
  monthly = 03-04 00:00 → 03-10 23:00 = 167 h × 120 = 20 040
  |28 680 − 20 040| / 20 040 = 8 640 / 20 040 = 0.431138 > 5 %  -> daily_monthly_mismatch.
* ``it-main`` 550 − 250·cos(2π·local hour/24) kWh/h: Σ daily 03-01..10 and the monthly
  difference both run from the 03-01 00:00 reading to the 03-10 23:00 one: no mismatch; but
  the readings at 02:00-04:00 local of D carry 800 instead of ≈ 300-330 (the hours 01:00-04:00:
  a night load at day level) -> consumption_anomaly; 03-11 normal again -> cleared.
Expected values come from these parameters, not from the code under test.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest

from nxem import contract
from nxem.contract import AlertEvent
from tests.harness import Pipeline, pipeline
from nxem.kafka import alert_publisher, make_producer
from ops.services import ServiceSettings
from simulators.scenario import data_centre_document
from storage import ingest, roles
from stream.daily import DailyConfig, run_due, run_once
from stream.settings import WorkerSettings

pytestmark = pytest.mark.integration

ENT = "91640500MA76L8XK3A"
D = date(2026, 3, 10)
LOCAL0 = datetime(2026, 2, 9, 16, tzinfo=UTC)  # 2026-02-10 00:00 local: first reading
END_D = datetime(2026, 3, 10, 16, tzinfo=UTC)  # 2026-03-11 00:00 local: end of D
GAP = (datetime(2026, 2, 26, 16, tzinfo=UTC), datetime(2026, 3, 3, 16, tzinfo=UTC))  # [02-27, 03-04) local
SPIKE_HOURS = {2, 3, 4}  # local hours of D at 800 kWh
CFG = DailyConfig()  # 5 %, ≥ 7 days, 28 days of history, 2 consecutive points, seed 0


def it_rate(t: datetime, spike: bool) -> float:
    local_hour = (t.hour + 8) % 24
    if spike and LOCAL0 + timedelta(days=28) <= t < END_D and local_hour in SPIKE_HOURS:
        return 800.0
    return 550 - 250 * math.cos(local_hour / 24 * 2 * math.pi)


def readings(meters: dict[str, int], start: datetime, end: datetime, registers: dict[str, float],
             spike: bool = True) -> list[tuple[int, datetime, float]]:
    """Hourly register readings in [start, end); ``registers`` holds and advances the values."""
    rows = []
    t = start
    while t < end:
        registers["it-main"] += it_rate(t, spike)
        rows.append((meters["it-main"], t, registers["it-main"]))
        registers["facility-main"] += 120.0
        if not GAP[0] <= t < GAP[1]:
            rows.append((meters["facility-main"], t, registers["facility-main"]))
        t += timedelta(hours=1)
    return rows


def consume(topic: str, bootstrap: str) -> list[AlertEvent]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=3000, group_id=None)
    try:
        return [contract.decode_alert(rec.value) for rec in consumer]
    finally:
        consumer.close()


@pytest.fixture(scope="module")
def env(services: ServiceSettings) -> Iterator[tuple[Pipeline, str, dict[str, int], dict[str, float]]]:
    with pipeline(services) as p:
        doc = data_centre_document(ENT, "daily-dc", "gw-daily", pue=1.2, it_kw=500.0, start=LOCAL0, hours=1)
        p.register(doc)
        meters = {code: mid for mid, code in p.sql("SELECT id, code FROM meters")}
        ws = WorkerSettings(pg_host=services.pg_host, pg_port=services.pg_port, pg_db=p.dbname,
                            data_dir=services.resolved_data_dir())
        dsn = roles.dsn_for("nxem_ingest", ws)  # the worker's role: the grants are tested too
        registers = {"it-main": 1_000_000.0, "facility-main": 500_000.0}
        with psycopg.connect(dsn) as conn:
            ingest.write_batch(conn, readings(meters, LOCAL0, END_D, registers), [], [])
            conn.commit()
        yield p, dsn, meters, registers


def alerts(p: Pipeline) -> list[tuple[Any, ...]]:
    return p.sql("SELECT alert_key, rule, severity, value, threshold, started_at, cleared_at, details"
                 " FROM alerts ORDER BY rule DESC")


def test_daily_checks_open_dedupe_and_clear(env: tuple[Pipeline, str, dict[str, int], dict[str, float]],
                                            services: ServiceSettings) -> None:
    p, dsn, meters, registers = env
    producer = make_producer(services.kafka_bootstrap, "daily-test")
    publish = alert_publisher(producer, p.topics["alerts"])
    fac, it = meters["facility-main"], meters["it-main"]
    try:
        # 03-11 01:30 local, grace 1 h: D (ended 01:30 ago) is the last ended day; no scheduled
        # day yet, so only D is checked
        now = END_D + timedelta(hours=1, minutes=30)
        done = run_due(dsn, now, CFG, publish, timedelta(hours=1))
        assert done is not None and [r.local_day for r in done] == [D]
        got = alerts(p)
        assert [(k, r, s, th, st, c) for k, r, s, _, th, st, c, _ in got] == [
            (f"meter:{fac}:daily_monthly_mismatch", "daily_monthly_mismatch", "minor", 0.05, END_D, None),
            (f"meter:{it}:consumption_anomaly", "consumption_anomaly", "warning", 0.0, END_D, None),
        ]
        mismatch, anomaly = got[0], got[1]
        assert mismatch[3] == pytest.approx(0.431138)
        det = mismatch[7]
        assert (det["daily_sum"], det["monthly_register_difference"]) == pytest.approx((28_680.0, 20_040.0))
        assert det["period"] == "2026-03-01..2026-03-10" and det["formula"] == "|28680 − 20040| / 20040 = 0.4311"
        # the run of anomalous hours: the rule keeps the newest two (the hours from 02:00 and 03:00 local)
        assert anomaly[3] > 0 and [pt["ts"] for pt in anomaly[7]["points"]] == [
            "2026-03-09T18:00:00+00:00", "2026-03-09T19:00:00+00:00"]
        assert all(pt["rate_per_h"] == 800.0 and pt["score"] > 0 for pt in anomaly[7]["points"])
        assert p.sql("SELECT local_day, scheduled FROM daily_checks") == [(D, True)]

        # nothing due again; a re-check of D on demand restores the open alerts and adds nothing
        assert run_due(dsn, now, CFG, publish, timedelta(hours=1)) == []
        assert run_once(dsn, D, now, CFG, publish).transitions == ()
        assert alerts(p) == got

        # another worker holds the job: this one skips
        with psycopg.connect(dsn, autocommit=True) as other:
            other.execute("SELECT pg_advisory_lock(%s)", (0x6E786463,))
            assert run_due(dsn, now + timedelta(days=1), CFG, publish, timedelta(hours=1)) is None

        # 03-11 normal: the anomaly clears at the end of 03-11; the mismatch stays open:
        # Σ 28 680 + 2 880 = 31 560 vs 20 040 + 2 880 = 22 920 -> 8 640 / 22 920 = 0.376963,
        # moved 0.054 < 20 % of 0.431138: no transition
        with psycopg.connect(dsn) as conn:
            ingest.write_batch(conn, readings(meters, END_D, END_D + timedelta(days=1), registers), [], [])
            conn.commit()
        done = run_due(dsn, END_D + timedelta(days=1, hours=2), CFG, publish, timedelta(hours=1))
        assert done is not None and [(r.local_day, len(r.transitions)) for r in done] == [(date(2026, 3, 11), 1)]
        assert p.sql("SELECT alert_key, cleared_at FROM alerts ORDER BY rule DESC") == [
            (f"meter:{fac}:daily_monthly_mismatch", None),
            (f"meter:{it}:consumption_anomaly", END_D + timedelta(days=1)),
        ]
        assert p.sql("SELECT local_day, scheduled FROM daily_checks ORDER BY 1") == [
            (D, True), (date(2026, 3, 11), True)]
    finally:
        producer.close(timeout=10)

    on_topic = [(e.alert_key, e.kind, e.at) for e in consume(p.topics["alerts"], services.kafka_bootstrap)]
    assert sorted(on_topic) == sorted([
        (f"meter:{fac}:daily_monthly_mismatch", "opened", END_D),
        (f"meter:{it}:consumption_anomaly", "opened", END_D),
        (f"meter:{it}:consumption_anomaly", "cleared", END_D + timedelta(days=1)),
    ])
    assert p.sql("SELECT count(*) FROM alert_transitions")[0][0] == 3


def test_the_cli_runs_the_due_days_once_and_refuses_a_day_not_ended(services: ServiceSettings,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from ops.cli import app
    from stream.daily import last_ended_day

    with pipeline(services) as p:
        for k, v in p.env.items():
            if k.startswith("NXEM_"):
                monkeypatch.setenv(k, v)
        runner = CliRunner()
        first = runner.invoke(app, ["daily-checks"])
        assert first.exit_code == 0, first.output
        # a fresh schedule checks the last ended local day (one hour of grace by default)
        day = last_ended_day(datetime.now(UTC), timedelta(hours=1))
        assert f"{day}: 0 alert transitions" in first.output
        again = runner.invoke(app, ["daily-checks"])
        assert again.exit_code == 0 and "no local day due" in again.output
        future = runner.invoke(app, ["daily-checks", "--day", "2099-01-01"])
        assert future.exit_code == 2 and "has not ended yet" in future.output
