"""Server-side SVG charts (pure: data in, escaped SVG markup out).

Drawing simple line and bar charts here keeps the portal free of a JavaScript build and of a
vendored charting library: a chart is part of the HTML the server renders, visible without
scripts, and identical in the browser tests. Values are whatever unit the caller names.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from html import escape
from typing import Any

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf")


@dataclass(frozen=True, slots=True)
class Series:
    label: str
    points: Sequence[tuple[datetime, float | None]]
    color: str | None = None
    dash: str | None = None  # an SVG stroke-dasharray: a projection, not a measurement


@dataclass(frozen=True, slots=True)
class HLine:
    """A horizontal reference line (a limit or quota level)."""

    value: float
    label: str
    color: str = "#d62728"
    dash: str = "6 4"


@dataclass(frozen=True, slots=True)
class Chart:
    title: str
    unit: str
    width: int = 720
    height: int = 270
    margin: tuple[int, int, int, int] = field(default=(44, 16, 36, 64))  # top, right, bottom, left
    tz: tzinfo | None = None  # time zone of the axis labels (default: that of the data)


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] (1-2-5 steps)."""
    if not math.isfinite(lo) or not math.isfinite(hi):
        return [0.0]
    if hi <= lo:  # a flat series: a band of ±10 % around it
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / max(1, n)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks = []
    v = start
    while v <= hi + step * 1e-9:
        ticks.append(round(v, 10))
        v += step
    if ticks[-1] < hi:
        ticks.append(round(v, 10))
    return ticks


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}".rstrip("0").rstrip(".")
    return f"{v:.3f}".rstrip("0").rstrip(".")


def _empty(chart: Chart, message: str) -> str:
    return (f'<svg class="chart" role="img" viewBox="0 0 {chart.width} {chart.height}" '
            f'width="100%" aria-label="{escape(chart.title)}: {escape(message)}">'
            f'<text x="10" y="18" class="chart-title">{escape(chart.title)}</text>'
            f'<text x="{chart.width // 2}" y="{chart.height // 2}" text-anchor="middle" '
            f'class="chart-empty">{escape(message)}</text></svg>')


