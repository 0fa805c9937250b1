"""TimescaleDB-only behaviour. Skips, with the reason printed (-ra), where the server has no
timescaledb extension (plain PostgreSQL 15 in CI); checked against TimescaleDB 2.28.3."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest

from storage import queries, timescale
from storage.ingest import write_batch
from tests.integration.test_storage.conftest import Db, load_demo, meter_ids, utc

pytestmark = [pytest.mark.integration, pytest.mark.timescale]


@pytest.fixture()
def tsdb(db: Db) -> Db:
    if not db.timescale:
        pytest.skip("TimescaleDB is not available on this server (pg_available_extensions has no "
                    "timescaledb): hypertable, compression, continuous aggregates and policies not checked")
    return db


def test_readings_is_a_daily_hypertable_without_the_default_time_index(tsdb: Db) -> None:
    dims = tsdb.sql("SELECT column_name, time_interval FROM timescaledb_information.dimensions "
                    "WHERE hypertable_name = 'readings'")
    assert dims == [("ts", timedelta(days=1))]
    indexes = {r[0] for r in tsdb.sql("SELECT indexname FROM pg_indexes WHERE tablename = 'readings'")}
    assert indexes == {"readings_pkey"}
    assert tsdb.sql("SELECT compression_enabled FROM timescaledb_information.hypertables "
                    "WHERE hypertable_name = 'readings'") == [(True,)]


def test_policies_and_continuous_aggregates_exist(tsdb: Db) -> None:
    caggs = {r[0] for r in tsdb.sql("SELECT view_name FROM timescaledb_information.continuous_aggregates")}
    assert caggs == {"rollup_15m", "rollup_1h", "rollup_1d"}
    procs = sorted(r[0] for r in tsdb.sql("SELECT proc_name FROM timescaledb_information.jobs "
                                          "WHERE proc_name LIKE 'policy_%'"))
    assert procs.count("policy_refresh_continuous_aggregate") == 3
    assert "policy_compression" in procs


def test_refreshed_late_data_gives_the_same_daily_energy(tsdb: Db) -> None:
    load_demo(tsdb)
    it = meter_ids(tsdb)["gw-zw-a/it-main"]
    site = tsdb.sql("SELECT id FROM sites WHERE code = 'zw-dc-01'")[0][0]
    d1 = utc(2026, 2, 28, 16)
    q = timedelta(minutes=15)
    with tsdb.connect("nxem_ingest") as conn:
        write_batch(conn, [(it, d1 + k * q, 1000.0 + 250.0 * k) for k in range(192) if k != 95], [], [])
    with tsdb.connect(autocommit=True) as conn:
        timescale.refresh_rollups(conn, None, None)
    with tsdb.connect("nxem_ingest") as conn:
        write_batch(conn, [(it, d1 + 95 * q, 1000.0 + 250.0 * 95)], [], [])  # late, below the watermark
    with tsdb.connect(autocommit=True) as conn:
        timescale.refresh_rollups(conn, None, None)
        with pytest.raises(Exception, match="autocommit"), psycopg.connect(tsdb.admin) as tx:
            timescale.refresh_rollups(tx, None, None)
    with tsdb.connect("nxem_ingest") as conn:
        got = queries.meter_energy(conn, [it], d1, d1 + timedelta(days=2), "1d")
        pue = queries.pue_series(conn, site, d1, d1 + timedelta(days=2), "1d")
    # 95 × 250 = 23 750 and 96 × 250 = 24 000 kWh, as on plain PostgreSQL
    assert [e.energy for e in got] == [23_750.0, 24_000.0]
    assert [p.it_kwh for p in pue] == [23_750.0, 24_000.0]
