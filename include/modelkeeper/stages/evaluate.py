"""evaluate: challenger and champion scored on the same holdout, and the gate's decision.

The decision carries the champion version it was made against, so promote moves the
alias only if the champion is still that one. Besides the decision: the version's model
card (the pages people read), the reference scoring measures the version against once it
serves (its holdout with its own out-of-sample prediction, and CBPE's calibration), and
the candidate's metrics in the monitoring history. A champion that does not load or
score is a reason in the decision; an unreachable MLflow is a retry, never a verdict.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from modelkeeper.contracts import lineage as L
from modelkeeper.contracts.errors import TransientError
from modelkeeper.contracts.results import Evaluated

if TYPE_CHECKING:
    import pandas as pd

    from modelkeeper.contracts.results import Comparison, Decision, Monitoring, Trained
    from modelkeeper.contracts.spec import ModelSpec
    from modelkeeper.decisions.promotion import Candidate, Champion
    from modelkeeper.records.registry import VersionInfo
    from modelkeeper.stages.workspace import Run, Workspace

    Gate = Callable[[Candidate, Champion | None, ModelSpec, Comparison | None], Decision]

log = logging.getLogger(__name__)


def evaluate(
    ws: Workspace,
    run: Run,
    trained: Trained,
    monitoring: Monitoring | None = None,
    *,
    gate: Gate | None = None,
) -> Evaluated:
    """Score, decide (`gate`, default the spec's promotion gate), record and hand on."""
    from modelkeeper.decisions.promotion import decide

    spec, registry = ws.spec, ws.registry
    holdout = ws.storage.read_parquet(trained.holdout_path)
    version = registry.get_version(ws.name, trained.version)
    model = ws.load_model(version.source)
    holdout_key = f"holdout:{trained.data_snapshot_hash}"
    candidate = _candidate(ws, version, holdout_key, holdout)
    current = _compared_with(ws, run, version)
    champion = None
    if current is not None and current.version != version.version:
        champion = _champion(ws, current, candidate, holdout_key, holdout)
    if champion is not None and champion.score is not None and spec.promotion.max_latency_ratio:
        candidate, champion = _timed(ws, version, current, candidate, champion, holdout)
    comparison = _paired(ws, version, current, champion, holdout_key, holdout)
    decision = (gate or decide)(candidate, champion, spec, comparison)
    _baseline(ws, version, holdout_key, holdout)
    if ws.reports:
        card = (candidate.score, model, holdout, decision, champion, current, monitoring)
        _model_card(ws, run, trained, *card)
    _scoring_reference(ws, run, trained, version, holdout_key, holdout)
    _record(ws, run, trained, candidate.score, champion, decision, holdout)
    log.info(
        "v%s vs champion %s: %s",
        version.version,
        current.version if current else None,
        decision.reason,
    )
    return Evaluated(
        decision=decision,
        candidate=candidate.score,
        champion=None if champion is None else champion.score,
        candidate_version=version.version,
        champion_version=current.version if current else None,
        mlflow_run_id=trained.mlflow_run_id,
        comparison=comparison,
        holdout_end=trained.holdout_end,
    )


def _candidate(ws: Workspace, version: VersionInfo, holdout_key: str, holdout: pd.DataFrame):  # noqa: ANN202
    from modelkeeper.decisions.promotion import Candidate

    return Candidate(
        version=version.version,
        score=ws.score(version.source, holdout_key, holdout),
        input_columns=ws.registry.input_columns(version.uri) or [],
        validated=version.tags.get(L.VALIDATION) == L.VALIDATION_PASSED,
        data_end=version.tags.get(L.DATA_END),
    )


def _timed(ws, version, current, candidate, champion, holdout):  # noqa: ANN001, ANN202
    """Candidate and champion with their predict latency measured in turns on the holdout
    (the latency gate compares the two)."""
    from dataclasses import replace

    from modelkeeper.modeling.evaluation import paired_latency

    key = ("latency", version.source, current.source, len(holdout))
    if key not in ws.memo.frames:  # timed once per pair of models in a process
        models = [ws.load_model(version.source), ws.load_model(current.source)]
        ws.memo.frames[key] = paired_latency(models, holdout.head(2000), ws.spec)
    cand_ms, champ_ms = ws.memo.frames[key]
    return (
        replace(candidate, score=replace(candidate.score, latency_ms_per_1k=cand_ms)),
        replace(champion, score=replace(champion.score, latency_ms_per_1k=champ_ms)),
    )


def _paired(ws, version, current, champion, holdout_key, holdout) -> Comparison | None:  # noqa: ANN001
    """The candidate against the champion on the same holdout rows, when both scored."""
    from modelkeeper.decisions.stats import compare
    from modelkeeper.stages.shadow import metric_input

    if champion is None or champion.score is None:
        return None
    metric, spec = ws.spec.metrics.primary, ws.spec
    y = holdout[spec.target.column].to_numpy()
    champ, cand = (ws.predict(v.source, holdout_key, holdout) for v in (current, version))
    return compare(
        metric,
        y,
        metric_input(metric, *champ),
        metric_input(metric, *cand),
        level=spec.promotion.level,
    )


def _baseline(ws, version, holdout_key, holdout) -> None:  # noqa: ANN001
    """What the change detector measures this version against, as version tags: its
    holdout metric and that metric's sd at the holdout's size."""
    from modelkeeper.decisions.stats import metric_sd
    from modelkeeper.stages.shadow import metric_input

    spec, metric = ws.spec, ws.spec.metrics.primary
    value = ws.score(version.source, holdout_key, holdout).metrics.get(metric)
    tags = {L.BASELINE_ROWS: len(holdout)}
    if value is not None:
        key = ("sd", version.source, holdout_key)
        if key not in ws.memo.frames:
            mine = metric_input(metric, *ws.predict(version.source, holdout_key, holdout))
            y = holdout[spec.target.column].to_numpy()
            ws.memo.frames[key] = metric_sd(metric, y, mine, len(holdout))
        tags[L.BASELINE_METRIC] = value
        tags[L.BASELINE_SD] = ws.memo.frames[key]
    ws.registry.set_version_tags(ws.name, version.version, tags)


def _compared_with(ws: Workspace, run: Run, version: VersionInfo) -> VersionInfo | None:
    """The champion to judge against. A cleared run whose model this run already promoted
    is judged again against the champion it replaced, so the rerun gives the same decision
    and promote's compare-and-set finds the move done."""
    current = ws.registry.alias(ws.name)
    if (
        current is not None
        and current.version == version.version
        and version.tags.get(L.PROMOTED_IN) == run.run_id
    ):
        return ws.registry.alias(ws.name, L.PREVIOUS)
    return current


def _champion(ws: Workspace, current: VersionInfo, candidate: Candidate, holdout_key, holdout):  # noqa: ANN001, ANN202
    """Load and score the champion: a model that does not load or score is a reason for
    the gate; a service that does not answer is retried (TransientError propagates)."""
    from modelkeeper.decisions.promotion import Champion

    try:
        ws.load_model(current.source)
        columns = ws.registry.input_columns(current.uri)
    except TransientError:
        raise
    except Exception as exc:
        log.warning("champion v%s could not be loaded: %r", current.version, exc)
        return Champion(current.version, None, load_error=f"{type(exc).__name__}: {exc}")
    data_end = current.tags.get(L.DATA_END)
    if columns is not None and sorted(columns) != sorted(candidate.input_columns):
        return Champion(current.version, None, input_columns=columns, data_end=data_end)
    try:
        score = ws.score(current.source, holdout_key, holdout)
    except Exception as exc:
        log.warning("champion v%s could not be scored: %r", current.version, exc)
        return Champion(
            current.version,
            None,
            columns,
            load_error=f"scoring failed: {type(exc).__name__}: {exc}",
        )
    return Champion(current.version, score, input_columns=columns, data_end=data_end)


def _scoring_reference(ws, run, trained, version, holdout_key, holdout) -> None:  # noqa: ANN001
    """What scoring measures the version against once it serves: its holdout with its own
    out-of-sample prediction and label (drift of features and predictions; a regressor's
    DLE loss model is fitted on it), and the calibration of its probabilities on the
    holdout's labels (CBPE estimates)."""
    from modelkeeper.contracts.errors import DataError
    from modelkeeper.monitoring.cbpe import fit_calibrator

    spec, storage = ws.spec, ws.storage
    folder = storage.snapshot_dir(spec.name, run.run_id) / L.REFERENCE_DIR
    y_pred, proba = ws.predict(version.source, holdout_key, holdout)
    columns = [*spec.features.all, spec.data_schema.timestamp_column, spec.target.column]
    scored = holdout[columns].assign(prediction=proba if proba is not None else y_pred)
    storage.write_parquet(scored, folder / L.HOLDOUT_SCORED_FILE)
    if proba is not None:
        try:
            calibrator = fit_calibrator(proba, holdout[spec.target.column].to_numpy())
            storage.write_json(calibrator.to_dict(), folder / L.CALIBRATION_FILE)
        except DataError as exc:  # too few rows or one class: estimates use raw scores
            log.warning("no calibration for CBPE: %s", exc)
    ws.registry.log_artifacts(trained.mlflow_run_id, folder, L.REFERENCE_DIR)


def _record(ws, run, trained, score, champion, decision, holdout) -> None:  # noqa: ANN001
    """Metrics and verdict on the MLflow run and version; the candidate's metrics in the
    history (kind "evaluation"), beside what the version later measures in service."""
    from modelkeeper.monitoring.history import Measurement

    registry, spec, mlflow_run = ws.registry, ws.spec, trained.mlflow_run_id
    registry.log_metrics(mlflow_run, score.metrics, prefix="candidate_")
    registry.log_metrics(mlflow_run, {"eval_rows": score.rows})
    if champion is not None and champion.score is not None:
        registry.log_metrics(mlflow_run, champion.score.metrics, prefix="champion_")
    verdict = {L.DECISION: decision.verdict, L.DECISION_REASON: decision.reason}
    registry.set_run_tags(mlflow_run, verdict)
    judged = "none" if champion is None else champion.version
    registry.set_version_tags(ws.name, trained.version, {**verdict, L.JUDGED_AGAINST: judged})
    if ws.history is None:
        return
    ts = holdout[spec.data_schema.timestamp_column]
    base = {
        "version": trained.version,
        "run_id": run.run_id,
        "dag_id": run.dag_id,
        "window_start": ts.min().isoformat() if len(ts) else None,
        "window_end": ts.max().isoformat() if len(ts) else None,
        "rows": score.rows,
    }
    ws.history.record(
        [Measurement(spec.name, "evaluation", k, v, **base) for k, v in score.metrics.items()]
    )


def _model_card(ws, run, trained, score, model, holdout, decision, champion, current, monitoring):  # noqa: ANN001, ANN202
    from modelkeeper.modeling.evaluation import feature_importance
    from modelkeeper.modeling.modelcard import render_html, render_markdown

    spec, storage = ws.spec, ws.storage
    if champion is None:
        against = "no champion (first model)" if current is None else f"v{current.version}"
    elif champion.score is None:
        against = f"champion v{champion.version} (could not be scored: see the decision)"
    else:
        against = f"champion v{champion.version}, scored on the same holdout"
    markdown = render_markdown(
        spec,
        trained.version,
        training=trained,
        score=score,
        importance=feature_importance(model, holdout, spec),
        drift_summary=monitoring.drift_summary if monitoring else None,
        decision=decision,
        run_id=run.run_id,
        judged_against=against,
    )
    folder = storage.report_dir(spec.name, run.run_id) / L.MODEL_CARD
    storage.write_text(markdown, folder / "model_card.md")
    storage.write_text(
        render_html(markdown, f"{spec.name} v{trained.version}"), folder / "model_card.html"
    )
    ws.registry.log_artifacts(trained.mlflow_run_id, folder, L.MODEL_CARD)
