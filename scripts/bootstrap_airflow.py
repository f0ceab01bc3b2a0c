"""Prepare the embedded Airflow: migrate its DB, register Connections and the promotion pool.

Idempotent: `make run` calls it on every start; existing state is kept.
"""

from __future__ import annotations

import sys


def main() -> None:
    from airflow.models.connection import Connection  # the ORM row, not the SDK class
    from airflow.models.pool import Pool
    from airflow.utils.db import upgradedb
    from airflow.utils.session import create_session

    from modelkeeper.contracts.jsonio import dumps
    from modelkeeper.contracts.settings import settings

    upgradedb()
    config = settings()
    if not (config.audit_uri or config.audit_db):
        raise SystemExit(
            "set MODELKEEPER_AUDIT_URI (a database URI) or MODELKEEPER_AUDIT_DB (a file)"
        )
    mlflow_uri, audit_uri = config.mlflow_uri, config.audit_uri  # audit: Postgres scaled out
    audit_description = "modelkeeper's append-only audit trail"
    wanted = {
        "mlflow_default": Connection(
            conn_id="mlflow_default",
            conn_type="http",
            host=mlflow_uri,
            description="MLflow tracking server and model registry used by modelkeeper",
        ),
        "modelkeeper_audit": Connection(
            conn_id="modelkeeper_audit", uri=audit_uri, description=audit_description
        )
        if audit_uri
        else Connection(
            conn_id="modelkeeper_audit",
            conn_type="sqlite",
            host=str(config.audit_db),
            description=audit_description,
        ),
    }
    fields = ("conn_type", "host", "schema", "login", "password", "port")
    with create_session() as session:
        for conn_id, conn in wanted.items():
            existing = session.query(Connection).filter(Connection.conn_id == conn_id).one_or_none()
            if existing is None:
                session.add(conn)
                continue
            # What the environment sets wins on every start; what it leaves unset (a
            # token someone added in the UI) is kept.
            for name in fields:
                value = getattr(conn, name)
                if value is not None and getattr(existing, name) != value:
                    setattr(existing, name, value)
    Pool.create_or_update_pool(
        name="modelkeeper_promotion",
        slots=1,
        description="one promotion at a time: the alias compare-and-set runs alone",
        include_deferred=False,
    )
    print(dumps({"connections": sorted(wanted), "pools": ["modelkeeper_promotion"]}))


if __name__ == "__main__":
    sys.exit(main())
