"""The champion as any MLflow consumer uses it: `mlflow.pyfunc` on rows as they land.

pyfunc enforces the logged signature, so these tests go through a real local MLflow
store, the registry's `champion` alias and Parquet files written the way the demo feed
writes them, never through the in-memory model alone. Every spec dtype, nullable or not,
is tried in a batch with missing values and in one without, for a classifier and a
regressor, through `mlflow.pyfunc.load_model` and through MLflow's scoring server.
"""

from __future__ import annotations

import json

import cloudpickle
import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.models import get_model_info
from mlflow.pyfunc import scoring_server

from modelkeeper.contracts.lineage import CHAMPION
from modelkeeper.contracts.spec import ModelSpec
from modelkeeper.demo import land_next_weeks, load_flights, week_frame
from modelkeeper.modeling.training import features_frame, fit

#: The MLflow column type each spec dtype is declared as (a nullable int: see `declared`),
#: the contract records/mlflow_schema.py implements.
MLFLOW_TYPES = {
    "int": "long",
    "float": "double",
    "bool": "boolean",
    "category": "string",
    "datetime": "datetime",
}


def declared(spec: ModelSpec) -> dict[str, str]:
    """What the signature must say for each feature, in the spec's order: a nullable int
    lands as int64 or float64 (NaN), and only `any` takes both."""
    return {
        rule.name: "any" if rule.dtype == "int" and rule.nullable else MLFLOW_TYPES[rule.dtype]
        for rule in spec.feature_rules
    }


def promote(registry, spec: ModelSpec, model, train: pd.DataFrame) -> str:
    """Log `model` the way TrainOperator does, register it and make it the champion."""
    run = registry.ensure_run(spec.name, f"test-{spec.name}", {})
    example = features_frame(train.head(5), spec)
    uri = registry.log_model(run, model, example, columns=spec.feature_rules)
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
    columns = get_model_info(uri).signature.inputs.to_dict()
    assert all(c["required"] for c in columns)  # the pipeline needs every one
    return {c["name"]: c["type"] for c in columns}


