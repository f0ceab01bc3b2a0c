"""Scoring: a real pipeline fitted on real 2013 flights, checked against sklearn directly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from modelkeeper.contracts.metric_names import CLASSIFICATION, higher_is_better
from modelkeeper.contracts.results import ModelScore
from modelkeeper.contracts.spec import ModelSpec
from modelkeeper.demo import load_flights, week_frame
from modelkeeper.modeling.evaluation import feature_importance, score_model, slice_gap
from modelkeeper.modeling.training import features_frame, fit, time_split

METRICS = {"roc_auc", "log_loss", "average_precision", "brier", "accuracy", "f1"}


@pytest.fixture(scope="module")
def split(spec):
    flights = load_flights()
    weeks = pd.concat([week_frame(flights, w) for w in (0, 1, 2)], ignore_index=True)
    return time_split(weeks, spec)


@pytest.fixture(scope="module")
def holdout(split) -> pd.DataFrame:
    return split.holdout


@pytest.fixture(scope="module")
def model(spec, split):
    return fit(spec, split.train)


@pytest.fixture(scope="module")
def score(model, holdout, spec) -> ModelScore:
    return score_model(model, holdout, spec)


def direct(model, frame: pd.DataFrame, spec: ModelSpec) -> dict[str, float]:
    """The metrics computed straight from sklearn, without modelkeeper."""
    X = features_frame(frame, spec)
    y = frame["delayed"].to_numpy()
    proba = model.predict_proba(X)[:, 1]
    pred = model.predict(X)
    return {
        "roc_auc": skm.roc_auc_score(y, proba),
        "average_precision": skm.average_precision_score(y, proba),
        "log_loss": skm.log_loss(y, proba),
        "brier": skm.brier_score_loss(y, proba),
        "accuracy": skm.accuracy_score(y, pred),
        "f1": skm.f1_score(y, pred),
    }


def hand_score(slices: dict) -> ModelScore:
    return ModelScore(metrics={"roc_auc": 0.7}, rows=1000, classes=[0, 1], slices=slices)


class TestScoreModel:
    def test_shape(self, score, holdout):
        assert set(score.metrics) == METRICS == CLASSIFICATION
        assert score.rows == len(holdout)
        assert score.classes == [0, 1]
        assert score.latency_ms_per_1k is not None and score.latency_ms_per_1k > 0
        assert all(isinstance(v, float) for v in score.metrics.values())

    def test_slices(self, score, holdout):
        assert set(score.slices) == {"origin", "carrier"}
        assert set(score.slices["origin"]) == {"EWR", "JFK", "LGA"}
        assert set(score.slices["carrier"]) == set(holdout["carrier"].unique())
        for col in ("origin", "carrier"):
            per_value = score.slices[col]
            assert sum(s["rows"] for s in per_value.values()) == len(holdout)
            counts = holdout[col].value_counts()
            assert {v: s["rows"] for v, s in per_value.items()} == {
                v: float(n) for v, n in counts.items()
            }

    def test_agrees_with_sklearn(self, score, model, holdout, spec):
        assert score.metrics == pytest.approx(direct(model, holdout, spec), rel=1e-9)

    @pytest.mark.parametrize("origin", ["EWR", "JFK", "LGA"])
    def test_slice_agrees_with_sklearn(self, score, model, holdout, spec, origin):
        sub = holdout[holdout["origin"] == origin]
        expected = {**direct(model, sub, spec), "rows": float(len(sub))}
        assert score.slices["origin"][origin] == pytest.approx(expected, rel=1e-9)

    def test_row_order_and_index_do_not_matter(self, score, model, holdout, spec):
        shuffled = holdout.sample(frac=1.0, random_state=3)
        shuffled.index = shuffled.index + 10_000  # not a RangeIndex, not positions
        again = score_model(model, shuffled, spec)
        assert again.metrics == pytest.approx(score.metrics, rel=1e-9)
        for col, per_value in score.slices.items():
            for value, metrics in per_value.items():
                assert again.slices[col][value] == pytest.approx(metrics, rel=1e-9), (col, value)

    def test_single_class_frame(self, model, holdout, spec):
        on_time = holdout[holdout["delayed"] == 0]
        s = score_model(model, on_time, spec)
        assert s.classes == [0]
        assert "roc_auc" not in s.metrics
        assert set(s.metrics) == {"accuracy"}
        predicted = model.predict(features_frame(on_time, spec))
        assert s.metrics["accuracy"] == pytest.approx(float((predicted == 0).mean()))
        assert all(set(m) == {"accuracy", "rows"} for m in s.slices["origin"].values())

    def test_round_trip(self, score):
        assert ModelScore.from_dict(score.to_dict()) == score

    def test_regression_task(self, spec, split):
        raw = spec.model_dump(by_alias=True)
        raw["target"]["task"] = "regression"
        raw["estimator"] = {"class_path": "sklearn.linear_model.Ridge", "params": {}}
        raw["metrics"] = {"primary": "rmse", "guardrails": []}
        regression = ModelSpec.model_validate(raw)
        model = fit(regression, split.train)
        s = score_model(model, split.holdout, regression)
        assert set(s.metrics) == {"rmse", "mae", "r2"}
        assert s.classes == []
        pred = model.predict(features_frame(split.holdout, regression))
        y = split.holdout["delayed"]
        assert s.metrics["mae"] == pytest.approx(skm.mean_absolute_error(y, pred))
        assert s.metrics["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, pred)))


class TestSliceGap:
    @pytest.mark.parametrize(
        ("slices", "min_rows", "expected"),
        [
            pytest.param(
                {
                    "origin": {
                        "EWR": {"roc_auc": 0.9, "rows": 400.0},
                        "JFK": {"roc_auc": 0.6, "rows": 400.0},
                    }
                },
                200,
                (0.3, "origin: JFK 0.600 vs EWR 0.900"),
                id="two-values",
            ),
            pytest.param(
                {
                    "origin": {
                        "EWR": {"roc_auc": 0.9, "rows": 100.0},
                        "JFK": {"roc_auc": 0.6, "rows": 400.0},
                        "LGA": {"roc_auc": 0.7, "rows": 400.0},
                    }
                },
                200,
                (0.1, "origin: JFK 0.600 vs LGA 0.700"),
                id="small-slice-ignored",
            ),
            pytest.param(
                {
                    "origin": {
                        "EWR": {"roc_auc": 0.9, "rows": 199.0},
                        "JFK": {"roc_auc": 0.6, "rows": 400.0},
                    }
                },
                200,
                None,
                id="one-value-left",
            ),
            pytest.param(
                {
                    "origin": {
                        "EWR": {"roc_auc": 0.9, "rows": 200.0},
                        "JFK": {"roc_auc": 0.6, "rows": 200.0},
                    }
                },
                200,
                (0.3, "origin: JFK 0.600 vs EWR 0.900"),
                id="min-rows-inclusive",
            ),
            pytest.param(
                {
                    "origin": {
                        "EWR": {"accuracy": 0.9, "rows": 400.0},
                        "JFK": {"roc_auc": 0.6, "rows": 400.0},
                    }
                },
                200,
                None,
                id="metric-missing-in-a-slice",
            ),
            pytest.param(
                {
                    "origin": {
                        "EWR": {"roc_auc": 0.8, "rows": 400.0},
                        "JFK": {"roc_auc": 0.7, "rows": 400.0},
                    },
                    "carrier": {
                        "AA": {"roc_auc": 0.9, "rows": 400.0},
                        "UA": {"roc_auc": 0.5, "rows": 400.0},
                    },
                },
                200,
                (0.4, "carrier: UA 0.500 vs AA 0.900"),
                id="widest-column-wins",
            ),
            pytest.param({}, 200, None, id="no-slices"),
        ],
    )
    def test_cases(self, slices, min_rows, expected):
        gap = slice_gap(hand_score(slices), "roc_auc", min_rows)
        if expected is None:
            assert gap is None
        else:
            assert gap[0] == pytest.approx(expected[0])
            assert gap[1] == expected[1]

    def test_on_real_score(self, score, spec):
        min_rows = spec.promotion.min_slice_rows
        gap, where = slice_gap(score, "roc_auc", min_rows)
        spreads = []
        for per_value in score.slices.values():
            values = [
                s["roc_auc"] for s in per_value.values() if s["rows"] >= min_rows and "roc_auc" in s
            ]
            if len(values) >= 2:
                spreads.append(max(values) - min(values))
        assert gap == pytest.approx(max(spreads))
        assert where.split(":")[0] in {"origin", "carrier"}


class TestFeatureImportance:
    def test_every_feature(self, model, holdout, spec):
        importance = feature_importance(model, holdout, spec, max_rows=1000)
        assert set(importance) == set(spec.features.all)
        values = list(importance.values())
        assert values == sorted(values, reverse=True)
        assert all(isinstance(v, float) for v in values)
        assert max(values) > 0  # shuffling the most useful feature must cost some AUC


class TestHigherIsBetter:
    @pytest.mark.parametrize(
        ("metric", "expected"),
        [
            pytest.param("roc_auc", True, id="roc_auc"),
            pytest.param("average_precision", True, id="average_precision"),
            pytest.param("accuracy", True, id="accuracy"),
            pytest.param("f1", True, id="f1"),
            pytest.param("r2", True, id="r2"),
            pytest.param("log_loss", False, id="log_loss"),
            pytest.param("brier", False, id="brier"),
            pytest.param("rmse", False, id="rmse"),
            pytest.param("mae", False, id="mae"),
        ],
    )
    def test_known(self, metric, expected):
        assert higher_is_better(metric) is expected

    @pytest.mark.parametrize(
        "metric", [pytest.param("auc", id="auc"), pytest.param("", id="empty")]
    )
    def test_unknown(self, metric):
        with pytest.raises(ValueError, match=rf"unknown metric '{metric}'; known: \['accuracy', "):
            higher_is_better(metric)
