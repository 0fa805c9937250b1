"""Rows as dictionaries: the two fetch helpers every module of the read API uses."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row


def fetch_all(conn: psycopg.Connection[Any], sql: str, params: Any = None) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(sql, params).fetchall()


def fetch_one(conn: psycopg.Connection[Any], sql: str, params: Any = None) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(sql, params).fetchone()
