"""Late labels: realized metrics per window equal sklearn's, and CBPE estimates them without labels.

The CBPE checks use synthetic data where the truth is known: a label is drawn from its
row's true probability, so a calibrated model's estimate must land on the realized
metric (up to sampling noise, seeded), a miscalibrated one's must not until the
calibrator fitted on a labelled reference fixes it, and a shifted population (covariate
shift: new rows, same relation between features and label) must move both together.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.isotonic import IsotonicRegression

from modelkeeper.contracts.errors import DataError
from modelkeeper.contracts.metric_names import CLASSIFICATION
from modelkeeper.contracts.results import Measurement
from modelkeeper.monitoring.cbpe import METRICS, Calibrator, estimate, fit_calibrator
from modelkeeper.monitoring.performance import (
    ESTIMATED,
    REALIZED,
    as_frame,
    estimated,
    realized,
    window_codes,
)

START = pd.Timestamp("2013-01-01")


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def population(n: int, seed: int, *, mean: float = 0.0, sd: float = 1.0):
    """(true probability, label, overconfident raw score) of n rows; x ~ N(mean, sd)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(mean, sd, size=n)
    p = sigmoid(1.5 * x - 1.0)
    y = (rng.random(n) < p).astype("int64")
    raw = sigmoid(3.0 * (1.5 * x - 1.0) + 0.7)  # same ranking, far too sure, biased up
    return p, y, raw


def sklearn_metrics(y, proba, pred=None) -> dict[str, float]:
    pred = (proba > 0.5).astype("int64") if pred is None else pred
    return {
        "roc_auc": skm.roc_auc_score(y, proba),
        "average_precision": skm.average_precision_score(y, proba),
        "log_loss": skm.log_loss(y, proba),
        "brier": skm.brier_score_loss(y, proba),
        "accuracy": skm.accuracy_score(y, pred),
        "f1": skm.f1_score(y, pred),
    }


def frame_of(n: int, seed: int, *, days: int = 21) -> pd.DataFrame:
    """n scored and labelled rows spread over `days` days from START, with a slice column."""
    rng = np.random.default_rng(seed)
    p, y, _ = population(n, seed)
    return pd.DataFrame(
        {
            "ts": START + pd.to_timedelta(rng.uniform(0, days * 24, size=n), unit="h"),
            "proba": p,
            "label": y,
            "origin": rng.choice(["EWR", "JFK", "LGA"], size=n, p=[0.5, 0.3, 0.2]),
        }
    )


def by_key(measurements: list[Measurement]) -> dict[tuple, Measurement]:
    return {m.series_key: m for m in measurements}


class TestEstimate:
    def test_every_classification_metric(self):
        assert set(estimate([0.2, 0.7, 0.9])) == set(METRICS) == CLASSIFICATION

    def test_two_rows_by_hand(self):
        # (1,0) with prob .81 orders its pair right, (0,1) with .01 wrong; the other two
        # labelings have no positive-negative pair: .81 / (.81 + .01).
        got = estimate([0.9, 0.1])
        assert got["roc_auc"] == pytest.approx(0.81 / 0.82)
        assert got["accuracy"] == pytest.approx(0.9)
        assert got["brier"] == pytest.approx(0.09)
        entropy = -(0.9 * np.log(0.9) + 0.1 * np.log(0.1))
        assert got["log_loss"] == pytest.approx(entropy)
        # TP .9, FP .1, FN .1: 1.8 / 2.0
        assert got["f1"] == pytest.approx(0.9)

    def test_roc_auc_is_the_ratio_of_expected_pairs(self):
        rng = np.random.default_rng(3)
        p = np.round(rng.uniform(size=12), 1)  # ties on purpose
        right = pairs = 0.0
        for i, j in itertools.permutations(range(len(p)), 2):
            w = p[i] * (1 - p[j])  # i positive, j negative
            pairs += w
            right += w * (1.0 if p[i] > p[j] else 0.5 if p[i] == p[j] else 0.0)
        assert estimate(p, metrics=["roc_auc"])["roc_auc"] == pytest.approx(right / pairs)

    def test_accuracy_is_the_mean_confidence(self):
        p = np.random.default_rng(4).uniform(size=1000)
        got = estimate(p, metrics="accuracy")
        assert got == {"accuracy": pytest.approx(np.maximum(p, 1 - p).mean())}

    def test_the_given_predicted_class_is_used(self):
        # The model predicts 0 for a row it gives 0.9: it is wrong 90% of the time.
        assert estimate([0.9], metrics="accuracy", prediction=[0]) == {
            "accuracy": pytest.approx(0.1)
        }

    def test_ranking_metrics_need_expected_positives_and_negatives(self):
        got = estimate([0.0, 0.0, 0.0])
        assert "roc_auc" not in got and "average_precision" not in got
        assert got["accuracy"] == 1.0

    def test_nothing_to_estimate_on_no_rows(self):
        assert estimate([]) == {}

    @pytest.mark.parametrize(
        ("proba", "metrics"),
        [
            pytest.param([0.5, 1.2], None, id="probability-above-1"),
            pytest.param([0.5], ["rmse"], id="regression-metric"),
        ],
    )
    def test_bad_input(self, proba, metrics):
        with pytest.raises(ValueError):
            estimate(proba, metrics=metrics)


