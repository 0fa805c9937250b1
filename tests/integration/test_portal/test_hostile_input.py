"""What a hostile user sends gets a clear 4xx, never a 500 and never a broken connection: NUL
in text, ids past their column's integer type, days in year 1 or 9999 or as a bare number,
oversized bodies; every limit is declared in the OpenAPI; every response carries the security
headers; CSV routes answer what they declare."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from portal import auth

from .conftest import form_login
from .fixtures import PASSWORD, World

pytestmark = pytest.mark.integration

INT4_OVER = 2**31  # one past PostgreSQL integer (sites, meters)
INT8_OVER = 2**63  # one past bigint (alerts)


@pytest.mark.parametrize("path", [
    # NUL in text (PostgreSQL text cannot hold it)
    "/api/v1/alerts?city=a%00b", "/api/v1/alerts?industry=%00", "/api/v1/alerts?rule=x%00",
    "/api/v1/sites?city=%00", "/api/v1/sites?industry=%00", "/api/v1/export/alerts.csv?rule=%00",
    "/api/v1/export/sites.csv?city=%00", "/api/v1/sites/{site}/unit-product?product=%00",
    "/api/v1/export/unit-product.csv?site_id={site}&product=a%00", "/api/v1/alerts/stream?city=%00&timeout_s=1",
    "/api/v1/alerts?enterprise_id=%00", "/board?city=%00", "/alerts?rule=%00", "/login?next=%00",
    # ids past their column type, or not positive
    f"/api/v1/sites/{INT4_OVER}", f"/api/v1/sites/{INT4_OVER}/energy", f"/api/v1/meters?site_id={INT4_OVER}",
    f"/api/v1/meters/{INT4_OVER}/readings", f"/api/v1/alerts?site_id={INT4_OVER}",
    f"/api/v1/alerts/{INT8_OVER}", f"/api/v1/export/readings.csv?meter_id={INT4_OVER}",
    f"/api/v1/alerts/stream?site_id={INT4_OVER}&timeout_s=1", f"/api/v1/alerts/stream?after={INT8_OVER}",
    f"/sites/{INT4_OVER}", f"/alerts/{INT8_OVER}", "/api/v1/sites/0", "/api/v1/sites/-1",
    # days outside 2000..2100, or not YYYY-MM-DD (end=0 was 1970-01-01)
    "/api/v1/sites/{site}/energy?start=0001-01-01", "/api/v1/sites/{site}/energy?end=9999-12-31",
    "/api/v1/sites/{site}/pue?end=0", "/api/v1/sites/{site}/pue?start=1970-01-01",
    "/api/v1/meters/{meter}/readings?start=1999-12-31", "/api/v1/export/energy.csv?site_id={site}&end=0",
    "/api/v1/sites/{site}/energy?start=2026-1-1", "/api/v1/sites/{site}/energy?start=20260101",
    "/sites/{site}?start=0001-01-01", "/sites/{site}?end=0",
    # out-of-set values
    "/api/v1/alerts?severity=nuclear", "/api/v1/overview?year=1", "/api/v1/alerts?limit=0",
])
def test_bad_input_is_422_and_never_500(client: TestClient, insp: dict[str, str], world: World, path: str) -> None:
    r = client.get(path.format(site=world.site_a, meter=world.meters_a[0]), headers=insp)
    assert r.status_code == 422, r.text
    if not path.startswith(("/board", "/alerts?", "/sites/", "/alerts/", "/login")):
        assert r.json()["error"]["code"] == "invalid_request"
    assert "Traceback" not in r.text
    # the connection and the pool are fine afterwards
    assert client.get("/api/v1/me", headers=insp).status_code == 200


@pytest.mark.parametrize("path", ["/api/v1/sites/{site}/energy?start=2000-01-01&end=2100-12-31",
                                  "/api/v1/sites/{site}/energy?start=2026-02-01&end=2026-01-01"])
def test_range_and_order_limits_are_400(client: TestClient, insp: dict[str, str], world: World, path: str) -> None:
    r = client.get(path.format(site=world.site_a), headers=insp)
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_request", r.text


def test_the_first_and_last_day_are_accepted(client: TestClient, insp: dict[str, str], world: World) -> None:
    for start, end in (("2000-01-01", "2000-01-07"), ("2100-12-25", "2100-12-31")):
        r = client.get(f"/api/v1/sites/{world.site_a}/pue", params={"start": start, "end": end}, headers=insp)
        assert r.status_code == 200 and r.json()["points"] == [], r.text


@pytest.mark.parametrize("body", [
    '{"username": "insp\\u0000", "password": "correct-horse-battery-staple"}',
    '{"username": "insp", "password": "a\\u0000b"}',
    '{"username": "insp", "password": "\\ud800"}',  # a lone surrogate: no UTF-8 for it
    '{"username": "' + "x" * 64 + '", "password": "correct-horse-battery-staple"}',
])
def test_bad_login_bodies_are_422(client: TestClient, body: str) -> None:
    r = client.post("/api/v1/auth/token", content=body.encode(), headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request", r.text


def test_a_nul_in_the_login_form_is_422(client: TestClient) -> None:
    c = TestClient(client.app, raise_server_exceptions=False)
    assert form_login(c, "insp\u0000", PASSWORD).status_code == 422


@pytest.mark.parametrize("note", ["a\u0000b", "   ", "\u0000"])
def test_bad_acknowledgement_notes_are_422(client: TestClient, insp: dict[str, str], world: World,
                                           note: str) -> None:
    r = client.post(f"/api/v1/alerts/{world.alert_b}/acknowledge", json={"note": note}, headers=insp)
    assert r.status_code == 422, r.text


def test_a_body_over_the_cap_is_413_before_it_is_parsed(client: TestClient, insp: dict[str, str],
                                                        world: World) -> None:
    big = b'{"note": "' + b"a" * (64 * 1024) + b'"}'  # 64 KiB + 12 bytes
    r = client.post(f"/api/v1/alerts/{world.alert_b}/acknowledge", content=big,
                    headers={**insp, "Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it is read
        yield b'{"username": "insp", "password": "'
        for _ in range(100):
            yield b"p" * 1024
        yield b'"}'

    r = client.post("/api/v1/auth/token", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"
    assert r.headers["content-security-policy"]


class _DataErrorDb:
    @contextmanager
    def tenant(self, user: Any) -> Iterator[None]:
        raise psycopg.errors.NumericValueOutOfRange("integer out of range")
        yield  # pragma: no cover

    system = tenant


def test_a_value_the_database_refuses_is_400_not_500(client: TestClient, insp: dict[str, str]) -> None:
    token = insp["Authorization"].split()[1]
    principal = auth.lookup(client.app.state.db, token, "bearer")  # type: ignore[attr-defined]
    client.app.dependency_overrides[auth.get_db] = lambda: _DataErrorDb()  # type: ignore[attr-defined]
    client.app.dependency_overrides[auth._api_access] = lambda: principal  # type: ignore[attr-defined]
    try:
        r = client.get("/api/v1/enterprises", headers=insp)
    finally:
        client.app.dependency_overrides.clear()  # type: ignore[attr-defined]
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_request"


# ---------------------------------------------------------------- headers, content types

@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/login", 200), ("GET", "/static/portal.css", 200), ("GET", "/docs", 200),
    ("GET", "/api/v1/openapi.json", 200), ("GET", "/api/v1/me", 401), ("GET", "/nothing-here", 404),
    ("DELETE", "/api/v1/me", 405), ("GET", "/api/v1/sites/x", 401), ("GET", "/login?next=%00", 422),
    ("POST", "/login", 422),  # no fields
])
def test_every_response_carries_the_security_headers(client: TestClient, method: str, path: str,
                                                     status: int) -> None:
    c = TestClient(client.app, raise_server_exceptions=False)
    r = c.request(method, path)
    assert r.status_code == status
    csp = r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert r.headers["x-frame-options"] == "DENY" and r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "same-origin"


def test_a_500_carries_them_too(client: TestClient, insp: dict[str, str]) -> None:
    class Broken:
        def system(self) -> None:
            raise RuntimeError("boom")

    client.app.dependency_overrides[auth.get_db] = lambda: Broken()  # type: ignore[attr-defined]
    try:
        r = client.get("/api/v1/me", headers=insp)
    finally:
        client.app.dependency_overrides.clear()  # type: ignore[attr-defined]
    assert r.status_code == 500 and r.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]


def test_csv_routes_declare_what_they_answer(client: TestClient, insp: dict[str, str]) -> None:
    spec = client.get("/api/v1/openapi.json").json()
    op = spec["paths"]["/api/v1/export/{table}.csv"]["get"]
    assert list(op["responses"]["200"]["content"]) == ["text/csv"]
    for status in ("400", "401", "403", "404", "422"):
        assert list(op["responses"][status]["content"]) == ["application/json"], status
    r = client.get("/api/v1/export/passwords.csv", headers=insp)
    assert r.status_code == 422 and r.headers["content-type"] == "application/json"
    ok = client.get("/api/v1/export/sites.csv", headers=insp)
    assert ok.status_code == 200 and ok.headers["content-type"].startswith("text/csv")


def test_every_limit_is_in_the_openapi(client: TestClient) -> None:
    """Every integer parameter has bounds, every text parameter a length, pattern or set, every
    day its pattern; every operation documents its 4xx answers."""
    spec = client.get("/api/v1/openapi.json").json()
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            where = f"{method.upper()} {path}"
            assert {"400", "401", "403", "404", "422"} <= set(op["responses"]) or path == "/api/v1/auth/token", where
            for param in (p for p in op.get("parameters", []) if p["in"] in ("query", "path")):
                schema = param["schema"]
                options = schema.get("anyOf", [schema])
                for s in options:
                    if s.get("type") == "integer":
                        assert "maximum" in s and ("minimum" in s or "exclusiveMinimum" in s), (where, param["name"])
                    elif s.get("type") == "string" and s.get("format") == "date":
                        assert s["pattern"].startswith("^(20[0-9]{2}|2100)-"), (where, param["name"])
                    elif s.get("type") == "string":
                        assert "enum" in s or "pattern" in s or "maxLength" in s, (where, param["name"])
                        if "enum" not in s:
                            assert "\\x00" in s.get("pattern", "") or s["pattern"].startswith("^(") \
                                or "[0-9A-HJ-NP-RTUWXY]" in s["pattern"], (where, param["name"])
    token = spec["paths"]["/api/v1/auth/token"]["post"]["responses"]
    assert {"401", "413", "422", "429"} <= set(token)
