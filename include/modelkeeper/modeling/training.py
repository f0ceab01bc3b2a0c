"""Training data assembly and the scikit-learn pipeline built from a spec."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from modelkeeper.contracts.errors import TrainingDataError

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

    from modelkeeper.contracts.spec import ModelSpec
    from modelkeeper.data.storage import Storage

SEED = 13


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
    """The spec's training window of accepted rows (modelkeeper.data.pool).

    Only accepted rows are read, only from the partitions of the window's days:
    quarantined data never reaches training. `until` (an ISO timestamp, the run's batch
    end) keeps a rerun or a backfilled run from training on data that arrived after it.
    """
    from modelkeeper.data.pool import load_window

    df = load_window(spec, storage, days=spec.window.training_days, until=until)
    if df.empty:
        raise TrainingDataError(f"no accepted rows for {spec.name!r} up to {until or 'now'}")
    return df


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


#: Schema dtypes a numeric feature may have (a datetime becomes days since 1970).
_NUMERIC_DTYPES = ("int", "float", "bool", "datetime")


def build_pipeline(spec: ModelSpec) -> Pipeline:
    """The spec's estimator behind a `prepare` step that takes rows as they land.

    Whatever dtype a column arrives in (int, float, bool, datetime, object or pandas
    category strings, missing as None, NaN or NA), `prepare` turns it into what the
    estimator needs itself: numbers become float64 (a datetime: days since 1970),
    categories are normalised (every kind of missing is one missing value) before they
    are encoded. So the logged model predicts on a landed file directly, through MLflow's
    pyfunc as well as the sklearn flavour, and our own scoring needs no casting of its own.

    HistGradientBoosting takes missing values and categorical codes natively: its
    categories are ordinal-encoded and declared `categorical_features`, nothing is imputed
    or scaled. Other estimators get median imputation and scaling for numbers and
    most-frequent imputation and a one-hot for categories (sparse when the estimator
    accepts sparse input). Only stdlib, pandas and scikit-learn callables appear in the
    pipeline, so loading the model needs no modelkeeper.
    """
    import numpy as np
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    estimator_cls = spec.estimator.load_class()
    params = dict(spec.estimator.params)
    if "random_state" in inspect.signature(estimator_cls).parameters:
        params.setdefault("random_state", SEED)  # reruns on the same data give the same model
    native = issubclass(
        estimator_cls, (HistGradientBoostingClassifier, HistGradientBoostingRegressor)
    )
    numbers, dates = _numeric_features(spec)
    categorical = list(spec.features.categorical)

    def numeric(*convert: tuple[str, object]) -> Pipeline:
        if native:  # the trees take NaN and need no scale
            return Pipeline(list(convert))
        impute = SimpleImputer(strategy="median")
        scale = StandardScaler(copy=False)  # scales the imputer's copy in place
        return Pipeline([*convert, ("impute", impute), ("scale", scale)])

    transformers = []
    if numbers:
        transformers.append(("numeric", numeric(("as_float", _as_float())), numbers))
    if dates:
        transformers.append(("datetime", numeric(*_as_days()), dates))
    if categorical:
        if native:
            # Codes 0..max_bins-1 (HistGradientBoosting's limit); rarer categories share one.
            encode = OrdinalEncoder(
                handle_unknown="use_encoded_value",
                unknown_value=np.nan,  # unseen at fit: missing for the trees
                encoded_missing_value=np.nan,
                max_categories=min(int(params.get("max_bins", 255)), 255),
            )
            steps = [("as_category", _as_category()), ("encode", encode)]
        else:
            sparse = _accepts_sparse(estimator_cls(**params))
            steps = [
                ("as_category", _as_category()),
                ("impute", SimpleImputer(strategy="most_frequent")),
                ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=sparse)),
            ]
        transformers.append(("categorical", Pipeline(steps), categorical))
    if native and categorical:
        # The categorical block comes last in prepare's output.
        first = len(numbers) + len(dates)
        params.setdefault("categorical_features", list(range(first, first + len(categorical))))
    return Pipeline(
        [
            ("prepare", ColumnTransformer(transformers, remainder="drop")),
            ("model", estimator_cls(**params)),
        ]
    )


def _numeric_features(spec: ModelSpec) -> tuple[list[str], list[str]]:
    """The numeric features as (numbers, datetimes); a SpecError for a feature that
    cannot be used in its role."""
    from modelkeeper.contracts.errors import SpecError

    schema = spec.data_schema
    numbers, dates = [], []
    for name in spec.features.numeric:
        dtype = schema.column(name).dtype
        if dtype not in _NUMERIC_DTYPES:
            raise SpecError(
                f"features.numeric: {name!r} has dtype {dtype!r}; list it under "
                "features.categorical"
            )
        (dates if dtype == "datetime" else numbers).append(name)
    for name in spec.features.categorical:
        if schema.column(name).dtype == "datetime":
            raise SpecError(
                f"features.categorical: {name!r} is a datetime (every timestamp would be a "
                "category of its own); list it under features.numeric"
            )
    return numbers, dates


def _accepts_sparse(estimator: object) -> bool:
    """Whether the estimator takes sparse input (scikit-learn's tags); dense if unknown."""
    from sklearn.utils import get_tags

    try:
        return bool(get_tags(estimator).input_tags.sparse)
    except AttributeError:  # not a scikit-learn estimator: no tags to read
        return False


def _step(func: object):
    from sklearn.preprocessing import FunctionTransformer

    return FunctionTransformer(func, feature_names_out="one-to-one")


def _as_float():
    """int, float, bool (also object True/False/None and pandas' nullable dtypes) ->
    float64, missing as NaN, in one allocation."""
    from operator import methodcaller

    import numpy as np

    return _step(methodcaller("to_numpy", dtype="float64", na_value=np.nan))


def _as_days() -> list[tuple[str, object]]:
    """datetime64 of any unit (or parseable strings) -> float days since 1970, NaT as NaN.
    Timezone-naive, like MLflow's datetime columns."""
    from operator import methodcaller

    return [
        ("as_datetime", _step(methodcaller("astype", "datetime64[ns]"))),
        ("since_1970", _step(methodcaller("sub", pd.Timestamp(0)))),
        ("as_days", _step(methodcaller("div", pd.Timedelta(days=1)))),
    ]


def _as_category():
    """Object, string or category columns -> pandas category: None, NaN and NA all become
    the one missing value the encoders know (in an object column None is a category of
    its own to them, and NaN is missing)."""
    from operator import methodcaller

    return _step(methodcaller("astype", "category"))


def features_frame(df: pd.DataFrame, spec: ModelSpec, *, copy: bool = True) -> pd.DataFrame:
    """The feature columns, in the spec's order, typed as the schema declares them.

    These are the dtypes a landed file gives back (the model's signature takes them, and a
    nullable int column as int64 too: `records.mlflow_schema`): int stays int64 (but a
    nullable int column is float64: a batch with missing values can only hold them as
    floats), float is float64, bool is bool
    (object True/False/None when it has missing values), datetime is naive datetime64,
    category is object strings with None for missing. Columns already in their dtype are
    not converted; `copy=False` then shares them with `df` (fit's way: no copy of the
    training data; do not write into the result).
    """
    schema = spec.data_schema
    columns = {
        name: _spec_typed(df[name], schema.column(name).dtype, schema.column(name).nullable)
        for name in spec.features.all
    }
    X = pd.DataFrame(columns, copy=False)
    return X.copy() if copy else X


def _spec_typed(col: pd.Series, dtype: str, nullable: bool) -> pd.Series:
    if dtype == "category":  # one representation whatever parquet or CSV gave back
        if col.dtype == object and not col.isna().any():
            return col
        return col.astype("object").where(col.notna(), None)
    if dtype == "datetime":
        if isinstance(col.dtype, pd.DatetimeTZDtype):
            return col.dt.tz_convert(None)  # naive UTC, as validation sees it
        return col if pd.api.types.is_datetime64_dtype(col) else pd.to_datetime(col)
    if dtype == "bool":
        if col.dtype == bool:
            return col
        return (
            col.astype("object").where(col.notna(), None) if col.isna().any() else col.astype(bool)
        )
    # int or float: an int column that may hold missing values is declared double.
    target = "int64" if dtype == "int" and not nullable and not col.isna().any() else "float64"
    return col if col.dtype == target else col.astype(target)


def fit(spec: ModelSpec, train: pd.DataFrame) -> Pipeline:
    """The spec's pipeline fitted on `train` (features and target columns of it)."""
    pipeline = build_pipeline(spec)
    # No copy of the training columns: the pipeline converts what it needs itself.
    pipeline.fit(features_frame(train, spec, copy=False), train[spec.target.column])
    return pipeline
