"""Server-side SVG charts: ticks, empty data, escaping, reference lines."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from portal import charts

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


@pytest.mark.parametrize(("lo", "hi", "expected"), [
    (0.0, 10.0, [0, 2, 4, 6, 8, 10]),
    (1.1, 1.5, [1.1, 1.2, 1.3, 1.4, 1.5]),
    (0.0, 0.0, [-1.0, -0.5, 0.0, 0.5, 1.0]),   # flat zero series still gets an axis
    (650.0, 650.0, [550, 600, 650, 700, 750]),  # flat: ±10 %
    (800.0, 950.0, [800, 850, 900, 950]),
])
def test_nice_ticks(lo: float, hi: float, expected: list[float]) -> None:
    assert charts.nice_ticks(lo, hi) == pytest.approx(expected)


def test_empty_series_says_so() -> None:
    svg = charts.line_chart(charts.Chart("PUE", "PUE"), [charts.Series("PUE", [])])
    assert "no data in this period" in svg and svg.startswith("<svg")


def test_labels_are_escaped() -> None:
    svg = charts.line_chart(charts.Chart("<script>x</script>", "t&ce"),
                            [charts.Series("a<b", [(T0, 1.0), (T0 + timedelta(hours=1), 2.0)])],
                            [charts.HLine(1.5, "limit\"><x")])
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "t&amp;ce" in svg and "a&lt;b" in svg
    assert 'limit"><x' not in svg


def test_limit_line_within_the_axis() -> None:
    # A PUE series well below its limit: the axis must stretch to show the limit line.
    pts = [(T0 + timedelta(days=i), 1.15) for i in range(5)]
    svg = charts.line_chart(charts.Chart("PUE", "PUE"), [charts.Series("PUE", pts)], [charts.HLine(1.3, "limit")])
    assert "limit 1.3" in svg and "stroke-dasharray" in svg


def test_none_values_are_skipped_and_bars_drawn() -> None:
    pts = [(T0, 2.0), (T0 + timedelta(days=1), None), (T0 + timedelta(days=2), 3.0)]
    svg = charts.line_chart(charts.Chart("tce", "tce"), [charts.Series("daily", pts)], bars=True)
    assert svg.count("<rect") == 3  # two bars + one legend swatch
