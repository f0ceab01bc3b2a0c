"""DAG-level callbacks. Heavy imports stay inside the callables (they run after parsing)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def close_mlflow_run(model: str, mlflow_conn_id: str = "mlflow_default") -> Callable[[Any], None]:
    """on_failure_callback: mark the failed DAG run's MLflow run FAILED.

    Without it, a run that fails after monitor opened its MLflow run (MLflow down, a
    task out of retries) leaves that run RUNNING forever in the MLflow UI.
    """

    def callback(context: Any) -> None:
        from modelkeeper_airflow.hooks.mlflow import MlflowHook

        registry = MlflowHook(mlflow_conn_id=mlflow_conn_id).get_conn()
        run_id = registry.find_run(model, context["dag_run"].run_id)
        if run_id is not None:
            registry.close_run(run_id, "FAILED")

    return callback
