"""Tenant isolation: an enterprise session cannot read, count or infer another enterprise's
readings or alerts -- directly, through views, rollups, aggregates or a leaky function."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import psycopg
import pytest

from nxem.contract import AlertEvent, DeadLetter, alert_key
from storage.errors import Conflict
from storage.read import alerts as read_alerts
from storage.read import energy as read_energy
from storage.ingest import write_batch
from storage.rls import tenant_transaction
from tests.integration.test_storage.conftest import DC_ENT, OTHER_ENT, PLANT_ENT, Db, load_demo, meter_ids, utc

pytestmark = pytest.mark.integration

T0 = utc(2026, 2, 28, 16)  # 2026-03-01 00:00 local
Q = timedelta(minutes=15)


@pytest.fixture()
def two_tenants(db: Db) -> Iterator[tuple[Db, dict[str, int], dict[str, int]]]:
    """Both data centres with 8 readings per meter, an alert and a dead letter each."""
    load_demo(db)
    m = meter_ids(db)
    sites = dict(db.sql("SELECT code, id FROM sites"))
    rows = [(m[f"{gw}/{code}"], T0 + k * Q, 100.0 * k + (1 if gw == "gw-yc-a" else 0))
            for gw in ("gw-zw-a", "gw-yc-a") for code in ("it-main", "facility-main") for k in range(8)]
    alerts = [AlertEvent(alert_key=alert_key("site", sites[code], "pue_above_limit"), source_kind="site",
                         source_id=sites[code], enterprise_id=ent, rule="pue_above_limit", kind="opened",
                         severity="major", at=T0, value=1.3, threshold=1.2)
              for code, ent in (("zw-dc-01", DC_ENT), ("yc-dc-01", OTHER_ENT))]
    dead = [DeadLetter(stage="collector", reason_code="unknown_meter", reason=ent, received_at=T0, source="t",
                       original=ent.encode(), enterprise_id=ent) for ent in (DC_ENT, OTHER_ENT)]
    dead.append(DeadLetter(stage="collector", reason_code="malformed_json", reason="?", received_at=T0,
                           source="t", original=b"{"))
    with db.connect("nxem_ingest") as conn:
        write_batch(conn, rows, alerts, dead)
    yield db, m, sites


def _scalar(conn: psycopg.Connection[Any], query: str, params: Any = None) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


TENANT_COUNTS = [
    "SELECT count(*) FROM enterprises", "SELECT count(*) FROM sites", "SELECT count(*) FROM gateways",
    "SELECT count(*) FROM meters", "SELECT count(*) FROM v_readings", "SELECT count(*) FROM v_rollup_15m",
    "SELECT count(*) FROM v_rollup_1h", "SELECT count(*) FROM v_rollup_1d", "SELECT count(*) FROM alerts",
    "SELECT count(*) FROM alert_transitions", "SELECT count(*) FROM dead_letters",
]


def test_an_enterprise_sees_only_its_own_rows(two_tenants: tuple[Db, dict[str, int], dict[str, int]]) -> None:
    db, m, _ = two_tenants
    with db.connect("nxem_portal") as conn:
        with tenant_transaction(conn, DC_ENT):
            counts = [_scalar(conn, q) for q in TENANT_COUNTS]
            ids = {r[0] for r in conn.execute("SELECT DISTINCT meter_id FROM v_readings").fetchall()}
            ents = {r[0] for r in conn.execute("SELECT enterprise_id FROM alerts").fetchall()}
    # 1 enterprise, 1 site, 1 gateway, 2 meters, 2 × 8 readings, 2 × 2 quarter-hour buckets
    # (8 readings = 2 hours), 2 × 2 hours, 2 × 1 day, 1 alert, 1 transition, 1 dead letter
    assert counts == [1, 1, 1, 2, 16, 16, 4, 2, 1, 1, 1]
    assert ids == {m["gw-zw-a/it-main"], m["gw-zw-a/facility-main"]}
    assert ents == {DC_ENT}


def test_inspector_sees_everything_and_an_unbound_session_nothing(
    two_tenants: tuple[Db, dict[str, int], dict[str, int]],
) -> None:
    db, _, _ = two_tenants
    with db.connect("nxem_portal") as conn:
        with tenant_transaction(conn, None, inspector=True):
            inspector = [_scalar(conn, q) for q in TENANT_COUNTS]
        with tenant_transaction(conn, None):
            unbound = [_scalar(conn, q) for q in TENANT_COUNTS]
        conn.execute("SET app.enterprise_id = '91640100MA76L8XK3M'")  # a session-level value ...
        conn.commit()
        with tenant_transaction(conn, None):  # ... is overridden by the transaction's binding
            overridden = [_scalar(conn, q) for q in TENANT_COUNTS]
        conn.rollback()
        plain = [_scalar(conn, q) for q in TENANT_COUNTS[:4]]  # a bare query outside tenant_transaction
    # 3 enterprises, 3 sites, 3 gateways, 8 meters, 32 readings, 32 quarter-hours, 8 hours,
    # 4 days, 2 alerts, 2 transitions, 3 dead letters (one not attributable)
    assert inspector == [3, 3, 3, 8, 32, 32, 8, 4, 2, 2, 3]
    assert unbound == [0] * len(TENANT_COUNTS)
    assert overridden == [0] * len(TENANT_COUNTS)
    assert plain == [1, 1, 1, 2]  # the session-level setting applies when nothing overrides it


def test_the_inspector_login_reads_all_and_writes_nothing(two_tenants: tuple[Db, dict[str, int], dict[str, int]]) -> None:
    db, _, _ = two_tenants
    with db.connect("nxem_inspector") as conn:
        assert _scalar(conn, "SELECT count(*) FROM v_readings") == 32
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE alerts SET acked_at = now()")


def test_the_portal_cannot_reach_raw_tables_or_partitions(two_tenants: tuple[Db, dict[str, int], dict[str, int]]) -> None:
    db, _, _ = two_tenants
    targets = ["readings", "rollup_15m", "rollup_1h", "rollup_1d"]
    if not db.timescale:
        targets.append(db.sql("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                              "WHERE i.inhparent = 'readings'::regclass LIMIT 1")[0][0])
    with db.connect("nxem_portal", autocommit=True) as conn:
        for table in targets:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"SELECT count(*) FROM {table}")


def test_nothing_can_be_inferred_about_another_tenant(two_tenants: tuple[Db, dict[str, int], dict[str, int]]) -> None:
    db, m, sites = two_tenants
    other_it = m["gw-yc-a/it-main"]
    with db.connect("nxem_portal") as conn, tenant_transaction(conn, DC_ENT):
        # by id, by aggregate, through the query API
        assert _scalar(conn, "SELECT count(*) FROM v_readings WHERE meter_id = %s", (other_it,)) == 0
        assert _scalar(conn, "SELECT sum(value) FROM v_readings WHERE meter_id = %s", (other_it,)) is None
        assert _scalar(conn, "SELECT max(last_value) FROM v_rollup_1d WHERE meter_id = %s", (other_it,)) is None
        assert read_energy.meter_energy(conn, [other_it], T0, T0 + timedelta(days=1)) == []
        assert read_energy.energy(conn, sites["yc-dc-01"], "day", date(2026, 3, 1), date(2026, 3, 1)) == []
        assert read_energy.pue(conn, sites["yc-dc-01"], date(2026, 3, 1), date(2026, 3, 1)) == []
        assert [a["enterprise_id"] for a in read_alerts.list_alerts(conn, read_alerts.AlertFilter(), 50)] == [DC_ENT]
        assert read_alerts.active_alert_events(conn, sites["yc-dc-01"]) == []
        # an exists-probe through the primary key does not reveal the other tenant's keys
        assert _scalar(conn, "SELECT count(*) FROM v_readings WHERE (meter_id, ts) = (%s, %s)", (other_it, T0)) == 0


def test_a_leaky_function_sees_only_the_tenants_rows(two_tenants: tuple[Db, dict[str, int], dict[str, int]]) -> None:
    """security_barrier: a caller's function in WHERE runs after the tenant filter."""
    db, _, _ = two_tenants
    seen: list[str] = []
    with db.connect("nxem_portal") as conn:
        conn.add_notice_handler(lambda d: seen.append(d.message_primary or ""))
        conn.execute("CREATE FUNCTION pg_temp.leak(m integer, v float8) RETURNS boolean LANGUAGE plpgsql "
                     "COST 0.0000001 AS $$ BEGIN RAISE NOTICE '%', m; RETURN true; END $$")
        conn.commit()
        with tenant_transaction(conn, DC_ENT):
            own = {r[0] for r in conn.execute("SELECT meter_id FROM v_readings").fetchall()}
            for view in ("v_readings", "v_rollup_15m", "v_rollup_1d"):
                conn.execute(f"SELECT * FROM {view} WHERE pg_temp.leak(meter_id, 0)").fetchall()
    assert seen and {int(s) for s in seen} <= own


