"""Training data assembly and the pipeline: real 2013 flights, real parquet files, real fits."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from modelkeeper.contracts.errors import SpecError
from modelkeeper.contracts.spec import ModelSpec
from modelkeeper.demo import load_flights, week_frame
from modelkeeper.modeling.training import (
    SEED,
    Split,
    TrainingDataError,
    build_pipeline,
    features_frame,
    fit,
    load_accepted,
    time_split,
)

TS = "time_hour"
KEY = ["carrier", "flight", "origin", "time_hour"]


def variant(spec: ModelSpec, mutate: Callable[[dict], None]) -> ModelSpec:
    """A validated copy of `spec` with one change."""
    raw = spec.model_dump(by_alias=True)
    mutate(raw)
    return ModelSpec.model_validate(raw)


@pytest.fixture(scope="module")
def flights() -> pd.DataFrame:
    return load_flights()


@pytest.fixture(scope="module")
def weeks(flights) -> pd.DataFrame:
    """Weeks 0-2 of 2013 (Jan 1-21), about 18k flights."""
    return pd.concat([week_frame(flights, w) for w in (0, 1, 2)], ignore_index=True)


@pytest.fixture(scope="module")
def split(weeks, spec) -> Split:
    return time_split(weeks, spec)


@pytest.fixture(scope="module")
def model(split, spec):
    return fit(spec, split.train)


def land(storage, spec, run_id: str, frame: pd.DataFrame):
    """Rows accepted by a run, committed to the pool the way validate commits them."""
    from modelkeeper.data.pool import commit_accepted

    commit_accepted(spec, storage, run_id, frame)


class TestBuildPipeline:
    def test_steps_and_columns(self, spec):
        pipeline = build_pipeline(spec)
        assert [name for name, _ in pipeline.steps] == ["prepare", "model"]
        columns = {name: cols for name, _, cols in pipeline.named_steps["prepare"].transformers}
        assert columns == {
            "numeric": spec.features.numeric,
            "categorical": spec.features.categorical,
        }
        model = pipeline.named_steps["model"]
        assert type(model).__name__ == "HistGradientBoostingClassifier"
        assert model.max_iter == 150 and model.learning_rate == 0.1 and model.max_leaf_nodes == 31

    @pytest.mark.parametrize(
        ("params", "expected"),
        [
            pytest.param({"max_iter": 20}, SEED, id="omitted-gets-seed"),
            pytest.param({"max_iter": 20, "random_state": 7}, 7, id="explicit-kept"),
        ],
    )
    def test_random_state(self, spec, params, expected):
        s = variant(spec, lambda raw: raw["estimator"].update(params=params))
        assert build_pipeline(s).named_steps["model"].random_state == expected
        assert s.estimator.params == params  # the default goes to the estimator, not the spec

    def test_seed_is_13(self):
        assert SEED == 13

    def test_estimator_without_random_state(self, spec):
        s = variant(
            spec,
            lambda raw: raw["estimator"].update(
                class_path="sklearn.naive_bayes.GaussianNB", params={}
            ),
        )
        model = build_pipeline(s).named_steps["model"]
        assert type(model).__name__ == "GaussianNB"
        assert "random_state" not in model.get_params()

    def test_only_numeric_features(self, spec):
        def numeric_only(raw):
            raw["features"].update(categorical=[])
            raw["drift"]["columns"] = {}  # its overrides name the dropped categorical features

        s = variant(spec, numeric_only)
        names = [name for name, _, _ in build_pipeline(s).named_steps["prepare"].transformers]
        assert names == ["numeric"]

    def test_native_categories_for_hist_gradient_boosting(self, spec, split, model):
        # No one-hot (it was most of a retrain's memory): one code column per category
        # feature, declared categorical to the trees; nothing imputed or scaled.
        prepared = model.named_steps["prepare"].transform(split.holdout.head(50))
        assert prepared.shape == (50, len(spec.features.all))
        n = len(spec.features.numeric)
        assert model.named_steps["model"].categorical_features == [n, n + 1]
        assert model.named_steps["model"].is_categorical_.tolist() == [False] * n + [True] * 2
        steps = {
            name: [step for step, _ in t.steps]
            for name, t, _ in model.named_steps["prepare"].transformers
        }
        assert steps == {"numeric": ["as_float"], "categorical": ["as_category", "encode"]}

    @pytest.mark.parametrize(
        ("class_path", "sparse"),
        [
            pytest.param("sklearn.linear_model.LogisticRegression", True, id="accepts-sparse"),
            pytest.param("sklearn.naive_bayes.GaussianNB", False, id="dense-only"),
        ],
    )
    def test_one_hot_for_other_estimators(self, spec, split, class_path, sparse):
        s = variant(spec, lambda raw: raw["estimator"].update(class_path=class_path, params={}))
        pipeline = build_pipeline(s)
        prepare = pipeline.named_steps["prepare"]
        numeric, categorical = (t for _, t, _ in prepare.transformers)
        assert [name for name, _ in numeric.steps] == ["as_float", "impute", "scale"]
        assert [name for name, _ in categorical.steps] == ["as_category", "impute", "onehot"]
        assert categorical.named_steps["onehot"].sparse_output is sparse
        pipeline.fit(split.train, split.train["delayed"])
        assert pipeline.predict_proba(split.holdout).shape == (len(split.holdout), 2)

    @pytest.mark.parametrize(
        ("role", "column", "match"),
        [
            pytest.param(
                "numeric", "carrier", r"'carrier' has dtype 'category'", id="category-as-number"
            ),
            pytest.param(
                "categorical", "time_hour", r"'time_hour' is a datetime", id="datetime-as-category"
            ),
        ],
    )
    def test_features_that_cannot_be_used_in_their_role(self, spec, role, column, match):
        def move(raw):
            other = "categorical" if role == "numeric" else "numeric"
            raw["features"][other] = [c for c in raw["features"][other] if c != column]
            raw["features"][role] = [*raw["features"][role], column]
            raw["drift"]["columns"] = {}

        with pytest.raises(SpecError, match=match):
            build_pipeline(variant(spec, move))


class TestFeaturesFrame:
    def test_dtypes_and_order(self, spec, weeks):
        frame = weeks.head(200).copy()
        frame["carrier"] = frame["carrier"].astype("category")
        frame.loc[0, "carrier"] = np.nan
        X = features_frame(frame, spec)
        assert list(X.columns) == spec.features.all
        # As the spec types them (and as a landed file gives them back): ints stay int64.
        assert X.dtypes.astype(str).to_dict() == {
            "hour": "int64",
            "day_of_week": "int64",
            **{c: "float64" for c in ("distance", "temp", "humid", "wind_speed")},
            **{c: "float64" for c in ("precip", "visib")},
            "carrier": "object",
            "origin": "object",
        }
        assert X.loc[0, "carrier"] is None
        assert "delayed" not in X.columns

    @pytest.mark.parametrize(
        ("rule", "values", "dtype", "expected"),
        [
            pytest.param(
                {"dtype": "int", "nullable": False}, [1.0, 2.0], "int64", [1, 2], id="int"
            ),
            pytest.param(
                {"dtype": "int"}, [1, 2], "float64", [1.0, 2.0], id="nullable-int-is-double"
            ),
            pytest.param(
                {"dtype": "int"},
                pd.array([1, None], dtype="Int64"),
                "float64",
                [1.0, np.nan],
                id="pandas-nullable-int",
            ),
            pytest.param({"dtype": "bool"}, [True, False], "bool", [True, False], id="bool"),
            pytest.param(
                {"dtype": "bool"},
                pd.array([True, None], dtype="boolean"),
                "object",
                [True, None],
                id="bool-with-missing",
            ),
            pytest.param(
                {"dtype": "datetime"},
                ["2013-01-01 05:00", None],
                "datetime64[ns]",
                [pd.Timestamp("2013-01-01 05:00"), pd.NaT],
                id="datetime-strings",
            ),
            pytest.param(
                {"dtype": "datetime"},
                pd.to_datetime(["2013-01-01 10:00"]).tz_localize("UTC"),
                "datetime64[ns]",
                [pd.Timestamp("2013-01-01 10:00")],
                id="tz-aware-becomes-naive-utc",
            ),
            pytest.param(
                {"dtype": "category"},
                pd.Categorical(["a", None]),
                "object",
                ["a", None],
                id="category",
            ),
        ],
    )
    def test_spec_dtypes(self, spec, rule, values, dtype, expected):
        def one_feature(raw):
            raw["schema"]["columns"].append({"name": "x", **rule})
            raw["features"] = {"numeric": [], "categorical": []}
            raw["features"]["categorical" if rule["dtype"] == "category" else "numeric"] = ["x"]
            raw["drift"]["columns"] = {}
            raw["promotion"]["slices"] = []

        X = features_frame(pd.DataFrame({"x": values}), variant(spec, one_feature))
        assert str(X["x"].dtype) == dtype
        got = X["x"].tolist()
        assert [pd.isna(v) for v in got] == [pd.isna(v) for v in expected]
        assert [v for v in got if not pd.isna(v)] == [v for v in expected if not pd.isna(v)]

    def test_copy(self, spec, weeks):
        shared = features_frame(weeks, spec, copy=False)  # fit's way: no copy of the data
        assert np.shares_memory(shared["temp"].to_numpy(), weeks["temp"].to_numpy())
        copied = features_frame(weeks, spec)
        assert not np.shares_memory(copied["temp"].to_numpy(), weeks["temp"].to_numpy())


class TestFit:
    def test_deterministic(self, spec, split, model):
        again = fit(spec, split.train)
        X = features_frame(split.holdout, spec)
        np.testing.assert_array_equal(model.predict_proba(X), again.predict_proba(X))

    def test_learns_something(self, spec, split, model):
        from sklearn.metrics import roc_auc_score

        proba = model.predict_proba(features_frame(split.holdout, spec))[:, 1]
        assert roc_auc_score(split.holdout["delayed"], proba) > 0.55  # the spec's promotion floor

    def test_unknown_category_is_ignored(self, spec, split, model):
        X = features_frame(split.holdout.head(5), spec)
        X["carrier"] = "ZZ"
        assert model.predict_proba(X).shape == (5, 2)

    @pytest.mark.parametrize(
        "landed",
        [
            pytest.param(lambda f: f, id="as-landed-with-other-columns"),
            pytest.param(lambda f: f.astype({"carrier": "category"}), id="pandas-category"),
            pytest.param(lambda f: f.astype({"origin": "string"}), id="pandas-string"),
            pytest.param(lambda f: f.astype({"hour": "int32"}), id="int32"),
            pytest.param(lambda f: f.astype({"hour": "float64"}), id="int-as-float"),
        ],
    )
    def test_takes_rows_as_they_land(self, spec, split, model, landed):
        rows = split.holdout.head(500).copy()
        rows.loc[:9, "carrier"] = None
        expected = model.predict_proba(features_frame(rows, spec))
        np.testing.assert_array_equal(model.predict_proba(landed(rows)), expected)

    def test_every_missing_category_is_one(self, spec, split, model):
        # In an object column None is a category to scikit-learn's encoders and NaN is
        # missing: the pipeline makes them one, whichever a batch brings.
        rows = split.holdout.head(200).copy()
        as_none, as_nan = rows.copy(), rows.copy()
        as_none.loc[:49, "carrier"] = None
        as_nan["carrier"] = as_nan["carrier"].astype(object)
        as_nan.loc[:49, "carrier"] = np.nan
        np.testing.assert_array_equal(model.predict_proba(as_none), model.predict_proba(as_nan))


class TestTimeSplit:
    def test_holds_out_last_days(self, spec, weeks, split):
        cut = weeks[TS].max() - pd.Timedelta(days=spec.window.holdout_days)
        assert len(split.train) + len(split.holdout) == len(weeks)
        assert split.train[TS].max() <= cut < split.holdout[TS].min()
        assert split.train[TS].max() < split.holdout[TS].min()
        assert split.holdout[TS].max() == weeks[TS].max()
        assert split.holdout[TS].min() >= pd.Timestamp("2013-01-14 23:00")

    def test_describe(self, split):
        d = split.describe()
        assert d == {
            "train_rows": len(split.train),
            "holdout_rows": len(split.holdout),
            "train_start": "2013-01-01T05:00:00",
            "train_end": split.train[TS].max().isoformat(),
            "holdout_start": split.holdout[TS].min().isoformat(),
            "holdout_end": "2013-01-21T23:00:00",
        }
        assert d["train_end"] < d["holdout_start"]

    def test_frames_are_reindexed(self, split):
        assert split.train.index.equals(pd.RangeIndex(len(split.train)))
        assert split.holdout.index.equals(pd.RangeIndex(len(split.holdout)))

    def test_window_too_short(self, spec, flights):
        one_week = week_frame(flights, 0)  # Jan 1 05:00 .. Jan 7 23:00: under 7 days
        with pytest.raises(
            TrainingDataError,
            match=r"too short to hold out 7 days and still train \(0 train / \d+ holdout rows\)",
        ):
            time_split(one_week, spec)

    def test_single_class_training_data(self, spec, weeks):
        frame = weeks.copy()
        cut = frame[TS].max() - pd.Timedelta(days=spec.window.holdout_days)
        frame.loc[frame[TS] <= cut, "delayed"] = 0
        with pytest.raises(
            TrainingDataError, match="training data has a single class in 'delayed'"
        ):
            time_split(frame, spec)

    def test_single_class_holdout_is_allowed(self, spec, weeks):
        # Only the training side must have both classes; evaluation copes with one.
        frame = weeks.copy()
        cut = frame[TS].max() - pd.Timedelta(days=spec.window.holdout_days)
        frame.loc[frame[TS] > cut, "delayed"] = 1
        assert time_split(frame, spec).holdout["delayed"].unique().tolist() == [1]


class TestLoadAccepted:
    def test_reads_accepted_batches_only(self, spec, storage, flights):
        w0, w1 = week_frame(flights, 0), week_frame(flights, 1)
        land(storage, spec, "scheduled__2013-01-08", w0)
        land(storage, spec, "scheduled__2013-01-15", w1)
        bad = week_frame(flights, 2)
        quarantined = storage.quarantine_dir(spec.name, "scheduled__2013-01-22") / "batch.parquet"
        storage.write_parquet(bad, quarantined)
        land(storage, variant(spec, lambda raw: raw.update(name="other_model")), "run", bad)

        df = load_accepted(spec, storage)
        assert len(df) == len(w0) + len(w1)
        assert df[TS].max() == w1[TS].max()
        assert df[TS].is_monotonic_increasing
        assert df.index.equals(pd.RangeIndex(len(df)))

    def test_until(self, spec, storage, flights):
        for week in (0, 1, 2):
            land(storage, spec, f"run_{week}", week_frame(flights, week))
        until = "2013-01-10T12:00:00"
        df = load_accepted(spec, storage, until=until)
        assert df[TS].max() <= pd.Timestamp(until)
        expected = pd.concat([week_frame(flights, w) for w in (0, 1)])
        assert len(df) == int((expected[TS] <= pd.Timestamp(until)).sum())

    def test_training_window(self, spec, storage, flights):
        for week in (0, 1, 2):
            land(storage, spec, f"run_{week}", week_frame(flights, week))
        short = variant(spec, lambda raw: raw["window"].update(training_days=7, holdout_days=1))
        df = load_accepted(short, storage)
        newest = week_frame(flights, 2)[TS].max()
        assert df[TS].min() > newest - pd.Timedelta(days=7)
        assert df[TS].max() == newest

    def test_drops_duplicate_keys(self, spec, storage, flights):
        w0 = week_frame(flights, 0)
        relanded = w0.head(1000).copy()
        relanded["temp"] = 99.0  # the later batch's values win
        land(storage, spec, "run_a", w0)
        land(storage, spec, "run_b", relanded)
        df = load_accepted(spec, storage)
        assert len(df) == len(w0)
        assert not df.duplicated(subset=KEY).any()
        merged = df.merge(relanded[KEY], on=KEY)
        assert len(merged) == 1000 and (merged["temp"] == 99.0).all()

    def test_timestamp_strings_are_parsed(self, spec, storage, flights):
        w0 = week_frame(flights, 0)
        land(storage, spec, "run_a", w0.assign(time_hour=w0[TS].dt.strftime("%Y-%m-%d %H:%M:%S")))
        df = load_accepted(spec, storage, until="2013-01-03T00:00:00")
        assert pd.api.types.is_datetime64_any_dtype(df[TS])
        assert df[TS].max() <= pd.Timestamp("2013-01-03")

    def test_no_batches(self, spec, storage):
        with pytest.raises(
            TrainingDataError,
            match=r"no accepted rows for 'flight_delay' up to now",
        ):
            load_accepted(spec, storage)

    def test_only_quarantined_batches(self, spec, storage, flights):
        storage.write_parquet(
            week_frame(flights, 0), storage.quarantine_dir(spec.name, "run_a") / "batch.parquet"
        )
        with pytest.raises(TrainingDataError, match="no accepted rows"):
            load_accepted(spec, storage)

    def test_nothing_before_until(self, spec, storage, flights):
        land(storage, spec, "run_a", week_frame(flights, 1))
        with pytest.raises(
            TrainingDataError,
            match=r"no accepted rows for 'flight_delay' up to 2013-01-05T00:00:00",
        ):
            load_accepted(spec, storage, until="2013-01-05T00:00:00")
