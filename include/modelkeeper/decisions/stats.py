"""The statistics behind the decisions: paired comparisons and a calibrated change detector.

Two models scored on the same rows are compared *paired*: the difference of their metric,
with an interval from the rows' own variability (DeLong's variance for ROC AUC, a paired
bootstrap for every other metric). A week that is hard for both models moves both, so the
difference sees through it where each metric alone cannot.

The change detector is a one-sided CUSUM on a model's per-batch metric, standardised by
its baseline: `z = (baseline - metric) / sd` (higher-is-better metrics; the sign flips for
losses), `S = max(0, S + z - k)`, alarm when `S > h`. `h` is calibrated by simulation for a
stated false-alarm rate per step (one a year of weekly steps: 1/52).
"""

from __future__ import annotations

from statistics import NormalDist
from typing import TYPE_CHECKING

import numpy as np

from modelkeeper.contracts.metric_names import higher_is_better
from modelkeeper.contracts.results import Comparison

if TYPE_CHECKING:
    from collections.abc import Callable

#: Bootstrap resamples for a paired interval (metrics without a closed form).
RESAMPLES = 400
#: The CUSUM's allowance: half the shift (in baseline sds) it is tuned to catch quickly.
CUSUM_K = 0.5


def compare(
    metric: str,
    y: np.ndarray,
    pred_a: np.ndarray,
    pred_b: np.ndarray,
    *,
    level: float = 0.9,
    seed: int = 0,
) -> Comparison:
    """Model b against model a on the same rows. `pred_*` are what the metric reads: the
    positive class's probability for ranking and probabilistic metrics, the predicted
    class for accuracy/f1, the predicted value for regression metrics."""
    y, pred_a, pred_b = (np.asarray(v, dtype="float64") for v in (y, pred_a, pred_b))
    sign = 1.0 if higher_is_better(metric) else -1.0
    a, b = _METRICS[metric](y, pred_a), _METRICS[metric](y, pred_b)
    if metric == "roc_auc":
        se = _delong_se(y, pred_a, pred_b)
        z = NormalDist().inv_cdf(0.5 + level / 2)
        diff = sign * (b - a)
        lo, hi, method = diff - z * se, diff + z * se, "DeLong"
    else:
        lo, hi = _paired_bootstrap(_METRICS[metric], y, pred_a, pred_b, sign, level, seed)
        method = f"paired bootstrap ({RESAMPLES} resamples)"
    return Comparison(metric, a, b, sign * (b - a), lo, hi, len(y), level, method)


def metric_sd(metric: str, y: np.ndarray, pred: np.ndarray, rows: int, *, seed: int = 0) -> float:
    """The sd of `metric` on a batch of `rows` rows like these: DeLong's for ROC AUC, a
    bootstrap of the rows for the others (scaled from this many rows to `rows`)."""
    y, pred = np.asarray(y, dtype="float64"), np.asarray(pred, dtype="float64")
    scale = np.sqrt(len(y) / max(rows, 1))
    if metric == "roc_auc":
        return _delong_se(y, pred, np.zeros_like(pred), single=True) * scale
    rng = np.random.default_rng(seed)
    fn = _METRICS[metric]
    values = [fn(y[idx], pred[idx]) for idx in rng.integers(0, len(y), size=(100, len(y)))]
    values = [v for v in values if np.isfinite(v)]
    return float(np.std(values, ddof=1)) * scale if len(values) > 2 else float("nan")


# -- the change detector ---------------------------------------------------------------------


def cusum_threshold(false_alarm_rate: float, *, k: float = CUSUM_K, seed: int = 0) -> float:
    """The CUSUM threshold `h` whose in-control run length averages 1/false_alarm_rate
    steps, for standardised in-control deviations (simulated, 2,000 runs)."""
    target = 1.0 / false_alarm_rate
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((2000, int(target * 6)))

    def run_length(h: float) -> float:
        s = np.zeros(z.shape[0])
        first = np.full(z.shape[0], z.shape[1], dtype=float)
        alive = np.ones(z.shape[0], dtype=bool)
        for t in range(z.shape[1]):
            s = np.maximum(0.0, s + z[:, t] - k)
            hit = alive & (s > h)
            first[hit] = t + 1
            alive &= ~hit
            if not alive.any():
                break
        return float(first.mean())

    lo, hi = 0.0, 20.0
    for _ in range(30):  # run length grows with h: bisect
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if run_length(mid) < target else (lo, mid)
    return round(hi, 3)


