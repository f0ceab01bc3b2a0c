"""Shared plumbing for the pipeline operators: spec, storage, registry, upstream refs.

Operators stay thin: they read references from XCom, call the core, log the numbers
behind what they decided and return a small JSON-serialisable reference.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

if TYPE_CHECKING:
    from modelkeeper.audit import AuditLog
    from modelkeeper.registry import Registry
    from modelkeeper.spec import ModelSpec
    from modelkeeper.storage import Storage


class ModelkeeperOperator(BaseOperator):
    """Base for every stage of `retrain_<model>`; `model` names a spec in include/models/."""

    template_fields: Sequence[str] = ("model",)
    ui_color = "#e8f4ea"

    def __init__(
        self,
        *,
        model: str,
        mlflow_conn_id: str = "mlflow_default",
        audit_conn_id: str = "modelkeeper_audit",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model = model
        self.mlflow_conn_id = mlflow_conn_id
        self.audit_conn_id = audit_conn_id

    # Resolved lazily, inside execute(): nothing heavy at parse time.
    def spec(self) -> ModelSpec:
        from modelkeeper.spec import get_spec

        return get_spec(self.model)

    def storage(self) -> Storage:
        from modelkeeper.storage import Storage

        return Storage()

    def registry(self) -> Registry:
        from modelkeeper_airflow.hooks.mlflow import MlflowHook

        return MlflowHook(mlflow_conn_id=self.mlflow_conn_id).get_conn()

    def audit(self) -> AuditLog:
        """The audit trail's database, from the `modelkeeper_audit` SQL Connection."""
        from airflow.sdk import BaseHook

        from modelkeeper.audit import AuditLog

        hook = BaseHook.get_connection(self.audit_conn_id).get_hook()
        return AuditLog(hook.get_sqlalchemy_engine())

    @staticmethod
    def upstream(context: Any, task_id: str, key: str = "return_value") -> Any:
        value = context["ti"].xcom_pull(task_ids=task_id, key=key)
        if value is None:
            raise RuntimeError(
                f"no XCom {key!r} from task {task_id!r}; did it run in this DAG run?"
            )
        return value

    @staticmethod
    def who(context: Any) -> str:
        """The Airflow user behind a manual run, "scheduler" for scheduled/asset runs."""
        dag_run = context["dag_run"]
        user = getattr(dag_run, "triggering_user_name", None)
        return user or "scheduler"

    def mlflow_run(self, context: Any, registry: Registry, spec: ModelSpec) -> str:
        return registry.ensure_run(
            spec.name,
            context["run_id"],
            tags={
                "airflow_dag_id": context["dag"].dag_id,
                "airflow_run_id": context["run_id"],
                "spec_hash": spec.fingerprint(),
                "owner": spec.owner,
            },
        )