def served(registry, uri: str, frame: pd.DataFrame) -> np.ndarray:
    """Predictions from MLflow's scoring server (what `mlflow models serve` runs) for a
    JSON request made of `frame` the way MLflow's own helper makes one."""
    from fastapi.testclient import TestClient

    app = scoring_server.init(consumer(registry, uri))
    payload = mlflow.models.convert_input_example_to_serving_input(frame)
    with TestClient(app) as client:
        response = client.post(
            "/invocations", content=payload, headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 200, response.text
    return np.asarray(json.loads(response.text)["predictions"])


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


#: Each spec dtype, nullable and not, and a flight_delay feature (or a new one) of that kind.
KINDS = {
    ("int", False): "hour",
    ("int", True): "seats",
    ("float", False): "distance",
    ("float", True): "temp",
    ("bool", False): "weekend",
    ("bool", True): "wifi",
    ("category", False): "carrier",
    ("category", True): "gate",
    ("datetime", False): "departs",
    ("datetime", True): "scheduled",
}
NULLABLE = [name for (_, nullable), name in KINDS.items() if nullable]


def typed_variant(spec: ModelSpec, task: str, class_path: str) -> ModelSpec:
    """flight_delay with a feature of every spec dtype, nullable and not (`KINDS`), and for
    a regressor a float target (taxi minutes)."""
    raw = spec.model_dump(by_alias=True)
    raw["name"] = f"flight_delay_{task}"
    raw["schema"]["columns"] += [
        {"name": "seats", "dtype": "int", "min": 1, "max": 600},
        {"name": "weekend", "dtype": "bool", "nullable": False},
        {"name": "wifi", "dtype": "bool"},
        {"name": "gate", "dtype": "category", "allowed": ["A", "B", "C"]},
        {"name": "departs", "dtype": "datetime", "nullable": False},
        {"name": "scheduled", "dtype": "datetime"},
        {"name": "taxi_minutes", "dtype": "float", "nullable": False},
    ]
    raw["features"]["numeric"] += ["seats", "weekend", "wifi", "departs", "scheduled"]
    raw["features"]["categorical"] += ["gate"]
    raw["estimator"] = {"class_path": class_path, "params": {}}
    if task == "regression":
        raw["target"] = {"column": "taxi_minutes", "task": "regression"}
        raw["metrics"] = {"primary": "rmse"}
    typed = ModelSpec.model_validate(raw)
    for (dtype, nullable), name in KINDS.items():
        rule = typed.data_schema.column(name)
        assert (rule.dtype, rule.nullable) == (dtype, nullable)
    return typed


def with_typed_columns(frame: pd.DataFrame, seed: int, *, gaps: bool) -> pd.DataFrame:
    """The variant's extra columns; with `gaps`, missing values in every nullable feature
    (about one in ten), without them none at all."""
    rng = np.random.default_rng(seed)
    n = len(frame)
    out = frame.copy()
    out["seats"] = rng.integers(50, 400, n)
    out["weekend"] = out["day_of_week"] >= 5
    out["wifi"] = rng.random(n) < 0.5
    out["gate"] = rng.choice(np.array(["A", "B", "C"], dtype=object), n)
    out["departs"] = out["time_hour"]
    out["scheduled"] = out["time_hour"] - pd.Timedelta(days=30)
    out["taxi_minutes"] = 10 + out["hour"] / 2 + out["seats"] / 40 + rng.normal(0, 2, n)
    if gaps:  # the column types a batch with missing values lands in
        missing = {name: rng.random(n) < 0.1 for name in NULLABLE}
        out["seats"] = out["seats"].astype("float64").mask(missing["seats"])
        out["wifi"] = out["wifi"].astype(object).mask(missing["wifi"], None)
        out["gate"] = out["gate"].mask(missing["gate"], None)
        out["scheduled"] = out["scheduled"].mask(missing["scheduled"])
        out["temp"] = out["temp"].mask(missing["temp"])
    else:
        out = out.dropna(subset=NULLABLE).reset_index(drop=True)
    return out


def landed(storage, frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """`frame` as a consumer reads it back from the Parquet file a feed lands."""
    path = storage.write_parquet(frame, storage.landing_dir() / "typed" / f"{name}.parquet")
    return pd.read_parquet(path)


#: The consumer's column types of each batch, as Parquet gives them back.
LANDED_DTYPES = {
    "gaps": {
        "hour": "int64",
        "seats": "float64",
        "distance": "float64",
        "temp": "float64",
        "weekend": "bool",
        "wifi": "object",
        "carrier": "object",
        "gate": "object",
        "departs": "datetime64[ns]",
        "scheduled": "datetime64[ns]",
    },
    "no gaps": {
        "hour": "int64",
        "seats": "int64",  # what the old signature (double) refused
        "distance": "float64",
        "temp": "float64",
        "weekend": "bool",
        "wifi": "bool",
        "carrier": "object",
        "gate": "object",
        "departs": "datetime64[ns]",
        "scheduled": "datetime64[ns]",
    },
}


@pytest.fixture(
    scope="module",
    params=[
        pytest.param(
            ("classification", "sklearn.ensemble.HistGradientBoostingClassifier"), id="classifier"
        ),
        pytest.param(("regression", "sklearn.linear_model.Ridge"), id="regressor"),
    ],
)
def typed(request, spec) -> ModelSpec:
    """A classifier (trees: missing values and categories native) and a regressor (linear:
    imputed, scaled, one-hot), so both pipelines `build_pipeline` makes are served."""
    return typed_variant(spec, *request.param)


@pytest.fixture(scope="module")
def typed_train(train) -> pd.DataFrame:
    return with_typed_columns(train, seed=0, gaps=True)


@pytest.fixture(scope="module")
def typed_model(typed, typed_train):
    return fit(typed, typed_train)


def landed_week(flights, storage, kind: str) -> pd.DataFrame:
    """Week 3 (after the training weeks) landed with ("gaps") or without missing values."""
    week = with_typed_columns(week_frame(flights, 3), seed=1, gaps=kind == "gaps")
    return landed(storage, week, kind.replace(" ", "_"))


@pytest.fixture(params=["gaps", "no gaps"])
def batch(request, flights, storage) -> tuple[str, pd.DataFrame]:
    return request.param, landed_week(flights, storage, request.param)


class TestEveryFeatureKind:
    def test_landed_dtypes(self, batch):
        # What a consumer holds: the columns as Parquet gives them back.
        kind, frame = batch
        assert {c: str(frame[c].dtype) for c in LANDED_DTYPES[kind]} == LANDED_DTYPES[kind]
        has_gaps = frame[NULLABLE].isna().any()
        assert has_gaps.all() if kind == "gaps" else not has_gaps.any()

    def test_signature(self, typed, typed_model, typed_train, mlflow_store):
        uri = promote(mlflow_store, typed, typed_model, typed_train)
        assert signature(uri) == declared(typed)
        assert {name: signature(uri)[name] for name in KINDS.values()} == {
            "hour": "long",
            "seats": "any",  # int64 without gaps, float64 with them: no MLflow type takes both
            "distance": "double",
            "temp": "double",
            "weekend": "boolean",
            "wifi": "boolean",
            "carrier": "string",
            "gate": "string",
            "departs": "datetime",
            "scheduled": "datetime",
        }

    def test_pyfunc_predicts_on_a_landed_file(
        self, typed, typed_model, typed_train, batch, mlflow_store
    ):
        _, frame = batch
        uri = promote(mlflow_store, typed, typed_model, typed_train)

        predicted = consumer(mlflow_store, uri).predict(frame)

        np.testing.assert_array_equal(predicted, mlflow.sklearn.load_model(uri).predict(frame))
        np.testing.assert_array_equal(predicted, typed_model.predict(features_frame(frame, typed)))
        assert len(predicted) == len(frame) and not np.isnan(predicted).any()

    def test_scoring_server_predicts_on_a_landed_file(
        self, typed, typed_model, typed_train, batch, mlflow_store
    ):
        _, frame = batch
        uri = promote(mlflow_store, typed, typed_model, typed_train)
        rows = frame.head(200)

        predicted = served(mlflow_store, uri, rows)

        expected = typed_model.predict(features_frame(rows, typed))
        np.testing.assert_allclose(predicted, expected, rtol=1e-9)

    @pytest.mark.parametrize(
        "seats",
        [
            pytest.param(lambda s: s.fillna(100).astype("int64"), id="int64"),
            pytest.param(lambda s: s.fillna(100).astype("int32"), id="int32"),
            pytest.param(lambda s: s.astype(object).where(s.notna(), None), id="object-None"),
        ],
    )
    def test_a_nullable_int_in_any_int_dtype(
        self, typed, typed_model, typed_train, flights, storage, mlflow_store, seats
    ):
        frame = landed_week(flights, storage, "gaps")
        uri = promote(mlflow_store, typed, typed_model, typed_train)
        sent = frame.assign(seats=seats(frame["seats"].astype("float64")))

        predicted = consumer(mlflow_store, uri).predict(sent)

        as_landed = frame.assign(seats=sent["seats"].astype("float64"))
        np.testing.assert_array_equal(
            predicted, typed_model.predict(features_frame(as_landed, typed))
        )

    def test_what_the_estimator_sees(self, typed, typed_model, batch):
        _, frame = batch
        prepare = typed_model.named_steps["prepare"]
        seen = pd.DataFrame(prepare.transform(frame), columns=prepare.get_feature_names_out())
        if typed.target.task != "classification":
            # the linear pipeline imputes, scales and one-hot encodes: finite numbers only,
            # a column per category value
            assert np.isfinite(seen.to_numpy(dtype=float)).all()
            assert seen.shape[1] > len(typed.features.all) and len(seen) == len(frame)
            return
        days = (frame["scheduled"] - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)
        np.testing.assert_array_equal(seen["datetime__scheduled"], days.to_numpy())
        assert seen["datetime__scheduled"].isna().sum() == frame["scheduled"].isna().sum()
        wifi = frame["wifi"].map({True: 1.0, False: 0.0})
        np.testing.assert_array_equal(seen["numeric__wifi"], wifi.to_numpy(dtype=float))
        np.testing.assert_array_equal(seen["numeric__weekend"], frame["weekend"].astype(float))
        np.testing.assert_array_equal(seen["numeric__seats"], frame["seats"].astype(float))
        assert seen.shape[1] == len(typed.features.all)  # categories are codes, not one-hot

    def test_a_value_that_is_not_a_number_is_refused(
        self, typed, typed_model, typed_train, flights, storage, mlflow_store
    ):
        # MLflow passes an `any` column on unchecked: the pipeline refuses what it cannot read.
        frame = landed_week(flights, storage, "no gaps")
        uri = promote(mlflow_store, typed, typed_model, typed_train)
        sent = frame.assign(seats=frame["seats"].astype(object))
        sent.loc[0, "seats"] = "many"

        with pytest.raises(ValueError, match="could not convert string to float: 'many'"):
            consumer(mlflow_store, uri).predict(sent)

    def test_loading_needs_no_modelkeeper(self, typed_model):
        assert b"modelkeeper" not in cloudpickle.dumps(typed_model)
