"""The monitoring core: history table, data quality, label joins, alarm thresholds, the
change detector over windows, the demo's feed of features first and labels a week later."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modelkeeper.contracts.spec import get_spec
from modelkeeper.decisions.detector import Baseline
from modelkeeper.monitoring.alarms import (
    alarm_reasons,
    detector_over,
    join_labels,
    quality,
    window_values,
)
from modelkeeper.monitoring.history import History, Measurement

MODEL = "flight_delay"
KEY = ["carrier", "flight", "origin", "time_hour"]


@pytest.fixture
def history(tmp_path) -> History:
    return History.from_url(f"sqlite:///{tmp_path / 'h.db'}")


@pytest.fixture(scope="module")
def spec():
    return get_spec(MODEL)


class TestHistory:
    def test_series_in_window_order_and_retries_write_once(self, history):
        rows = [
            Measurement(
                MODEL,
                "realized",
                "roc_auc",
                v,
                version="1",
                window_start=w,
                rows=900,
                run_id="r1",
                dag_id="monitor_flight_delay",
            )
            for w, v in (("2013-03-05", 0.66), ("2013-02-26", 0.70))
        ]
        assert history.record(rows) == 2
        assert history.record(rows) == 0  # a retried task
        series = history.series(MODEL, kind="realized", metric="roc_auc")
        assert [(r["window_start"], r["value"]) for r in series] == [
            ("2013-02-26", 0.70),
            ("2013-03-05", 0.66),
        ]
        assert history.series("other_model") == []

    def test_nan_is_stored_as_missing(self, history):
        history.record([Measurement(MODEL, "quality", "temp.null_share", float("nan"))])
        assert history.series(MODEL)[0]["value"] is None

    def test_last_fired_alarm(self, history):
        fired = Measurement(MODEL, "alarm", "drift", 1.0, run_id="a", detail={"status": "fired"})
        later = Measurement(
            MODEL, "alarm", "drift", 1.0, run_id="b", detail={"status": "suppressed"}
        )
        history.record([fired, later])
        assert history.last_alarm(MODEL)["run_id"] == "a"
        assert history.last_alarm(MODEL, fired_only=False)["run_id"] == "b"

    @pytest.mark.postgres
    def test_on_postgres(self):
        import uuid

        import sqlalchemy as sa

        from tests.postgres import PG_URL

        engine = sa.create_engine(PG_URL)
        model = f"m_{uuid.uuid4().hex[:8]}"
        history = History(engine)
        history.record([Measurement(model, "drift", "drift_share", 0.4, run_id="r")])
        assert history.series(model)[0]["value"] == 0.4
        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM modelkeeper_history WHERE model = :m"), {"m": model})


class TestQuality:
    def test_shares(self, spec):
        frame = pd.DataFrame(
            {
                "hour": [1, 30, None, 5],  # one out of [0, 23], one missing
                "day_of_week": [0, 1, 2, 3],
                "distance": [100.0, 200.0, 300.0, 400.0],
                "temp": [50.0] * 4,
                "humid": [50.0] * 4,
                "wind_speed": [5.0] * 4,
                "precip": [0.0] * 4,
                "visib": [10.0] * 4,
                "carrier": ["UA", "ZZ", "AA", None],  # one unseen, one missing
                "origin": ["EWR"] * 4,
            }
        )
        q = quality(frame, spec)
        assert q["hour.null_share"] == 0.25 and q["hour.out_of_range_share"] == 0.25
        assert q["carrier.unseen_share"] == 0.25 and q["carrier.null_share"] == 0.25
        assert q["origin.unseen_share"] == 0.0

    def test_a_missing_column_is_named(self, spec):
        assert quality(pd.DataFrame({"hour": [1]}), spec)["temp.missing_column"] == 1.0


class TestJoinLabels:
    def test_left_join_by_key(self, spec):
        t = pd.Timestamp("2013-02-26 05:00")
        preds = pd.DataFrame(
            {
                "carrier": ["UA", "AA"],
                "flight": [1, 2],
                "origin": ["EWR", "JFK"],
                "time_hour": [t, t],
                "probability": [0.3, 0.6],
            }
        )
        labels = pd.DataFrame(
            {
                "carrier": ["UA", "UA", "DL"],
                "flight": [1, 1, 9],
                "origin": ["EWR"] * 3,
                "time_hour": [t, t, t],
                "delayed": [0, 1, 1],
            }
        )
        joined = join_labels(preds, labels, spec)
        # UA 1: the last of its two labels; AA 2: still pending; DL 9: never scored, ignored.
        assert joined["delayed"].tolist()[0] == 1 and pd.isna(joined["delayed"].tolist()[1])
        assert len(joined) == 2

    def test_keys_typed_differently_still_match(self, spec):
        # Labels from another system: times as ISO text, flight numbers as floats.
        t = pd.Timestamp("2013-02-26 05:00")
        preds = pd.DataFrame(
            {
                "carrier": ["UA", "AA"],
                "flight": [1, 2],
                "origin": ["EWR", "JFK"],
                "time_hour": [t, t],
                "probability": [0.3, 0.6],
            }
        )
        labels = pd.DataFrame(
            {
                "carrier": ["AA", "UA"],
                "flight": [2.0, 1.0],
                "origin": ["JFK", "EWR"],
                "time_hour": ["2013-02-26T05:00:00", "2013-02-26T05:00:00"],
                "delayed": [1, 0],
            }
        )
        assert join_labels(preds, labels, spec)["delayed"].tolist() == [0, 1]


class TestAlarmReasons:
    def test_drift_above_the_threshold_on_enough_rows(self, spec):
        assert alarm_reasons(spec, drift_share=0.73, drift_rows=6000)[0][0] == "drift"
        assert alarm_reasons(spec, drift_share=0.73, drift_rows=10) == []  # too few rows
        assert alarm_reasons(spec, drift_share=0.5, drift_rows=6000) == []

    def test_realized_or_estimated_decay(self, spec):
        m = {
            "metric": "roc_auc",
            "kind": "realized",
            "value": 0.55,
            "rows": 5000,
            "window_start": "2013-03-05T00:00:00",
            "slice_column": None,
            "slice_value": None,
        }
        [(kind, reason)] = alarm_reasons(spec, metrics=[m])
        assert kind == "realized_decay" and "0.550" in reason and "0.620" in reason
        assert alarm_reasons(spec, metrics=[{**m, "value": 0.7}]) == []
        assert alarm_reasons(spec, metrics=[{**m, "metric": "accuracy"}]) == []


def _window(week: int, kind: str, value: float, rows: int, **extra) -> dict:
    start = (pd.Timestamp("2024-01-01") + pd.Timedelta(days=7 * week)).isoformat()
    base = {"metric": "rmse", "slice_column": None, "window_start": start}
    return {**base, "kind": kind, "value": value, "rows": rows, **extra}


class TestWindowValues:
    def test_realized_where_labels_cover_the_window_else_the_estimate(self):
        got = window_values(
            [
                _window(0, "estimated", 1.0, 700),
                _window(0, "realized", 1.1, 700),
                _window(1, "estimated", 1.2, 700),
                _window(1, "realized", 9.0, 300),  # the first few labels of the window
                _window(2, "estimated", 1.3, 700),
            ],
            "rmse",
            min_rows=100,
        )
        assert [(w["kind"], w["value"]) for w in got] == [
            ("realized", 1.1),
            ("estimated", 1.2),
            ("estimated", 1.3),
        ]

    def test_the_measurement_on_most_rows_oldest_window_first(self):
        got = window_values(
            [
                _window(1, "estimated", 1.2, 700),
                _window(0, "estimated", 1.0, 400),
                _window(0, "estimated", 1.05, 700),  # more of the window scored
                _window(0, "estimated", 5.0, 3),  # a window cut at the horizon (older runs)
            ],
            "rmse",
            min_rows=100,
        )
        assert [w["value"] for w in got] == [1.05, 1.2]

    def test_small_windows_slices_other_metrics_and_gaps_are_left_out(self):
        got = window_values(
            [
                _window(0, "estimated", 1.0, 50),
                _window(1, "estimated", 1.0, 700, slice_column="c"),
                _window(2, "estimated", 1.0, 700, metric="mae"),
                _window(3, "estimated", None, 700),
                _window(4, "evaluation", 1.0, 700),
            ],
            "rmse",
            min_rows=100,
        )
        assert got == []

    def test_a_row_count_the_history_does_not_know_is_taken_as_none(self):
        # The history's `rows` column is nullable (rows recorded by hand, older writers):
        # such a window is not measured on enough rows, and it breaks nothing.
        got = window_values(
            [
                _window(0, "realized", 1.0, None),
                _window(0, "estimated", 1.1, None),
                _window(1, "realized", 1.2, 700),
                _window(1, "estimated", 1.3, None),
            ],
            "rmse",
            min_rows=100,
        )
        assert [(w["kind"], w["value"]) for w in got] == [("realized", 1.2)]


class TestDetectorOverWindows:
    BASE = Baseline("rmse", 1.2, 0.05, 700)  # sd at the holdout's 700 rows

    @staticmethod
    def _fold(values: list[float]):
        windows = [_window(w, "estimated", v, 700) for w, v in enumerate(values)]
        return detector_over(
            TestDetectorOverWindows.BASE, windows, false_alarm_rate=1 / 52, warmup_batches=3
        )

    def test_stationary_series_alarm_as_rarely_as_the_rate_says(self):
        """12 windows (9 judged after the warm-up) of an unchanged metric, 200 times: the
        share that alarms at some window is what 1/52 per window makes (16%)."""
        alarmed = 0
        for seed in range(200):
            values = list(1.2 + np.random.default_rng(seed).normal(scale=0.05, size=12))
            alarmed += any(self._fold(values[: n + 1]).alarm for n in range(3, 12))
        expected = 1 - (1 - 1 / 52) ** 9
        assert 0.5 * expected < alarmed / 200 < 2 * expected, alarmed

    def test_a_decay_alarms_within_two_windows(self):
        rng = np.random.default_rng(1)
        values = list(1.2 + rng.normal(scale=0.05, size=8))
        assert not self._fold(values).alarm
        late = self._fold([*values, 1.4, 1.4])
        assert late.alarm and late.statistic > late.threshold and late.batches == 10

    def test_an_improvement_is_no_alarm(self):
        assert not self._fold([1.2, 1.21, 1.19, 0.9, 0.8, 0.8]).alarm  # rmse: lower is better

    def test_warming_up_and_no_windows(self):
        assert self._fold([]) is None
        state = self._fold([3.0, 3.0])  # decayed, but the baseline is not complete yet
        assert not state.alarm and "warming up" in state.note


class TestDemoFeed:
    def test_features_first_then_labels_a_week_later(self, tmp_path):
        from modelkeeper.data.storage import Storage
        from modelkeeper.demo import land_next_features_and_labels, land_next_weeks

        storage = Storage(tmp_path)
        land_next_weeks(storage, n=2)  # weeks 0-1 labelled, as make run starts
        first = land_next_features_and_labels(storage)
        assert [p.name for p in first["features"]] == ["week_02.parquet"] and first["labels"] == []
        assert "delayed" not in pd.read_parquet(first["features"][0]).columns
        second = land_next_features_and_labels(storage)
        assert [p.name for p in second["features"]] == ["week_03.parquet"]
        assert [p.name for p in second["labels"]] == ["week_02.parquet"]
        assert "delayed" in pd.read_parquet(second["labels"][0]).columns
