"""MLflow tracking server / registry as an Airflow Connection."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

if TYPE_CHECKING:
    from modelkeeper.records.registry import Registry


class MlflowHook(BaseHook):
    """Connection -> `modelkeeper.records.registry.Registry`.

    The connection's host is the tracking URI (``http://127.0.0.1:5000`` for a server,
    ``sqlite:///...`` for a local store); a port, when set, is appended to an http host.
    Extra ``{"artifact_location": "/abs/folder"}`` pins where a local store keeps
    artifacts (a server decides that itself); ``"s3://bucket/prefix"`` puts them on an
    object store (MLflow reads the endpoint from ``MLFLOW_S3_ENDPOINT_URL``).
    """

    conn_name_attr = "mlflow_conn_id"
    default_conn_name = "mlflow_default"
    conn_type = "http"
    hook_name = "MLflow"

    def __init__(self, mlflow_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mlflow_conn_id = mlflow_conn_id

    def tracking_uri(self) -> tuple[str, str | None]:
        conn = self.get_connection(self.mlflow_conn_id)
        host = (conn.host or "").rstrip("/")
        if not host:
            from modelkeeper.contracts.errors import ConfigError

            raise ConfigError(
                f"connection {self.mlflow_conn_id!r} has no host (the MLflow tracking URI)"
            )
        if "://" not in host:
            host = f"{conn.conn_type or 'http'}://{host}"
        if conn.port and host.startswith(("http://", "https://")):
            host = f"{host}:{conn.port}"
        return host, (conn.extra_dejson or {}).get("artifact_location")

    def get_conn(self) -> Registry:
        from modelkeeper.records.registry import Registry

        uri, artifact_location = self.tracking_uri()
        return Registry(uri, artifact_location=artifact_location)

    def test_connection(self) -> tuple[bool, str]:
        try:
            self.get_conn().ping()
        except Exception as exc:  # surfaced to the UI's "Test" button as text
            return False, str(exc)
        return True, "MLflow reachable"
