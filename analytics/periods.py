"""Reporting periods in Ningxia local time (Asia/Shanghai) as UTC instants.

Asia/Shanghai has been UTC+8 with no daylight saving since 1991, so a fixed offset is exact for
every date this system handles (a unit test checks it against ``zoneinfo``). Days, months and
years for quotas, budgets and completeness start at 00:00 local time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final, Literal

from nxem.localtime import LOCAL_TZ

CST: Final = LOCAL_TZ  # one definition: nxem/localtime.py
Period = Literal["day", "month", "year"]


def local_start(ts: datetime, period: Period) -> datetime:
    """UTC instant at which the local day/month/year containing ``ts`` starts."""
    loc = ts.astimezone(CST)
    if period == "day":
        start = loc.replace(hour=0, minute=0, second=0, microsecond=0)
    elif period == "month":
        start = loc.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    else:
        start = loc.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    return start.astimezone(UTC)


def local_date(ts: datetime) -> str:
    """ISO local date (Asia/Shanghai) of an instant, e.g. 2026-01-01T16:30Z -> "2026-01-02"."""
    return ts.astimezone(CST).date().isoformat()


def next_local_year(ts: datetime) -> datetime:
    """UTC instant of the next local 1 January 00:00 after ``ts``."""
    loc = ts.astimezone(CST)
    return datetime(loc.year + 1, 1, 1, tzinfo=CST).astimezone(UTC)
