"""End to end: the real `dags/` file, run with dag.test() against a real MLflow server.

Each run is what the UI's trigger button makes: no logical date. The scenarios build
on each other in order (first champion, drifted batch, broken batch), as production
data would arrive.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
MODEL = "flight_delay"


@pytest.fixture(scope="module")
def env(mlflow_server, airflow_db, tmp_path_factory):
    from modelkeeper.data.storage import Storage
    from modelkeeper.demo import land_next_weeks
    from modelkeeper.records.registry import Registry

    saved = dict(os.environ)
    root = tmp_path_factory.mktemp("e2e-storage")
    os.environ["MODELKEEPER_STORAGE"] = str(root)
    os.environ["AIRFLOW_CONN_MLFLOW_DEFAULT"] = json.dumps(
        {"conn_type": "http", "host": mlflow_server}
    )
    storage = Storage(root)
    land_next_weeks(storage, n=9)
    yield {"storage": storage, "registry": Registry(mlflow_server)}
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="module")
def dag(env):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags" / "modelkeeper_retrain.py"))
    assert bag.import_errors == {}
    return bag.dags["retrain_flight_delay"]


def trigger(dag, **conf):
    """Like POST /dagRuns with logical_date null: a manual run with no logical date."""
    dr = dag.test(logical_date=None, run_conf=conf or None)
    states = {ti.task_id: ti.state for ti in dr.get_task_instances()}
    return dr, states


def mlflow_run(env, run_id):
    reg = env["registry"]
    runs = reg.client.search_runs([reg.experiment_id(MODEL)], f"tags.airflow_run_id = '{run_id}'")
    assert len(runs) == 1, f"expected one MLflow run for {run_id}, got {len(runs)}"
    return runs[0]


class TestRetrainDag:
    def test_first_run_creates_champion(self, dag, env):
        dr, states = trigger(dag)
        assert dr.logical_date is None
        assert dr.state == "success", states
        assert states.pop("approve") == "skipped"  # auto mode: no person asked
        assert set(states.values()) == {"success"}, states

        reg = env["registry"]
        champion = reg.alias(MODEL)
        assert champion is not None
        run = mlflow_run(env, dr.run_id)
        assert run.info.run_id == champion.run_id and run.info.status == "FINISHED"
        assert run.data.tags["outcome"].startswith("promoted: first model")
        assert "candidate_roc_auc" in run.data.metrics and "estimator" in run.data.params
        assert len(run.inputs.dataset_inputs) == 2
        artifacts = {a.path for a in reg.client.list_artifacts(run.info.run_id)}
        assert {"reports", "reference"} <= artifacts
        assert reg.input_columns(champion.uri)  # signature logged
        assert champion.tags["validation"] == "passed"

    def test_a_drifted_batch_is_evidence_not_a_retrain(self, dag, env):
        """The batch's features moved (70%+ of columns drift) but the champion has seen
        every earlier row: no shadow can show a gain, and drift retrains by itself only
        where the spec says so. The run ends green saying why, the champion holds."""
        from modelkeeper.demo import drifted_frame, load_flights, week_frame

        storage, reg = env["storage"], env["registry"]
        before = reg.alias(MODEL).version
        storage.write_parquet(
            drifted_frame(week_frame(load_flights(), 9), seed=3),
            storage.landing_dir() / "flights" / "week_09.parquet",
        )
        dr, states = trigger(dag)
        assert dr.state == "success", states
        assert {states[t] for t in ("train", "evaluate", "approve", "promote")} == {"skipped"}
        assert states["finish"] == "success"
        run = mlflow_run(env, dr.run_id)
        assert run.data.metrics["drift_share"] >= 0.7
        outcome = run.data.tags["outcome"]
        assert outcome.startswith(f"no retrain: champion v{before} holds"), outcome
        assert "evidence only" in outcome and "detector" in outcome
        assert reg.alias(MODEL).version == before

    def test_broken_batch_fails_at_validation(self, dag, env):
        from modelkeeper.demo import load_flights, week_frame

        storage, reg = env["storage"], env["registry"]
        before = reg.alias(MODEL).version
        n_versions = len(reg.client.search_model_versions(f"name = '{MODEL}'"))
        storage.write_parquet(
            week_frame(load_flights(), 10).drop(columns=["temp"]),
            storage.landing_dir() / "flights" / "week_10.parquet",
        )
        dr, states = trigger(dag, force_retrain=True, reason="even forced, bad data must not train")
        assert dr.state == "failed"
        assert states["collect"] == "success" and states["validate"] == "failed"
        assert {states[t] for t in ("monitor", "decide", "train", "evaluate", "promote")} == {
            "upstream_failed"
        }
        quarantine = storage.quarantine_dir(MODEL, dr.run_id) / "week_10.parquet"
        assert "temp" in (quarantine / "REASON.txt").read_text()
        assert (quarantine / "batch.parquet").exists()
        assert reg.alias(MODEL).version == before
        assert len(reg.client.search_model_versions(f"name = '{MODEL}'")) == n_versions

    def test_manual_run_without_new_data_ends_green_saying_why(self, dag, env):
        reg = env["registry"]
        before = reg.alias(MODEL).version
        # Explicit: dag.test() keeps the previous run's conf in the DAG's params.
        dr, states = trigger(dag, force_retrain=False)
        assert dr.state == "success", states
        assert states["validate"] == states["decide"] == states["finish"] == "success"
        assert {states[t] for t in ("train", "evaluate", "approve", "promote")} == {"skipped"}
        assert (
            mlflow_run(env, dr.run_id).data.tags["outcome"]
            == f"no retrain: no new data; champion v{before} holds"
        )
        assert reg.alias(MODEL).version == before

    def test_forced_run_without_new_data_registers_nothing_new(self, dag, env):
        """The last run trained on exactly the accepted data: forcing again says so."""
        reg = env["registry"]
        # the accepted data holds a week nothing trained on (the drifted one): train on it
        first, states = trigger(dag, force_retrain=True, reason="train on the accepted weeks")
        assert first.state == "success" and states["train"] == "success", states
        before = reg.alias(MODEL).version
        n_versions = len(reg.client.search_model_versions(f"name = '{MODEL}'"))
        dr, states = trigger(dag, force_retrain=True, reason="refresh on accepted data")
        assert dr.state == "success", states
        assert states["validate"] == states["finish"] == "success"
        assert {states[t] for t in ("train", "evaluate", "approve", "promote")} == {"skipped"}
        outcome = mlflow_run(env, dr.run_id).data.tags["outcome"]
        assert outcome.startswith("nothing new: ") and "no second version" in outcome
        assert reg.alias(MODEL).version == before
        assert len(reg.client.search_model_versions(f"name = '{MODEL}'")) == n_versions

    def test_forced_run_on_new_accepted_data_retrains(self, dag, env):
        from modelkeeper.demo import land_next_weeks

        reg = env["registry"]
        before = reg.alias(MODEL).version
        land_next_weeks(env["storage"], n=1)
        dr, states = trigger(dag, force_retrain=True, reason="refresh on accepted data")
        assert dr.state == "success", states
        assert states["validate"] == states["train"] == states["evaluate"] == "success"
        run = mlflow_run(env, dr.run_id)
        assert run.data.params["retrain_reason"] == "forced by a person: refresh on accepted data"
        outcome, after = run.data.tags["outcome"], reg.alias(MODEL).version
        assert outcome.startswith("promoted") == (after != before), outcome
