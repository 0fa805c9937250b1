"""Presentation helpers shared by pages, the alert stream and CSV export: number and time
formatting in Ningxia local time, CSV rendering, the date-range arguments, and the charts
built from query rows."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Final

from fastapi import HTTPException
from fastapi.templating import Jinja2Templates

from nxem.localtime import LOCAL_TZ
from portal import charts

LOCAL: Final = LOCAL_TZ
MAX_RANGE_DAYS: Final = 3 * 366

#: Keys of an alert's ``details`` shown first, in this order, as its evidence.
EVIDENCE_KEYS: Final = ("formula", "inputs", "pue", "facility_kwh", "it_kwh", "window", "window_start",
                        "window_end", "window_hours", "coverage", "threshold", "clear_below", "limit",
                        "limit_source", "standard", "clause", "gb40879_grade", "grade_confidence", "level",
                        "unit", "note")


def fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if abs(v) >= 1000:
            return f"{v:,.1f}"
        return f"{v:.4g}" if abs(v) < 10 else f"{v:.2f}"
    return str(v)


def local(v: datetime | None) -> str:
    return "" if v is None else v.astimezone(LOCAL).strftime("%Y-%m-%d %H:%M")


def show(v: Any) -> str:
    if isinstance(v, (dict, list)):
        return json.dumps(v, ensure_ascii=False, default=str)
    if isinstance(v, float):
        return fmt(v)
    return str(v)


def install_filters(templates: Jinja2Templates) -> None:
    templates.env.globals.update(fmt=fmt, local=local, show=show)


def today_local(now: datetime | None = None) -> date:
    return (now or datetime.now(timezone.utc)).astimezone(LOCAL).date()


def date_range(start: date | None, end: date | None, default_days: int = 7) -> tuple[date, date]:
    """Inclusive local-date range; defaults to the last ``default_days`` days."""
    end = end or today_local()
    start = start or end - timedelta(days=default_days - 1)
    if start > end:
        raise HTTPException(400, "start must not be after end")
    if (end - start).days > MAX_RANGE_DAYS:
        raise HTTPException(400, f"the range may span at most {MAX_RANGE_DAYS} days")
    return start, end


def utc_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """[local midnight of start, local midnight after end) as aware datetimes."""
    return (datetime.combine(start, time(), LOCAL).astimezone(timezone.utc),
            datetime.combine(end + timedelta(days=1), time(), LOCAL).astimezone(timezone.utc))


def to_csv(rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(columns)
    for r in rows:
        writer.writerow(["" if r.get(c) is None else
                         (json.dumps(r[c], ensure_ascii=False, default=str) if isinstance(r[c], (dict, list))
                          else r[c].isoformat() if isinstance(r[c], (datetime, date)) else r[c])
                         for c in columns])
    return buf.getvalue()


def _day_dt(d: date) -> datetime:
    return datetime.combine(d, time(12), LOCAL)


def readings_chart(meter: Mapping[str, Any] | None, points: Sequence[Mapping[str, Any]], bucket_s: int) -> str:
    title = f"Readings {meter['code']}" if meter else "Readings"
    unit = str(meter["unit"]) if meter else ""
    chart = charts.Chart(f"{title} (downsampled, {bucket_s // 60} min buckets)", unit, tz=LOCAL)
    series = [charts.Series("avg", [(p["ts"], p["avg"]) for p in points]),
              charts.Series("max", [(p["ts"], p["max"]) for p in points], "#9fb8d9")]
    return charts.line_chart(chart, series)


def energy_chart(points: Sequence[Mapping[str, Any]]) -> str:
    chart = charts.Chart("Daily comprehensive energy consumption", "tce")
    return charts.line_chart(chart, [charts.Series("tce per local day",
                                                   [(_day_dt(p["period_start"]), p["tce"]) for p in points])],
                             bars=True)


def pue_chart(points: Sequence[Mapping[str, Any]], limit: float | None) -> str:
    chart = charts.Chart("PUE (daily, indicative) against the limit", "PUE")
    hl = [charts.HLine(limit, "limit")] if limit is not None else []
    return charts.line_chart(chart, [charts.Series("PUE", [(_day_dt(p["period_start"]), p["pue"]) for p in points])], hl)


def unit_product_chart(indicator: Mapping[str, Any]) -> str:
    """One quota indicator of a product (``portal.figures.unit_product``): its daily value in the
    indicator's unit against its levels; no line when the site's allocation is ambiguous."""
    product, unit = indicator["product"], str(indicator.get("unit") or "")
    chart = charts.Chart(f"Unit-product energy consumption: {product} {indicator.get('indicator_cn') or ''}", unit)
    colors = {"level1": "#12b76a", "level2": "#f79009", "level3": "#d62728"}
    names = {"level1": "L1 advanced", "level2": "L2 new-build", "level3": "L3 limit"}
    levels: Mapping[str, float] = indicator.get("quota_levels") or {}
    hl = [charts.HLine(v, names.get(k, k), colors.get(k, "#666")) for k, v in sorted(levels.items())]
    return charts.line_chart(chart, [charts.Series(product, [(_day_dt(p["period_start"]), p["value"])
                                                             for p in indicator["points"]])], hl)


def alert_chart(alert: Mapping[str, Any], points: Sequence[tuple[datetime, float | None]], label: str) -> str:
    if alert.get("rule") == "dc_annual_tce" and alert.get("threshold") is not None:  # rolling 12 months + projection
        return charts.annual_chart(points, alert.get("details") or {}, float(alert["threshold"]), tz=LOCAL)
    chart = charts.Chart(f"Series that triggered: {label}", str(alert.get("details", {}).get("unit", "")), tz=LOCAL)
    hl = [charts.HLine(float(alert["threshold"]), "threshold")] if alert.get("threshold") is not None else []
    return charts.line_chart(chart, [charts.Series(label, points)], hl)
