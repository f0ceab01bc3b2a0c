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


def scoring_deadline_missed(model: str, context: dict | None = None, **_: Any) -> list[str]:
    """Deadline alert callback (a SyncCallback, run on a worker): a `score_<model>` run has
    not finished by its deadline. Tells the owner through notify (event "alarm"); returns
    the delivery lines. Airflow passes `context` as {"dag_run": the run as the REST API
    shows it, "deadline": {"id", "deadline_time"}}."""
    import logging
    from types import SimpleNamespace

    from modelkeeper.contracts import lineage as L
    from modelkeeper.contracts.spec import get_spec
    from modelkeeper_airflow.notify import notify

    log = logging.getLogger(__name__)
    context = context or {}
    run = context.get("dag_run") or {}
    deadline = context.get("deadline") or {}
    spec = get_spec(model)
    dag_id = run.get("dag_id") or spec.score_dag_id
    run_id = run.get("dag_run_id") or run.get("run_id")
    minutes = spec.scoring.deadline_minutes if spec.scoring else None
    state = run.get("state") or "unknown"
    text = (
        f"{dag_id} run {run_id or '?'} queued at {run.get('queued_at') or '?'} had not finished "
        f"by its deadline {deadline.get('deadline_time') or '?'} "
        f"(scoring.deadline_minutes {minutes:g}); state: {state}. Scored rows may be late; "
        "look at the run's tasks."
        if minutes
        else f"{dag_id} run {run_id or '?'} missed its deadline; state: {state}"
    )
    lines = notify(
        spec,
        L.NOTIFY_ALARM,
        subject=f"{spec.name}: scoring run late (deadline missed)",
        text=text,
        context={"run_id": run_id, "dag": SimpleNamespace(dag_id=dag_id)},
        details={"deadline": str(deadline.get("deadline_time") or ""), "state": state},
    )
    log.warning("scoring deadline missed for %s: %s; %s", model, text, "; ".join(lines))
    return lines
