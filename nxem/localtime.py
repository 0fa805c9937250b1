"""Ningxia's reporting time: the one definition of the local time zone.

Storage and the Kafka contract are UTC; reporting days, months and years are local. Asia/Shanghai
has been UTC+8 with no daylight saving since 1991, so a fixed offset is exact for every date the
system accepts (readings are refused before 2000), and the pure domain can use it without the
time-zone database. SQL that buckets by local day uses ``ORIGIN_SQL`` (a local midnight) with
``date_bin``/``time_bucket``; the migrations, checksummed once applied, spell the same origin.
"""

from __future__ import annotations

from datetime import timedelta, timezone
from typing import Final

#: IANA name of the reporting zone (for messages and SQL ``AT TIME ZONE``).
LOCAL_TZ_NAME: Final = "Asia/Shanghai"
#: UTC offset of the reporting zone (no daylight saving since 1991).
LOCAL_OFFSET: Final = timedelta(hours=8)
#: The reporting zone as a ``tzinfo``.
LOCAL_TZ: Final = timezone(LOCAL_OFFSET, LOCAL_TZ_NAME)
#: A local midnight as a SQL literal: the origin of every local bucket (days line up with local days).
ORIGIN_SQL: Final = "TIMESTAMPTZ '2000-01-01 00:00:00+08'"
