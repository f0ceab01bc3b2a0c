"""Training data assembly and the scikit-learn pipeline built from a spec."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from modelkeeper.errors import DataError

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

    from modelkeeper.spec import ModelSpec
    from modelkeeper.storage import Storage

SEED = 13


class TrainingDataError(DataError):
    """The accepted data cannot make a training set (too little, one class, ...)."""


@dataclass(frozen=True)
class Split:
    train: pd.DataFrame
    holdout: pd.DataFrame
    train_start: str
    train_end: str
    holdout_start: str
    holdout_end: str

    def describe(self) -> dict:
        return {
            "train_rows": len(self.train),
            "holdout_rows": len(self.holdout),
            "train_start": self.train_start,
            "train_end": self.train_end,
            "holdout_start": self.holdout_start,
            "holdout_end": self.holdout_end,
        }


def load_accepted(spec: ModelSpec, storage: Storage, *, until: str | None = None) -> pd.DataFrame:
    """Every batch that passed validation, limited to the spec's training window.

    Only accepted batches are read: quarantined data never reaches training. `until`
    (an ISO timestamp, the run's batch end) keeps a rerun or a backfilled run from
    training on data that arrived after it.
    """
    files = sorted(storage.accepted_dir(spec.name).glob("*.parquet"))
    if not files:
        raise TrainingDataError(
            f"no accepted batches for {spec.name!r} under {storage.accepted_dir(spec.name)}"
        )
    ts = spec.data_schema.timestamp_column
    df = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    df[ts] = pd.to_datetime(df[ts])
    if until is not None:
        df = df[df[ts] <= pd.Timestamp(until)]
    if df.empty:
        raise TrainingDataError(f"no accepted rows for {spec.name!r} up to {until}")
    start = df[ts].max() - pd.Timedelta(days=spec.window.training_days)
    df = df[df[ts] > start]
    key = spec.data_schema.unique_key
    if key:  # a batch re-landed under another run id must not count twice
        df = df.drop_duplicates(subset=key, keep="last")
    return df.sort_values(ts, kind="stable").reset_index(drop=True)


def time_split(df: pd.DataFrame, spec: ModelSpec) -> Split:
    """Train on the older part of the window, hold out the most recent `holdout_days`."""
    ts = spec.data_schema.timestamp_column
    cut = df[ts].max() - pd.Timedelta(days=spec.window.holdout_days)
    train, holdout = df[df[ts] <= cut], df[df[ts] > cut]
    if train.empty or holdout.empty:
        raise TrainingDataError(
            f"window {df[ts].min()} .. {df[ts].max()} is too short to hold out "
            f"{spec.window.holdout_days} days and still train ({len(train)} train / {len(holdout)} holdout rows)"
        )
    if spec.target.task == "classification" and train[spec.target.column].nunique() < 2:
        raise TrainingDataError(f"training data has a single class in {spec.target.column!r}")
    return Split(
        train=train.reset_index(drop=True),
        holdout=holdout.reset_index(drop=True),
        train_start=train[ts].min().isoformat(),
        train_end=train[ts].max().isoformat(),
        holdout_start=holdout[ts].min().isoformat(),
        holdout_end=holdout[ts].max().isoformat(),
    )


def build_pipeline(spec: ModelSpec) -> Pipeline:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    transformers = []
    if spec.features.numeric:
        numeric = Pipeline(
            [("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]
        )
        transformers.append(("numeric", numeric, list(spec.features.numeric)))
    if spec.features.categorical:
        categorical = Pipeline(
            [
                ("impute", SimpleImputer(strategy="most_frequent")),
                ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
            ]
        )
        transformers.append(("categorical", categorical, list(spec.features.categorical)))
    estimator_cls = spec.estimator.load_class()
    params = dict(spec.estimator.params)
    if "random_state" in inspect.signature(estimator_cls).parameters:
        params.setdefault("random_state", SEED)  # reruns on the same data give the same model
    return Pipeline(
        [
            ("prepare", ColumnTransformer(transformers, remainder="drop")),
            ("model", estimator_cls(**params)),
        ]
    )


def features_frame(df: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    X = df[spec.features.all].copy()
    for col in spec.features.categorical:  # one dtype for the encoder, whatever parquet gave back
        X[col] = X[col].astype("object").where(X[col].notna(), None)
    for col in spec.features.numeric:
        X[col] = X[col].astype("float64")
    return X


def fit(spec: ModelSpec, train: pd.DataFrame) -> Pipeline:
    pipeline = build_pipeline(spec)
    pipeline.fit(features_frame(train, spec), train[spec.target.column])
    return pipeline
