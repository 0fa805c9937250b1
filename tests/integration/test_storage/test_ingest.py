"""write_batch against a real PostgreSQL: fast path, replay, conflicts, late data, alerts,
dead letters -- connected as the ingest role, like the worker."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import psycopg
import pytest

from nxem.contract import AlertEvent, DeadLetter, alert_key
from storage.ingest import Conflict, write_batch
from tests.integration.test_storage.conftest import DC_ENT, Db, load_demo, meter_ids, utc

pytestmark = pytest.mark.integration

T0 = utc(2026, 3, 1, 0, 0)


def _rows(meter: int, values: list[float], start: datetime = T0,
          step: timedelta = timedelta(minutes=15)) -> list[tuple[int, datetime, float]]:
    return [(meter, start + i * step, v) for i, v in enumerate(values)]


def test_fast_path_stores_every_row_and_a_replay_changes_nothing(db: Db) -> None:
    load_demo(db)
    m = meter_ids(db)
    it, fac = m["gw-zw-a/it-main"], m["gw-zw-a/facility-main"]
    # unsorted on purpose: facility first, then IT
    batch = _rows(fac, [100.0, 125.0, 150.0]) + _rows(it, [80.0, 100.0, 120.0])
    with db.connect("nxem_ingest") as conn:
        first = write_batch(conn, batch, [], [])
        assert (first.inserted, first.duplicates, first.staged, first.conflicts) == (6, 0, False, ())
        replay = write_batch(conn, batch, [], [])
        assert (replay.inserted, replay.duplicates, replay.staged, replay.conflicts) == (0, 6, True, ())
    stored = db.sql("SELECT meter_id, ts, value FROM readings ORDER BY meter_id, ts")
    assert stored == sorted(batch)


def test_a_partly_new_batch_inserts_only_the_new_rows(db: Db) -> None:
    load_demo(db)
    it = meter_ids(db)["gw-zw-a/it-main"]
    with db.connect("nxem_ingest") as conn:
        write_batch(conn, _rows(it, [1.0, 2.0]), [], [])
        r = write_batch(conn, _rows(it, [1.0, 2.0, 3.0, 4.0]), [], [])
    assert (r.inserted, r.duplicates, r.staged) == (2, 2, True)
    assert db.sql("SELECT count(*) FROM readings")[0][0] == 4


def test_a_changed_value_keeps_the_first_and_is_reported_as_a_conflict(db: Db) -> None:
    load_demo(db)
    it = meter_ids(db)["gw-zw-a/it-main"]
    with db.connect("nxem_ingest") as conn:
        write_batch(conn, [(it, T0, 10.0)], [], [])
        r = write_batch(conn, [(it, T0, 11.0), (it, T0 + timedelta(minutes=15), 12.0)], [], [])
    assert (r.inserted, r.duplicates) == (1, 1)
    assert r.conflicts == (Conflict(it, T0, stored_value=10.0, refused_value=11.0),)
    assert db.sql("SELECT value FROM readings WHERE ts = %s", (T0,)) == [(10.0,)]


def test_repeated_keys_inside_one_batch_keep_the_first_sent(db: Db) -> None:
    load_demo(db)
    it = meter_ids(db)["gw-zw-a/it-main"]
    with db.connect("nxem_ingest") as conn:
        r = write_batch(conn, [(it, T0, 5.0), (it, T0, 5.0), (it, T0, 7.0)], [], [])
    # 3 sent, 1 stored; the 7.0 differs from the kept 5.0
    assert (r.inserted, r.duplicates) == (1, 2)
    assert r.conflicts == (Conflict(it, T0, 5.0, 7.0),)
    assert db.sql("SELECT value FROM readings") == [(5.0,)]


def test_a_repeat_inside_a_batch_is_judged_against_the_stored_value(db: Db) -> None:
    load_demo(db)
    it = meter_ids(db)["gw-zw-a/it-main"]
    with db.connect("nxem_ingest") as conn:
        write_batch(conn, [(it, T0, 5.0)], [], [])
        # 7.0 then 5.0 for the stored key: only 7.0 differs from what is stored (5.0)
        r = write_batch(conn, [(it, T0, 7.0), (it, T0, 5.0)], [], [])
    assert (r.inserted, r.duplicates) == (0, 2)
    assert r.conflicts == (Conflict(it, T0, 5.0, 7.0),)
    assert db.sql("SELECT value FROM readings") == [(5.0,)]


def test_late_data_for_a_day_without_partition_is_stored(db: Db) -> None:
    load_demo(db)
    it = meter_ids(db)["gw-zw-a/it-main"]
    old = utc(2024, 1, 15, 8, 0)  # far outside the partitions the migration made
    much_older = utc(2021, 6, 1, 0, 0)
    with db.connect("nxem_ingest") as conn:
        r = write_batch(conn, [(it, old, 1.0), (it, much_older, 0.5), (it, T0, 2.0)], [], [])
    assert r.inserted == 3
    assert db.sql("SELECT count(*) FROM readings")[0][0] == 3
    if not db.timescale:
        # distinct days only: a 5-year span does not create 1 800 partitions
        parts = {n for (n,) in db.sql("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                                      "WHERE i.inhparent = 'readings'::regclass")}
        assert {"readings_20240115", "readings_20210601", "readings_20260301"} <= parts
        assert "readings_20230101" not in parts


def test_a_failed_transaction_does_not_leave_the_connection_believing_in_its_partitions(db: Db) -> None:
    load_demo(db)
    it = meter_ids(db)["gw-zw-a/it-main"]
    old = utc(2023, 5, 5, 0, 0)
    with db.connect("nxem_ingest") as conn:
        with pytest.raises(psycopg.errors.DivisionByZero):
            with conn.transaction():
                write_batch(conn, [(it, old, 1.0)], [], [])
                conn.execute("SELECT 1/0")
        r = write_batch(conn, [(it, old, 1.0)], [], [])  # the partition was rolled back
    assert r.inserted == 1


def _alert(kind: str, at_min: int, value: float = 1.3, site: int = 1) -> AlertEvent:
    return AlertEvent(alert_key=alert_key("site", site, "pue_above_limit"), source_kind="site", source_id=site,
                      enterprise_id=DC_ENT, rule="pue_above_limit", kind=kind,  # type: ignore[arg-type]
                      severity="major", at=T0 + timedelta(minutes=at_min), value=value, threshold=1.2,
                      details={"window_hours": 720, "standard": "宁夏 PUE ≤ 1.2"})


def test_alert_lifecycle_is_one_active_row_and_replays_add_nothing(db: Db) -> None:
    load_demo(db)
    events = [_alert("opened", 0, 1.30), _alert("updated", 15, 1.35), _alert("cleared", 30, 1.15)]
    with db.connect("nxem_ingest") as conn:
        assert write_batch(conn, [], events[:2], []).alert_transitions == 2
        active = db.sql("SELECT value, started_at, updated_at FROM alerts WHERE cleared_at IS NULL")
        assert active == [(1.35, T0, T0 + timedelta(minutes=15))]
        assert write_batch(conn, [], events, []).alert_transitions == 1  # the two replayed add nothing
        assert write_batch(conn, [], events, []).alert_transitions == 0
        reopened = _alert("opened", 60, 1.4)
        write_batch(conn, [], [reopened], [])
    rows = db.sql("SELECT started_at, cleared_at, value FROM alerts ORDER BY started_at")
    assert rows == [(T0, T0 + timedelta(minutes=30), 1.35), (T0 + timedelta(minutes=60), None, 1.4)]
    assert db.sql("SELECT count(*) FROM alert_transitions")[0][0] == 4


def test_relayed_transitions_are_stored_unpublished_for_the_outbox(db: Db) -> None:
    # the worker publishes a reading's transitions before writing them (published) and stores
    # wall-clock ones unpublished, for the outbox relay: opened at 0 (published), updated at 15
    # (relayed), in time order in one transaction
    load_demo(db)
    with db.connect("nxem_ingest") as conn:
        r = write_batch(conn, [], [_alert("opened", 0, 1.30)], [], [_alert("updated", 15, 1.35)])
    assert r.alert_transitions == 2
    assert db.sql("SELECT kind, published FROM alert_transitions ORDER BY at") == [("opened", True),
                                                                                  ("updated", False)]
    assert db.sql("SELECT value FROM alerts WHERE cleared_at IS NULL") == [(1.35,)]


def test_a_late_update_does_not_overwrite_a_newer_one(db: Db) -> None:
    load_demo(db)
    with db.connect("nxem_ingest") as conn:
        write_batch(conn, [], [_alert("opened", 0, 1.3), _alert("updated", 30, 1.5)], [])
        write_batch(conn, [], [_alert("updated", 15, 1.4)], [])
    assert db.sql("SELECT value FROM alerts") == [(1.5,)]


def test_dead_letters_are_stored_once(db: Db) -> None:
    load_demo(db)
    dead = [DeadLetter(stage="collector", reason_code="unknown_meter", reason="meter 'x' is not registered",
                       received_at=T0, source="nxem/v1/x/gw/readings", original=b'{"a": 1}',
                       enterprise_id=DC_ENT, gateway_id="gw-zw-a"),
            DeadLetter(stage="collector", reason_code="malformed_json", reason="bad", received_at=T0,
                       source="nxem/v1/x/gw/readings", original=b"{oops")]
    with db.connect("nxem_ingest") as conn:
        assert write_batch(conn, [], [], dead).dead_letters == 2
        assert write_batch(conn, [], [], dead).dead_letters == 0
    assert db.sql("SELECT reason_code, original FROM dead_letters ORDER BY reason_code") == [
        ("malformed_json", b"{oops"), ("unknown_meter", b'{"a": 1}')]


def test_everything_of_a_poll_is_one_transaction(db: Db) -> None:
    load_demo(db)
    it = meter_ids(db)["gw-zw-a/it-main"]
    with db.connect("nxem_ingest") as conn:
        with pytest.raises(psycopg.errors.CheckViolation):
            bad = AlertEvent(alert_key="site:1:x", source_kind="site", source_id=1, enterprise_id=DC_ENT,
                             rule="x", kind="opened", severity="bogus", at=T0)  # type: ignore[arg-type]
            write_batch(conn, [(it, T0, 1.0)], [bad], [])
    assert db.sql("SELECT count(*) FROM readings")[0][0] == 0


def test_maintain_creates_days_ahead_and_drops_expired_raw_days(nativedb: Db) -> None:
    db = nativedb  # native partitions (TimescaleDB's chunks are its policies' business)
    from storage import partitions

    load_demo(db)
    it = meter_ids(db)["gw-zw-a/it-main"]
    today = date(2026, 11, 24)
    old = utc(2026, 9, 1, 4, 0)  # 84 days before today
    with db.connect("nxem_ingest") as conn:
        write_batch(conn, [(it, old, 1.0)], [], [])
    with db.connect() as conn:  # the owner's job (`nxem db maintain`)
        created, dropped = partitions.maintain(conn, today, ahead_days=3, retain_days=30)
        days = partitions.existing_days(conn)
    assert dropped >= 1 and date(2026, 9, 1) not in days
    assert min(days) >= today - timedelta(days=30)
    assert {today + timedelta(days=k) for k in range(4)} <= set(days)  # today .. today + 3
    assert db.sql("SELECT count(*) FROM readings WHERE ts = %s", (old,)) == [(0,)]


def test_text_postgresql_refuses_is_stored_with_a_replacement_and_the_original_bytes_whole(db: Db) -> None:
    load_demo(db)
    original = b'{"gateway": "gw-zw-a\\u0000x", "raw": "\x00\xff"}'  # bytes as received, NUL included
    dead = DeadLetter(stage="collector", reason_code="topic_mismatch", reason="gateway gw-zw-a\x00x differs",
                      received_at=T0, source="nxem/v1/x/gw-zw-a/readings", original=original,
                      enterprise_id=DC_ENT + "\x00", gateway_id="gw-zw-a\x00x")
    with db.connect("nxem_ingest") as conn:
        assert write_batch(conn, [], [], [dead]).dead_letters == 1
        assert write_batch(conn, [], [], [dead]).dead_letters == 0  # still one dead letter
    assert db.sql("SELECT reason, enterprise_id, gateway_id, original FROM dead_letters") == [
        ("gateway gw-zw-a\ufffdx differs", DC_ENT + "\ufffd", "gw-zw-a\ufffdx", original)]


def test_alert_details_jsonb_refuses_are_stored_as_text_it_accepts(db: Db) -> None:
    load_demo(db)
    e = AlertEvent(alert_key=alert_key("site", 1, "pue_above_limit"), source_kind="site", source_id=1,
                   enterprise_id=DC_ENT, rule="pue_above_limit", kind="opened", severity="major", at=T0,
                   value=float("nan"), threshold=1.2,
                   details={"site\x00name": "一号\x00机房", "pue": float("inf"), "samples": [1.3, float("nan")]})
    with db.connect("nxem_ingest") as conn:
        assert write_batch(conn, [], [e], []).alert_transitions == 1
    # jsonb refuses the escape \u0000 and has no NaN/Infinity: U+FFFD and the numbers' names
    details = db.sql("SELECT details FROM alert_transitions")[0][0]
    assert details == {"site\ufffdname": "一号\ufffd机房", "pue": "inf", "samples": [1.3, "nan"]}


def test_a_dead_letter_made_again_later_is_the_same_dead_letter(db: Db) -> None:
    load_demo(db)

    def dead(received_min: int, reason_code: str = "conflicting_duplicate") -> DeadLetter:
        return DeadLetter(stage="worker", reason_code=reason_code, reason="meter 1 at T0: 11.0 differs from 10.0",
                          received_at=T0 + timedelta(minutes=received_min), source="nxem.readings.v1",
                          original=b'{"meter_id":1,"value":11.0}', enterprise_id=DC_ENT, gateway_id="gw-zw-a")

    with db.connect("nxem_ingest") as conn:
        assert write_batch(conn, [], [], [dead(0)]).dead_letters == 1
        # a replay re-creates it an hour later: received_at is not part of its identity
        assert write_batch(conn, [], [], [dead(60)]).dead_letters == 0
        assert write_batch(conn, [], [], [dead(60, "another_reason")]).dead_letters == 1
    # 1 + 0 + 1; the first received_at is kept
    assert db.sql("SELECT reason_code, received_at FROM dead_letters ORDER BY id") == [
        ("conflicting_duplicate", T0), ("another_reason", T0 + timedelta(minutes=60))]
    # the stored fingerprint is the server's function of the row: one definition (migration 0014)
    assert db.sql("SELECT bool_and(fingerprint = nxem_dead_letter_fingerprint(stage, reason_code, reason, source,"
                  " enterprise_id, gateway_id, original)) FROM dead_letters") == [(True,)]


@pytest.mark.parametrize("meter_offset", [2**31, 2**32, -(2**32), 2**64])
def test_a_meter_id_beyond_the_integer_column_is_refused_never_wrapped(db: Db, meter_offset: int) -> None:
    from nxem.errors import DataRefused
    from stream.postgres import PgStore

    load_demo(db)
    it = meter_ids(db)["gw-zw-a/it-main"]
    # psycopg's binary int4 dumper wraps: 2^32 + it would be stored as meter `it`
    bad = (it + meter_offset, T0, 5.0)
    with db.connect("nxem_ingest") as conn:
        # the server refuses it (staged as bigint), or psycopg before sending (beyond bigint)
        with pytest.raises((psycopg.errors.NumericValueOutOfRange, OverflowError)):
            write_batch(conn, [(it, T0 + timedelta(minutes=15), 1.0), bad], [], [])
    store = PgStore(db.dsn("nxem_ingest"))
    try:
        with pytest.raises(DataRefused):  # what the worker sees: refused data, not an outage
            store.write([bad], [], [])
        assert store.write([(it, T0, 6.0)], [], []).inserted == 1  # the connection is still usable
    finally:
        store.close()
    assert db.sql("SELECT meter_id, ts, value FROM readings") == [(it, T0, 6.0)]


def test_quarantined_records_are_stored_once_each(db: Db) -> None:
    from storage.ingest import Quarantined, write_quarantine

    q = Quarantined("nxem.readings.v1", 2, 41, "storage_refused", "integer out of range", b"\x00raw")
    alert = Quarantined("nxem.alerts.v1", None, None, "storage_refused", "bad\x00 alert", b"{}")
    with db.connect("nxem_ingest") as conn:
        assert write_quarantine(conn, [q, alert]) == 2
        # a replay quarantines the same Kafka records again: nothing added
        assert write_quarantine(conn, [q, alert]) == 0
        # the next offset is another record
        assert write_quarantine(conn, [Quarantined("nxem.readings.v1", 2, 42, "storage_refused", "x", b"\x00raw")]) == 1
    rows = db.sql("SELECT topic, kafka_partition, kafka_offset, reason, original FROM quarantine ORDER BY id")
    assert rows == [("nxem.readings.v1", 2, 41, "integer out of range", b"\x00raw"),
                    ("nxem.alerts.v1", None, None, "bad\ufffd alert", b"{}"),
                    ("nxem.readings.v1", 2, 42, "x", b"\x00raw")]  # 2 + 0 + 1 rows
