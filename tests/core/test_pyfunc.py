"""The champion as any MLflow consumer uses it: `mlflow.pyfunc` on rows as they land.

pyfunc enforces the logged signature, so these tests go through a real local MLflow
store, the registry's `champion` alias and Parquet files written the way the demo feed
writes them, never through the in-memory model alone.
"""

from __future__ import annotations

import cloudpickle
import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException
from mlflow.models import get_model_info

from modelkeeper.contracts.lineage import CHAMPION
from modelkeeper.contracts.spec import ModelSpec
from modelkeeper.demo import land_next_weeks, load_flights, week_frame
from modelkeeper.modeling.training import features_frame, fit

#: The MLflow column type each spec dtype is declared as (int: see `declared`).
MLFLOW_TYPES = {"float": "double", "bool": "boolean", "category": "string", "datetime": "datetime"}


def declared(spec: ModelSpec) -> dict[str, str]:
    """What the signature must say for each feature, in the spec's order."""
    out = {}
    for name in spec.features.all:
        rule = spec.data_schema.column(name)
        if rule.dtype == "int":  # one that may hold missing values can only be a float column
            out[name] = "double" if rule.nullable else "long"
        else:
            out[name] = MLFLOW_TYPES[rule.dtype]
    return out


def promote(registry, spec: ModelSpec, model, train: pd.DataFrame) -> str:
    """Log `model` the way TrainOperator does, register it and make it the champion."""
    run = registry.ensure_run(spec.name, f"test-{spec.name}", {})
    uri = registry.log_model(run, model, features_frame(train.head(5), spec))
    version = registry.register(spec.registered_model_name, uri, run, tags={})
    moved, _ = registry.move_champion(spec.registered_model_name, version.version, None)
    assert moved
    return f"models:/{spec.registered_model_name}@{CHAMPION}"


def consumer(registry, uri: str):
    """A consumer's view: only the tracking/registry URI and the model URI."""
    mlflow.set_tracking_uri(registry.tracking_uri)
    mlflow.set_registry_uri(registry.tracking_uri)
    return mlflow.pyfunc.load_model(uri)


def signature(uri: str) -> dict[str, str]:
    return {c["name"]: c["type"] for c in get_model_info(uri).signature.inputs.to_dict()}


@pytest.fixture(scope="module")
def flights() -> pd.DataFrame:
    return load_flights()


@pytest.fixture(scope="module")
def train(flights) -> pd.DataFrame:
    return pd.concat([week_frame(flights, w) for w in (0, 1, 2)], ignore_index=True)


@pytest.fixture(scope="module")
def model(spec, train):
    return fit(spec, train)


class TestFlightDelayChampion:
    @pytest.fixture
    def landed(self, storage) -> pd.DataFrame:
        """Week 3 (after the training weeks) read back from the file the demo feed lands."""
        path = land_next_weeks(storage, 4)[-1]
        assert path.name == "week_03.parquet"
        return pd.read_parquet(path)

    def test_pyfunc_predicts_on_a_landed_file(self, spec, model, train, landed, mlflow_store):
        assert landed["hour"].dtype == "int64"  # what failed: the signature said double
        uri = promote(mlflow_store, spec, model, train)

        predicted = consumer(mlflow_store, uri).predict(landed)

        sklearn_flavour = mlflow.sklearn.load_model(uri)
        np.testing.assert_array_equal(predicted, sklearn_flavour.predict(landed))
        np.testing.assert_array_equal(predicted, model.predict(features_frame(landed, spec)))
        assert len(predicted) == len(landed) and set(np.unique(predicted)) <= {0, 1}

    def test_signature_follows_the_spec(self, spec, model, train, mlflow_store):
        uri = promote(mlflow_store, spec, model, train)
        assert signature(uri) == declared(spec)
        assert signature(uri)["hour"] == "long" and signature(uri)["carrier"] == "string"

    def test_loading_needs_no_modelkeeper(self, model):
        # mlflow pickles with cloudpickle, which refers to module-level code by module name.
        assert b"modelkeeper" not in cloudpickle.dumps(model)


def typed_variant(spec: ModelSpec) -> ModelSpec:
    """flight_delay plus a feature of every other kind: bool, datetime, nullable int and
    nullable bool (numeric features), next to its int, float and category ones."""
    raw = spec.model_dump(by_alias=True)
    raw["name"] = "flight_delay_typed"
    raw["schema"]["columns"] += [
        {"name": "weekend", "dtype": "bool", "nullable": False},
        {"name": "scheduled", "dtype": "datetime"},
        {"name": "seats", "dtype": "int", "min": 1, "max": 600},
        {"name": "wifi", "dtype": "bool"},
    ]
    raw["features"]["numeric"] += ["weekend", "scheduled", "seats", "wifi"]
    return ModelSpec.model_validate(raw)


