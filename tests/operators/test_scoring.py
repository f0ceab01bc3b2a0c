"""The champion at work, through the factory's score_ and monitor_ DAG tasks, on real GX,
Evidently, a local MLflow store, a real SQLite history and a real SMTP server (aiosmtpd
on loopback, started here): scoring, late labels, history, alarms and notifications.

One world per module: a champion trained on weeks 0-7, then weeks landing as the demo
feed lands them (features first, labels a week later).
"""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest
from airflow.sdk.exceptions import AirflowFailException

from tests.helpers import dag_tasks, run_dag_tasks, run_pipeline

MODEL = "flight_delay"
SCORE = ["collect", "validate", "score", "watch", "alarm"]
MONITOR = ["collect_labels", "validate_labels", "measure", "alarm"]


@pytest.fixture(scope="module")
def smtp():
    """A real SMTP server on loopback; the messages it received."""
    from aiosmtpd.controller import Controller

    from tests.procs import free_port

    received: list = []

    class Keep:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd API)
            received.append(envelope)
            return "250 OK"

    controller = Controller(Keep(), hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, received
    controller.stop()


@pytest.fixture(scope="module")
def world(tmp_path_factory, smtp):
    from modelkeeper.data.storage import Storage
    from modelkeeper.demo import land_next_weeks
    from modelkeeper.monitoring.history import History
    from modelkeeper.records.registry import Registry

    base = tmp_path_factory.mktemp("scoring-world")
    saved = dict(os.environ)
    uri = f"sqlite:///{base / 'mlflow.db'}"
    controller, _ = smtp
    os.environ.update(
        {
            "MODELKEEPER_STORAGE": str(base / "storage"),
            "AIRFLOW_CONN_MODELKEEPER_AUDIT": json.dumps(
                {"conn_type": "sqlite", "host": str(base / "audit.db")}
            ),
            "AIRFLOW_CONN_MLFLOW_DEFAULT": json.dumps(
                {"conn_type": "http", "host": uri, "extra": {"artifact_location": str(base / "a")}}
            ),
            "AIRFLOW_CONN_SMTP_DEFAULT": json.dumps(
                {
                    "conn_type": "smtp",
                    "host": "127.0.0.1",
                    "port": controller.port,
                    "extra": {
                        "disable_tls": True,
                        "disable_ssl": True,
                        "from_email": "mk@example.com",
                    },
                }
            ),
        }
    )
    storage = Storage()
    land_next_weeks(storage, n=8)
    first = run_pipeline("manual__champion")
    assert first[("promote", "return_value")]["action"] == "promoted"
    yield {
        "storage": storage,
        "registry": Registry(uri, artifact_location=str(base / "a")),
        "history": History.from_url(f"sqlite:///{base / 'audit.db'}"),
        "champion": first[("train", "return_value")]["version"],
    }
    os.environ.clear()
    os.environ.update(saved)


def land_features(storage, week: int, frame=None):
    from modelkeeper.demo import load_flights, week_frame

    frame = week_frame(load_flights(), week) if frame is None else frame
    path = storage.landing_dir() / "flights_features" / f"week_{week:02d}.parquet"
    storage.write_parquet(frame.drop(columns=["delayed"], errors="ignore"), path)
    return path


def land_labels(storage, week: int, frame=None):
    from modelkeeper.demo import load_flights, week_frame

    frame = week_frame(load_flights(), week) if frame is None else frame
    return storage.write_parquet(
        frame, storage.landing_dir() / "flights" / f"week_{week:02d}.parquet"
    )


def score(run_id: str, xcoms: dict | None = None) -> tuple[dict, dict]:
    xcoms = {} if xcoms is None else xcoms  # given: still filled when a task raises
    states = run_dag_tasks(dag_tasks("build_score_dag"), SCORE, run_id, xcoms)
    return states, xcoms


def monitor(run_id: str) -> tuple[dict, dict]:
    xcoms: dict = {}
    states = run_dag_tasks(dag_tasks("build_monitor_dag"), MONITOR, run_id, xcoms)
    return states, xcoms


class TestScoring:
    def test_scores_new_rows_with_the_champion(self, world):
        from modelkeeper.contracts.spec import get_spec
        from modelkeeper.serving import scoring

        land_features(world["storage"], 8)
        states, xcoms = score("manual__score8")
        assert states["score"] == states["watch"] == "success", states
        scored = xcoms[("score", "return_value")]
        assert scored["version"] == world["champion"] and scored["rows"] > 5000
        assert scored["p50_ms_per_1k"] > 0 and scored["p95_ms_per_1k"] >= scored["p50_ms_per_1k"]
        log = scoring.read_log(get_spec(MODEL), world["storage"])
        assert len(log) == scored["rows"]
        assert (log[scoring.VERSION] == world["champion"]).all()
        assert log[scoring.PROBABILITY].between(0, 1).all()
        dest = pd.read_parquet(scored["destination"])
        assert len(dest) == scored["rows"]
        watched = xcoms[("watch", "return_value")]
        assert watched["drift_share"] is not None and watched["prediction_drift"] is not None
        rows = world["history"].series(MODEL, kind="scoring", metric="rows")
        assert rows[-1]["value"] == scored["rows"]

    def test_a_prediction_is_written_once_per_key_on_a_rerun(self, world):
        from modelkeeper.contracts.spec import get_spec
        from modelkeeper.serving import scoring

        before = scoring.read_log(get_spec(MODEL), world["storage"])
        states, xcoms = score("manual__score8")  # the same run again
        after = scoring.read_log(get_spec(MODEL), world["storage"])
        assert len(after) == len(before)
        key = ["carrier", "flight", "origin", "time_hour"]
        assert not after.duplicated(subset=[*key, scoring.VERSION]).any()
        # The same rows re-landed as a new file: nothing is predicted twice either.
        from modelkeeper.demo import load_flights, week_frame

        land_features(world["storage"], 8, week_frame(load_flights(), 8).head(2000))
        _, again = score("manual__relanded")
        assert again[("score", "return_value")]["rows"] == 0
        assert again[("score", "return_value")]["skipped_known"] == 2000
        assert len(scoring.read_log(get_spec(MODEL), world["storage"])) == len(before)

    def test_a_batch_with_a_bad_column_is_quarantined_and_nothing_predicted(self, world):
        from modelkeeper.contracts.spec import get_spec
        from modelkeeper.demo import load_flights, week_frame
        from modelkeeper.serving import scoring

        before = len(scoring.read_log(get_spec(MODEL), world["storage"]))
        bad = week_frame(load_flights(), 20).assign(hour=99)
        land_features(world["storage"], 20, bad)
        xcoms: dict = {}
        with pytest.raises(AirflowFailException, match="column=hour"):
            score("manual__bad", xcoms)
        # what the failed run's note will say (the listener copies it; issue 23 item 16)
        from modelkeeper.contracts import lineage as L

        why = xcoms[("validate", L.FAILURE_XCOM)]
        assert why.startswith("validate failed: DataError: "), why
        assert "column=hour" in why and "AirflowFailException" not in why, why
        quarantine = world["storage"].quarantine_dir(f"{MODEL}__scoring", "manual__bad")
        assert (quarantine / "week_20.parquet" / "batch.parquet").exists()
        assert len(scoring.read_log(get_spec(MODEL), world["storage"])) == before


class TestLateLabels:
    def test_labels_joined_late_give_realized_and_estimated_metrics(self, world):
        land_labels(world["storage"], 8)
        land_features(world["storage"], 9)
        score("manual__score9")
        states, xcoms = monitor("manual__monitor8")
        assert states["measure"] == "success", states
        measured = xcoms[("measure", "return_value")]
        assert measured["joined"] > 5000 and measured["pending"] > 5000  # week 8 in, 9 pending
        history = world["history"]
        realized = history.series(MODEL, kind="realized", metric="roc_auc")
        estimated = history.series(MODEL, kind="estimated", metric="roc_auc")
        week8 = "2013-02-26"
        assert [r["window_start"][:10] for r in realized] == [week8]
        assert {r["window_start"][:10] for r in estimated} >= {week8, "2013-03-05"}
        real = realized[0]["value"]
        est = next(e for e in estimated if e["window_start"][:10] == week8)["value"]
        assert 0.55 < real < 0.9 and abs(real - est) < 0.08, (real, est)

    def test_labels_for_keys_never_scored_and_labels_sent_twice(self, world):
        from modelkeeper.demo import load_flights, week_frame

        before = monitor("manual__monitor_base")[1][("measure", "return_value")]["joined"]
        week8 = week_frame(load_flights(), 8)
        unscored = week8.head(50).assign(flight=range(9000, 9050))  # never predicted
        again = week8.head(50)  # the same labels a second time, in another file
        land_labels(world["storage"], 30, pd.concat([unscored, again], ignore_index=True))
        states, xcoms = monitor("manual__monitor_odd")
        assert states["validate_labels"] == states["measure"] == "success", states
        measured = xcoms[("measure", "return_value")]
        assert measured["joined"] == before  # nothing new joined
        # counted, not dropped (issue 23 item 4): in the result and the history
        assert measured["unmatched"] == len(unscored), measured
        from modelkeeper.contracts import lineage as L

        note = xcoms[("measure", L.OUTCOME_XCOM)]  # the run's note (the listener copies it)
        assert f"; {len(unscored)} labels match no prediction (kept" in note, note
        [row] = world["history"].series(MODEL, kind="labels", metric="unmatched")[-1:]
        assert row["value"] == len(unscored) and row["run_id"] == "manual__monitor_odd"
        # kept for a later join: once those rows are scored, their labels join
        land_features(world["storage"], 32, unscored)
        assert score("manual__score_late_keys")[0]["score"] == "success"
        measured = monitor("manual__monitor_late_keys")[1][("measure", "return_value")]
        assert measured["joined"] == before + len(unscored) and measured["unmatched"] == 0

    def test_duplicate_keys_in_one_labels_file_are_quarantined(self, world):
        from modelkeeper.demo import load_flights, week_frame

        week8 = week_frame(load_flights(), 8)
        land_labels(world["storage"], 31, pd.concat([week8.head(20), week8.head(20)]))
        with pytest.raises(AirflowFailException, match="expect_compound_columns_to_be_unique"):
            monitor("manual__monitor_dupes")


class TestAlarms:
    def test_a_shifted_feed_raises_a_drift_alarm_once_inside_the_cooldown(
        self, world, smtp, monkeypatch
    ):
        from modelkeeper.contracts.lineage import alarm_asset
        from modelkeeper.demo import drifted_frame, load_flights, week_frame

        _ignore_earlier_alarms(monkeypatch)  # a decay alarm of the label tests may have fired
        _, received = smtp
        shifted = drifted_frame(week_frame(load_flights(), 10), seed=3)
        land_features(world["storage"], 10, shifted)
        states, xcoms = score("manual__shifted")
        watched = xcoms.get(("watch", "return_value"))
        assert states["alarm"] == "success", (states, watched["drift_share"], watched["rows"])
        alarm = xcoms[("alarm", "return_value")]
        assert alarm["status"] == "fired" and "drift" in alarm["reason"]
        event = xcoms[("outlet_events", "manual__shifted")][alarm_asset(MODEL)]
        assert event.extra["reason"] == alarm["reason"]  # what retrain's decide will show
        mails = [_text(m.content) for m in received]
        assert any(MODEL in m and alarm["reason"] in m for m in mails), mails[-1:]
        # Another shifted batch within the cooldown: recorded, not fired.
        land_features(world["storage"], 11, drifted_frame(week_frame(load_flights(), 11), seed=4))
        states, xcoms = score("manual__shifted_again")
        assert states["alarm"] == "skipped"
        alarms = world["history"].series(MODEL, kind="alarm")
        assert [a["detail"]["status"] for a in alarms][-2:] == ["fired", "suppressed"]

    def test_decide_retrains_with_the_alarm_s_reason(self, world):
        from types import SimpleNamespace

        from airflow.sdk import Asset

        from modelkeeper.contracts.lineage import alarm_asset
        from modelkeeper.contracts.results import Monitoring
        from tests.helpers import DEFAULT_PARAMS, make_context, retrain_tasks

        decide = retrain_tasks(MODEL)["decide"]
        asset = Asset(alarm_asset(MODEL))
        event = SimpleNamespace(extra={"reason": "drift: 90% of columns drifted"})
        xcoms = {("monitor", "return_value"): Monitoring(world["champion"], 0).to_dict()}
        ctx = make_context(
            "asset_triggered__alarm",
            "decide",
            xcoms,
            run_type="asset_triggered",
            params=DEFAULT_PARAMS,
        )
        ctx["triggering_asset_events"] = {asset: [event]}
        ctx["task"] = decide
        decide.render_template_fields(ctx)
        assert decide.choose_branch(ctx) == ["train", "finish"]
        assert xcoms[("decide", "return_value")]["reason"] == "alarm: drift: 90% of columns drifted"

    def test_flipped_labels_raise_a_realized_decay_alarm(self, world, monkeypatch):
        from modelkeeper.demo import load_flights, week_frame

        _ignore_earlier_alarms(monkeypatch)  # a fresh cooldown: the drift alarm fired above
        week9 = week_frame(load_flights(), 9)
        land_labels(world["storage"], 9, week9.assign(delayed=1 - week9["delayed"]))
        states, xcoms = monitor("manual__flipped")
        assert states["alarm"] == "success", (states, xcoms.get(("measure", "return_value")))
        alarm = xcoms[("alarm", "return_value")]
        assert "realized_decay" in alarm["kinds"] and "below floor 0.620" in alarm["reason"]


class TestNothingStranded:
    """Issue 23 item 1: a scoring run that fails after validate accepted its rows used to
    strand them (the next run only collects new files). Weeks 40-41: no other test's."""

    def test_a_failed_run_s_rows_are_scored_by_the_next_run(self, world, monkeypatch):
        from modelkeeper.contracts.spec import get_spec
        from modelkeeper.data.keys import anti_join
        from modelkeeper.demo import load_flights, week_frame
        from modelkeeper.serving import scoring
        from tests.helpers import run_operator
        from tests.procs import free_port

        storage, spec = world["storage"], get_spec(MODEL)
        week40, week41 = week_frame(load_flights(), 40), week_frame(load_flights(), 41)
        land_features(storage, 40, week40)
        tasks, xcoms = dag_tasks("build_score_dag"), {}
        for task_id in ("collect", "validate"):
            run_operator(tasks[task_id], "manual__fails", xcoms)
        assert xcoms[("validate", "return_value")]["rows"] == len(week40)
        with monkeypatch.context() as dead:  # MLflow gone while `score` runs (no retries left)
            dead.setenv(
                "AIRFLOW_CONN_MLFLOW_DEFAULT",
                json.dumps({"conn_type": "http", "host": f"http://127.0.0.1:{free_port()}"}),
            )
            dead.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
            with pytest.raises(Exception, match="(?i)connect|refused|max retries"):
                run_operator(tasks["score"], "manual__fails", xcoms)

        def unscored(frame):
            return anti_join(frame, scoring.read_log(spec, storage), list(spec.scoring.key), spec)

        assert len(unscored(week40)) == len(week40)  # accepted, not predicted: owed
        # Nothing new has landed: the next run still goes on, for the owed rows.
        states, xcoms = score("manual__catch_up")
        assert states["score"] == states["watch"] == "success", states
        scored = xcoms[("score", "return_value")]
        assert scored["caught_up"] == ["manual__fails"] and scored["rows"] == len(week40)
        assert unscored(week40).empty
        watched = xcoms[("watch", "return_value")]
        assert watched["rows"] == len(week40)
        # Settled: the run after that has nothing to do, and new rows are scored alone.
        states, _ = score("manual__settled")
        assert states["score"] == "skipped", states
        land_features(storage, 41, week41)
        states, xcoms = score("manual__next")
        scored = xcoms[("score", "return_value")]
        assert scored["caught_up"] == [] and scored["rows"] == len(week41)
        assert unscored(week41).empty


def _ignore_earlier_alarms(monkeypatch) -> None:
    """The cooldown as if no alarm had fired before this test."""
    from datetime import UTC, datetime

    from modelkeeper.monitoring.history import History

    start, real = datetime.now(UTC).isoformat(), History.last_alarm

    def since_start(self, model, fired_only=True):
        last = real(self, model, fired_only=fired_only)
        return last if last and last["recorded_at"] >= start else None

    monkeypatch.setattr(History, "last_alarm", since_start)


def _text(raw: bytes) -> str:
    """An email's text, its parts decoded (the HTML part is escaped: compare plain text)."""
    import email
    import html

    message = email.message_from_bytes(raw)
    parts = message.walk() if message.is_multipart() else [message]
    body = " ".join(
        p.get_payload(decode=True).decode(p.get_content_charset() or "utf-8", "replace")
        for p in parts
        if not p.is_multipart()
    )
    return html.unescape(f"{message['Subject']} {body}")
