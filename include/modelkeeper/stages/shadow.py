"""The shadow challenger: would retraining pay off? Known before a version is registered.

On each new labelled batch two cheap fits of the spec's pipeline are scored side by side
on the batch, row by row, and neither is ever registered:

- the **twin**: fitted on a sample of the rows the champion learned from (the accepted
  window up to the champion's data end);
- the **shadow**: fitted on the same kind of sample of the window that ends just before
  the batch: the champion's rows that are still in the window plus everything newer.

Rows are sampled by a stable hash at one rate for both, so every old row the twin saw,
the shadow saw too: the two fits differ by the new data, not by the luck of two samples.
Their difference estimates what retraining now would add, at a fraction of a full fit's
cost. The twin is fitted once per champion (per process).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from modelkeeper.contracts import lineage as L
from modelkeeper.contracts.results import Shadow

if TYPE_CHECKING:
    from modelkeeper.contracts.spec import ModelSpec
    from modelkeeper.records.registry import VersionInfo
    from modelkeeper.stages.workspace import Workspace

log = logging.getLogger(__name__)
_BUCKETS = 10_000  # the hash's resolution for the sampling rate


def shadow(
    ws: Workspace, champion: VersionInfo, batch: pd.DataFrame, batch_key: str
) -> Shadow | str | None:
    """The shadow's advantage over the champion's twin on `batch`; else, when it cannot be
    had, a note saying why (None when the spec turns the shadow off)."""
    spec = ws.spec
    conf = spec.retrain.shadow
    if not conf.enabled:
        return None
    labelled = batch[batch[spec.target.column].notna()] if len(batch) else batch
    data_end = champion.tags.get(L.DATA_END)
    least = max(1, spec.retrain.min_new_rows)
    if not data_end:
        return f"no shadow: champion v{champion.version} does not say what data it learned from"
    if len(labelled) < least:
        return f"no shadow: {len(labelled)} labelled rows in the batch, fewer than {least}"
    ts = spec.data_schema.timestamp_column
    before = (pd.Timestamp(labelled[ts].min()) - pd.Timedelta(microseconds=1)).isoformat()
    window = _window(ws, before)
    newer = window[window[ts] > pd.Timestamp(data_end)] if len(window) else window
    if len(newer) < least:  # a retrain now would learn from the same rows
        return f"no shadow: {len(newer)} rows before this batch that the champion has not seen"
    rows = min(conf.sample_rows, max(conf.min_rows, conf.max_share * len(window)))
    rate = min(1.0, rows / len(window))
    twin, shadow_fit = _fit(ws, _window(ws, data_end), rate), _fit(ws, window, rate)
    if twin is None or shadow_fit is None:
        return "no shadow: nothing to fit on in the training window"
    from modelkeeper.decisions.stats import compare

    metric = spec.metrics.primary
    y = labelled[spec.target.column].to_numpy()
    comparison = compare(
        metric,
        y,
        _output(ws, twin[0], labelled),
        _output(ws, shadow_fit[0], labelled),
        level=conf.level,
    )
    if len(labelled) < len(batch):  # other rows than the batch's: another memo key
        batch_key = f"{batch_key}#labelled"
    champion_metric = ws.score(champion.source, batch_key, labelled, slices=False).metrics
    baseline = champion.tags.get(L.BASELINE_METRIC)
    return Shadow(
        comparison=comparison,
        train_rows=shadow_fit[1],
        fit_seconds=round(shadow_fit[2], 3),
        twin_seconds=round(twin[2], 3),
        baseline=None if baseline is None else float(baseline),
        champion=champion_metric.get(metric),
    )


def metric_input(metric: str, predicted: Any, proba: Any) -> Any:
    """What `metric` reads of a model's output: probabilities for ranking and probabilistic
    metrics (when there are any), predicted classes or values otherwise."""
    wants_proba = metric in ("roc_auc", "average_precision", "log_loss", "brier")
    return proba if wants_proba and proba is not None else predicted


def sample(ws: Workspace, frame: pd.DataFrame, rate: float) -> pd.DataFrame:
    """The rows whose stable hash falls under `rate`: the same row is in or out of every
    sample at that rate, whatever frame it arrives in."""
    if rate >= 1.0:
        return frame
    key = list(ws.spec.data_schema.unique_key or frame.columns)
    hashed = pd.util.hash_pandas_object(frame[key], index=False).to_numpy()
    return frame[(hashed % _BUCKETS) < int(rate * _BUCKETS)]


def _window(ws: Workspace, until: str) -> pd.DataFrame:
    from modelkeeper.data.pool import load_window

    spec = ws.spec
    return load_window(spec, ws.storage, days=spec.window.training_days, until=until)


def _fit(ws: Workspace, frame: pd.DataFrame, rate: float) -> tuple[Any, int, float] | None:
    """The spec's pipeline on the rate-sample of `frame`: (model, rows, seconds), once per
    process for the same rows (the backtest's policies and windows share it)."""
    from modelkeeper.contracts.errors import TrainingDataError
    from modelkeeper.modeling.training import fit
    from modelkeeper.stages.train import fit_key

    spec, ts = ws.spec, ws.spec.data_schema.timestamp_column
    if frame.empty:
        return None
    span = (len(frame), str(frame[ts].min()), str(frame[ts].max()))
    key = ("shadow", fit_key(ws), *span, round(rate, 4), spec.retrain.shadow.fit_share)
    if key not in ws.memo.shadows:
        rows = sample(ws, frame, rate)
        classes = rows[spec.target.column].nunique()
        if len(rows) < 2 or (spec.target.task == "classification" and classes < 2):
            ws.memo.shadows[key] = None
        else:
            started = time.process_time()  # CPU seconds, as train counts its fit
            try:
                model = fit(recipe(spec), rows)
            except TrainingDataError as exc:
                log.info("no shadow: %s", exc)
                model = None
            seconds = time.process_time() - started
            ws.memo.shadows[key] = None if model is None else (model, len(rows), seconds)
    return ws.memo.shadows[key]


def recipe(spec: ModelSpec) -> ModelSpec:
    """The spec with a lighter estimator for the shadow and its twin: a share of its trees
    or boosting iterations (the two are compared with each other, never with the champion,
    so they only need to be alike)."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    share = spec.retrain.shadow.fit_share
    cls = spec.estimator.load_class()
    defaults = cls().get_params()
    knob = "n_estimators" if "n_estimators" in defaults else None
    if issubclass(cls, (HistGradientBoostingClassifier, HistGradientBoostingRegressor)):
        knob = "max_iter"
    if knob is None or share >= 1:
        return spec
    full = spec.estimator.params.get(knob, defaults[knob])
    params = {**spec.estimator.params, knob: max(10, round(full * share))}
    return spec.model_copy(
        update={"estimator": spec.estimator.model_copy(update={"params": params})}
    )


def _output(ws: Workspace, model: Any, frame: pd.DataFrame) -> np.ndarray:
    from modelkeeper.modeling.evaluation import predict
    from modelkeeper.modeling.training import features_frame

    metric = ws.spec.metrics.primary
    return metric_input(
        metric, *predict(model, features_frame(frame, ws.spec), ws.spec.target.task)
    )