def with_typed_columns(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The variant's extra columns, with missing values where the spec allows them."""
    rng = np.random.default_rng(seed)
    n = len(frame)
    out = frame.copy()
    out["weekend"] = out["day_of_week"] >= 5
    out["scheduled"] = out["time_hour"].where(rng.random(n) > 0.05)  # NaT
    out["seats"] = rng.integers(50, 400, n).astype("float64")
    out.loc[rng.random(n) < 0.1, "seats"] = np.nan  # an int column with gaps lands as float
    out["wifi"] = pd.Series(rng.random(n) < 0.5, dtype=object).where(rng.random(n) > 0.1, None)
    return out


class TestEveryFeatureKind:
    @pytest.fixture(scope="class")
    def typed(self, spec) -> ModelSpec:
        return typed_variant(spec)

    @pytest.fixture(scope="class")
    def typed_train(self, train) -> pd.DataFrame:
        return with_typed_columns(train, seed=0)

    @pytest.fixture(scope="class")
    def typed_model(self, typed, typed_train):
        return fit(typed, typed_train)

    @pytest.fixture
    def landed(self, flights, storage) -> pd.DataFrame:
        week = with_typed_columns(week_frame(flights, 3), seed=1)
        path = storage.write_parquet(week, storage.landing_dir() / "typed" / "week_03.parquet")
        return pd.read_parquet(path)

    def test_landed_dtypes(self, landed):
        # What a consumer holds: the columns as Parquet gives them back.
        assert landed["weekend"].dtype == bool
        assert pd.api.types.is_datetime64_dtype(landed["scheduled"])
        assert landed["scheduled"].isna().any()
        assert landed["seats"].dtype == "float64" and landed["seats"].isna().any()
        assert landed["wifi"].dtype == object and landed["wifi"].isna().any()
        assert landed["hour"].dtype == "int64" and landed["carrier"].dtype == object

    def test_signature(self, typed, typed_model, typed_train, mlflow_store):
        uri = promote(mlflow_store, typed, typed_model, typed_train)
        assert signature(uri) == declared(typed)
        assert {k: signature(uri)[k] for k in ("weekend", "scheduled", "seats", "wifi")} == {
            "weekend": "boolean",
            "scheduled": "datetime",
            "seats": "double",
            "wifi": "boolean",
        }

    def test_pyfunc_predicts_on_a_landed_file(
        self, typed, typed_model, typed_train, landed, mlflow_store
    ):
        uri = promote(mlflow_store, typed, typed_model, typed_train)
        pyfunc = consumer(mlflow_store, uri)

        predicted = pyfunc.predict(landed)

        np.testing.assert_array_equal(predicted, mlflow.sklearn.load_model(uri).predict(landed))
        np.testing.assert_array_equal(predicted, typed_model.predict(features_frame(landed, typed)))

    def test_what_the_estimator_sees(self, typed, typed_model, landed):
        prepare = typed_model.named_steps["prepare"]
        seen = pd.DataFrame(prepare.transform(landed), columns=prepare.get_feature_names_out())
        days = (landed["scheduled"] - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)
        np.testing.assert_array_equal(seen["datetime__scheduled"], days.to_numpy())
        assert seen["datetime__scheduled"].isna().sum() == landed["scheduled"].isna().sum() > 0
        wifi = landed["wifi"].map({True: 1.0, False: 0.0})
        np.testing.assert_array_equal(seen["numeric__wifi"], wifi.to_numpy(dtype=float))
        np.testing.assert_array_equal(seen["numeric__weekend"], landed["weekend"].astype(float))
        np.testing.assert_array_equal(seen["numeric__seats"], landed["seats"])
        assert seen.shape[1] == len(typed.features.all)  # categories are codes, not one-hot

    def test_nullable_int_without_gaps_must_be_sent_as_float(
        self, typed, typed_model, typed_train, landed, mlflow_store
    ):
        """A batch whose nullable int column has no gaps may land as int64. MLflow refuses
        int64 for a double column (not every int64 is a float64), and no declaration takes
        both that and a float column with NaN: a consumer sends such a column as float."""
        uri = promote(mlflow_store, typed, typed_model, typed_train)
        pyfunc = consumer(mlflow_store, uri)
        no_gaps = landed.assign(seats=landed["seats"].fillna(100).astype("int64"))

        with pytest.raises(MlflowException, match="Can not safely convert int64 to float64"):
            pyfunc.predict(no_gaps)
        as_float = no_gaps.assign(seats=no_gaps["seats"].astype("float64"))
        assert len(pyfunc.predict(as_float)) == len(landed)
