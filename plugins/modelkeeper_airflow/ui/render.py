"""Model health as HTML with inline SVG charts: server-side, no CDN, no chart library.

Pure functions from ui.health's dataclasses to strings: they pick what each chart draws
(modelkeeper.reporting.charts) and fill in the plugin's templates (models.html.j2,
model.html.j2, not_a_model.html.j2), where Jinja escapes every text from data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from modelkeeper.reporting.charts import Chart, Series, line_chart
from modelkeeper_airflow.templates import render
from modelkeeper_airflow.ui.health import ModelHealth

RunUrl = Callable[[str | None, str | None], str | None]
EMPTY = "no measurements yet"
COLORS = {
    "realized": "#1f6fb4",
    "estimated": "#e07b00",
    "drift share": "#c0392b",
    "rows": "#2e7d32",
    "p95 ms/1k": "#6a1b9a",
    "p50 ms/1k": "#b07cc6",
    "at evaluation": "#2e7d32",
}
LATENCY = {"p50 ms/1k": "p50_ms_per_1k", "p95 ms/1k": "p95_ms_per_1k"}  # legend: number


def chart(
    labels: Sequence[str], series: dict[str, Sequence[float | None]], **size: int | bool
) -> Chart:
    """A line chart of `series` (name: one value per label) in the pages' colours."""
    drawn = [
        Series(name, values, COLORS.get(name, "#555"), dashed=name == "estimated")
        for name, values in series.items()
    ]
    return line_chart(labels, drawn, **size)


def metric_chart(health: ModelHealth, *, small: bool = False) -> Chart:
    """The primary metric per window; `small`: the list's sparkline of the model in service."""
    ws = health.windows
    if small:
        ws = [w for w in ws if w.realized is not None or w.estimated is not None]
    series = {"realized": [w.realized for w in ws], "estimated": [w.estimated for w in ws]}
    if not small and any(w.evaluated is not None for w in ws):
        series["at evaluation"] = [w.evaluated for w in ws]
    size = {"width": 160, "height": 36, "small": True} if small else {}
    return chart([w.start for w in ws], series, **size)


def evidence_charts(health: ModelHealth) -> dict[str, Chart]:
    """The retraining evidence per labelled batch, on one x axis (the batches) so a batch
    sits at the same place in the three charts: the detector against its threshold (alarms
    marked), the shadow's advantage with its interval against the gain a retrain needs,
    the drift share against the share the reference shows by chance."""
    bs = health.batches
    labels = [b.label for b in bs]

    def of(name: str) -> list[float | None]:
        return [getattr(b, name) for b in bs]

    def reference(name: str, values: list[float | None], color: str) -> Series:
        return Series(name, values, color, dashed=True, marked=())  # a line, no dots

    shadowed = [0.0 if b.advantage is not None else None for b in bs]
    return {
        "detector": line_chart(
            labels,
            [
                Series("detector statistic", of("statistic"), "#1f6fb4"),
                reference("threshold", of("threshold"), "#c0392b"),
                Series(
                    "alarm", [b.statistic if b.alarm else None for b in bs], "#c0392b", joined=False
                ),
            ],
            height=180,
        ),
        "shadow": line_chart(
            labels,
            [
                Series("shadow advantage", of("advantage"), "#1f6fb4", lo=of("lo"), hi=of("hi")),
                reference("gain needed", of("needs"), "#2e7d32"),
                reference("no gain", shadowed, "#999"),
            ],
            height=200,
        ),
        "drift": line_chart(
            labels,
            [
                Series("drift share", of("drift_share"), "#c0392b"),
                reference("by chance", of("drift_by_chance"), "#555"),
            ],
            height=180,
        ),
    }


def no_links(dag_id: str | None, run_id: str | None) -> str | None:  # noqa: ARG001
    return None


def models_page(models: Sequence[ModelHealth], *, base: str, run_url: RunUrl = no_links) -> str:
    """The list of models the caller may read; `base` is the app's mount path;
    `run_url(dag_id, run_id)` a DAG run's page in Airflow (None: no link)."""
    rows = [(m, metric_chart(m, small=True)) for m in models]
    return render("models.html.j2", rows=rows, base=base, empty=EMPTY, run_url=run_url)


def model_page(health: ModelHealth, *, base: str, run_url: RunUrl = no_links) -> str:
    """One model's health: primary metric per window, retraining evidence, drift,
    versions, audit timeline, scoring."""
    drift = health.drift
    runs = health.scoring
    run_labels = [s.start or s.run_id for s in runs]
    return render(
        "model.html.j2",
        h=health,
        base=base,
        empty=EMPTY,
        metric=metric_chart(health),
        guardrails=[
            (name, chart(list(values), {name: list(values.values())}, height=140))
            for name, values in health.guardrails.items()
        ],
        drift=chart(
            [p.start or p.run_id or "?" for p in drift], {"drift share": [p.share for p in drift]}
        ),
        volume=chart(run_labels, {"rows": [s.numbers.get("rows") for s in runs]}, height=160),
        latency=chart(
            run_labels,
            {name: [s.numbers.get(key) for s in runs] for name, key in LATENCY.items()},
            height=160,
        ),
        evidence=evidence_charts(health),
        run_url=run_url,
    )


def not_a_model_page(dag_id: str, *, base: str) -> str:
    """The "Model health" tab of a DAG that is no model's (or whose model one may not read)."""
    return render("not_a_model.html.j2", dag_id=dag_id, base=base)