def cusum_step(previous: float, z: float, *, k: float = CUSUM_K) -> float:
    """The CUSUM statistic after one more standardised deviation."""
    return max(0.0, previous + z - k)


# -- metrics on plain arrays -----------------------------------------------------------------


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else float("nan")


def _ap(y: np.ndarray, p: np.ndarray) -> float:
    """Average precision as scikit-learn computes it (ties form one threshold), in numpy:
    the bootstrap calls it hundreds of times."""
    positives = y.sum()
    if positives == 0:
        return float("nan")
    order = np.argsort(-p, kind="mergesort")
    p, y = p[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(p) != 0), len(p) - 1]  # each threshold's last row
    tp = np.cumsum(y)[last]
    precision = tp / (last + 1)
    recall_step = np.diff(np.r_[0.0, tp]) / positives
    return float(np.sum(recall_step * precision))


def _f1(y: np.ndarray, pred: np.ndarray) -> float:
    tp = float(np.sum((pred == 1) & (y == 1)))
    denom = 2 * tp + float(np.sum((pred == 1) & (y == 0))) + float(np.sum((pred == 0) & (y == 1)))
    return 2 * tp / denom if denom else 0.0


def _log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, 1e-15, 1 - 1e-15)
    return float(np.mean(-(y * np.log(p) + (1 - y) * np.log1p(-p))))


def _r2(y: np.ndarray, pred: np.ndarray) -> float:
    total = float(np.sum((y - y.mean()) ** 2))
    return 1 - float(np.sum((y - pred) ** 2)) / total if total else float("nan")


_METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "roc_auc": _auc,
    "average_precision": _ap,
    "log_loss": _log_loss,
    "brier": lambda y, p: float(np.mean((p - y) ** 2)),
    "accuracy": lambda y, pred: float(np.mean(pred == y)),
    "f1": _f1,
    "rmse": lambda y, pred: float(np.sqrt(np.mean((y - pred) ** 2))),
    "mae": lambda y, pred: float(np.mean(np.abs(y - pred))),
    "r2": _r2,
}


def _paired_bootstrap(fn, y, pa, pb, sign, level, seed) -> tuple[float, float]:  # noqa: ANN001
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(RESAMPLES):
        idx = rng.integers(0, len(y), size=len(y))
        d = sign * (fn(y[idx], pb[idx]) - fn(y[idx], pa[idx]))
        if np.isfinite(d):
            diffs.append(d)
    if len(diffs) < 10:
        return float("nan"), float("nan")
    tail = (1 - level) / 2
    return float(np.quantile(diffs, tail)), float(np.quantile(diffs, 1 - tail))


def _delong_se(y: np.ndarray, pa: np.ndarray, pb: np.ndarray, *, single: bool = False) -> float:
    """The standard error of AUC(b) - AUC(a) on the same rows (DeLong et al. 1988); with
    `single`, of AUC(a) alone."""
    pos, neg = y == 1, y == 0
    m, n = int(pos.sum()), int(neg.sum())
    if m < 2 or n < 2:
        return float("nan")
    v10, v01 = [], []
    for p in (pa, pb):
        x, z = p[pos], p[neg]
        # Placement values through ranks: the share of negatives below each positive
        # (ties count half), and of positives above each negative.
        rx, rz, rall = _midrank(x), _midrank(z), _midrank(np.r_[x, z])
        v10.append((rall[:m] - rx) / n)
        v01.append(1.0 - (rall[m:] - rz) / m)
    s10, s01 = np.cov(np.vstack(v10)), np.cov(np.vstack(v01))
    if single:
        return float(np.sqrt(max(s10[0, 0] / m + s01[0, 0] / n, 0.0)))
    var = (s10[0, 0] + s10[1, 1] - 2 * s10[0, 1]) / m + (s01[0, 0] + s01[1, 1] - 2 * s01[0, 1]) / n
    return float(np.sqrt(max(var, 0.0)))


def _midrank(x: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(x, method="average")
