"""monitor: how the champion fares on the newly accepted rows, before deciding to retrain.

Data drift and prediction drift of the batch against the champion's reference (the
sample it was trained on, stored in its MLflow run; the champion's own prediction is a
column on both sides), the champion's metrics on the batch once it has enough rows, and
how stale its data is. A champion that cannot be used (its model does not load, it has
no reference, the spec's features changed) is reported, never a dead end: decide
retrains. An unreachable MLflow is not the champion's fault: it propagates (retry).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from modelkeeper.contracts import lineage as L
from modelkeeper.contracts.errors import TransientError
from modelkeeper.contracts.results import Monitoring

if TYPE_CHECKING:
    import pandas as pd

    from modelkeeper.contracts.results import Accepted
    from modelkeeper.records.registry import VersionInfo
    from modelkeeper.stages.workspace import Run, Workspace

log = logging.getLogger(__name__)


def monitor(ws: Workspace, run: Run, accepted: Accepted, *, evidence: bool = True) -> Monitoring:
    """The champion on the accepted batch; `evidence=False` measures only its metrics (no
    drift, detector or shadow: for a caller that does not decide on them)."""
    from modelkeeper.decisions.retrain import age_days
    from modelkeeper.stages.evidence import gather

    batch = _batch(ws, accepted)
    champion = ws.registry.alias(ws.name)
    trained = None
    if run.mlflow_run_id:  # a rerun: this run registered a version already
        done = ws.registry.version_for_run(ws.name, run.mlflow_run_id)
        trained = done.version if done is not None else None
    if champion is None:
        log.info("no champion yet: nothing to compare the batch against")
        return Monitoring(champion_version=None, batch_rows=len(batch), trained_version=trained)
    model, problem = usable_champion(ws, champion)
    if problem is not None:
        # Never a dead end: decide retrains, and the gate's rule for a champion it cannot
        # compare with applies (spec promotion.unusable_champion).
        log.warning("champion v%s is unusable: %s", champion.version, problem)
        return Monitoring(
            champion_version=champion.version,
            batch_rows=len(batch),
            trained_version=trained,
            champion_problem=problem,
        )
    metrics = _batch_metrics(ws, champion.source, accepted, batch)
    found = (
        gather(ws, run, champion, model, accepted, batch, metrics)
        if evidence and len(batch)
        else {}
    )
    fresh_until = max(
        filter(None, [champion.tags.get(L.DATA_END), champion.tags.get(L.HELD_UNTIL)]), default=None
    )
    result = Monitoring(
        champion_version=champion.version,
        batch_rows=len(batch),
        champion_metric=metrics.get(ws.spec.metrics.primary),
        champion_metrics=metrics,
        trained_version=trained,
        champion_age_days=age_days(fresh_until, accepted.end),
        **found,
    )
    if run.mlflow_run_id:
        _log(ws, run, result)
    log.info(
        "champion v%s on %s new rows: %s=%s; %s",
        champion.version,
        len(batch),
        ws.spec.metrics.primary,
        result.champion_metric,
        result.drift_summary or "drift not computed",
    )
    return result


def usable_champion(ws: Workspace, champion: VersionInfo) -> tuple[Any, str | None]:
    """(model, None), or (None, why the champion cannot be measured)."""
    spec = ws.spec
    try:
        model = ws.load_model(champion.source)
    except TransientError:
        raise
    except Exception as exc:
        return None, f"its model cannot be loaded ({type(exc).__name__}: {exc})"
    columns = ws.registry.input_columns(champion.uri)
    if columns is not None and sorted(columns) != sorted(spec.features.all):
        gone = sorted(set(columns) - set(spec.features.all))
        new = sorted(set(spec.features.all) - set(columns))
        return None, f"the spec's features changed since (new: {new}, dropped: {gone})"
    try:
        reference_frame(ws, champion)
    except TransientError:
        raise
    except Exception as exc:
        return None, f"it has no stored reference data ({type(exc).__name__}: {exc})"
    return model, None


def reference_frame(ws: Workspace, version: VersionInfo) -> pd.DataFrame:
    """The sample a version was trained on (its MLflow run's reference artifact)."""
    return ws.run_frame(version.run_id, L.REFERENCE_ARTIFACT)


def with_prediction(ws: Workspace, model: Any, frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` plus the model's `prediction` column (probability of the positive class for
    a classifier, the value for a regressor): prediction drift is drift of that column."""
    from modelkeeper.modeling.evaluation import predict
    from modelkeeper.modeling.training import features_frame

    if frame.empty:  # a forced run with no new rows: nothing to predict on
        return frame
    y_pred, proba = predict(model, features_frame(frame, ws.spec), ws.spec.target.task)
    return frame.assign(prediction=proba if proba is not None else y_pred)


def _batch(ws: Workspace, accepted: Accepted) -> pd.DataFrame:
    import pandas as pd

    return ws.storage.read_parquet(accepted.path) if accepted.path else pd.DataFrame()


def reference_with_prediction(ws: Workspace, champion: VersionInfo, model: Any) -> pd.DataFrame:
    """The champion's reference with its own prediction as a column, once per process."""
    key = f"{champion.run_id}/{L.REFERENCE_ARTIFACT}#{champion.source}"
    if key not in ws.memo.frames:
        ws.memo.frames[key] = with_prediction(ws, model, reference_frame(ws, champion))
    return ws.memo.frames[key]


def drift_of(ws: Workspace, run: Run, champion: VersionInfo, model: Any, batch, batch_key: str):  # noqa: ANN001, ANN201
    """Drift of the batch (and the champion's prediction of it) against its reference."""
    from modelkeeper.monitoring.drift import DriftError, compute_drift

    reference = reference_with_prediction(ws, champion, model)
    if len(batch):
        y_pred, proba = ws.predict(champion.source, batch_key, batch)
        batch = batch.assign(prediction=proba if proba is not None else y_pred)
    reports = ws.storage.report_dir(ws.spec.name, run.run_id) if ws.reports else None
    try:
        return compute_drift(
            reference,
            batch,
            ws.spec,
            extra_numeric=["prediction"],
            html_path=None if reports is None else reports / L.REPORT_DRIFT,
            json_path=None if reports is None else reports / L.DRIFT_JSON,
        )
    except DriftError as exc:
        log.warning("drift not computed: %s", exc)
        return None


def _batch_metrics(
    ws: Workspace, source: str, accepted: Accepted, batch: pd.DataFrame
) -> dict[str, float]:
    """A model's metrics on the batch, when it is large enough to mean something."""
    if not len(batch) or len(batch) < max(1, ws.spec.retrain.min_new_rows):
        return {}
    return dict(ws.score(source, str(accepted.path), batch, slices=False).metrics)


def _log(ws: Workspace, run: Run, result: Monitoring) -> None:
    registry, primary = ws.registry, ws.spec.metrics.primary
    registry.log_metrics(
        run.mlflow_run_id,
        {"drift_share": result.drift_share, f"champion_batch_{primary}": result.champion_metric},
    )
    if ws.reports:
        reports = ws.storage.report_dir(ws.spec.name, run.run_id)
        registry.log_artifacts(run.mlflow_run_id, reports / L.REPORT_DRIFT, L.DRIFT_REPORTS)
        registry.log_artifacts(run.mlflow_run_id, reports / L.DRIFT_JSON, L.DRIFT_REPORTS)


def versions_on_batch(
    ws: Workspace, accepted: Accepted, versions: list[str | None]
) -> dict[str, float | None]:
    """The primary metric of registered versions on the accepted batch (when it is large
    enough to mean something): a retrained model beside the one it was meant to replace."""
    batch = _batch(ws, accepted)
    out: dict[str, float | None] = {}
    for version in filter(None, versions):
        source = ws.registry.get_version(ws.name, version).source
        out[version] = _batch_metrics(ws, source, accepted, batch).get(ws.spec.metrics.primary)
    return out
