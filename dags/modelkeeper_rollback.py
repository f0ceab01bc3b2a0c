"""Rollback: point a model's `champion` alias back at an earlier version, in one step.

Trigger with **model**, **target_version** (`previous` or a version number) and a
**reason**. The move goes through the same compare-and-set and one-slot pool as
promotion and is written to the audit trail with your user name. Triggering the same
rollback again is a no-op.
"""

from datetime import datetime

from airflow.sdk import DAG, Param

from modelkeeper.spec import load_all
from modelkeeper_airflow.factory import PROMOTION_POOL
from modelkeeper_airflow.operators.rollback import RollbackOperator

_models = [s.name for s in load_all()]

with DAG(
    dag_id="modelkeeper_rollback",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["modelkeeper", "governance"],
    default_args={"owner": "ml-platform@example.com", "retries": 2},
    params={
        "model": Param(
            _models[0] if _models else "",
            type="string",
            enum=_models or [""],
            description="Model to roll back.",
        ),
        "target_version": Param(
            "previous",
            type="string",
            pattern=r"^(previous|[0-9]+)$",
            description="`previous` or a registered version number.",
        ),
        "reason": Param(
            "", type="string", minLength=3, maxLength=500, description="Why (audited)."
        ),
    },
):
    RollbackOperator(
        task_id="rollback",
        model="{{ params.model }}",
        target_version="{{ params.target_version }}",
        reason="{{ params.reason }}",
        pool=PROMOTION_POOL,
    )
