"""CollectOperator on a SQL source, through real Airflow Connections (SQLite file, local Postgres)."""

from __future__ import annotations

import json
import uuid

import pytest
import yaml

from modelkeeper_airflow.operators import CollectOperator
from tests.helpers import retrain_tasks, run_operator

SPEC = "include/models/flight_delay.yaml"


@pytest.fixture
def flights():
    from modelkeeper.demo import load_flights, week_frame

    df = load_flights()
    return week_frame(df, 0), week_frame(df, 1)


def _sql_spec(tmp_path, monkeypatch, conn_id: str, table: str) -> str:
    from pathlib import Path

    raw = yaml.safe_load((Path(__file__).resolve().parents[2] / SPEC).read_text())
    raw["name"] = "flight_delay_sql"
    raw["source"] = {
        "kind": "sql",
        "conn_id": conn_id,
        "query": f"SELECT * FROM {table} WHERE time_hour > {{watermark}}",
    }
    spec_dir = tmp_path / "specs"
    spec_dir.mkdir()
    (spec_dir / "flight_delay_sql.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("MODELKEEPER_SPEC_DIR", str(spec_dir))
    return raw["name"]


def _collect_twice(engine, table, first, second, storage, model):
    """Collect and validate (which commits), twice: the second run takes only the new rows,
    although it re-reads the lookback behind the watermark."""
    import pandas as pd

    first.to_sql(table, engine, index=False)
    batch1 = _run(model, "manual__sql1")
    assert batch1["rows"] == len(first)
    second.to_sql(table, engine, index=False, if_exists="append")
    batch2 = _run(model, "manual__sql2")
    assert batch2["rows"] == len(second)
    snap = pd.read_parquet(batch2["files"][0]["snapshot"])
    assert snap["time_hour"].min() > pd.Timestamp(batch1["end"])
    assert set(snap.columns) >= {"carrier", "origin", "delayed", "temp"}


def _run(model: str, run_id: str) -> dict:
    xcoms: dict = {}
    batch = run_operator(CollectOperator(task_id="collect", model=model), run_id, xcoms)
    run_operator(retrain_tasks(model)["validate"], run_id, xcoms)
    return batch


class TestCollectSql:
    def test_sqlite_connection(self, tmp_path, monkeypatch, storage, flights):
        import sqlalchemy as sa

        db = tmp_path / "flights.db"
        monkeypatch.setenv(
            "AIRFLOW_CONN_FLIGHTS_DB", json.dumps({"conn_type": "sqlite", "host": str(db)})
        )
        model = _sql_spec(tmp_path, monkeypatch, "flights_db", "flights")
        _collect_twice(sa.create_engine(f"sqlite:///{db}"), "flights", *flights, storage, model)

    @pytest.mark.postgres
    def test_postgres_connection(self, tmp_path, monkeypatch, storage, flights):
        import sqlalchemy as sa

        table = f"mk_flights_{uuid.uuid4().hex[:8]}"
        from tests.postgres import PG, PG_DATABASE, PG_URL

        engine = sa.create_engine(PG_URL)
        monkeypatch.setenv(
            "AIRFLOW_CONN_FLIGHTS_PG",
            json.dumps(
                {
                    "conn_type": "postgres",
                    "host": PG["host"],
                    "port": PG["port"],
                    "login": PG["user"],
                    "schema": PG_DATABASE,
                }
            ),
        )
        model = _sql_spec(tmp_path, monkeypatch, "flights_pg", table)
        try:
            _collect_twice(engine, table, *flights, storage, model)
        finally:
            with engine.begin() as conn:
                conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))

    def test_not_a_sql_connection_fails_clearly(self, tmp_path, monkeypatch, storage):
        from airflow.sdk.exceptions import AirflowFailException

        monkeypatch.setenv(
            "AIRFLOW_CONN_NOT_SQL", json.dumps({"conn_type": "http", "host": "example.invalid"})
        )
        model = _sql_spec(tmp_path, monkeypatch, "not_sql", "flights")
        with pytest.raises(
            AirflowFailException, match="connection 'not_sql' is not a (usable )?SQL connection"
        ):
            run_operator(CollectOperator(task_id="collect", model=model), "manual__sql3", {})
