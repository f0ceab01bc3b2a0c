from __future__ import annotations

from types import SimpleNamespace

from modelkeeper_airflow.callbacks import close_mlflow_run


class TestCloseMlflowRun:
    def test_marks_the_failed_runs_mlflow_run_failed(self, mlflow_store):
        run = mlflow_store.ensure_run("flight_delay", "manual__broken", {})
        other = mlflow_store.ensure_run("flight_delay", "manual__fine", {})
        close_mlflow_run("flight_delay")({"dag_run": SimpleNamespace(run_id="manual__broken")})
        assert mlflow_store.client.get_run(run).info.status == "FAILED"
        assert mlflow_store.client.get_run(other).info.status == "RUNNING"

    def test_no_mlflow_run_yet_is_fine(self, mlflow_store):
        close_mlflow_run("flight_delay")({"dag_run": SimpleNamespace(run_id="manual__early")})
        assert mlflow_store.find_run("flight_delay", "manual__early") is None


class TestOrphanedRunsAreClosed:
    """MLflow was down when the failure callback ran: the next run's monitor closes it."""

    def test_next_monitor_closes_runs_of_ended_dag_runs(self, mlflow_store, storage):
        import pandas as pd

        from modelkeeper.contracts.results import Accepted
        from tests.helpers import retrain_tasks, run_operator

        ended = mlflow_store.ensure_run("flight_delay", "manual__outage", {})
        finished = mlflow_store.ensure_run("flight_delay", "manual__done", {})
        mlflow_store.close_run(finished)
        live = mlflow_store.ensure_run("flight_delay", "backfill__2026-11-01", {})
        batch = storage.write_parquet(pd.DataFrame({"x": [1]}), storage.root / "batch.parquet")
        xcoms = {
            ("validate", "return_value"): Accepted(True, "ok", 1, str(batch), None, None).to_dict(),
            ("dag_run_state", "manual__outage"): "failed",
            ("dag_run_state", "manual__done"): "success",
            ("dag_run_state", "backfill__2026-11-01"): "running",
        }
        run_operator(retrain_tasks()["monitor"], "manual__next", xcoms)

        status = {r: mlflow_store.client.get_run(r).info.status for r in (ended, finished, live)}
        assert status == {ended: "FAILED", finished: "FINISHED", live: "RUNNING"}
        current = mlflow_store.find_run("flight_delay", "manual__next")
        assert mlflow_store.client.get_run(current).info.status == "RUNNING"