def test_an_enterprise_acknowledges_its_own_alert_only(two_tenants: tuple[Db, dict[str, int], dict[str, int]]) -> None:
    db, _, _ = two_tenants
    ids = dict(db.sql("SELECT enterprise_id, id FROM alerts"))
    with db.connect("nxem_portal") as conn:
        with tenant_transaction(conn, DC_ENT):
            assert read_alerts.get_alert(conn, ids[OTHER_ENT]) is None  # not visible: nothing to acknowledge
            own = read_alerts.get_alert(conn, ids[DC_ENT])
            assert own is not None
            assert read_alerts.acknowledge(conn, own, "alice", "seen", T0)["actor"] == "alice"
            with pytest.raises(Conflict):  # already acknowledged
                read_alerts.acknowledge(conn, own, "alice", "seen", T0)
        with pytest.raises(psycopg.errors.InsufficientPrivilege), tenant_transaction(conn, DC_ENT):
            conn.execute("UPDATE alerts SET severity = 'warning'")
    assert sorted(db.sql("SELECT enterprise_id, acked_by FROM alerts")) == sorted([
        (DC_ENT, "alice"), (OTHER_ENT, None)])
    assert db.sql("SELECT enterprise_id, kind FROM alert_transitions WHERE kind = 'acknowledged'") == [
        (DC_ENT, "acknowledged")]


def test_tenant_transaction_refuses_bad_bindings(db: Db) -> None:
    with db.connect("nxem_portal") as conn:
        with pytest.raises(ValueError, match="not both"), tenant_transaction(conn, DC_ENT, inspector=True):
            pass
        with pytest.raises(ValueError, match="credit code"), tenant_transaction(conn, "x' OR true --"):
            pass
        conn.execute("SELECT 1")  # a transaction is open now
        with pytest.raises(Exception, match="idle connection"), tenant_transaction(conn, PLANT_ENT):
            pass