class TestEstimateTracksRealized:
    """5,000 rows whose labels are drawn from their probabilities (seeded)."""

    @pytest.mark.parametrize(
        ("metric", "tolerance"),
        [
            pytest.param("roc_auc", 0.02, id="roc_auc"),
            pytest.param("average_precision", 0.03, id="average_precision"),
            pytest.param("accuracy", 0.02, id="accuracy"),
            pytest.param("f1", 0.03, id="f1"),
            pytest.param("brier", 0.01, id="brier"),
            pytest.param("log_loss", 0.02, id="log_loss"),
        ],
    )
    def test_calibrated_probabilities(self, metric, tolerance):
        p, y, _ = population(5000, seed=1)
        gap = estimate(p)[metric] - sklearn_metrics(y, p)[metric]
        assert abs(gap) < tolerance

    @pytest.mark.parametrize(
        "method", [pytest.param("isotonic", id="isotonic"), pytest.param("platt", id="platt")]
    )
    def test_the_calibrator_fixes_miscalibrated_scores(self, method):
        _, ref_y, ref_raw = population(5000, seed=2)  # the labelled reference (holdout)
        _, y, raw = population(5000, seed=5)  # the new window: scores only
        truth = sklearn_metrics(y, raw)
        calibrator = fit_calibrator(ref_raw, ref_y, method=method)
        # log loss of a model this sure of itself is noisy (sd ~0.016 at 5k rows).
        for metric, tolerance in {"roc_auc": 0.02, "accuracy": 0.02, "brier": 0.01}.items():
            naive = abs(estimate(raw, metrics=metric)[metric] - truth[metric])
            fixed = abs(estimate(raw, calibrator, metrics=metric)[metric] - truth[metric])
            assert naive > 0.04, metric  # overconfidence: far too optimistic
            assert fixed < tolerance and fixed < 0.25 * naive, (metric, naive, fixed)
        naive = abs(estimate(raw)["log_loss"] - truth["log_loss"])
        fixed = abs(estimate(raw, calibrator)["log_loss"] - truth["log_loss"])
        assert fixed < 0.1 * naive, (naive, fixed)

    def test_a_shifted_population_moves_estimate_and_realized_together(self):
        _, ref_y, ref_raw = population(5000, seed=6)
        calibrator = fit_calibrator(ref_raw, ref_y)
        _, y0, raw0 = population(5000, seed=7)  # like the reference
        _, y1, raw1 = population(5000, seed=8, mean=-0.5, sd=0.6)  # fewer, harder rows
        before = sklearn_metrics(y0, raw0)["roc_auc"]
        after = sklearn_metrics(y1, raw1)["roc_auc"]
        est_before = estimate(raw0, calibrator)["roc_auc"]
        est_after = estimate(raw1, calibrator)["roc_auc"]
        assert before - after > 0.05  # the shift really costs ranking power
        assert abs(est_after - after) < 0.02
        assert abs((est_before - est_after) - (before - after)) < 0.02


