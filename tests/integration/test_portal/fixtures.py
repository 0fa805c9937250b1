"""A fresh, migrated database with two enterprises for the portal tests, built through the
storage package's own ingest path (readings, rollups, alert transitions).

Enterprise A (中卫, data centre): IT 500 kWh and facility 650 kWh per 15 min -> PUE 1.30
against a 1.20 limit; daily energy 96 x 650 kWh x 0.1229 kgce/kWh = 7 669 kgce = 7.669 tce.
Enterprise B (宁东, calcium carbide): 8 000 kWh and 1 t of carbide per 15 min -> per day
768 000 kWh x 0.1229 = 94 387.2 kgce = 94.3872 tce over 96 t = 983.2 kgce/t, above the
940 kgce/t limit (GB 21343-2023 level 3).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg.types.json import Jsonb

from nxem.contract import AlertEvent, alert_key
from ops.services import ServiceSettings, admin_dsn
from portal.users import create_user
from storage import uscc
from storage.ingest import write_batch
from storage.migrate import migrate

LOCAL = ZoneInfo("Asia/Shanghai")
PASSWORD = "correct-horse-battery-staple"
DAYS = 3


def _uscc(body17: str) -> str:
    return body17 + uscc.check_character(body17)


ENT_A = _uscc("91640500MA7DCA001")
ENT_B = _uscc("91640100MA7PLB002")


@dataclass(frozen=True)
class World:
    dbname: str
    admin_dsn: str
    ent_a: str
    ent_b: str
    site_a: int
    site_b: int
    meters_a: tuple[int, int]  # it, facility
    meters_b: tuple[int, int]  # electricity, output
    alert_a: int
    alert_b: int
    first_day: date
    last_day: date


def create_database(settings: ServiceSettings) -> tuple[str, str]:
    dbname = f"nxem_portal_t_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_dsn(settings), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{dbname}"')
    dsn = admin_dsn(settings, dbname=dbname)
    migrate(dsn, backend=settings.db_backend, secrets_dir=settings.resolved_data_dir() / "secrets")
    return dbname, dsn


def drop_database(settings: ServiceSettings, dbname: str) -> None:
    with psycopg.connect(admin_dsn(settings), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


def _site(conn: psycopg.Connection[Any], ent: str, name: str, city: str, industry: str, kind: str,
          meters: list[tuple[str, str, str, str, str | None, str | None]]) -> tuple[int, list[int]]:
    conn.execute("INSERT INTO enterprises (id, name, city, industry) VALUES (%s, %s, %s, %s)",
                 (ent, name, city, industry))
    row = conn.execute("INSERT INTO sites (code, enterprise_id, kind, name, products) VALUES (%s, %s, %s, %s, %s)"
                       " RETURNING id", (f"{ent[-4:]}-S1", ent, kind, f"{name} site 1",
                                         Jsonb([] if kind == "data_centre" else [{"product": "calcium_carbide",
                                                                                  "indicator": "kgce_per_t"}]))
                       ).fetchone()
    assert row is not None
    site_id = int(row[0])
    gw = f"gw-{ent[-6:]}"
    conn.execute("INSERT INTO gateways (id, enterprise_id, site_id) VALUES (%s, %s, %s)", (gw, ent, site_id))
    ids = []
    for code, carrier, unit, role, coefficient, product in meters:
        r = conn.execute("INSERT INTO meters (gateway_id, code, site_id, enterprise_id, carrier, unit, role, kind,"
                         " coefficient, product) VALUES (%s, %s, %s, %s, %s, %s, %s, 'interval', %s, %s) RETURNING id",
                         (gw, code, site_id, ent, carrier, unit, role, coefficient, product)).fetchone()
        assert r is not None
        ids.append(int(r[0]))
    return site_id, ids


def _alert(ent: str, site_id: int, rule: str, severity: str, at: datetime, value: float, threshold: float,
           details: dict[str, object]) -> AlertEvent:
    return AlertEvent(alert_key=alert_key("site", site_id, rule), source_kind="site", source_id=site_id,
                      enterprise_id=ent, rule=rule, kind="opened", severity=severity,  # type: ignore[arg-type]
                      at=at, value=value, threshold=threshold,
                      details={**details, "started_at": at.isoformat()})


def populate(dbname: str, dsn: str, today: date) -> World:
    last = today - timedelta(days=1)
    first = last - timedelta(days=DAYS - 1)
    t0 = datetime.combine(first, time(), LOCAL).astimezone(timezone.utc)
    with psycopg.connect(dsn) as conn:
        site_a, (it, fac) = _site(conn, ENT_A, "中卫云计算", "中卫", "data_centre", "data_centre",
                                  [("it", "electricity", "kWh", "it_load", None, None),
                                   ("fac", "electricity", "kWh", "total_facility", None, None)])
        site_b, (el, out) = _site(conn, ENT_B, "宁东电石", "宁东", "calcium_carbide", "plant",
                                  [("el", "electricity", "kWh", "consumed", "electricity_calorific", None),
                                   ("out", "calcium_carbide", "t", "product_output", None, "calcium_carbide")])
        conn.commit()
        rows = []
        for k in range(DAYS * 96):  # each reading closes its quarter-hour: 00:15 .. 24:00 of each day
            ts = t0 + timedelta(minutes=15 * (k + 1))
            rows += [(it, ts, 500.0), (fac, ts, 650.0), (el, ts, 8000.0), (out, ts, 1.0)]
        at = t0 + timedelta(days=1)
        alerts = [
            _alert(ENT_A, site_a, "pue_above_limit", "major", at, 1.3, 1.2,
                   {"formula": "PUE = E_facility / E_IT = 62400 / 48000 = 1.3000", "window_start": t0.isoformat(),
                    "window_end": at.isoformat(), "standard": "GB 40879-2021", "facility_kwh": 62400.0,
                    "it_kwh": 48000.0}),
            _alert(ENT_B, site_b, "quota_exceeded", "critical", at, 983.2, 940.0,
                   {"formula": "E / output = 94387.2 kgce / 96 t", "product": "calcium_carbide",
                    "standard": "GB 21343-2023 表1", "window_start": t0.isoformat()}),
        ]
        write_batch(conn, rows, alerts, [])
        conn.commit()
        ids = {r[0]: r[1] for r in conn.execute("SELECT enterprise_id, id FROM alerts")}
        for username, role, ent in (("insp", "inspector", None), ("oper", "operator", None),
                                    ("ent-a", "enterprise", ENT_A), ("ent-b", "enterprise", ENT_B)):
            create_user(conn, username, PASSWORD, role, ent)
    return World(dbname, dsn, ENT_A, ENT_B, site_a, site_b,
                 (it, fac), (el, out), ids[ENT_A], ids[ENT_B], first, last)


def open_alert(dsn: str, ent: str, site_id: int, rule: str, at: datetime) -> int:
    """A new alert through the storage ingest path, as a worker would write it."""
    with psycopg.connect(dsn) as conn:
        write_batch(conn, [], [_alert(ent, site_id, rule, "warning", at, 1.0, 0.5,
                                      {"formula": "test", "standard": "test"})], [])
        conn.commit()
        row = conn.execute("SELECT id FROM alerts WHERE rule = %s AND cleared_at IS NULL", (rule,)).fetchone()
    assert row is not None
    return int(row[0])


def secret_file(tmp: Path) -> Path:
    path = tmp / "portal.secret"
    path.write_text("x" * 64)
    return path
