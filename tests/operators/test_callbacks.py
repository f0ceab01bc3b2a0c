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
