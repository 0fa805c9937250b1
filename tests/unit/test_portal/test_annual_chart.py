"""The 10 000 tce alert's chart: rolling 12-month total, its projection, the key-unit line."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from portal import charts

CST = timezone(timedelta(hours=8))


def rolling(days: int, per_day: float) -> list[tuple[datetime, float | None]]:
    """A centre that started on 1 January 2025: the rolling 12 months on day k is k × per_day."""
    return [(datetime(2025, 1, 1, 12, tzinfo=CST) + timedelta(days=k), (k + 1) * per_day) for k in range(days)]


def test_projection_to_the_projected_crossing_date() -> None:
    # 8 MW at PUE 1.25: 29.496 tce a day; after 100 days 2 949.6 tce, the rule projected the
    # crossing (10 000 − 2 949.6) / 29.496 = 239.03 days later
    points = rolling(100, 29.496)
    when = datetime(2025, 4, 11, tzinfo=CST) + timedelta(days=239.03)
    proj = charts.annual_projection(points, {"projected_date": when.isoformat()}, 10_000.0)
    assert proj == [(points[-1][0], 100 * 29.496), (when, 10_000.0)]


def test_without_a_crossing_the_projection_ends_where_the_year_tends() -> None:
    # a full year held at 25.809 tce a day: rate × 365 = 9 420.285 tce, a year after the last point
    points = rolling(400, 25.809)
    proj = charts.annual_projection(points, {"projected_rolling_12_months_tce": 9420.285}, 10_000.0)
    assert proj == [(points[-1][0], 400 * 25.809), (points[-1][0] + timedelta(days=365), 9420.285)]
    assert charts.annual_projection(points, {}, 10_000.0) == []  # no recent rate: nothing projected


def test_the_chart_plots_the_rolling_total_not_daily_tce_against_10000() -> None:
    points = rolling(100, 29.496)
    svg = charts.annual_chart(points, {"projected_rolling_12_months_tce": 10_766.04}, 10_000.0, tz=CST)
    assert "Rolling 12-month" in svg and "projection at the recent rate" in svg
    assert 'stroke-dasharray="6 4"' in svg  # the projection (and the threshold line) dashed
    assert "10,000" in svg  # the key-unit line is labelled with its value
    # the y axis reaches the projection (10 766) and the line, not daily figures near 30
    ticks = [float(t.replace(",", "")) for t in re.findall(r'class="tick">([\d,.]+)<', svg)]
    assert max(ticks) >= 10_766.04
