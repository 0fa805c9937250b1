"""An inspector's acknowledgement, written by the portal, reaches the alerts topic through the
workers' outbox relay; the workers' own transitions are not published a second time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg.rows import dict_row

from nxem import contract
from nxem.contract import AlertEvent, alert_key
from tests.harness import consume_all, pipeline, wait_for
from ops.services import ServiceSettings
from storage.read.alerts import acknowledge
from simulators.scenario import data_centre_document
from storage.ingest import write_batch

pytestmark = pytest.mark.integration

ENT = "91640500MA76L8XK3A"


def test_an_acknowledgement_is_published_once_and_worker_transitions_are_not_republished(
    services: ServiceSettings,
) -> None:
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    with pipeline(services) as p:
        p.register(data_centre_document(ENT, "outbox-dc", "gw-outbox", 1.3, 100.0, at, 1))
        with psycopg.connect(p.admin_dsn) as conn:
            site = conn.execute("SELECT id FROM sites WHERE code = 'outbox-dc'").fetchone()[0]  # type: ignore[index]
            opened = AlertEvent(alert_key=alert_key("site", site, "pue_above_limit"), source_kind="site",
                                source_id=site, enterprise_id=ENT, rule="pue_above_limit", kind="opened",
                                severity="major", at=at, value=1.3, threshold=1.2, details={"PUE": 1.3})
            write_batch(conn, [], [opened], [])  # as a worker writes it: already published by the worker
        p.start_worker(NXEM_WORKER_OUTBOX_INTERVAL_S="0.5")
        with psycopg.connect(p.admin_dsn, row_factory=dict_row) as conn:
            alert = conn.execute("SELECT * FROM alerts WHERE alert_key = %s", (opened.alert_key,)).fetchone()
            assert alert is not None
            acknowledge(conn, alert, "insp-zhang", "site visit booked")  # what the portal does
        events = wait_for(
            lambda: [e for e in (contract.decode_alert(v) for v in consume_all(p.topics["alerts"],
                                                                              p.settings.kafka_bootstrap, 2000))
                     if e.kind == "acknowledged"], 30, "the acknowledgement on the alerts topic")
        assert [(e.alert_key, e.details.get("acknowledged_by"), e.details.get("note")) for e in events] == [
            (opened.alert_key, "insp-zhang", "site visit booked")]
        # the worker-written 'opened' was not relayed (the worker publishes its own before writing)
        all_events = [contract.decode_alert(v) for v in consume_all(p.topics["alerts"], p.settings.kafka_bootstrap)]
        assert [e.kind for e in all_events] == ["acknowledged"]
        assert p.sql("SELECT kind, published FROM alert_transitions ORDER BY id") == [
            ("opened", True), ("acknowledged", True)]
