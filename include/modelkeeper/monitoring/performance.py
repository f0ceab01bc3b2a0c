"""Late labels: the champion's performance per time window, realized and estimated.

Labels often arrive days or weeks after the predictions. Two measurements answer "how
is the champion doing?" per window of time:

- **realized**: rows that have the champion's probability (a regressor's prediction)
  *and* their (late) label are scored with modelkeeper.modeling.evaluation's own metric
  code, so these numbers are the ones the gate and the model card show.
- **estimated**: rows that have only the probability are scored with CBPE
  (modelkeeper.monitoring.cbpe), calibrated on the champion's labelled holdout; a
  regressor's rows (features and prediction) with DLE (modelkeeper.monitoring.dle), a
  model of the champion's loss fitted on that holdout.

Windows are half-open ``[start + k*every, start + (k+1)*every)`` bins of the time column:
``every`` is a pandas Timedelta string (``"7D"`` by default), ``start`` defaults to
midnight of the earliest row's day. The demo's weeks (7-day blocks from 2013-01-01) are
exactly these windows; pass a Monday as ``start`` for Monday-to-Sunday weeks.

The predicted class is ``proba > threshold`` (0.5), what a scikit-learn binary
classifier's ``predict`` returns (its argmax sends a tie at 0.5 to class 0), unless the
frame carries the champion's predicted class (``prediction=``). Labels are 0/1. A
regressor's realized and estimated measurements both come from ``regression``. Model
name and version are the caller's to add to the measurements.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from modelkeeper.contracts.errors import DataError
from modelkeeper.contracts.results import Measurement
from modelkeeper.modeling.evaluation import _metrics
from modelkeeper.monitoring import dle
from modelkeeper.monitoring.cbpe import (
    DEFAULT_THRESHOLD,
    Calibrator,
    as_proba,
    expected_metrics,
    predicted_class,
    wanted_metrics,
)

REALIZED = "realized"
ESTIMATED = "estimated"
Kind = Literal["realized", "estimated"]
DEFAULT_EVERY = "7D"
REGRESSION_METRICS: tuple[str, ...] = ("rmse", "mae", "r2")  # evaluation's


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
    wanted = wanted_metrics(metrics)
    _check_columns(frame, [label, proba, time_column, *([prediction] if prediction else [])])
    have = frame[label].notna() & frame[proba].notna()
    rows = frame.loc[have]
    y = rows[label].to_numpy().astype("int64")
    q = as_proba(rows[proba])
    predicted = predicted_class(q, None if prediction is None else rows[prediction], threshold)

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
    wanted = wanted_metrics(metrics)
    _check_columns(frame, [proba, time_column, *([prediction] if prediction else [])])
    rows = frame.loc[frame[proba].notna()]
    q = as_proba(rows[proba])
    c = (calibrator or Calibrator.identity()).apply(q)
    predicted = predicted_class(q, None if prediction is None else rows[prediction], threshold)

    def measure(idx: np.ndarray) -> dict[str, float]:
        return expected_metrics(q[idx], c[idx], predicted[idx], wanted)

    return list(_per_window(rows, ESTIMATED, measure, time_column, slices, min_rows, every, start))


def regression(
    frame: pd.DataFrame,
    *,
    label: str,
    prediction: str,
    estimator: dle.LossEstimator | None,
    time_column: str,
    min_rows: int,
    slices: Sequence[str] = (),
    every: str | pd.Timedelta = DEFAULT_EVERY,
    start: Any = None,
    metrics: Iterable[str] | None = None,
    estimate_min_rows: int = 1,
) -> tuple[list[Measurement], list[Measurement]]:
    """A regressor's (realized, estimated) measurements per window and slice.

    Realized: rmse, mae and r2 as evaluation computes them, on the rows whose label has
    arrived, in windows with at least ``min_rows`` of them. Estimated (with an
    ``estimator``): DLE's rmse and mae on every row with a prediction and its features
    (a row without any would be estimated from nothing), labels or not, in windows with
    at least ``estimate_min_rows`` such rows.
    """
    names = None if metrics is None else {metrics} if isinstance(metrics, str) else set(metrics)
    _check_columns(frame, [label, prediction, time_column])
    y, p = _numbers(frame[label]), _numbers(frame[prediction])
    have = np.isfinite(y) & np.isfinite(p)
    y_have, p_have = y[have], p[have]
    wanted = [m for m in REGRESSION_METRICS if names is None or m in names]

    def real(idx: np.ndarray) -> dict[str, float]:
        got = _metrics(y_have[idx], p_have[idx], None, "regression")
        return {m: got[m] for m in wanted}

    window = (time_column, slices, min_rows, every, start)
    realized_ = list(_per_window(frame.loc[have], REALIZED, real, *window))
    if estimator is None:
        return realized_, []
    _check_columns(frame, [*estimator.numeric, *estimator.categorical])
    featured = frame[[*estimator.numeric, *estimator.categorical]].notna().any(axis=1)
    rows = frame.loc[np.isfinite(p) & featured.to_numpy()]
    absolute, squared = estimator.losses(rows)
    wanted_est = dle.wanted_metrics(wanted)

    def estimate(idx: np.ndarray) -> dict[str, float]:
        return dle.expected_metrics(absolute[idx], squared[idx], wanted_est)

    window = (time_column, slices, estimate_min_rows, every, start)
    return realized_, list(_per_window(rows, ESTIMATED, estimate, *window))


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
            yield Measurement(
                "",
                kind,
                metric,
                number,
                window_start=window[0],
                window_end=window[1],
                rows=len(idx),
                slice_column=column,
                slice_value=value,
            )


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


def _numbers(col: pd.Series) -> np.ndarray:
    return pd.to_numeric(col, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def _check_columns(frame: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"columns {missing} not in the frame (has {list(frame.columns)})")
