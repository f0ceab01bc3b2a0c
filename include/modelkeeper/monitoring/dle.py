"""Direct loss estimation (DLE): a regression model's rmse and mae without labels.

A regressor's error is not the same everywhere: some rows are harder than others. A
second model, fitted on the champion's labelled holdout, learns the champion's loss from
the features and the champion's own prediction (NannyML's DLE); on new rows, the mean of
the losses it predicts is the metric expected there. One loss model learns the absolute
error (mae is its mean), one the squared error (rmse is the square root of its mean: the
mean squared error is what rmse averages, not the rmse of single rows). Like CBPE, the
estimate follows covariate shift (more of the rows the champion gets wrong), not concept
drift (the same rows now behaving differently), which only the realized metric reveals.
Fit it on rows the champion was not trained on: its errors there are the ones it makes
in service.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from modelkeeper.contracts.errors import DataError

#: What DLE estimates (r2 also needs the labels' variance, which unlabelled rows lack).
METRICS: tuple[str, ...] = ("rmse", "mae")

#: Fewer labelled reference rows than this cannot teach a loss model anything.
MIN_REFERENCE_ROWS = 100

# ONE_THREAD: the loss models are holdout-sized and fit in a fraction of a second on one
# thread; OpenMP's threads on a busy worker wait on each other instead (0.3 s on one
# thread, 11 s on two, measured on a loaded two-core machine).


@dataclass(frozen=True)
class LossEstimator:
    """The champion's expected absolute and squared error on a row, from its features and
    the champion's prediction there (two fitted scikit-learn pipelines)."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    prediction: str
    absolute: Any
    squared: Any
    rows: int  # labelled reference rows it was fitted on

    def losses(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Each row's expected (absolute error, squared error); a loss is never below 0."""
        if len(frame) == 0:
            return np.empty(0), np.empty(0)
        from threadpoolctl import threadpool_limits

        X = _inputs(frame, self.numeric, self.categorical, self.prediction)
        with threadpool_limits(1):  # see ONE_THREAD
            absolute = np.clip(self.absolute.predict(X), 0.0, None)
            squared = np.clip(self.squared.predict(X), 0.0, None)
        return absolute, squared

    def estimate(
        self, frame: pd.DataFrame, metrics: Iterable[str] | None = None
    ) -> dict[str, float]:
        """The metrics expected on these rows, without their labels."""
        absolute, squared = self.losses(frame)
        return expected_metrics(absolute, squared, wanted_metrics(metrics))


def fit_dle(
    reference: pd.DataFrame,
    *,
    numeric: Sequence[str],
    categorical: Sequence[str],
    label: str,
    prediction: str = "prediction",
    seed: int = 0,
) -> LossEstimator:
    """Loss models fitted on the champion's labelled reference: its holdout with the
    champion's out-of-sample `prediction` and the `label`. DataError when the reference
    has no labels or too few rows."""
    from threadpoolctl import threadpool_limits

    missing = [c for c in (*numeric, *categorical, label, prediction) if c not in reference]
    if missing:
        raise DataError(f"the reference lacks {missing} (has {list(reference.columns)})")
    y = pd.to_numeric(reference[label], errors="coerce").to_numpy(dtype="float64")
    p = pd.to_numeric(reference[prediction], errors="coerce").to_numpy(dtype="float64")
    known = np.isfinite(y) & np.isfinite(p)
    if known.sum() < MIN_REFERENCE_ROWS:
        raise DataError(
            f"{int(known.sum())} labelled reference rows; DLE needs >= {MIN_REFERENCE_ROWS}"
        )
    rows = reference.loc[known]
    X = _inputs(rows, numeric, categorical, prediction)
    error = y[known] - p[known]
    # Boosting splits a category set only up to its bins; beyond, the codes are ordered.
    native = [bool(X[c].nunique() < 250) for c in categorical]
    native += [False] * (X.shape[1] - len(native))
    with threadpool_limits(1):  # see ONE_THREAD
        absolute = _loss_model(len(categorical), native, len(X), seed).fit(X, np.abs(error))
        squared = _loss_model(len(categorical), native, len(X), seed).fit(X, error**2)
    return LossEstimator(
        tuple(numeric), tuple(categorical), prediction, absolute, squared, int(known.sum())
    )


def expected_metrics(
    absolute: np.ndarray, squared: np.ndarray, wanted: Sequence[str]
) -> dict[str, float]:
    """mae = mean expected absolute error; rmse = sqrt(mean expected squared error)."""
    if len(absolute) == 0:
        return {}
    out = {"rmse": float(np.sqrt(np.mean(squared))), "mae": float(np.mean(absolute))}
    return {m: out[m] for m in wanted}


def wanted_metrics(metrics: Iterable[str] | None) -> list[str]:
    """The metrics of `metrics` DLE can estimate, in METRICS' order (all by default)."""
    if metrics is None:
        return list(METRICS)
    names = {metrics} if isinstance(metrics, str) else set(metrics)
    return [m for m in METRICS if m in names]


def _loss_model(n_categorical: int, native: list[bool], rows: int, seed: int) -> Any:
    """Gradient boosting on ordinal-coded categories (an unseen category is a missing
    value); leaves of at least ~1% of the reference: a squared error is heavy-tailed and
    a loss model that chases single rows is noisy where the estimate needs its mean."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OrdinalEncoder

    encode = ColumnTransformer(
        [
            (
                "categorical",
                OrdinalEncoder(
                    handle_unknown="use_encoded_value",
                    unknown_value=np.nan,
                    encoded_missing_value=np.nan,
                ),
                list(range(n_categorical)),
            )
        ],
        remainder="passthrough",
    )
    boost = HistGradientBoostingRegressor(
        learning_rate=0.05,
        max_iter=200,
        max_leaf_nodes=15,
        min_samples_leaf=max(20, rows // 100),
        l2_regularization=1.0,
        categorical_features=native if any(native) else None,
        random_state=seed,
    )
    return make_pipeline(encode, boost)


def _inputs(
    frame: pd.DataFrame, numeric: Sequence[str], categorical: Sequence[str], prediction: str
) -> pd.DataFrame:
    """Categories first (as text, missing kept missing), then numbers and the prediction."""
    columns: dict[str, Any] = {}
    for c in categorical:
        col = frame[c]
        columns[c] = col.astype(str).where(col.notna(), np.nan).astype(object)
    for c in (*numeric, prediction):
        columns[c] = pd.to_numeric(frame[c], errors="coerce").astype("float64")
    return pd.DataFrame(columns, index=frame.index)
