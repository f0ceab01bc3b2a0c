"""The one SVG chart of modelkeeper's pages: numbers in, coordinates out.

`line_chart` places each series' values on a plot area and returns a `Chart` (points,
axis ticks, legend); the markup is the `line_chart` macro of templates/charts.html.j2,
where Jinja escapes every name and label. A None, NaN or infinite value is a gap: not
drawn and not counted in the axis range. A chart with nothing to draw is `empty`, and
the macro shows a sentence instead of an empty box. A series may carry an interval per
value (`lo`, `hi`: drawn as whiskers) and may be marks only (`joined=False`: dots, no
line, e.g. the alarms on a statistic's line).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass

# Plot-area padding (left, right, top, bottom): room for the axis labels, none on a sparkline.
_PAD = (48, 12, 10, 28)
_SPARK_PAD = (4, 4, 4, 4)


@dataclass(frozen=True)
class Series:
    """One line: a value (or None) per x position of the chart."""

    name: str
    values: Sequence[float | None]
    color: str = "#555"
    dashed: bool = False
    marked: Collection[int] | None = None  # positions that get a dot; None: every value
    lo: Sequence[float | None] | None = None  # an interval around each value (whiskers)
    hi: Sequence[float | None] | None = None
    joined: bool = True  # False: dots only, drawn larger (marks on another line)


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    label: str  # the x position's label (a window start, a step)
    value: float


@dataclass(frozen=True)
class Whisker:
    """A value's interval: a vertical line from `y_lo` to `y_hi` at `x`."""

    x: float
    y_lo: float
    y_hi: float
    label: str
    lo: float
    hi: float

    @property
    def path(self) -> str:
        """The interval as an SVG path: the line and a cap at each end."""
        a, b = round(self.x - 3, 1), round(self.x + 3, 1)
        return f"M{self.x},{self.y_lo} V{self.y_hi} M{a},{self.y_lo} H{b} M{a},{self.y_hi} H{b}"


@dataclass(frozen=True)
class Line:
    name: str
    color: str
    dashed: bool
    points: tuple[Point, ...]
    dots: tuple[Point, ...]
    whiskers: tuple[Whisker, ...] = ()
    joined: bool = True

    @property
    def path(self) -> str:
        """The points as an SVG polyline's `points` attribute."""
        return " ".join(f"{p.x},{p.y}" for p in self.points)


@dataclass(frozen=True)
class Tick:
    x: float
    y: float
    text: str
    anchor: str = "start"


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    small: bool  # a sparkline: no axes, no legend, thinner lines
    lines: tuple[Line, ...] = ()
    y_ticks: tuple[Tick, ...] = ()  # value labels, each with a grid line across the plot
    x_ticks: tuple[Tick, ...] = ()
    legend: tuple[tuple[str, str, str], ...] = ()  # (name, colour, symbol) of every series
    title: str | None = None  # the chart's accessible name
    plot_left: float = 0
    plot_right: float = 0

    @property
    def empty(self) -> bool:
        return not self.lines

    @property
    def stroke(self) -> float:
        return 1.5 if self.small else 2

    @property
    def radius(self) -> float:
        return 1.5 if self.small else 3


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def axis_label(value: float) -> str:
    """Metrics with three decimals; counts and milliseconds as integers."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3f}"


def _value_range(values: list[float]) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    if hi - lo < 1e-9:  # a flat line sits in the middle of a band around it
        pad = 0.5 if lo == 0 else abs(lo) * 0.05
        lo, hi = lo - pad, hi + pad
    return lo, hi


def _present(values: Sequence[float | None] | None, n: int) -> dict[int, float]:
    """The finite values among the first `n`, by position."""
    return {i: float(v) for i, v in enumerate((values or [])[:n]) if _finite(v)}


def _symbol(s: Series) -> str:
    """How the legend shows a series: a dot where it has dots, else its line."""
    if s.marked is None or s.marked:
        return "●"
    return "╌" if s.dashed else "—"


def _intervals(s: Series, n: int) -> list[tuple[int, float, float]]:
    """(position, lo, hi) of the intervals drawn: where the value and both ends are present."""
    values, los, his = _present(s.values, n), _present(s.lo, n), _present(s.hi, n)
    return [(i, los[i], his[i]) for i in values if i in los and i in his]


def line_chart(
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    width: int = 640,
    height: int = 200,
    small: bool = False,
    title: str | None = None,
) -> Chart:
    """Lines over the x positions `labels` (one value per label in each series).

    The y axis spans the present values and intervals; every present value gets a dot
    unless its series names `marked` positions. A single position sits in the middle.
    An interval is drawn where both its ends and its value are present.
    """
    labels = [str(label) for label in labels]
    n = len(labels)
    values = [v for s in series for v in _present(s.values, n).values()]
    values += [end for s in series for _, lo, hi in _intervals(s, n) for end in (lo, hi)]
    legend = tuple((s.name, s.color, _symbol(s)) for s in series)
    if not labels or not values:
        return Chart(width, height, small, legend=legend, title=title)
    left, right, top, bottom = _SPARK_PAD if small else _PAD
    lo, hi = _value_range(values)

    def x_of(i: int) -> float:
        share = i / (len(labels) - 1) if len(labels) > 1 else 0.5
        return round(left + (width - left - right) * share, 1)

    def y_of(v: float) -> float:
        return round(top + (height - top - bottom) * (1 - (v - lo) / (hi - lo)), 1)

    lines = []
    for s in series:
        present = _present(s.values, n)
        if not present:
            continue
        marked = set(range(n)) if s.marked is None else set(s.marked)
        points = {i: Point(x_of(i), y_of(v), labels[i], v) for i, v in present.items()}
        dots = tuple(p for i, p in points.items() if i in marked)
        whiskers = tuple(
            Whisker(points[i].x, y_of(lo), y_of(hi), labels[i], lo, hi)
            for i, lo, hi in _intervals(s, n)
        )
        lines.append(
            Line(s.name, s.color, s.dashed, tuple(points.values()), dots, whiskers, s.joined)
        )
    y_ticks = x_ticks = ()
    if not small:
        y_ticks = tuple(Tick(2, y_of(v), axis_label(v)) for v in (hi, (lo + hi) / 2, lo))
        if len(labels) == 1:
            x_ticks = (Tick(x_of(0), height - 8, labels[0][:10], "middle"),)
        else:
            x_ticks = (
                Tick(left, height - 8, labels[0][:10]),
                Tick(width - right, height - 8, labels[-1][:10], "end"),
            )
    return Chart(
        width, height, small, tuple(lines), y_ticks, x_ticks, legend, title, left, width - right
    )
