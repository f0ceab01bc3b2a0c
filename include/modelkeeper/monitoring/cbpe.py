"""Confidence-based performance estimation (CBPE): a classifier's metrics without labels.

If a classifier's probabilities are calibrated, a row with probability ``c`` is a positive
with probability ``c``, so the expected confusion matrix at any threshold, and every
metric built from it, follows from the probabilities alone (NannyML's CBPE). A model's
raw scores are rarely calibrated, so a :class:`Calibrator` fitted on the champion's
labelled holdout maps them to calibrated ones first. The estimate follows covariate shift
(new kinds of rows the model already scores correctly), not concept drift (the same rows
now behaving differently), which only the realized metric reveals.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from modelkeeper.contracts.errors import DataError
from modelkeeper.contracts.handoff import Handoff

#: The order measurements come in (evaluation computes the same six).
METRICS: tuple[str, ...] = (
    "roc_auc",
    "average_precision",
    "log_loss",
    "brier",
    "accuracy",
    "f1",
)


DEFAULT_THRESHOLD = 0.5


CALIBRATION_METHODS = ("isotonic", "platt", "identity")


#: Fewer labelled reference rows than this cannot calibrate anything.
MIN_CALIBRATION_ROWS = 50


_EPS = 1e-12


_CLIP = 1e-15  # evaluation's log-loss clip


@dataclass(frozen=True)
class Calibrator(Handoff):
    """Maps the champion's raw probability of the positive class to a calibrated one.

    Plain numbers only, so it is stored as JSON next to the model and applied without
    scikit-learn: ``isotonic`` interpolates linearly between the breakpoints ``x -> y``
    (clipped at both ends, what IsotonicRegression(out_of_bounds="clip").predict does);
    ``platt`` is ``sigmoid(slope * logit(p) + intercept)``; ``identity`` trusts the raw
    probabilities.
    """

    method: str
    x: list[float] = field(default_factory=list)
    y: list[float] = field(default_factory=list)
    slope: float = 1.0
    intercept: float = 0.0
    rows: int = 0  # labelled reference rows it was fitted on

    def __post_init__(self) -> None:
        if self.method not in CALIBRATION_METHODS:
            raise ValueError(f"calibration method {self.method!r}; known: {CALIBRATION_METHODS}")
        if self.method == "isotonic" and (not self.x or len(self.x) != len(self.y)):
            raise ValueError("an isotonic calibrator needs as many breakpoints x as y (>= 1)")

    @classmethod
    def identity(cls) -> Calibrator:
        return cls(method="identity")

    def apply(self, proba: Any) -> np.ndarray:
        p = as_proba(proba)
        if self.method == "isotonic":
            return np.interp(p, self.x, self.y)
        if self.method == "platt":
            return _sigmoid(self.slope * _logit(p) + self.intercept)
        return p


def fit_calibrator(
    reference_proba: Any, reference_labels: Any, *, method: str = "isotonic"
) -> Calibrator:
    """A calibrator fitted on the champion's labelled reference (its holdout predictions).

    Isotonic regression (NannyML's default too) assumes nothing about the shape of the
    miscalibration and needs a few thousand rows to be smooth; Platt scaling fits two
    numbers and suits small references. Fit it on rows the model was not trained on.
    """
    if method not in CALIBRATION_METHODS:
        raise ValueError(f"calibration method {method!r}; known: {CALIBRATION_METHODS}")
    p = as_proba(reference_proba)
    y = np.asarray(reference_labels)
    if y.shape != p.shape:
        raise DataError(f"{len(p)} reference probabilities but {len(y)} labels")
    known = ~pd.isna(y)
    p, y = p[known], y[known].astype("int64")
    if len(p) < MIN_CALIBRATION_ROWS:
        raise DataError(
            f"{len(p)} labelled reference rows; calibrating needs >= {MIN_CALIBRATION_ROWS}"
        )
    if len(np.unique(y)) < 2:
        raise DataError("the reference labels have a single class: nothing to calibrate on")
    if method == "identity":
        return Calibrator(method="identity", rows=len(p))
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, y)
        return Calibrator(
            method="isotonic",
            x=[float(v) for v in iso.X_thresholds_],
            y=[float(v) for v in iso.y_thresholds_],
            rows=len(p),
        )
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=1e6).fit(_logit(p).reshape(-1, 1), y)
    return Calibrator(
        method="platt",
        slope=float(lr.coef_[0, 0]),
        intercept=float(lr.intercept_[0]),
        rows=len(p),
    )


def estimate(
    proba: Any,
    calibrator: Calibrator | None = None,
    *,
    metrics: Iterable[str] | None = None,
    prediction: Any = None,
    threshold: float = DEFAULT_THRESHOLD,
) -> dict[str, float]:
    """CBPE: the metrics expected on rows with these probabilities, without their labels.

    Every row's label is taken as a coin with probability ``c`` (the calibrated
    probability) of being positive; the model itself is still judged on its raw scores
    ``q`` (its ranking, its predicted class, the probabilities it would be scored on).

    - roc_auc: sort by ``q``; at each distinct threshold the expected true positives are
      the running sum of ``c`` and the expected false positives that of ``1 - c``: the
      expected ROC curve, integrated with the trapezoid rule (NannyML's CBPE). That
      integral also counts each row paired with itself (weight ``c(1-c)``, half a pair),
      a bias of order 1/n; it is taken out, which makes the result the exact ratio
      E[correctly ordered positive-negative pairs] / E[positives * negatives].
    - average_precision: the same curves, precision at each threshold times the
      expected recall step (the row's own coin counted exactly).
    - accuracy: mean of ``c`` where the model predicts positive, ``1 - c`` elsewhere
      (with ``c = q``: mean(max(q, 1 - q))).
    - f1: from the expected confusion matrix at the predicted class, 2TP / (2TP + FP + FN).
    - brier: E[(q - y)^2] = (q - c)^2 + c(1 - c), averaged.
    - log_loss: E[-y log q - (1 - y) log(1 - q)], averaged (q clipped like evaluation).

    Ratios are ratios of expectations, so small windows are noisy and slightly biased;
    ranking metrics are left out when the expected positives or negatives are ~0.
    """
    wanted = wanted_metrics(metrics)
    q = as_proba(proba)
    if len(q) == 0:
        return {}
    c = (calibrator or Calibrator.identity()).apply(q)
    predicted = predicted_class(q, prediction, threshold)
    return expected_metrics(q, c, predicted, wanted)


def expected_metrics(
    q: np.ndarray, c: np.ndarray, predicted: np.ndarray, wanted: Sequence[str]
) -> dict[str, float]:
    out: dict[str, float] = {}
    need_curve = "roc_auc" in wanted or "average_precision" in wanted
    if need_curve:
        curve = _expected_curve(q, c)
        if curve is not None:
            if "roc_auc" in wanted:
                out["roc_auc"] = curve[0]
            if "average_precision" in wanted:
                out["average_precision"] = curve[1]
    if "log_loss" in wanted:
        qc = np.clip(q, _CLIP, 1 - _CLIP)
        out["log_loss"] = float(np.mean(-(c * np.log(qc) + (1 - c) * np.log1p(-qc))))
    if "brier" in wanted:
        out["brier"] = float(np.mean((q - c) ** 2 + c * (1 - c)))
    if "accuracy" in wanted:
        out["accuracy"] = float(np.mean(np.where(predicted, c, 1 - c)))
    if "f1" in wanted:
        tp = float(c[predicted].sum())
        fp = float((1 - c[predicted]).sum())
        fn = float(c[~predicted].sum())
        denom = 2 * tp + fp + fn
        out["f1"] = 2 * tp / denom if denom > _EPS else 0.0  # sklearn's zero_division=0
    return {m: out[m] for m in wanted if m in out}


def _expected_curve(q: np.ndarray, c: np.ndarray) -> tuple[float, float] | None:
    """(roc_auc, average_precision) expected under labels ~ Bernoulli(c), ranked by q."""
    order = np.argsort(-q, kind="mergesort")
    q, c = q[order], c[order]
    # The last row of each run of equal scores closes one threshold (ties move together).
    last = np.r_[np.flatnonzero(np.diff(q) != 0), len(q) - 1]
    var = c * (1 - c)
    tp = np.r_[0.0, np.cumsum(c)[last]]
    fp = np.r_[0.0, np.cumsum(1 - c)[last]]
    positives, negatives = tp[-1], fp[-1]
    self_pairs = float(var.sum())
    pairs = positives * negatives - self_pairs  # E[#positives * #negatives]
    if positives <= _EPS or negatives <= _EPS or pairs <= _EPS:
        return None
    area = float(np.sum(np.diff(fp) * (tp[1:] + tp[:-1]) / 2))
    roc_auc = (area - 0.5 * self_pairs) / pairs
    # AP = sum_k dTP_k * TP_k / n_k / #positives; E[dTP_k * TP_k] = dP_k * P_k + var_k.
    n_k = (last + 1).astype("float64")
    var_k = np.diff(np.r_[0.0, np.cumsum(var)[last]])
    d_tp = np.diff(tp)
    average_precision = float(np.sum((d_tp * tp[1:] + var_k) / n_k) / positives)
    return float(np.clip(roc_auc, 0.0, 1.0)), float(np.clip(average_precision, 0.0, 1.0))


def wanted_metrics(metrics: Iterable[str] | None) -> list[str]:
    if metrics is None:
        return list(METRICS)
    names = [metrics] if isinstance(metrics, str) else list(metrics)
    unknown = sorted(set(names) - set(METRICS))
    if unknown:
        raise ValueError(f"unknown classification metrics {unknown}; known: {list(METRICS)}")
    return [m for m in METRICS if m in names]


def as_proba(values: Any) -> np.ndarray:
    p = np.asarray(values, dtype="float64").reshape(-1)
    if np.any((p < 0) | (p > 1)):
        raise DataError("probabilities must lie in [0, 1]")
    return p


def predicted_class(q: np.ndarray, prediction: Any, threshold: float) -> np.ndarray:
    if prediction is None:
        return q > threshold
    pred = np.asarray(prediction).reshape(-1)
    if pred.shape != q.shape:
        raise DataError(f"{len(q)} probabilities but {len(pred)} predicted classes")
    return pred.astype("int64") == 1


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _CLIP, 1 - _CLIP)
    return np.log(p) - np.log1p(-p)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))