class TestCalibrator:
    def test_isotonic_applies_like_sklearn(self):
        _, y, raw = population(3000, seed=9)
        calibrator = fit_calibrator(raw, y)
        iso = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(raw, y)
        probe = np.r_[np.linspace(0, 1, 501), raw[:200]]
        np.testing.assert_allclose(calibrator.apply(probe), iso.predict(probe), atol=1e-12)
        assert calibrator.rows == 3000

    @pytest.mark.parametrize(
        "method",
        [
            pytest.param("isotonic", id="isotonic"),
            pytest.param("platt", id="platt"),
            pytest.param("identity", id="identity"),
        ],
    )
    def test_json_round_trip(self, method):
        _, y, raw = population(2000, seed=10)
        calibrator = fit_calibrator(raw, y, method=method)
        again = Calibrator.from_dict(json.loads(json.dumps(calibrator.to_dict())))
        assert again == calibrator
        np.testing.assert_array_equal(again.apply(raw), calibrator.apply(raw))

    def test_platt_inverts_a_logit_stretch(self):
        _, y, raw = population(20000, seed=11)
        calibrator = fit_calibrator(raw, y, method="platt")
        assert calibrator.slope == pytest.approx(1 / 3, abs=0.03)

    def test_identity_changes_nothing(self):
        p = np.array([0.0, 0.3, 1.0])
        np.testing.assert_array_equal(Calibrator.identity().apply(p), p)

    @pytest.mark.parametrize(
        ("proba", "labels", "match"),
        [
            pytest.param([0.2] * 100, [1] * 100, "single class", id="one-class"),
            pytest.param([0.2, 0.8] * 10, [0, 1] * 10, "labelled reference rows", id="too-few"),
            pytest.param([0.2, 0.8], [0], "labels", id="lengths-differ"),
        ],
    )
    def test_unusable_reference(self, proba, labels, match):
        with pytest.raises(DataError, match=match):
            fit_calibrator(proba, labels)

    def test_unknown_method(self):
        with pytest.raises(ValueError, match="calibration method"):
            fit_calibrator([0.1, 0.9] * 50, [0, 1] * 50, method="beta")


class TestRealized:
    @pytest.fixture(scope="class")
    def frame(self) -> pd.DataFrame:
        return frame_of(3000, seed=12)

    def test_equals_sklearn_per_window(self, frame):
        got = realized(frame, label="label", proba="proba", time_column="ts", min_rows=100)
        weeks = sorted({m.window_start for m in got})
        assert weeks == ["2013-01-01T00:00:00", "2013-01-08T00:00:00", "2013-01-15T00:00:00"]
        for week in weeks:
            lo = pd.Timestamp(week)
            rows = frame[(frame["ts"] >= lo) & (frame["ts"] < lo + pd.Timedelta(days=7))]
            expected = sklearn_metrics(rows["label"].to_numpy(), rows["proba"].to_numpy())
            overall = {
                m.metric: m for m in got if m.window_start == week and m.slice_column is None
            }
            assert list(overall) == list(METRICS)
            for metric, value in expected.items():
                assert overall[metric].value == pytest.approx(value, abs=1e-12)
                assert overall[metric].rows == len(rows)
                assert overall[metric].kind == REALIZED
                assert overall[metric].window_end == (lo + pd.Timedelta(days=7)).isoformat()

    def test_unlabelled_rows_wait(self, frame):
        late = frame.copy()
        late["label"] = late["label"].astype("Float64")
        late.loc[late["ts"] >= START + pd.Timedelta(days=7), "label"] = pd.NA
        got = realized(late, label="label", proba="proba", time_column="ts", min_rows=100)
        assert {m.window_start for m in got} == {"2013-01-01T00:00:00"}

    def test_windows_below_min_rows_are_skipped(self, frame):
        few = frame[frame["ts"] < START + pd.Timedelta(days=14)]
        few = few[(few["ts"] < START + pd.Timedelta(days=7)) | (few.index % 20 == 0)]
        n_second = int((few["ts"] >= START + pd.Timedelta(days=7)).sum())
        got = realized(few, label="label", proba="proba", time_column="ts", min_rows=n_second + 1)
        assert {m.window_start for m in got} == {"2013-01-01T00:00:00"}
        got = realized(few, label="label", proba="proba", time_column="ts", min_rows=n_second)
        assert len({m.window_start for m in got}) == 2

    def test_slices(self, frame):
        got = realized(
            frame,
            label="label",
            proba="proba",
            time_column="ts",
            min_rows=150,
            slices=["origin"],
            metrics=["roc_auc"],
        )
        week = frame[frame["ts"] < START + pd.Timedelta(days=7)]
        counts = week["origin"].value_counts()
        first = [m for m in got if m.window_start == "2013-01-01T00:00:00" and m.slice_column]
        assert {m.slice_value for m in first} == {v for v, n in counts.items() if n >= 150}
        for m in first:
            rows = week[week["origin"] == m.slice_value]
            assert m.rows == len(rows) and m.metric == "roc_auc"
            assert m.value == pytest.approx(skm.roc_auc_score(rows["label"], rows["proba"]))

    def test_one_class_window_has_no_ranking_metrics(self, frame):
        one = frame[frame["label"] == 0]
        got = realized(one, label="label", proba="proba", time_column="ts", min_rows=10)
        assert {m.metric for m in got} == {"accuracy"}

    def test_the_given_predicted_class_is_used(self, frame):
        flipped = frame.assign(pred=(frame["proba"] <= 0.5).astype("int64"))
        plain = by_key(
            realized(flipped, label="label", proba="proba", time_column="ts", min_rows=100)
        )
        given = by_key(
            realized(
                flipped,
                label="label",
                proba="proba",
                prediction="pred",
                time_column="ts",
                min_rows=100,
            )
        )
        for key, m in plain.items():
            if m.metric == "accuracy":
                assert given[key].value == pytest.approx(1 - m.value)
            if m.metric == "roc_auc":
                assert given[key].value == m.value

    def test_missing_column(self, frame):
        with pytest.raises(DataError, match="not in the frame"):
            realized(frame, label="delayed", proba="proba", time_column="ts", min_rows=1)


