"""Reconcile: check daily that each model's `champion` alias agrees with the audit trail.

MLflow aliases keep no history and anyone with registry access can move one; a failed
task here means the alias was moved outside modelkeeper (its log names both versions).
"""

from datetime import datetime

from airflow.sdk import DAG

from modelkeeper.contracts.spec import valid_specs
from modelkeeper_airflow.factory import default_args
from modelkeeper_airflow.operators import ReconcileOperator

with DAG(
    dag_id="modelkeeper_reconcile",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["modelkeeper", "governance"],
    default_args=default_args("ml-platform@example.com"),
):
    for _spec in valid_specs():
        ReconcileOperator(task_id=f"reconcile_{_spec.name}", model=_spec.name)
