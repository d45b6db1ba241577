"""Charts as geometry for server-rendered SVG: each function lays out shapes in a fixed
viewBox; the template draws them and the stylesheet colours them (classes, CSS variables),
so they scale to a phone's width and follow the dark theme, with nothing loaded from elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

WIDTH = 640  # the viewBox's width; the SVG itself is as wide as its box
ROW = 22  # a horizontal bar's height, with its gap
LABEL = 150  # the room left of horizontal bars for their labels


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    w: float
    h: float
    cls: str
    title: str  # what a tooltip (and a screen reader) says


@dataclass(frozen=True)
class Text:
    x: float
    y: float
    text: str
    anchor: str = "start"
    cls: str = "label"


@dataclass(frozen=True)
class Line:
    x1: float
    y1: float
    x2: float
    y2: float
    cls: str


@dataclass
class Chart:
    title: str
    height: float
    rects: list[Rect] = field(default_factory=list)
    texts: list[Text] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    legend: list[str] = field(default_factory=list)  # the classes, in order, that the legend names
    empty: bool = False

    @property
    def width(self) -> int:
        return WIDTH


def stacked_columns(
    title: str,
    series: Mapping[str, Mapping[str, float]],
    parts: Sequence[str],
    *,
    limit: float | None = None,
    limit_label: str = "",
) -> Chart:
    """One column per key (a day), its parts stacked (verdicts), the axis at the tallest; a
    dashed line at `limit` (a day's share of a budget)."""
    height, top, bottom = 200.0, 18.0, 22.0
    chart = Chart(title, height, legend=list(parts), empty=not series)
    tallest = max([*(sum(v.values()) for v in series.values()), limit or 0]) or 1
    step = min((WIDTH - 40) / max(len(series), 1), 48.0)  # a few days: narrow columns, not slabs
    scale = (height - top - bottom) / tallest
    chart.lines.append(Line(36, height - bottom, WIDTH, height - bottom, "axis"))
    chart.lines.append(Line(36, top, WIDTH, top, "grid"))
    chart.texts.append(Text(40, top - 5, f"max {_number(tallest)}", "start", "tick"))  # the scale
    for i, (key, values) in enumerate(series.items()):
        x, y = 40 + i * step, height - bottom
        for part in parts:
            amount = values.get(part, 0)
            if amount:
                h = amount * scale
                y -= h
                chart.rects.append(Rect(x + 1, y, max(step - 2, 1), h, part, f"{key}: {amount:g} {part}"))
        if i % max(1, len(series) // 6) == 0:
            chart.texts.append(Text(x, height - 6, key[5:] if len(key) == 10 else key, "start", "tick"))
    if limit:
        y = height - bottom - limit * scale
        chart.lines.append(Line(36, y, WIDTH, y, "limit"))
        chart.texts.append(Text(WIDTH - 4, y - 4, limit_label, "end", "tick"))
        chart.legend.append("limit")
    return chart


def shares(title: str, rows: Mapping[str, Mapping[str, int]], parts: Sequence[str]) -> Chart:
    """One 100% bar per row: how its total divides into the parts."""
    chart = Chart(title, ROW * len(rows) + 8, legend=list(parts), empty=not rows)
    span = WIDTH - LABEL - 50
    for i, (label, counts) in enumerate(rows.items()):
        y, total, x = 4 + i * ROW, sum(counts.values()), float(LABEL)
        chart.texts.append(Text(LABEL - 6, y + 13, _short(label), "end"))
        for part in parts:
            share = counts.get(part, 0) / total if total else 0.0
            if share:
                chart.rects.append(Rect(x, y, share * span, ROW - 6, part, f"{label}: {share:.0%} {part}"))
                x += share * span
        chart.texts.append(Text(WIDTH - 4, y + 13, f"n={total}", "end", "tick"))
    return chart


def ranges(title: str, rows: Sequence[tuple[str, float | None, float | None]], unit: str = "s") -> Chart:
    """A bar to p90 with the part to p50 darker, per row (times to decision)."""
    chart = Chart(title, ROW * len(rows) + 8, legend=["p50", "p90"], empty=not rows)
    longest = max((p90 or 0 for _, _, p90 in rows), default=0) or 1
    span = WIDTH - LABEL - 80
    for i, (label, p50, p90) in enumerate(rows):
        y = 4 + i * ROW
        chart.texts.append(Text(LABEL - 6, y + 13, _short(label), "end"))
        chart.rects.append(
            Rect(LABEL, y, (p90 or 0) / longest * span, ROW - 6, "p90", f"{label}: p90 {duration(p90)}")
        )
        chart.rects.append(
            Rect(LABEL, y, (p50 or 0) / longest * span, ROW - 6, "p50", f"{label}: p50 {duration(p50)}")
        )
        chart.texts.append(Text(WIDTH - 4, y + 13, f"{duration(p50)} / {duration(p90)}", "end", "tick"))
    return chart


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 else f"{value:.2g}"


def duration(seconds: float | None) -> str:
    """A time span as a person reads it: 45 s, 12 min, 3.5 h."""
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _short(label: str, most: int = 20) -> str:
    return label if len(label) <= most else label[: most - 1] + "…"
