"""report.html of a backtest: the report dict (engine.report) through a Jinja template."""

from __future__ import annotations

from collections.abc import Callable

from modelkeeper.reporting.charts import Chart, Series, line_chart
from modelkeeper.reporting.render import render

COLOURS = ["#888888", "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2"]
#: The policy tables' columns: (summary key, header in words, decimals).
COLUMNS = [
    ("mean", "mean", 4),
    ("second_half_mean", "second half", 4),
    ("gap_to_always", "vs always", 4),
    ("retrains", "registered retrains", 0),
    ("second_half_retrains", "in the second half", 0),
    ("promotions", "promotions", 0),
    ("training_seconds", "training s (shadows incl.)", 1),
    ("shadow_seconds", "of which shadows", 1),
    ("compute_seconds", "all stages s", 1),
    ("alarms", "alarms", 0),
    ("alarms_paid_off", "paid off", 0),
]


def _chart(data: dict, title: str, value: str, dot: Callable[[dict], bool]) -> Chart:
    """`value` of every policy by step, a dot where `dot(record)`; a policy keeps its
    colour in every chart, a policy without values is left out."""
    series = []
    for i, (name, records) in enumerate(data["records"].items()):
        values: list[float | None] = [None] * data["steps"]
        for r in records:
            values[r["step"]] = r[value]
        if any(v is not None for v in values):
            dots = {r["step"] for r in records if dot(r)}
            series.append(Series(name, values, COLOURS[i % len(COLOURS)], marked=dots))
    labels = [f"step {i + 1}" for i in range(data["steps"])]
    return line_chart(labels, series, width=900, height=260, title=title)


def render_html(data: dict) -> str:
    metric = f"{data['primary']} per step (circles: retrained and promoted)"
    drift = "share of drifted columns (circles: alarm)"
    charts = [
        _chart(data, metric, "metric", lambda r: bool(r["retrain"] and r["promoted"])),
        _chart(data, drift, "drift_share", lambda r: bool(r["alarm"])),
    ]
    return render("backtest_report.html.j2", data=data, columns=COLUMNS, charts=charts)
