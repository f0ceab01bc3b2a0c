"""The project's clients from their Airflow Connections, in one place.

Operators (operators/base.py) and the UI app (ui/app.py) both reach the registry, the
audit trail and the monitoring history through these functions, so a change to how a
Connection becomes a client is one edit. Heavy imports stay inside the functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelkeeper.records.registry import Registry

MLFLOW_CONN_ID = "mlflow_default"
AUDIT_CONN_ID = "modelkeeper_audit"


def registry(mlflow_conn_id: str = MLFLOW_CONN_ID) -> Registry:
    """The MLflow registry behind the `mlflow_default` Connection (hooks.mlflow)."""
    from modelkeeper_airflow.hooks.mlflow import MlflowHook

    return MlflowHook(mlflow_conn_id=mlflow_conn_id).get_conn()


def audit_engine(audit_conn_id: str = AUDIT_CONN_ID) -> Any:
    """The `modelkeeper_audit` SQL Connection's database: audit trail and history."""
    from airflow.sdk import BaseHook

    return BaseHook.get_connection(audit_conn_id).get_hook().get_sqlalchemy_engine()