class TestEstimated:
    def test_pairs_with_realized_and_tracks_it(self):
        frame = frame_of(40000, seed=13)
        kw = {"proba": "proba", "time_column": "ts", "min_rows": 2000, "slices": ["origin"]}
        real = by_key(realized(frame, label="label", **kw))
        est = by_key(estimated(frame.drop(columns="label"), calibrator=None, **kw))
        assert set(est) == set(real)
        assert {m.kind for m in est.values()} == {ESTIMATED}
        for key, m in est.items():
            assert m.rows == real[key].rows
            if m.metric == "roc_auc":
                assert abs(m.value - real[key].value) < 0.03, key

    def test_calibrator_is_applied(self):
        frame = frame_of(1000, seed=14, days=7)
        squeeze = Calibrator(method="isotonic", x=[0.0, 1.0], y=[0.5, 0.5])
        got = estimated(frame, proba="proba", calibrator=squeeze, time_column="ts", min_rows=1)
        values = {m.metric: m.value for m in got}
        assert values["accuracy"] == pytest.approx(0.5)
        assert values["roc_auc"] == pytest.approx(0.5)


class TestWindows:
    @pytest.mark.parametrize(
        ("times", "every", "start", "codes", "origin"),
        [
            pytest.param(
                ["2013-01-01 05:00", "2013-01-07 23:59", "2013-01-08 00:00"],
                "7D",
                None,
                [0, 0, 1],
                "2013-01-01T00:00:00",
                id="weeks-from-the-first-day",
            ),
            pytest.param(
                ["2013-01-01 05:00", "2013-01-07 00:00"],
                "7D",
                "2012-12-31",  # a Monday
                [0, 1],
                "2012-12-31T00:00:00",
                id="monday-weeks",
            ),
            pytest.param(
                ["2013-01-01 05:00", None, "2013-01-02 01:00"],
                "1D",
                None,
                [0, None, 1],
                "2013-01-01T00:00:00",
                id="daily-missing-time",
            ),
        ],
    )
    def test_codes(self, times, every, start, codes, origin):
        got, first, step = window_codes(pd.Series(pd.to_datetime(times)), every=every, start=start)
        assert [None if np.isnan(c) else int(c) for c in got] == codes
        assert first.isoformat() == origin and step == pd.Timedelta(every)

    def test_timezone_aware_times(self):
        times = pd.Series(pd.to_datetime(["2013-01-01 05:00", "2013-01-09 00:00"], utc=True))
        got, origin, _ = window_codes(times, start="2013-01-01")
        assert list(got) == [0, 1] and origin.isoformat() == "2013-01-01T00:00:00+00:00"

    def test_every_must_be_positive(self):
        with pytest.raises(ValueError, match="positive"):
            window_codes(pd.Series(pd.to_datetime(["2013-01-01"])), every="0D")


class TestMeasurement:
    def test_json_round_trip(self):
        week = {"window_start": "2013-01-01T00:00:00", "window_end": "2013-01-08T00:00:00"}
        m = Measurement("", ESTIMATED, "roc_auc", 0.71, rows=900, **week)
        sliced = Measurement(
            "", REALIZED, "f1", 0.3, rows=210, slice_column="origin", slice_value="JFK", **week
        )
        for one in (m, sliced):
            assert Measurement.from_dict(json.loads(json.dumps(one.to_dict()))) == one
        assert m.slice_column is None and m.slice_value is None

    def test_as_frame(self):
        frame = frame_of(500, seed=15, days=7)
        got = as_frame(realized(frame, label="label", proba="proba", time_column="ts", min_rows=10))
        assert list(got["metric"]) == list(METRICS)
        assert got["slice_column"].isna().all() and (got["rows"] == 500).all()
