"""The monitoring core: history table, data quality, label joins, alarm thresholds, the
demo's feed of features first and labels a week later."""

from __future__ import annotations

import pandas as pd
import pytest

from modelkeeper.contracts.spec import get_spec
from modelkeeper.monitoring.alarms import alarm_reasons, join_labels, quality
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
