"""Late labels: a classification champion's performance per time window, realized and estimated.

Labels often arrive days or weeks after the predictions. Two measurements answer "how
is the champion doing?" per window of time:

- **realized**: rows that have the champion's probability *and* their (late) label are
  scored with modelkeeper.modeling.evaluation's own metric code, so these numbers are the ones
  the gate and the model card show.
- **estimated**: rows that have only the probability are scored with confidence-based
  performance estimation (CBPE, as NannyML describes it): if the probabilities are
  calibrated, a row with probability ``c`` is a positive with probability ``c``, so the
  expected confusion matrix at any threshold, and every metric built from it, follows
  from the probabilities alone. The model's raw scores are rarely calibrated, so a
  :class:`Calibrator` fitted on the champion's labelled holdout maps them to calibrated
  ones first. The estimate is only as good as that calibration: it follows covariate
  shift (new kinds of rows the model already scores correctly), not concept drift (the
  same rows now behaving differently), which only the realized metric reveals.

Windows are half-open ``[start + k*every, start + (k+1)*every)`` bins of the time column:
``every`` is a pandas Timedelta string (``"7D"`` by default), ``start`` defaults to
midnight of the earliest row's day. The demo's weeks (7-day blocks from 2013-01-01) are
exactly these windows; pass a Monday as ``start`` for Monday-to-Sunday weeks.

The predicted class is ``proba > threshold`` (0.5), what a scikit-learn binary
classifier's ``predict`` returns (its argmax sends a tie at 0.5 to class 0), unless the
frame carries the champion's predicted class (``prediction=``). Labels are 0/1.
Model name and version are the caller's to add to the measurements.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from modelkeeper.contracts.errors import DataError
from modelkeeper.contracts.handoff import Handoff
from modelkeeper.contracts.jsonio import as_float
from modelkeeper.modeling.evaluation import _metrics

REALIZED = "realized"
ESTIMATED = "estimated"
Kind = Literal["realized", "estimated"]
#: The order measurements come in (evaluation computes the same six).
METRICS: tuple[str, ...] = (
    "roc_auc",
    "average_precision",
    "log_loss",
    "brier",
    "accuracy",
    "f1",
)
DEFAULT_EVERY = "7D"
DEFAULT_THRESHOLD = 0.5
CALIBRATION_METHODS = ("isotonic", "platt", "identity")
#: Fewer labelled reference rows than this cannot calibrate anything.
MIN_CALIBRATION_ROWS = 50
_EPS = 1e-12
_CLIP = 1e-15  # evaluation's log-loss clip


@dataclass(frozen=True)
class Measurement(Handoff):
    """One metric of one window (overall, or one value of one slice column)."""

    window_start: str  # ISO, inclusive
    window_end: str  # ISO, exclusive
    kind: Kind
    metric: str
    value: float
    rows: int  # labelled rows (realized) or rows with a probability (estimated)
    slice_column: str | None = None
    slice_value: str | None = None

    @classmethod
    def from_dict(cls, data: Any) -> Measurement:
        m = super().from_dict(data)
        return dataclasses.replace(m, value=float(as_float(m.value)))

    @property
    def key(self) -> tuple[str, str | None, str | None, str]:
        """What a realized and an estimated measurement of the same thing share."""
        return (self.window_start, self.slice_column, self.slice_value, self.metric)


# -- calibration --------------------------------------------------------------------------------


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
        p = _as_proba(proba)
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
    p = _as_proba(reference_proba)
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


# -- CBPE ---------------------------------------------------------------------------------------


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
    wanted = _wanted(metrics)
    q = _as_proba(proba)
    if len(q) == 0:
        return {}
    c = (calibrator or Calibrator.identity()).apply(q)
    predicted = _predicted(q, prediction, threshold)
    return _expected(q, c, predicted, wanted)


def _expected(
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


# -- per window ---------------------------------------------------------------------------------


def realized(
    frame: pd.DataFrame,
    *,
    label: str,
    proba: str,
    time_column: str,
    min_rows: int,
    prediction: str | None = None,
    slices: Sequence[str] = (),
    every: str | pd.Timedelta = DEFAULT_EVERY,
    start: Any = None,
    metrics: Iterable[str] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
) -> list[Measurement]:
    """The champion's metrics per window on the rows whose label has arrived.

    Rows without a label (or a probability) are left out. A window, or a slice value
    in it, is measured only with at least ``min_rows`` labelled rows; ranking metrics
    (and f1, log_loss, brier) need both classes, as evaluation computes them.
    """
    wanted = _wanted(metrics)
    _check_columns(frame, [label, proba, time_column, *([prediction] if prediction else [])])
    have = frame[label].notna() & frame[proba].notna()
    rows = frame.loc[have]
    y = rows[label].to_numpy().astype("int64")
    q = _as_proba(rows[proba])
    predicted = _predicted(q, None if prediction is None else rows[prediction], threshold)

    def measure(idx: np.ndarray) -> dict[str, float]:
        got = _metrics(y[idx], predicted[idx].astype("int64"), q[idx], "classification")
        return {m: got[m] for m in wanted if m in got}

    return list(_per_window(rows, REALIZED, measure, time_column, slices, min_rows, every, start))


def estimated(
    frame: pd.DataFrame,
    *,
    proba: str,
    calibrator: Calibrator | None,
    time_column: str,
    min_rows: int,
    prediction: str | None = None,
    slices: Sequence[str] = (),
    every: str | pd.Timedelta = DEFAULT_EVERY,
    start: Any = None,
    metrics: Iterable[str] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
) -> list[Measurement]:
    """CBPE (:func:`estimate`) per window and slice, labels or not, on rows with a probability."""
    wanted = _wanted(metrics)
    _check_columns(frame, [proba, time_column, *([prediction] if prediction else [])])
    rows = frame.loc[frame[proba].notna()]
    q = _as_proba(rows[proba])
    c = (calibrator or Calibrator.identity()).apply(q)
    predicted = _predicted(q, None if prediction is None else rows[prediction], threshold)

    def measure(idx: np.ndarray) -> dict[str, float]:
        return _expected(q[idx], c[idx], predicted[idx], wanted)

    return list(_per_window(rows, ESTIMATED, measure, time_column, slices, min_rows, every, start))


def window_codes(
    times: pd.Series, *, every: str | pd.Timedelta = DEFAULT_EVERY, start: Any = None
) -> tuple[np.ndarray, pd.Timestamp, pd.Timedelta]:
    """Each timestamp's window number k: start + k*every <= t < start + (k+1)*every.

    Returns (codes, start, every); codes are floats, NaN for a missing timestamp (no
    window), negative for rows before an explicit ``start``.
    """
    step = pd.Timedelta(every)
    if step <= pd.Timedelta(0):
        raise ValueError(f"every must be a positive duration, got {every!r}")
    ts = pd.to_datetime(pd.Series(times).reset_index(drop=True))
    first = ts.min()
    if start is None:
        origin = first.normalize() if pd.notna(first) else pd.Timestamp(0)
    else:
        origin = pd.Timestamp(start)
        tz = getattr(first, "tzinfo", None)
        if origin.tzinfo is None and tz is not None:
            origin = origin.tz_localize(tz)
    codes = ((ts - origin) // step).to_numpy(dtype="float64", na_value=np.nan)
    return codes, origin, step


def _per_window(
    rows: pd.DataFrame,
    kind: Kind,
    measure: Any,
    time_column: str,
    slices: Sequence[str],
    min_rows: int,
    every: str | pd.Timedelta,
    start: Any,
) -> Iterator[Measurement]:
    if min_rows < 1:
        raise ValueError(f"min_rows must be >= 1, got {min_rows}")
    _check_columns(rows, list(slices))
    codes, origin, step = window_codes(rows[time_column], every=every, start=start)
    positions = np.flatnonzero(~np.isnan(codes))
    by_window = pd.Series(positions).groupby(codes[positions].astype("int64")).indices
    for k in sorted(by_window):
        idx = positions[by_window[k]]
        lo, hi = origin + int(k) * step, origin + (int(k) + 1) * step
        window = (lo.isoformat(), hi.isoformat())
        yield from _measurements(window, kind, measure, idx, None, None, min_rows)
        for col in slices:
            values = rows[col].iloc[idx]
            groups = values.groupby(values, observed=True, dropna=False, sort=True).indices
            for value, sub in groups.items():
                yield from _measurements(window, kind, measure, idx[sub], col, str(value), min_rows)


def _measurements(
    window: tuple[str, str],
    kind: Kind,
    measure: Any,
    idx: np.ndarray,
    column: str | None,
    value: str | None,
    min_rows: int,
) -> Iterator[Measurement]:
    if len(idx) < min_rows:
        return
    for metric, number in measure(idx).items():
        if math.isfinite(number):
            yield Measurement(window[0], window[1], kind, metric, number, len(idx), column, value)


def as_frame(measurements: Iterable[Measurement]) -> pd.DataFrame:
    """Measurements as one row each (for tables and joins)."""
    columns = [
        "window_start",
        "window_end",
        "kind",
        "metric",
        "value",
        "rows",
        "slice_column",
        "slice_value",
    ]
    return pd.DataFrame([m.to_dict() for m in measurements], columns=columns)


# -- helpers ------------------------------------------------------------------------------------


def _wanted(metrics: Iterable[str] | None) -> list[str]:
    if metrics is None:
        return list(METRICS)
    names = [metrics] if isinstance(metrics, str) else list(metrics)
    unknown = sorted(set(names) - set(METRICS))
    if unknown:
        raise ValueError(f"unknown classification metrics {unknown}; known: {list(METRICS)}")
    return [m for m in METRICS if m in names]


def _as_proba(values: Any) -> np.ndarray:
    p = np.asarray(values, dtype="float64").reshape(-1)
    if np.any((p < 0) | (p > 1)):
        raise DataError("probabilities must lie in [0, 1]")
    return p


def _predicted(q: np.ndarray, prediction: Any, threshold: float) -> np.ndarray:
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


def _check_columns(frame: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"columns {missing} not in the frame (has {list(frame.columns)})")
