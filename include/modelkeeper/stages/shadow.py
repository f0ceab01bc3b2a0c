"""The shadow challenger: would retraining pay off? Known before a version is registered.

On each new labelled batch, a challenger is fitted cheaply (the spec's pipeline on a
random sample of `retrain.shadow.sample_rows` accepted rows of the training window that
ends before the batch) and scored beside the champion on the batch, paired row by row.
It is never registered. Its sample costs it some accuracy against a full fit; that
handicap was measured on the champion's own holdout when the champion was trained
(lineage.SHADOW_HANDICAP) and is added back, so the advantage reads as "a full retrain
now would be this much better than the champion on these rows".
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import pandas as pd

from modelkeeper.contracts import lineage as L
from modelkeeper.contracts.results import Comparison, Shadow

if TYPE_CHECKING:
    from modelkeeper.records.registry import VersionInfo
    from modelkeeper.stages.workspace import Workspace

log = logging.getLogger(__name__)


def shadow(
    ws: Workspace, champion: VersionInfo, batch: pd.DataFrame, batch_key: str
) -> Shadow | None:
    """The shadow's advantage over the champion on `batch`; None when it cannot be had
    (turned off, too few labelled rows, nothing to train on before the batch)."""
    spec = ws.spec
    conf = spec.retrain.shadow
    labelled = batch[batch[spec.target.column].notna()] if len(batch) else batch
    if not conf.enabled or len(labelled) < max(1, spec.retrain.min_new_rows):
        return None
    ts = spec.data_schema.timestamp_column
    fitted = _fit(ws, pd.Timestamp(labelled[ts].min()))
    if fitted is None:
        return None
    model, train_rows, seconds = fitted
    if len(labelled) < len(batch):  # other rows than the batch's: another memo key
        batch_key = f"{batch_key}#labelled"
    champ_pred, champ_proba = ws.predict(champion.source, batch_key, labelled)
    from modelkeeper.decisions.stats import compare
    from modelkeeper.modeling.evaluation import predict
    from modelkeeper.modeling.training import features_frame

    pred, proba = predict(model, features_frame(labelled, spec), spec.target.task)
    metric = spec.metrics.primary
    y = labelled[spec.target.column].to_numpy()
    raw = compare(
        metric,
        y,
        metric_input(metric, champ_pred, champ_proba),
        metric_input(metric, pred, proba),
        level=conf.level,
    )
    handicap = float(champion.tags.get(L.SHADOW_HANDICAP) or 0.0)
    handicap_sd = float(champion.tags.get(L.SHADOW_HANDICAP_SD) or 0.0)
    baseline = champion.tags.get(L.BASELINE_METRIC)
    return Shadow(
        comparison=_with_handicap(raw, handicap, handicap_sd),
        train_rows=train_rows,
        fit_seconds=round(seconds, 3),
        handicap=handicap,
        baseline=None if baseline is None else float(baseline),
    )


def metric_input(metric: str, predicted: Any, proba: Any) -> Any:
    """What `metric` reads of a model's output: probabilities for ranking and probabilistic
    metrics (when there are any), predicted classes or values otherwise."""
    wants_proba = metric in ("roc_auc", "average_precision", "log_loss", "brier")
    return proba if wants_proba and proba is not None else predicted


def sample_fit(ws: Workspace, frame: pd.DataFrame) -> tuple[Any, int, float]:
    """The spec's pipeline fitted on a random sample of `frame` (the shadow's recipe):
    (model, rows, seconds)."""
    from modelkeeper.modeling.training import fit

    rows = min(ws.spec.retrain.shadow.sample_rows, len(frame))
    sample = frame.sample(n=rows, random_state=0) if rows < len(frame) else frame
    started = time.perf_counter()
    model = fit(ws.spec, sample)
    return model, rows, time.perf_counter() - started


def _fit(ws: Workspace, before: pd.Timestamp) -> tuple[Any, int, float] | None:
    """The shadow fitted on the training window that ends just before `before`, once per
    process (the backtest's policies share it like any fit)."""
    from modelkeeper.contracts.errors import TrainingDataError
    from modelkeeper.data.pool import load_window
    from modelkeeper.stages.train import fit_key

    spec = ws.spec
    until = (before - pd.Timedelta(microseconds=1)).isoformat()
    frame = load_window(spec, ws.storage, days=spec.window.training_days, until=until)
    ts = spec.data_schema.timestamp_column
    # The same rows make the same shadow, whatever window reached them (all history and a
    # ten-year window over one year of data): fitted once per process.
    span = (len(frame), str(frame[ts].min()), str(frame[ts].max())) if len(frame) else (0,)
    key = ("shadow", fit_key(ws), *span, spec.retrain.shadow.sample_rows)
    if key not in ws.memo.shadows:
        classes = frame[spec.target.column].nunique() if len(frame) else 0
        if len(frame) < max(2, spec.retrain.min_new_rows) or (
            spec.target.task == "classification" and classes < 2
        ):
            ws.memo.shadows[key] = None
        else:
            try:
                ws.memo.shadows[key] = sample_fit(ws, frame)
            except TrainingDataError as exc:
                log.info("no shadow: %s", exc)
                ws.memo.shadows[key] = None
    return ws.memo.shadows[key]


def _with_handicap(c: Comparison, handicap: float, sd: float) -> Comparison:
    """The shadow's advantage as a full fit's: plus the handicap, its interval widened by
    the handicap's own uncertainty (independent estimates: variances add)."""
    from dataclasses import replace
    from statistics import NormalDist

    if not handicap and not sd:
        return c
    z = NormalDist().inv_cdf(0.5 + c.level / 2)
    half = (c.hi - c.lo) / 2
    wider = (half**2 + (z * sd) ** 2) ** 0.5
    mid = (c.hi + c.lo) / 2 + handicap
    return replace(
        c,
        advantage=c.advantage + handicap,
        lo=mid - wider,
        hi=mid + wider,
        method=f"{c.method}; {handicap:+.4f} ± {sd:.4f} for the shadow's smaller sample",
    )