def line_chart(chart: Chart, series: Sequence[Series], hlines: Sequence[HLine] = (),
               bars: bool = False) -> str:
    """Lines (or bars for the first series when ``bars``) over time, with reference lines."""
    pts = [(t, v) for s in series for t, v in s.points if v is not None and math.isfinite(v)]
    if not pts:
        return _empty(chart, "no data in this period")
    t0 = min(t for t, _ in pts).timestamp()
    t1 = max(t for t, _ in pts).timestamp()
    slot = 0.0
    if bars:  # half a slot of room either side so the first and last bars stay inside
        n_bars = len({t for t, v in series[0].points if v is not None})
        slot = (t1 - t0) / (n_bars - 1) if n_bars > 1 else 86400.0
        t0, t1 = t0 - slot / 2, t1 + slot / 2
    if t1 <= t0:
        t0, t1 = t0 - 1800, t1 + 1800
    values = [v for _, v in pts] + [h.value for h in hlines]
    lo, hi = min(values), max(values)
    if bars or 0 < lo < 0.25 * hi:
        lo = min(0.0, lo)
    ticks = nice_ticks(lo, hi)
    lo, hi = ticks[0], ticks[-1]
    top, right, bottom, left = chart.margin
    w, h = chart.width - left - right, chart.height - top - bottom

    def x(ts: float) -> float:
        return left + (ts - t0) / (t1 - t0) * w

    def y(v: float) -> float:
        return top + h - (v - lo) / (hi - lo) * h

    out = [f'<svg class="chart" role="img" viewBox="0 0 {chart.width} {chart.height}" width="100%" '
           f'aria-label="{escape(chart.title)}">',
           f'<text x="{left}" y="16" class="chart-title">{escape(chart.title)}</text>',
           f'<text x="4" y="{top - 8}" class="chart-unit">{escape(chart.unit)}</text>']
    for tv in ticks:
        out.append(f'<line x1="{left}" x2="{left + w}" y1="{y(tv):.1f}" y2="{y(tv):.1f}" class="grid"/>'
                   f'<text x="{left - 6}" y="{y(tv) + 4:.1f}" text-anchor="end" class="tick">{_fmt(tv)}</text>')
    span_days = (t1 - t0) / 86400
    for i in range(5):
        ts = t0 + (t1 - t0) * i / 4
        when = datetime.fromtimestamp(ts, tz=chart.tz or pts[0][0].tzinfo)
        label = when.strftime("%m-%d %H:%M") if span_days < 3 else when.strftime("%Y-%m-%d")
        out.append(f'<text x="{x(ts):.1f}" y="{top + h + 18}" text-anchor="middle" class="tick">{label}</text>')
    legend_x = left + 8
    for i, s in enumerate(series):
        color = s.color or PALETTE[i % len(PALETTE)]
        good = [(t.timestamp(), v) for t, v in s.points if v is not None and math.isfinite(v)]
        if bars and i == 0:
            bw = max(1.0, slot / (t1 - t0) * w * 0.7)
            for ts, v in good:
                yy = y(max(v, lo))
                out.append(f'<rect x="{x(ts) - bw / 2:.1f}" y="{min(yy, y(lo)):.1f}" width="{bw:.1f}" '
                           f'height="{abs(y(lo) - yy):.1f}" fill="{color}"><title>{_fmt(v)}</title></rect>')
        else:
            path = " ".join(f"{'M' if j == 0 else 'L'}{x(ts):.1f},{y(v):.1f}" for j, (ts, v) in enumerate(good))
            dash = f' stroke-dasharray="{escape(s.dash)}"' if s.dash else ""
            out.append(f'<path d="{path}" fill="none" stroke="{color}" stroke-width="1.6"{dash}/>')
            if len(good) == 1:
                out.append(f'<circle cx="{x(good[0][0]):.1f}" cy="{y(good[0][1]):.1f}" r="3" fill="{color}"/>')
        out.append(f'<rect x="{legend_x}" y="{top - 20}" width="10" height="10" fill="{color}"/>'
                   f'<text x="{legend_x + 14}" y="{top - 11}" class="legend">{escape(s.label)}</text>')
        legend_x += 24 + 7 * len(s.label)
    for hl in hlines:
        out.append(f'<line x1="{left}" x2="{left + w}" y1="{y(hl.value):.1f}" y2="{y(hl.value):.1f}" '
                   f'stroke="{hl.color}" stroke-dasharray="{hl.dash}" stroke-width="1.4"/>'
                   f'<text x="{left + w - 4}" y="{y(hl.value) - 4:.1f}" text-anchor="end" class="hline" '
                   f'fill="{hl.color}">{escape(hl.label)} {_fmt(hl.value)}</text>')
    out.append("</svg>")
    return "".join(out)


def annual_projection(rolling: Sequence[tuple[datetime, float | None]], details: Mapping[str, Any],
                      threshold: float) -> list[tuple[datetime, float]]:
    """The projection line of a ``dc_annual_tce`` alert, from the rule's own figures (its
    details): from the last rolling 12-month point to the projected crossing of ``threshold``
    when the rule gave a date, else to where the rolling sum tends in a year at the recent rate
    (``projected_rolling_12_months_tce`` = rate × 365: after a year at a constant rate the
    rolling sum is rate × 365); empty without a recent rate."""
    known = [(t, v) for t, v in rolling if v is not None and math.isfinite(v)]
    if not known:
        return []
    t0, v0 = known[-1]
    when = details.get("projected_date")
    if isinstance(when, str):
        return [(t0, v0), (datetime.fromisoformat(when), threshold)]
    tends = details.get("projected_rolling_12_months_tce")
    if isinstance(tends, int | float):
        return [(t0, v0), (t0 + timedelta(days=365), float(tends))]
    return []


def annual_chart(rolling: Sequence[tuple[datetime, float | None]], details: Mapping[str, Any], threshold: float,
                 tz: tzinfo | None = None) -> str:
    """The ``dc_annual_tce`` alert's chart: the rolling 12-month total (tce, one point a local
    day), its projection at the recent rate (dashed), and the key-unit line."""
    chart = Chart("Rolling 12-month comprehensive energy consumption (early warning; designation is by"
                  " calendar year)", "tce", tz=tz)
    series = [Series("rolling 12 months", rolling)]
    projection = annual_projection(rolling, details, threshold)
    if projection:
        series.append(Series("projection at the recent rate", projection, "#ff7f0e", dash="6 4"))
    return line_chart(chart, series, [HLine(threshold, "重点用能单位 tce/yr")])
