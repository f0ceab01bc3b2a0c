"""Model card per registered version: Markdown and HTML, logged to MLflow with the model."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelkeeper.contracts.results import Decision, ModelScore, Trained
    from modelkeeper.contracts.spec import ModelSpec


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def render_markdown(
    spec: ModelSpec,
    version: str,
    *,
    training: Trained,
    score: ModelScore,
    importance: dict[str, float],
    drift_summary: str | None,
    decision: Decision,
    run_id: str,
    judged_against: str,
) -> str:
    primary = spec.metrics.primary
    overall = _table(
        ["metric", "value"], [[k, f"{v:.4f}"] for k, v in sorted(score.metrics.items())]
    )
    slice_rows = [
        [col, value, f"{m.get(primary, float('nan')):.4f}", str(int(m["rows"]))]
        for col, per_value in score.slices.items()
        for value, m in sorted(per_value.items())
    ]
    slices = (
        _table(["slice", "value", primary, "rows"], slice_rows)
        if slice_rows
        else "_no slices configured_"
    )
    imp = _table(
        ["feature", f"permutation importance (Δ {primary})"],
        [[f, f"{v:.4f}"] for f, v in importance.items()],
    )
    return f"""# Model card: {spec.name} v{version}

- **Owner:** {spec.owner}
- **Airflow run:** `{run_id}`
- **Estimator:** `{spec.estimator.class_path}` {spec.estimator.params}

## Intended use
{spec.intended_use or "-"}

## Limitations
{spec.limitations or "-"}

## Training data
- Window: {training.train_start} .. {training.train_end} ({training.train_rows} rows)
- Held out for evaluation: {training.holdout_start} .. {training.holdout_end} ({training.holdout_rows} rows)
- Features: numeric {list(spec.features.numeric)}, categorical {list(spec.features.categorical)}; target `{spec.target.column}`

## Metrics on the holdout ({score.rows} rows)
{overall}

## Per slice
{slices}

## Feature importance
{imp}

## Drift at training time
{drift_summary or "not measured: no champion to compare the new rows with, or no new rows"}

## Promotion decision
Judged against: {judged_against}.

**{decision.verdict}**: {decision.reason}
"""


def render_html(markdown_text: str, title: str) -> str:
    """The card as a page. Raw HTML in the Markdown (a spec's free text) is shown as text."""
    from markdown_it import MarkdownIt
    from markupsafe import Markup

    from modelkeeper.reporting.render import render

    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown_text)
    return render("model_card.html.j2", title=title, body=Markup(body))
