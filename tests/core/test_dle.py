"""DLE estimates a regressor's rmse and mae without labels; per window, beside the realized.

Synthetic data where the truth is known: y = 2*x1 + 0.3*x2 + noise whose sd grows with
|x1| and is 1.5 times larger for c = "b". A linear champion fits the mean, so its error
depends on where a row lies: windows with a wider x1, or more "b" rows (covariate shift:
new rows, the same rule), are harder, and the estimate, from features and prediction
alone, must follow the realized metric there.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.linear_model import Ridge

from modelkeeper.contracts.errors import DataError
from modelkeeper.monitoring.dle import METRICS, MIN_REFERENCE_ROWS, fit_dle
from modelkeeper.monitoring.performance import ESTIMATED, REALIZED, regression

START = pd.Timestamp("2024-01-01")
WINDOWS = {"label": "y", "prediction": "prediction", "time_column": "ts"}
FEATURES = {"numeric": ["x1", "x2"], "categorical": ["c"]}
#: What the estimate must come within of the realized metric: each 1,000-row window, and
#: the mean over ten windows (measured: at most 8% and 4%, shifted populations included).
WINDOW_TOLERANCE, MEAN_TOLERANCE = 0.10, 0.05


def population(n: int, seed: int, *, scale: float = 1.0, b_share: float = 0.5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n) * scale, rng.normal(size=n)
    c = np.where(rng.random(n) < b_share, "b", "a")
    noise = (0.3 + 0.7 * np.abs(x1)) * np.where(c == "a", 1.0, 1.5)
    y = 2.0 * x1 + 0.3 * x2 + rng.normal(size=n) * noise
    return pd.DataFrame({"x1": x1, "x2": x2, "c": c, "y": y})


@pytest.fixture(scope="module")
def champion() -> Ridge:
    train = population(2000, 1)
    return Ridge().fit(train[["x1", "x2"]], train["y"])


def scored(model: Ridge, frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(prediction=model.predict(frame[["x1", "x2"]]))


@pytest.fixture(scope="module")
def estimator(champion):
    """DLE fitted on the champion's holdout (rows it was not trained on)."""
    return fit_dle(scored(champion, population(3000, 2)), label="y", **FEATURES)


def realized_of(frame: pd.DataFrame) -> dict[str, float]:
    return {
        "rmse": float(np.sqrt(skm.mean_squared_error(frame["y"], frame["prediction"]))),
        "mae": float(skm.mean_absolute_error(frame["y"], frame["prediction"])),
    }


class TestEstimateTracksRealized:
    @pytest.mark.parametrize(
        "shift",
        [
            pytest.param({}, id="stationary"),
            pytest.param({"scale": 1.5}, id="wider-x1"),
            pytest.param({"scale": 0.5}, id="narrower-x1"),
            pytest.param({"b_share": 0.9}, id="mostly-b"),
            pytest.param({"b_share": 0.1}, id="mostly-a"),
        ],
    )
    @pytest.mark.parametrize("metric", METRICS)
    def test_within_tolerance_per_window(self, champion, estimator, metric, shift):
        ratios = []
        for seed in range(100, 110):
            window = scored(champion, population(1000, seed, **shift))
            ratios.append(estimator.estimate(window)[metric] / realized_of(window)[metric] - 1)
        assert max(np.abs(ratios)) < WINDOW_TOLERANCE, ratios
        assert abs(np.mean(ratios)) < MEAN_TOLERANCE, ratios

    def test_follows_covariate_shift(self, champion, estimator):
        """Harder rows: the estimate rises with the realized metric (a third for x1 1.5
        times wider); easier rows: it falls."""
        base, wide, narrow = (
            scored(champion, population(5000, 7, scale=s)) for s in (1.0, 1.5, 0.5)
        )
        for metric in METRICS:
            est = {k: estimator.estimate(f)[metric] for k, f in (("base", base), ("wide", wide))}
            real = {k: realized_of(f)[metric] for k, f in (("base", base), ("wide", wide))}
            assert est["wide"] / est["base"] > 1.25, (metric, est, real)
            assert est["wide"] / est["base"] == pytest.approx(real["wide"] / real["base"], rel=0.08)
            assert estimator.estimate(narrow)[metric] < 0.75 * est["base"]

    def test_a_row_s_loss_depends_on_where_it_lies(self, champion, estimator):
        rows = scored(
            champion,
            pd.DataFrame({"x1": [0.0, 2.0, 2.0], "x2": [0.0] * 3, "c": ["a", "a", "b"]}),
        )
        absolute, squared = estimator.losses(rows)
        assert absolute[0] < absolute[1] < absolute[2]
        assert squared[0] < squared[1] < squared[2]
        assert (absolute >= 0).all() and (squared >= 0).all()


