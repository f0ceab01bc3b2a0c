"""Scoring a model on a frame: overall metrics, per-slice metrics, latency, importance.

Candidate and champion are always scored by the same function on the same frame, so
their numbers are comparable (TFX Evaluator's rule).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from modelkeeper.contracts.results import ModelScore
from modelkeeper.modeling.training import features_frame

if TYPE_CHECKING:
    from modelkeeper.contracts.spec import ModelSpec


def _metrics(
    y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray | None, task: str
) -> dict[str, float]:
    from sklearn import metrics as m

    if task == "regression":
        return {
            "rmse": float(np.sqrt(m.mean_squared_error(y_true, y_pred))),
            "mae": float(m.mean_absolute_error(y_true, y_pred)),
            "r2": float(m.r2_score(y_true, y_pred)) if len(y_true) > 1 else float("nan"),
        }
    out = {"accuracy": float(m.accuracy_score(y_true, y_pred))}
    if len(np.unique(y_true)) < 2 or proba is None:
        return out  # ranking metrics are undefined on one class
    out["roc_auc"] = float(m.roc_auc_score(y_true, proba))
    out["average_precision"] = float(m.average_precision_score(y_true, proba))
    out["log_loss"] = float(m.log_loss(y_true, np.clip(proba, 1e-15, 1 - 1e-15), labels=[0, 1]))
    out["brier"] = float(m.brier_score_loss(y_true, proba))
    out["f1"] = float(m.f1_score(y_true, y_pred, zero_division=0))
    return out


def predict(model: Any, X: pd.DataFrame, task: str) -> tuple[np.ndarray, np.ndarray | None]:
    if task != "classification" or not hasattr(model, "predict_proba"):
        return np.asarray(model.predict(X)), None
    p = np.asarray(model.predict_proba(X))
    classes = getattr(model, "classes_", None)
    if classes is not None and p.ndim == 2 and p.shape[1] == len(classes):
        # What sklearn classifiers' predict does: one pass through the model, not two.
        y_pred = np.asarray(classes)[p.argmax(axis=1)]
    else:
        y_pred = np.asarray(model.predict(X))
    return y_pred, (p[:, 1] if p.ndim == 2 and p.shape[1] >= 2 else None)


def score_model(
    model: Any, frame: pd.DataFrame, spec: ModelSpec, *, slices: bool = True
) -> ModelScore:
    """Overall and per-slice metrics (slices=False: overall only, for a caller that reads
    just the metrics) plus batch predict latency per 1k rows."""
    X = features_frame(frame, spec)
    started = time.perf_counter()
    y_pred, proba = predict(model, X, spec.target.task)
    latency = (time.perf_counter() - started) * 1000 * 1000 / max(len(X), 1)
    return score_predictions(frame, y_pred, proba, spec, slices=slices, latency=latency)


def score_predictions(
    frame: pd.DataFrame,
    y_pred: np.ndarray,
    proba: np.ndarray | None,
    spec: ModelSpec,
    *,
    slices: bool = True,
    latency: float | None = None,
) -> ModelScore:
    """score_model's metrics from predictions already made on `frame` (a caller that
    predicted once and needs both the predictions and the metrics)."""
    y = frame[spec.target.column].to_numpy()
    task = spec.target.task
    per_slice: dict[str, dict[str, dict[str, float]]] = {}
    for col in spec.promotion.slices if slices else ():
        per_value: dict[str, dict[str, float]] = {}
        for value, idx in frame.groupby(col, observed=True, dropna=False).indices.items():
            sub = _metrics(y[idx], y_pred[idx], None if proba is None else proba[idx], task)
            per_value[str(value)] = {**sub, "rows": float(len(idx))}
        per_slice[col] = per_value
    classes = sorted(pd.unique(y).tolist()) if task == "classification" else []
    return ModelScore(
        metrics=_metrics(y, y_pred, proba, task),
        rows=len(frame),
        classes=classes,
        slices=per_slice,
        latency_ms_per_1k=None if latency is None else round(latency, 3),
    )


def paired_latency(
    models: list[Any], frame: pd.DataFrame, spec: ModelSpec, *, rounds: int = 3
) -> list[float]:
    """Each model's batch predict time per 1k rows on the same rows, measured in turns
    (a, b, a, b, ...) and the fastest round kept: a busy machine slows both alike, and
    a model is never compared with another one timed at a quieter moment."""
    X = features_frame(frame, spec)
    best = [float("inf")] * len(models)
    for _ in range(rounds):
        for i, model in enumerate(models):
            started = time.perf_counter()
            predict(model, X, spec.target.task)
            best[i] = min(best[i], (time.perf_counter() - started) * 1e6 / max(len(X), 1))
    return [round(b, 3) for b in best]


def slice_gap(score: ModelScore, metric: str, min_rows: int) -> tuple[float, str] | None:
    """Largest spread of `metric` between values of one slice column (with enough rows)."""
    worst: tuple[float, str] | None = None
    for col, per_value in score.slices.items():
        values = {
            v: s[metric] for v, s in per_value.items() if s["rows"] >= min_rows and metric in s
        }
        if len(values) < 2:
            continue
        lo, hi = min(values, key=values.get), max(values, key=values.get)
        gap = values[hi] - values[lo]
        if worst is None or gap > worst[0]:
            worst = (gap, f"{col}: {lo} {values[lo]:.3f} vs {hi} {values[hi]:.3f}")
    return worst


def feature_importance(
    model: Any, frame: pd.DataFrame, spec: ModelSpec, *, max_rows: int = 5000
) -> dict[str, float]:
    """Permutation importance of each raw feature on the held-out frame (primary metric)."""
    from sklearn.inspection import permutation_importance

    sample = (
        frame.sample(n=min(max_rows, len(frame)), random_state=0)
        if len(frame) > max_rows
        else frame
    )
    scoring = {
        "roc_auc": "roc_auc",
        "average_precision": "average_precision",
        "log_loss": "neg_log_loss",
        "accuracy": "accuracy",
        "f1": "f1",
        "rmse": "neg_root_mean_squared_error",
        "mae": "neg_mean_absolute_error",
        "r2": "r2",
        "brier": "neg_brier_score",
    }[spec.metrics.primary]
    result = permutation_importance(
        model,
        features_frame(sample, spec),
        sample[spec.target.column],
        scoring=scoring,
        n_repeats=3,
        random_state=0,
    )
    pairs = zip(spec.features.all, result.importances_mean, strict=True)
    return dict(sorted(((f, round(float(v), 5)) for f, v in pairs), key=lambda kv: -kv[1]))
