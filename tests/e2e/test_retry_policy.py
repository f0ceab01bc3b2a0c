"""Retry or fail, on Airflow's own task runner: permanent errors fail on the first try
whatever the task's retries; an MLflow outage retries, then fails naming the outage.

Each case is a one-task probe DAG written to a scratch DAGs folder (a DAG built inside a
test function cannot dag.test()), using the real operators with every task's default
retries (2). The retry delay is 1 s so the outage case takes seconds.
"""

from __future__ import annotations

import json
import socket
import textwrap

import pandas as pd
import pytest

pytestmark = pytest.mark.slow

BLESSED = {
    "decision": {"promote": True, "reason": "promoted: roc_auc 0.70 → 0.72"},
    "candidate": {"metrics": {"roc_auc": 0.72}, "rows": 900},
    "candidate_version": "2",
    "champion_version": "1",
    "mlflow_run_id": "r",
}

PROBES = """\
from datetime import datetime

from airflow.sdk import DAG

from modelkeeper_airflow.factory import default_args
from modelkeeper_airflow.operators import CollectOperator, PromoteOperator, RollbackOperator
from modelkeeper_airflow.operators import ValidateOperator


def probe(dag_id, make):
    with DAG(dag_id, schedule=None, start_date=datetime(2026, 1, 1), catchup=False,
             default_args=default_args("test")) as dag:
        make()
    return dag


data_error = probe("mk_data_error", lambda: ValidateOperator(
    task_id="task", model="flight_delay", batch={BATCH}))
spec_error = probe("mk_spec_error", lambda: CollectOperator(task_id="task", model="broken"))
missing_approval = probe("mk_missing_approval", lambda: PromoteOperator(
    task_id="task", model="flight_delay", evaluation={BLESSED}, mode="approval"))
mlflow_outage = probe("mk_mlflow_outage", lambda: RollbackOperator(
    task_id="task", model="flight_delay", target_version="1", reason="drill"))
"""


@pytest.fixture(scope="module")
def dags(airflow_db, tmp_path_factory):
    from airflow.dag_processing.dagbag import DagBag

    from modelkeeper.contracts.settings import DEFAULT_SPEC_DIR

    base = tmp_path_factory.mktemp("retry-policy")
    specs = base / "specs"
    specs.mkdir()
    (specs / "flight_delay.yaml").write_text((DEFAULT_SPEC_DIR / "flight_delay.yaml").read_text())
    (specs / "broken.yaml").write_text("name: broken\nowner: x\n")  # fields missing
    batch = base / "batch.parquet"
    pd.DataFrame({"time_hour": pd.to_datetime(["2013-01-01"]), "carrier": ["UA"]}).to_parquet(batch)
    bad = {"source": "/landing/bad.parquet", "key": "bad", "snapshot": str(batch), "rows": 1}
    meta = {"folder": str(base), "files": [bad], "rows": 1, "start": None, "end": None}
    meta["since"] = None
    folder = base / "dags"
    folder.mkdir()
    source = PROBES.replace("{BATCH}", repr(meta)).replace("{BLESSED}", repr(BLESSED))
    (folder / "probes.py").write_text(textwrap.dedent(source))
    with socket.socket() as s:  # MLflow "down": a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        # dag.test() serializes DAGs from the configured bundle: this folder.
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(
            [
                {
                    "name": "dags-folder",
                    "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                    "kwargs": {"path": str(folder)},
                }
            ]
        ),
        "MODELKEEPER_RETRY_DELAY_SECONDS": "1",
        "MODELKEEPER_SPEC_DIR": str(specs),
        "MODELKEEPER_STORAGE": str(base / "storage"),
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "AIRFLOW_CONN_MLFLOW_DEFAULT": json.dumps(
            {"conn_type": "http", "host": f"http://127.0.0.1:{port}"}
        ),
    }
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        bag = DagBag(dag_folder=str(folder))
        assert bag.import_errors == {}
        yield {"bag": bag, "port": port}


def _run(dags, dag_id):
    dr = dags["bag"].dags[dag_id].test(logical_date=None)
    [ti] = dr.get_task_instances()
    return dr, ti


class TestRetryOrFail:
    @pytest.mark.parametrize(
        "dag_id",
        [
            pytest.param("mk_data_error", id="data-error"),
            pytest.param("mk_spec_error", id="spec-error"),
            pytest.param("mk_missing_approval", id="missing-approval"),
        ],
    )
    def test_permanent_errors_fail_on_the_first_try(self, dags, dag_id):
        dr, ti = _run(dags, dag_id)
        assert ti.max_tries >= 2, "the probe must have retries for this test to mean anything"
        assert (dr.state, ti.state, ti.try_number) == ("failed", "failed", 1)

    def test_an_mlflow_outage_is_retried_then_fails(self, dags, capfd):
        dr, ti = _run(dags, "mk_mlflow_outage")
        assert (dr.state, ti.state, ti.try_number) == ("failed", "failed", 3)
        log = "".join(capfd.readouterr())  # the task log, as dag.test prints it
        assert f"MLflow at http://127.0.0.1:{dags['port']} is unavailable" in log
        assert "has no version" not in log
