"""Prepare the embedded Airflow: migrate its DB, register Connections and the promotion pool.

Idempotent: `make run` calls it on every start; existing state is kept.
"""

from __future__ import annotations

import json
import os
import sys


def main() -> None:
    from airflow.models.connection import Connection  # the ORM row, not the SDK class
    from airflow.models.pool import Pool
    from airflow.utils.db import upgradedb
    from airflow.utils.session import create_session

    upgradedb()
    mlflow_uri = os.environ.get("MODELKEEPER_MLFLOW_URI", "http://127.0.0.1:5000")
    audit_db = os.environ["MODELKEEPER_AUDIT_DB"]
    wanted = {
        "mlflow_default": Connection(
            conn_id="mlflow_default",
            conn_type="http",
            host=mlflow_uri,
            description="MLflow tracking server and model registry used by modelkeeper",
        ),
        "modelkeeper_audit": Connection(
            conn_id="modelkeeper_audit",
            conn_type="sqlite",
            host=audit_db,
            description="modelkeeper's append-only audit trail (a Postgres connection when scaled out)",
        ),
    }
    with create_session() as session:
        for conn_id, conn in wanted.items():
            existing = session.query(Connection).filter(Connection.conn_id == conn_id).one_or_none()
            if existing is None:
                session.add(conn)
            elif existing.host != conn.host:
                existing.host = conn.host
    Pool.create_or_update_pool(
        name="modelkeeper_promotion",
        slots=1,
        description="one promotion at a time: the alias compare-and-set runs alone",
        include_deferred=False,
    )
    print(json.dumps({"connections": sorted(wanted), "pools": ["modelkeeper_promotion"]}))


if __name__ == "__main__":
    sys.exit(main())
