"""The pipeline's operators, execute()d in order against real GX, Evidently and an MLflow store.

One world per module (training is the slow part): a first run makes the champion, a
drifted batch goes through monitoring and the gate, a broken batch is quarantined.
"""

from __future__ import annotations

import json
import os
import re

import pytest
from airflow.sdk.exceptions import AirflowFailException

from modelkeeper.contracts import lineage as L
from tests.helpers import (
    DEFAULT_PARAMS,
    accepted_rows,
    committed,
    retrain_tasks,
    run_operator,
    run_pipeline,
)

MODEL = "flight_delay"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Storage with 9 landed weeks, a local MLflow store as `mlflow_default`."""
    from modelkeeper.data.storage import Storage
    from modelkeeper.demo import land_next_weeks
    from modelkeeper.records.audit import AuditLog
    from modelkeeper.records.registry import Registry

    base = tmp_path_factory.mktemp("world")
    saved = dict(os.environ)
    uri = f"sqlite:///{base / 'mlflow.db'}"
    os.environ["MODELKEEPER_STORAGE"] = str(base / "storage")
    os.environ["AIRFLOW_CONN_MODELKEEPER_AUDIT"] = json.dumps(
        {"conn_type": "sqlite", "host": str(base / "audit.db")}
    )
    os.environ["AIRFLOW_CONN_MLFLOW_DEFAULT"] = json.dumps(
        {"conn_type": "http", "host": uri, "extra": {"artifact_location": str(base / "artifacts")}}
    )
    storage = Storage()
    land_next_weeks(storage, n=9)
    yield {
        "storage": storage,
        "registry": Registry(uri, artifact_location=str(base / "artifacts")),
        "audit": AuditLog.from_url(f"sqlite:///{base / 'audit.db'}"),
    }
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="module")
def first_run(world):
    return run_pipeline("manual__first")


class TestFirstRun:
    def test_trains_and_promotes_first_champion(self, world, first_run):
        assert first_run[("decide", "return_value")] == {
            "retrain": True,
            "reason": "no champion yet",
            "triggers": [],
        }
        decision = first_run[("evaluate", "return_value")]["decision"]
        assert decision["promote"] is True, decision["reason"]
        assert decision["reason"].startswith("promoted: first model, roc_auc")
        assert first_run[("promote", "return_value")]["action"] == "promoted"
        version = first_run[("train", "return_value")]["version"]
        outcome = first_run[("promote", L.OUTCOME_XCOM)]
        assert re.fullmatch(rf"promoted v{version}: roc_auc 0\.\d{{3}} \(first model\)", outcome)
        champion = world["registry"].alias(MODEL)
        assert (
            champion is not None
            and champion.version == first_run[("train", "return_value")]["version"]
        )

    def test_mlflow_run_has_the_full_record(self, world, first_run):
        reg = world["registry"]
        run = reg.client.get_run(first_run[("train", "return_value")]["mlflow_run_id"])
        assert run.info.status == "FINISHED"
        # Readable and distinct: model, run type, UTC wall time (the id stays in a tag).
        assert re.fullmatch(
            r"flight_delay manual \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", run.info.run_name
        ), run.info.run_name
        assert run.data.tags["airflow_run_id"] == "manual__first"
        # No [api] base_url in the tests' Airflow config: the link is relative to the UI.
        assert run.data.tags["airflow_run_url"] == "/dags/retrain_flight_delay/runs/manual__first"
        assert run.data.tags["airflow_dag_id"] == "retrain_flight_delay"
        assert (
            len(run.data.tags["spec_hash"]) == 16 and len(run.data.tags["data_snapshot_hash"]) == 16
        )
        assert run.data.params["estimator"] == "sklearn.ensemble.HistGradientBoostingClassifier"
        assert 0.55 < run.data.metrics["candidate_roc_auc"] < 1
        assert {d.dataset.name for d in run.inputs.dataset_inputs} == {
            "flight_delay-train",
            "flight_delay-holdout",
        }
        artifacts = {
            a.path for a in reg.client.list_artifacts(run.info.run_id, "reports/validation")
        }
        assert (
            "reports/validation/validation.json" in artifacts
            and "reports/validation/data_docs" in artifacts
        )
        version = reg.alias(MODEL)
        assert version.tags["validation"] == "passed"
        assert reg.input_columns(version.uri) == [
            "hour",
            "day_of_week",
            "distance",
            "temp",
            "humid",
            "wind_speed",
            "precip",
            "visib",
            "carrier",
            "origin",
        ]

    def test_model_card_logged_with_slices_and_importance(self, world, first_run, tmp_path):
        reg = world["registry"]
        run_id = first_run[("train", "return_value")]["mlflow_run_id"]
        folder = reg.download(run_id, "model_card", tmp_path)
        card = (folder / "model_card.md").read_text()
        assert card.startswith("# Model card: flight_delay v1")
        for value in ("| origin | EWR |", "| origin | JFK |", "| carrier | UA |"):
            assert value in card
        for feature in ("hour", "temp", "carrier", "origin"):
            assert f"| {feature} |" in card
        assert "**BLESSED**: promoted: first model" in card
        assert "<table>" in (folder / "model_card.html").read_text()

    def test_promotion_audited_and_reconciled(self, world, first_run):
        from modelkeeper.records.audit import reconcile

        events = [e for e in world["audit"].events(MODEL) if e["run_id"] == "manual__first"]
        # the retrain decision, with its reason, then the promotion it led to
        assert [e["event"] for e in events] == ["decision", "promotion"]
        assert events[0]["reason"] == "no champion yet"
        promotion = events[1:]
        assert promotion[0]["who"] == "scheduler" and promotion[0]["version_before"] is None
        assert promotion[0]["version_after"] == world["registry"].alias(MODEL).version
        assert promotion[0]["reason"].startswith("promoted: first model")
        assert 0.55 < promotion[0]["metrics"]["candidate_roc_auc"] < 1
        assert reconcile(world["audit"], MODEL, world["registry"].alias(MODEL).version)[0]

    def test_evaluation_metrics_go_to_the_history(self, world, first_run):
        """What the health page draws as "at evaluation": the candidate on its holdout."""
        from modelkeeper.monitoring.history import History

        rows = History(world["audit"].engine).series(MODEL, kind="evaluation")
        by_metric = {r["metric"]: r for r in rows if r["run_id"] == "manual__first"}
        assert {"roc_auc", "log_loss", "average_precision"} <= set(by_metric)
        roc = by_metric["roc_auc"]
        evaluated = first_run[("evaluate", "return_value")]
        assert roc["value"] == pytest.approx(evaluated["candidate"]["metrics"]["roc_auc"])
        assert roc["version"] == evaluated["candidate_version"]
        assert roc["window_start"] < roc["window_end"] and roc["rows"] > 500

    def test_batch_accepted_and_recorded(self, world, first_run):
        storage = world["storage"]
        batch = first_run[("collect", "return_value")]
        record = committed(storage, MODEL, "manual__first")
        assert [f["outcome"] for f in record["files"]] == ["accepted"] * len(batch["files"])
        assert accepted_rows(storage, MODEL, "manual__first") == batch["rows"]


class TestDriftedBatch:
    def test_drift_triggers_retrain_and_gate_decides(self, world, first_run):
        import pandas as pd

        from modelkeeper.demo import drifted_frame, load_flights, week_frame

        storage = world["storage"]
        before = world["registry"].alias(MODEL).version
        drifted = drifted_frame(week_frame(load_flights(), 9), seed=1)
        storage.write_parquet(drifted, storage.landing_dir() / "flights" / "week_09.parquet")
        states: dict = {}
        xcoms = run_pipeline("manual__drifted", states=states)

        monitoring = xcoms[("monitor", "return_value")]
        assert monitoring["champion_version"] == before
        assert monitoring["drift_share"] >= 0.3, monitoring["drift_summary"]
        retrain = xcoms[("decide", "return_value")]
        # drift is evidence (the spec does not make it a trigger): the shadow challenger,
        # scored beside the champion on the drifted rows, says whether retraining pays off
        assert "drift" in retrain["reason"] and "shadow" in retrain["reason"], retrain
        assert retrain["retrain"] is ("shadow" in retrain["triggers"])
        if not retrain["retrain"]:
            return  # nothing to train or gate: the champion holds, and the run says why
        assert (storage.report_dir(MODEL, "manual__drifted") / "drift.html").stat().st_size > 10_000
        decision = xcoms[("evaluate", "return_value")]["decision"]
        promoted = xcoms[("promote", "return_value")]
        after = world["registry"].alias(MODEL).version
        if decision["promote"]:
            assert (
                promoted["action"] == "promoted"
                and after == xcoms[("train", "return_value")]["version"]
            )
        else:
            assert promoted["action"] == "kept" and after == before
            assert decision["reason"].startswith("refused: ")
        assert states["promote"] == ("success" if decision["promote"] else "skipped")
        assert states["finish"] == "success"
        assert pd.read_parquet(xcoms[("validate", "return_value")]["path"])["temp"].mean() > 50


class TestBrokenBatch:
    def test_missing_column_fails_validation_and_is_quarantined(self, world, first_run):
        from modelkeeper.demo import load_flights, week_frame

        storage, reg = world["storage"], world["registry"]
        before = reg.alias(MODEL).version
        versions_before = len(reg.client.search_model_versions(f"name = '{MODEL}'"))
        broken = week_frame(load_flights(), 10).drop(columns=["temp"])
        storage.write_parquet(broken, storage.landing_dir() / "flights" / "week_10.parquet")
        xcoms: dict = {}
        tasks = retrain_tasks(MODEL)
        run_operator(tasks["collect"], "manual__broken", xcoms)
        with pytest.raises(AirflowFailException, match="temp"):
            run_operator(tasks["validate"], "manual__broken", xcoms)

        evidence = xcoms[("validate", "return_value")]
        assert evidence["success"] is False and "temp" in evidence["summary"]
        quarantine = storage.quarantine_dir(MODEL, "manual__broken") / "week_10.parquet"
        assert (quarantine / "batch.parquet").exists() and (quarantine / "validation.json").exists()
        assert "temp" in (quarantine / "REASON.txt").read_text()
        assert accepted_rows(storage, MODEL, "manual__broken") == 0
        assert reg.alias(MODEL).version == before
        assert len(reg.client.search_model_versions(f"name = '{MODEL}'")) == versions_before
        # Recorded as quarantined: the next run does not collect it again.
        [f] = committed(storage, MODEL, "manual__broken")["files"]
        assert f["outcome"] == "quarantined"
        next_batch = run_operator(tasks["collect"], "manual__after_broken", {})
        assert next_batch["files"] == []


class TestNoNewData:
    """An empty batch means different things depending on why the run started."""

    @pytest.fixture
    def empty_batch(self, world, first_run):
        def collect(run_id: str) -> dict:
            xcoms: dict = {}
            run_operator(retrain_tasks(MODEL)["collect"], run_id, xcoms)
            assert xcoms[("collect", "return_value")]["rows"] == 0
            return xcoms

        return collect

    def test_asset_triggered_run_skips(self, world, empty_batch):
        from airflow.sdk.exceptions import AirflowSkipException

        xcoms = empty_batch("asset_triggered__1")
        op = retrain_tasks(MODEL)["validate"]
        with pytest.raises(AirflowSkipException, match="already processed"):
            run_operator(op, "asset_triggered__1", xcoms, run_type="asset_triggered")
        assert not world["storage"].quarantine_dir(MODEL, "asset_triggered__1").exists()

    def test_a_run_an_alarm_started_goes_on_with_accepted_data(self, world, empty_batch):
        # Drift alarms come from scoring, before any new label: nothing new is the rule here,
        # and decide must still see the run to say why it retrains.
        from types import SimpleNamespace

        from airflow.sdk import Asset

        from modelkeeper.contracts.lineage import alarm_asset
        from tests.helpers import make_context

        xcoms = empty_batch("asset_triggered__alarm")
        op = retrain_tasks(MODEL)["validate"]
        ctx = make_context("asset_triggered__alarm", "validate", xcoms, run_type="asset_triggered")
        ctx["triggering_asset_events"] = {
            Asset(alarm_asset(MODEL)): [SimpleNamespace(extra={"reason": "drift: 80%"})]
        }
        ctx["task"] = op
        op.render_template_fields(ctx)
        assert op.execute(ctx)["rows"] == 0

    def test_scheduled_run_fails_naming_the_missing_data(self, world, empty_batch):
        xcoms = empty_batch("scheduled__1")
        op = retrain_tasks(MODEL)["validate"]
        with pytest.raises(AirflowFailException, match="no new data since .*force_retrain"):
            run_operator(op, "scheduled__1", xcoms, run_type="scheduled")

    def test_scheduled_run_names_a_file_its_pattern_does_not_match(self, world, empty_batch):
        stray = world["storage"].landing_dir() / "flights" / "week_09.csv"
        stray.write_text("time_hour,carrier\n")
        try:
            xcoms = empty_batch("scheduled__stray")
            op = retrain_tasks(MODEL)["validate"]
            with pytest.raises(
                AirflowFailException,
                match=r"no new data since .*not taken: 1 file\(s\).*: week_09\.csv .*force_retrain",
            ):
                run_operator(op, "scheduled__stray", xcoms, run_type="scheduled")
        finally:
            stray.unlink()

    def test_scheduled_run_on_a_tick_another_run_served_stays_green(self, world, empty_batch):
        from datetime import UTC, datetime

        from airflow.sdk.exceptions import AirflowSkipException

        xcoms = empty_batch("scheduled__2")
        op = retrain_tasks(MODEL)["validate"]
        with pytest.raises(AirflowSkipException, match="nothing new for this tick: run manual__"):
            run_operator(
                op, "scheduled__2", xcoms, run_type="scheduled", run_after=datetime.now(UTC)
            )

    @pytest.mark.parametrize(
        ("run_id", "run_type"),
        [("manual__empty", "manual"), ("backfill__2013-01-01", "backfill")],
    )
    def test_a_person_s_run_goes_on_and_says_why_not(self, world, empty_batch, run_id, run_type):
        # A backfilled interval's rows were taken by the run that saw them land.
        xcoms = empty_batch(run_id)
        evidence = run_operator(retrain_tasks(MODEL)["validate"], run_id, xcoms, run_type=run_type)
        assert evidence["success"] is True and evidence["rows"] == 0
        assert evidence["summary"].startswith("no new data since 20")
        assert not world["storage"].quarantine_dir(MODEL, run_id).exists()
        tasks = retrain_tasks(MODEL)
        run_operator(tasks["monitor"], run_id, xcoms)
        branch = run_operator(tasks["decide"], run_id, xcoms, params=DEFAULT_PARAMS)
        assert branch == ["finish"]
        assert xcoms[("decide", "return_value")]["reason"].startswith(
            "no retrain: no new data; champion v"
        )


class TestForcedRetrainAndModes:
    def test_dry_run_moves_nothing(self, world, first_run):
        from modelkeeper.demo import land_next_weeks

        land_next_weeks(world["storage"], n=1)
        reg = world["registry"]
        before = reg.alias(MODEL).version
        states: dict = {}
        xcoms = run_pipeline("manual__dry", force=True, mode="dry_run", states=states)
        assert xcoms[("decide", "return_value")]["reason"] == "forced by a person: test"
        decision = xcoms[("evaluate", "return_value")]["decision"]
        promoted = xcoms[("promote", "return_value")]
        # A blessed candidate is recorded as a dry run; a refused one is kept out as ever.
        if decision["promote"]:
            assert promoted["action"] == "dry_run", promoted
            assert promoted["reason"] == f"dry run, nothing moved; would have {decision['reason']}"
        else:
            assert promoted["action"] == "kept" and promoted["reason"] == decision["reason"]
        assert states["promote"] == "skipped" and states["finish"] == "success"
        assert reg.alias(MODEL).version == before

    def test_rerun_of_a_run_reuses_snapshot_and_version(self, world, first_run):
        """Clearing a finished run: same snapshot, same version, same metrics, and the
        decision made against the champion of its time (or refused as stale)."""
        reg, audit = world["registry"], world["audit"]
        first_version = first_run[("train", "return_value")]["version"]
        champion_before = reg.alias(MODEL).version
        rows_before = audit.events(MODEL)
        states: dict = {}
        # Not forced: the rerun finishes what it did.
        again = run_pipeline("manual__first", states=states)
        assert again[("decide", "return_value")]["reason"] == (
            f"rerun: this run already trained v{first_version}; finishing it"
        )
        assert again[("collect", "return_value")] == first_run[("collect", "return_value")]
        assert (
            again[("train", "return_value")]["version"]
            == first_run[("train", "return_value")]["version"]
        )
        assert (
            again[("train", "return_value")]["mlflow_run_id"]
            == first_run[("train", "return_value")]["mlflow_run_id"]
        )
        assert (
            again[("evaluate", "return_value")]["candidate"]["metrics"]
            == first_run[("evaluate", "return_value")]["candidate"]["metrics"]
        )
        runs = reg.client.search_runs(
            [reg.experiment_id(MODEL)], "tags.airflow_run_id = 'manual__first'"
        )
        assert len(runs) == 1
        assert len(reg.client.search_model_versions(f"run_id = '{runs[0].info.run_id}'")) == 1
        decision = again[("evaluate", "return_value")]["decision"]
        promoted = again[("promote", "return_value")]
        if champion_before == first_version:
            # Its own model is champion: decided again against the one it replaced (none),
            # the compare-and-set finds the move done, the audit row is not written twice.
            assert decision == first_run[("evaluate", "return_value")]["decision"]
            assert promoted["action"] == "promoted" and states["promote"] == "success"
        else:
            # A newer model took over since: the old run's model must not come back.
            assert decision["reason"].startswith("refused: stale candidate"), decision
            assert promoted["action"] == "kept" and states["promote"] == "skipped"
        assert reg.alias(MODEL).version == champion_before
        moves = [e for e in audit.events(MODEL) if e["event"] in ("promotion", "rollback")]
        assert moves == [e for e in rows_before if e["event"] in ("promotion", "rollback")]


class TestNothingNew:
    def test_a_forced_retrain_on_the_same_data_registers_nothing(self, world, first_run):
        reg = world["registry"]
        run_pipeline("manual__forced_a", force=True)  # trains on what is accepted now
        versions = len(reg.client.search_model_versions(f"name = '{MODEL}'"))
        states: dict = {}
        again = run_pipeline("manual__forced_b", force=True, states=states)  # nothing landed
        assert ("train", "return_value") in again, "train hands its result on before skipping"
        trained = again[("train", "return_value")]
        assert trained["version"] is None
        assert (
            trained["note"].startswith("nothing new: ") and "no second version" in trained["note"]
        )
        assert ("evaluate", "return_value") not in again
        assert again[("finish", "return_value")]["summary"] == trained["note"]
        assert states["train"] == states["promote"] == "skipped"
        assert states["finish"] == "success"
        champion, twin = reg.alias(MODEL).version, trained["note"].split(" v", 1)[1].split()[0]
        outcome = again[("train", L.OUTCOME_XCOM)]
        if champion == twin:
            assert outcome == f"kept v{champion}: nothing new"
        else:
            assert outcome == f"kept v{champion}: nothing new (v{twin} was trained on this data)"
        assert len(reg.client.search_model_versions(f"name = '{MODEL}'")) == versions


class TestUnusableChampion:
    """Last in the module: it breaks the shared world's champion on purpose."""

    def test_an_unloadable_champion_leads_to_a_retrain_and_a_person_decides(self, world, first_run):
        import shutil
        from pathlib import Path

        from modelkeeper.demo import land_next_weeks
        from tests.helpers import answer_approval

        reg = world["registry"]
        champion = reg.alias(MODEL)
        model_dir = Path(
            reg.client.get_logged_model(
                champion.source.removeprefix("models:/")
            ).artifact_location.removeprefix("file://")
        )
        shutil.rmtree(model_dir)
        land_next_weeks(world["storage"], n=1)
        run_id, xcoms = "manual__unusable", {}
        tasks = retrain_tasks(MODEL)
        for task_id in ("collect", "validate", "monitor", "decide", "train", "evaluate"):
            run_operator(tasks[task_id], run_id, xcoms, params=DEFAULT_PARAMS)
        monitoring = xcoms[("monitor", "return_value")]
        assert monitoring["champion_problem"].startswith("its model cannot be loaded")
        retrain = xcoms[("decide", "return_value")]
        assert retrain == {
            "retrain": True,
            "reason": f"champion v{champion.version} unusable: {monitoring['champion_problem']}",
            "triggers": [],
        }
        decision = xcoms[("evaluate", "return_value")]["decision"]
        assert decision["needs_approval"] and decision["reason"].startswith(
            f"needs approval: champion v{champion.version} unloadable"
        )
        with pytest.raises(AirflowFailException, match="recorded no approval"):
            run_operator(tasks["promote"], run_id, xcoms, params=DEFAULT_PARAMS)
        answer_approval(xcoms, run_id, "Approve", "erin")
        promoted = run_operator(
            retrain_tasks(MODEL)["promote"], run_id, xcoms, params=DEFAULT_PARAMS
        )
        assert promoted["action"] == "promoted" and promoted["who"] == "erin"
        assert reg.alias(MODEL).version == xcoms[("train", "return_value")]["version"]
