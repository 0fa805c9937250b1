"""Acknowledging alerts, the evidence, and the live stream (SSE) of new and updated alerts."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timezone

import psycopg
import pytest
from fastapi.testclient import TestClient

from .fixtures import World, open_alert

pytestmark = pytest.mark.integration


def _events(text: str) -> list[dict[str, object]]:
    out = []
    for block in text.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line and not line.startswith(":"))
        if lines.get("event") == "alert":
            out.append(json.loads(lines["data"]))
    return out


def test_evidence_of_an_alert(client: TestClient, insp: dict[str, str], world: World) -> None:
    body = client.get(f"/api/v1/alerts/{world.alert_a}", headers=insp).json()
    a = body["alert"]
    assert (a["rule"], a["value"], a["threshold"], a["site_id"], a["city"]) == (
        "pue_above_limit", 1.3, 1.2, world.site_a, "中卫")
    assert a["details"]["standard"] == "GB 40879-2021" and "formula" in a["details"]
    assert [t["kind"] for t in body["transitions"]] == ["opened"]
    page = client.get(f"/alerts/{world.alert_a}", headers=insp)
    assert page.status_code == 200
    assert "GB 40879-2021" in page.text and "PUE = E_facility / E_IT" in page.text
    assert "<svg" in page.text and "daily PUE" in page.text and "threshold 1.2" in page.text


def test_acknowledge_records_a_transition_once(client: TestClient, insp: dict[str, str], ent_a: dict[str, str],
                                               world: World) -> None:
    assert client.post(f"/api/v1/alerts/{world.alert_a}/acknowledge", headers=insp,
                       json={"note": "   "}).status_code == 422
    r = client.post(f"/api/v1/alerts/{world.alert_a}/acknowledge", headers=insp,
                    json={"note": "called the site; chiller fault"})
    assert r.status_code == 200, r.text
    assert r.json()["kind"] == "acknowledged" and r.json()["actor"] == "insp"
    again = client.post(f"/api/v1/alerts/{world.alert_a}/acknowledge", headers=insp, json={"note": "again"})
    assert again.status_code == 409
    seen_by_owner = client.get(f"/api/v1/alerts/{world.alert_a}", headers=ent_a).json()
    assert seen_by_owner["alert"]["acknowledged"] is True
    ack = [t for t in seen_by_owner["transitions"] if t["kind"] == "acknowledged"]
    assert len(ack) == 1 and ack[0]["note"] == "called the site; chiller fault" and ack[0]["actor"] == "insp"
    with psycopg.connect(world.admin_dsn) as conn:
        row = conn.execute("SELECT details->>'acknowledged_by', details->>'note', details->>'started_at' IS NOT NULL FROM alert_transitions"
                           " WHERE kind = 'acknowledged' AND alert_key = %s", (f"site:{world.site_a}:pue_above_limit",)
                           ).fetchone()
        assert row == ("insp", "called the site; chiller fault", True)
        assert conn.execute("SELECT acked_by FROM alerts WHERE id = %s", (world.alert_a,)).fetchone() == ("insp",)


def test_ack_of_unknown_alert_is_404(client: TestClient, insp: dict[str, str]) -> None:
    r = client.post("/api/v1/alerts/999999/acknowledge", headers=insp, json={"note": "x"})
    assert r.status_code == 404


def _stream_while(client: TestClient, headers: dict[str, str], query: str, action: threading.Thread) -> str:
    with client.stream("GET", f"/api/v1/alerts/stream?timeout_s=3{query}", headers=headers) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        action.start()
        text = "".join(r.iter_text())
    action.join()
    return text


def test_stream_delivers_a_new_alert_and_only_to_who_may_see_it(client: TestClient, insp: dict[str, str],
                                                                 ent_b: dict[str, str], world: World) -> None:
    created: list[int] = []

    def later(rule: str) -> threading.Thread:
        def run() -> None:
            time.sleep(0.6)
            created.append(open_alert(world.admin_dsn, world.ent_a, world.site_a, rule, datetime.now(timezone.utc)))
        return threading.Thread(target=run)

    text = _stream_while(client, insp, "", later("stream_rule_one"))
    events = _events(text)
    assert created and [e["id"] for e in events] == created
    assert events[0]["alert"]["rule"] == "stream_rule_one"  # type: ignore[index]
    assert f'id="alert-{created[0]}"' in str(events[0]["html"])
    # enterprise B's stream is bound to B's tenant: A's new alert never appears in it
    text_b = _stream_while(client, ent_b, "", later("stream_rule_two"))
    assert _events(text_b) == [] and "stream_rule_two" not in text_b


def test_stream_respects_filters(client: TestClient, insp: dict[str, str], world: World) -> None:
    def run() -> None:
        time.sleep(0.6)
        open_alert(world.admin_dsn, world.ent_a, world.site_a, "stream_rule_three", datetime.now(timezone.utc))
    text = _stream_while(client, insp, "&city=宁东", threading.Thread(target=run))
    assert [e for e in _events(text) if "alert" in e] == [] and "stream_rule_three" not in text


def test_stream_resumes_from_last_event_id(client: TestClient, insp: dict[str, str], world: World) -> None:
    with psycopg.connect(world.admin_dsn) as conn:
        before = conn.execute("SELECT max(id) FROM alert_transitions").fetchone()
    assert before is not None
    new_id = open_alert(world.admin_dsn, world.ent_a, world.site_a, "stream_rule_four", datetime.now(timezone.utc))
    with client.stream("GET", "/api/v1/alerts/stream?timeout_s=1", headers={**insp, "Last-Event-ID": str(before[0])}) as r:
        text = "".join(r.iter_text())
    assert new_id in [e["id"] for e in _events(text)]
