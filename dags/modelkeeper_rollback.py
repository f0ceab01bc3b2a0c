"""Rollback: point a model's `champion` alias back at an earlier version, in one step.

Trigger with **model**, **target_version** (`previous` or a version number) and a
**reason**. The move goes through the same compare-and-set and one-slot pool as
promotion and is written to the audit trail with your user name. Triggering the same
rollback again is a no-op.

Before you trigger, the form shows (as of the file's last parse) each model's champion,
what `previous` points at and the record of its versions, from the audit trail
(plugins/modelkeeper_airflow/rollback_form.py).
"""

from airflow.sdk import DAG, Param

from modelkeeper.contracts.lineage import PREVIOUS
from modelkeeper.contracts.spec import valid_specs
from modelkeeper_airflow.factory import PLATFORM_OWNER, PROMOTION_POOL, dag_args
from modelkeeper_airflow.operators.rollback import RollbackOperator
from modelkeeper_airflow.rollback_form import form

_models = [s.name for s in valid_specs()]
_form = form(_models)  # champions and version records, from the audit trail (one query each)

with DAG(
    dag_id="modelkeeper_rollback",
    schedule=None,
    doc_md=__doc__,
    tags=["modelkeeper", "governance"],
    **dag_args(PLATFORM_OWNER),
    params={
        # No default: a rollback names its model on purpose (a pre-selected first model
        # is one click from rolling back the wrong one). The form asks for it.
        "model": Param(
            None,
            type="string",
            enum=_models or [""],
            values_display=_form["labels"],
            description_md=_form["model_md"],
        ),
        "target_version": Param(
            PREVIOUS,
            type="string",
            pattern=rf"^({PREVIOUS}|[0-9]+)$",
            description_md=_form["target_md"],
        ),
        # Nullable, not "": the trigger form treats an empty string as a missing value.
        "reason": Param(
            None,
            type=["null", "string"],
            minLength=3,
            maxLength=500,
            description="Why (audited with your user name).",
        ),
    },
):
    RollbackOperator(
        task_id="rollback",
        model="{{ params.model }}",
        target_version="{{ params.target_version }}",
        reason="{{ params.reason or '' }}",
        pool=PROMOTION_POOL,
    )
