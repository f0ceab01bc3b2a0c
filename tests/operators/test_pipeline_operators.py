"""The pipeline's operators, execute()d in order against real GX, Evidently and an MLflow store.

One world per module (training is the slow part): a first run makes the champion, a
drifted batch goes through monitoring and the gate, a broken batch is quarantined.
"""

from __future__ import annotations

import json
import os

import pytest
from airflow.sdk.exceptions import AirflowFailException

from tests.helpers import DEFAULT_PARAMS, retrain_tasks, run_operator

MODEL = "flight_delay"


ORDER = [
    "collect",
    "validate",
    "monitor",
    "decide",
    "train",
    "evaluate",
    "approve",
    "promote",
    "finish",
]


def run_pipeline(run_id: str, force: bool = False, mode: str = "spec") -> dict:
    """Run the factory DAG's tasks in order, as the scheduler would (decide's branch and
    approve's self-skip included); returns the XComs."""
    from airflow.sdk.exceptions import AirflowSkipException

    params = {**DEFAULT_PARAMS, "force_retrain": force, "reason": "test", "promotion_mode": mode}
    tasks, xcoms, skipped = retrain_tasks(MODEL), {}, set()
    for task_id in ORDER:
        if task_id in skipped:
            continue
        try:
            out = run_operator(tasks[task_id], run_id, xcoms, params=params)
        except AirflowSkipException:
            continue
        if task_id == "decide" and "train" not in out:
            skipped |= {"train", "evaluate", "approve", "promote"}  # the branch not taken
    return xcoms


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Storage with 9 landed weeks, a local MLflow store as `mlflow_default`."""
    from modelkeeper.audit import AuditLog
    from modelkeeper.demo import land_next_weeks
    from modelkeeper.registry import Registry
    from modelkeeper.storage import Storage

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
        }
        decision = first_run[("evaluate", "return_value")]["decision"]
        assert decision["promote"] is True, decision["reason"]
        assert decision["reason"].startswith("promoted: first model, roc_auc")
        assert first_run[("promote", "return_value")]["action"] == "promoted"
        champion = world["registry"].alias(MODEL)
        assert (
            champion is not None
            and champion.version == first_run[("train", "return_value")]["version"]
        )

    def test_mlflow_run_has_the_full_record(self, world, first_run):
        reg = world["registry"]
        run = reg.client.get_run(first_run[("train", "return_value")]["mlflow_run_id"])
        assert run.info.status == "FINISHED"
        assert run.info.run_name == "manual__first"
        assert run.data.tags["airflow_run_id"] == "manual__first"
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
        from modelkeeper.audit import reconcile

        events = world["audit"].events(MODEL)
        promotion = [e for e in events if e["run_id"] == "manual__first"]
        assert len(promotion) == 1 and promotion[0]["event"] == "promotion"
        assert promotion[0]["who"] == "scheduler" and promotion[0]["version_before"] is None
        assert promotion[0]["version_after"] == world["registry"].alias(MODEL).version
        assert promotion[0]["reason"].startswith("promoted: first model")
        assert 0.55 < promotion[0]["metrics"]["candidate_roc_auc"] < 1
        assert reconcile(world["audit"], MODEL, world["registry"].alias(MODEL).version)[0]

    def test_batch_accepted_and_watermark_moved(self, world, first_run):
        storage = world["storage"]
        batch = first_run[("collect", "return_value")]
        assert storage.accepted_path(MODEL, "manual__first").exists()
        assert storage.watermark(MODEL) == batch["end"]


class TestDriftedBatch:
    def test_drift_triggers_retrain_and_gate_decides(self, world, first_run):
        import pandas as pd

        from modelkeeper.demo import drifted_frame, load_flights, week_frame

        storage = world["storage"]
        before = world["registry"].alias(MODEL).version
        drifted = drifted_frame(week_frame(load_flights(), 9), seed=1)
        storage.write_parquet(drifted, storage.landing_dir() / "flights" / "week_09.parquet")
        xcoms = run_pipeline("manual__drifted")

        monitoring = xcoms[("monitor", "return_value")]
        assert monitoring["champion_version"] == before
        assert monitoring["drift_share"] >= 0.3, monitoring["drift_summary"]
        retrain = xcoms[("decide", "return_value")]
        assert retrain["retrain"] is True and "data drift" in retrain["reason"]
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
        assert pd.read_parquet(xcoms[("collect", "return_value")]["path"])["temp"].mean() > 50


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
        quarantine = storage.quarantine_dir(MODEL, "manual__broken")
        assert (quarantine / "batch.parquet").exists() and (quarantine / "validation.json").exists()
        assert not storage.accepted_path(MODEL, "manual__broken").exists()
        assert reg.alias(MODEL).version == before
        assert len(reg.client.search_model_versions(f"name = '{MODEL}'")) == versions_before
        # The watermark moved past the rejected batch: the next run does not collect it again.
        assert storage.watermark(MODEL) == xcoms[("collect", "return_value")]["end"]


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

    def test_scheduled_run_fails_naming_the_missing_data(self, world, empty_batch):
        xcoms = empty_batch("scheduled__1")
        op = retrain_tasks(MODEL)["validate"]
        with pytest.raises(AirflowFailException, match="no new data since .*force_retrain"):
            run_operator(op, "scheduled__1", xcoms, run_type="scheduled")
        assert (
            "row_count"
            in (world["storage"].quarantine_dir(MODEL, "scheduled__1") / "REASON.txt").read_text()
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
        assert evidence["summary"].startswith("no new rows since 2013-")
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
        xcoms = run_pipeline("manual__dry", force=True, mode="dry_run")
        assert xcoms[("decide", "return_value")]["reason"] == "forced by a person: test"
        promoted = xcoms[("promote", "return_value")]
        assert promoted["action"] in ("dry_run", "kept")
        assert reg.alias(MODEL).version == before

    def test_rerun_of_a_run_reuses_snapshot_and_version(self, world, first_run):
        """Clearing a finished run: same snapshot, same version, same metrics, and the
        decision made against the champion of its time (or refused as stale)."""
        reg, audit = world["registry"], world["audit"]
        first_version = first_run[("train", "return_value")]["version"]
        champion_before = reg.alias(MODEL).version
        rows_before = audit.events(MODEL)
        again = run_pipeline("manual__first")  # not forced: the rerun finishes what it did
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
            assert promoted["action"] == "promoted"
        else:
            # A newer model took over since: the old run's model must not come back.
            assert decision["reason"].startswith("refused: stale candidate"), decision
            assert promoted["action"] == "kept"
        assert reg.alias(MODEL).version == champion_before
        moves = [e for e in audit.events(MODEL) if e["event"] in ("promotion", "rollback")]
        assert moves == [e for e in rows_before if e["event"] in ("promotion", "rollback")]
