"""Reconcile: check daily that each model's `champion` alias agrees with the audit trail.

MLflow aliases keep no history and anyone with registry access can move one; a failed
task here means the alias was moved outside modelkeeper (its log names both versions).
"""

from airflow.sdk import DAG

from modelkeeper.contracts.spec import valid_specs
from modelkeeper_airflow.factory import PLATFORM_OWNER, dag_args
from modelkeeper_airflow.operators import ReconcileOperator

with DAG(
    dag_id="modelkeeper_reconcile",
    schedule="@daily",
    doc_md=__doc__,
    tags=["modelkeeper", "governance"],
    **dag_args(PLATFORM_OWNER),
):
    for _spec in valid_specs():
        ReconcileOperator(task_id=f"reconcile_{_spec.name}", model=_spec.name)