class TestFit:
    def test_unseen_categories_and_missing_values_are_estimated(self, champion, estimator):
        rows = scored(champion, population(200, 9)).assign(c="z")
        rows.loc[:10, "x2"] = np.nan
        got = estimator.estimate(rows)
        assert set(got) == {"rmse", "mae"} and all(np.isfinite(v) for v in got.values())

    def test_nothing_to_estimate_on_no_rows(self, estimator):
        assert estimator.estimate(pd.DataFrame(columns=["x1", "x2", "c", "prediction"])) == {}

    def test_r2_is_not_estimated(self, champion, estimator):
        # r2 also needs the variance of labels that have not arrived.
        assert estimator.estimate(scored(champion, population(100, 3)), ["r2"]) == {}
        assert list(estimator.estimate(scored(champion, population(100, 3)), "mae")) == ["mae"]

    @pytest.mark.parametrize(
        ("reference", "match"),
        [
            pytest.param(lambda f: f.drop(columns=["y"]), r"lacks \['y'\]", id="no-labels"),
            pytest.param(
                lambda f: f.assign(y=np.nan), "0 labelled reference rows", id="unlabelled"
            ),
            pytest.param(
                lambda f: f.head(MIN_REFERENCE_ROWS - 1),
                f"DLE needs >= {MIN_REFERENCE_ROWS}",
                id="few",
            ),
        ],
    )
    def test_unusable_reference(self, champion, reference, match):
        frame = reference(scored(champion, population(500, 4)))
        with pytest.raises(DataError, match=match):
            fit_dle(frame, label="y", **FEATURES)


class TestPerWindow:
    @pytest.fixture
    def frame(self, champion):
        """Three weeks of rows, the third with a wider x1; the first week's labels only."""
        weeks = [population(700, 20 + w, scale=1.5 if w == 2 else 1.0) for w in range(3)]
        for w, week in enumerate(weeks):
            week["ts"] = START + pd.Timedelta(days=7 * w) + pd.to_timedelta(np.arange(700), "min")
        frame = scored(champion, pd.concat(weeks, ignore_index=True))
        return frame.assign(y=frame["y"].where(frame["ts"] < START + pd.Timedelta(days=7)))

    def test_realized_equals_evaluation_s_metrics_on_labelled_windows(self, frame, estimator):
        got, _ = regression(frame, estimator=estimator, min_rows=100, **WINDOWS)
        assert {(m.window_start[:10], m.kind) for m in got} == {("2024-01-01", REALIZED)}
        week = frame.iloc[:700]
        want = {**realized_of(week), "r2": skm.r2_score(week["y"], week["prediction"])}
        assert {m.metric: m.value for m in got} == pytest.approx(want, rel=1e-12)
        assert {m.rows for m in got} == {700}
        only, _ = regression(frame, estimator=None, min_rows=701, **WINDOWS)
        assert only == []  # fewer labelled rows than min_rows: not measured

    def test_estimated_everywhere_and_rising_with_the_shift(self, frame, estimator):
        _, got = regression(frame, estimator=estimator, min_rows=100, slices=["c"], **WINDOWS)
        overall = {(m.window_start[:10], m.metric): m.value for m in got if m.slice_column is None}
        assert {k for k, _ in overall} == {"2024-01-01", "2024-01-08", "2024-01-15"}
        assert {m.kind for m in got} == {ESTIMATED}
        assert overall[("2024-01-15", "rmse")] > 1.2 * overall[("2024-01-08", "rmse")]
        week1 = realized_of(frame.iloc[:700])
        for metric in METRICS:
            assert overall[("2024-01-01", metric)] == pytest.approx(week1[metric], rel=0.1)
        by_c = {
            (m.slice_value, m.metric): m.value
            for m in got
            if m.window_start[:10] == "2024-01-08" and m.slice_column == "c"
        }
        assert by_c[("b", "mae")] > by_c[("a", "mae")]

    def test_no_estimator_no_estimate(self, frame):
        assert regression(frame, estimator=None, min_rows=1, **WINDOWS)[1] == []

    def test_rows_without_a_prediction_or_any_feature_are_left_out(self, frame, estimator):
        frame.loc[:99, "prediction"] = np.nan
        frame.loc[100:149, ["x1", "x2", "c"]] = np.nan  # their features were not found
        real, est = regression(frame, estimator=estimator, min_rows=1, **WINDOWS)
        first = [m for m in est if m.window_start.startswith("2024-01-01")]
        assert {m.rows for m in first} == {550}
        assert {m.rows for m in real} == {600}  # the label and the prediction are there
