"""Operator extra links: the URLs operators push during execute, and the links the UI shows.

Against a real `mlflow server` (a local SQLite store has no UI, so no links). The model is a
copy of the demo spec under another name, so this module's versions and alias moves stay
out of the flight_delay model other modules use on the same server.

The links themselves come from Airflow's own task runner: a probe DAG file runs promote
with dag.test(), the worker's finalize step calls get_link and stores its value in XCom,
and the test reads it back as the UI's links endpoint does (the serialized task).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml

from modelkeeper.contracts import lineage as L
from tests.helpers import DEFAULT_PARAMS, retrain_tasks, run_operator, run_to_state

ROOT = Path(__file__).resolve().parents[2]
MODEL = "linkcheck"


@pytest.fixture
def served(mlflow_server, audit_db, storage, tmp_path, monkeypatch):
    """`mlflow_default` is the MLflow server; the `linkcheck` spec; v1 champion, v2 a
    candidate with passed validation."""
    from sklearn.linear_model import LogisticRegression

    from modelkeeper.records.registry import Registry

    raw = yaml.safe_load((ROOT / "include/models/flight_delay.yaml").read_text())
    raw["name"] = MODEL
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / f"{MODEL}.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("MODELKEEPER_SPEC_DIR", str(tmp_path / "specs"))
    monkeypatch.setenv(
        "AIRFLOW_CONN_MLFLOW_DEFAULT", json.dumps({"conn_type": "http", "host": mlflow_server})
    )
    registry = Registry(mlflow_server)
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    y = (X["a"] > 0).astype(int)
    run_id = tmp_path.name  # one DAG run id per test: the server outlives the test
    made = []
    for i in range(2):
        run = registry.ensure_run(MODEL, f"manual__{run_id}_v{i}", {})
        uri = registry.log_model(run, LogisticRegression(C=1 + i).fit(X, y), X.head(3))
        made.append(registry.register(MODEL, uri, run, {"validation": "passed"}).version)
    current = registry.alias(MODEL)
    registry.move_champion(MODEL, made[0], expected=current.version if current else None)
    return SimpleNamespace(registry=registry, url=mlflow_server, versions=made, run_id=run_id)


def _evaluated(mlflow_run: str, candidate: str, champion: str, promote: bool) -> dict:
    score = {"metrics": {"roc_auc": 0.72}, "rows": 900, "classes": [0, 1], "slices": {}}
    return {
        "decision": {"promote": promote, "reason": "promoted: x" if promote else "refused: x"},
        "candidate": score,
        "champion": {**score, "metrics": {"roc_auc": 0.70}},
        "candidate_version": candidate,
        "champion_version": champion,
        "mlflow_run_id": mlflow_run,
    }


class TestPromoteAndFinishLinks:
    @pytest.mark.parametrize("promote", [True, False], ids=["promoted", "refused"])
    def test_run_and_version_urls_are_pushed(self, served, promote):
        reg, (champ, cand) = served.registry, served.versions
        run_id = f"manual__{served.run_id}"
        mlflow_run = reg.ensure_run(MODEL, run_id, {})
        xcoms = {("evaluate", "return_value"): _evaluated(mlflow_run, cand, champ, promote)}
        tasks = retrain_tasks(MODEL)
        state, _ = run_to_state(tasks["promote"], run_id, xcoms, params=DEFAULT_PARAMS)
        assert state == ("success" if promote else "skipped")

        run_url, version_url = _urls(served, mlflow_run, cand)
        # Pushed before promote skipped: the worker's finalize still computes the links.
        assert xcoms[("promote", L.LINK_MLFLOW_RUN)] == run_url
        assert xcoms[("promote", L.LINK_MODEL_VERSION)] == version_url

        run_operator(tasks["finish"], run_id, xcoms)
        assert xcoms[("finish", L.LINK_MLFLOW_RUN)] == run_url


def _urls(served, mlflow_run: str, version: str) -> tuple[str, str]:
    exp = served.registry.experiment_id(MODEL)
    return (
        f"{served.url}/#/experiments/{exp}/runs/{mlflow_run}",
        f"{served.url}/#/models/{MODEL}/versions/{version}",
    )


PROBES = """\
from datetime import datetime

from airflow.sdk import DAG

from modelkeeper_airflow.operators import PromoteOperator


def probe(dag_id, **kwargs):
    with DAG(dag_id, schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
        PromoteOperator(task_id="promote", model="linkcheck", **kwargs)
    return dag


promoted = probe("mk_links_promoted", evaluation=BLESSED)
refused = probe("mk_links_refused", evaluation=NOT_BLESSED)
# Approval mode with no answer: promote fails before it pushes any URL.
unanswered = probe("mk_links_unanswered", evaluation=BLESSED, mode="approval")
"""


@pytest.fixture
def probes(served, airflow_db, audit_db, storage, tmp_path, monkeypatch):
    """The probe DAGs in a scratch bundle (dag.test() serializes DAGs from the configured
    bundle), promote's evaluation naming `served`'s versions; and the MLflow run."""
    from airflow.dag_processing.dagbag import DagBag

    (champ, cand), reg = served.versions, served.registry
    mlflow_run = reg.ensure_run(MODEL, f"manual__{served.run_id}_probe", {})
    folder = tmp_path / "dags"
    folder.mkdir()
    blessed = _evaluated(mlflow_run, cand, champ, promote=True)
    not_blessed = _evaluated(mlflow_run, cand, champ, promote=False)
    (folder / "probes.py").write_text(
        f"BLESSED = {blessed!r}\nNOT_BLESSED = {not_blessed!r}\n\n" + PROBES
    )
    bundle = {
        "name": "dags-folder",
        "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
        "kwargs": {"path": str(folder)},
    }
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps([bundle]))
    bag = DagBag(dag_folder=str(folder))
    assert bag.import_errors == {}
    return SimpleNamespace(bag=bag, mlflow_run=mlflow_run, version=cand)


def _links_after_run(bag, dag_id: str) -> tuple[str, dict[str, str]]:
    """Run the probe DAG on Airflow's task runner; promote's state and its links, read as
    the UI's links endpoint reads them (the serialized task, the values in XCom)."""
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.utils.session import create_session

    dr = bag.dags[dag_id].test(logical_date=None)
    with create_session() as session:
        ti = dr.get_task_instance("promote", session=session)
        task = SerializedDagModel.get_dag(dag_id, session=session).get_task("promote")
        links = {name: task.get_extra_links(ti, name) for name in task.extra_links}
        return ti.state, links


@pytest.mark.slow  # dag.test() of a DAG: ~20 s a run
class TestLinksOnTheTaskRunner:
    @pytest.mark.parametrize(
        ("dag_id", "state"),
        [("mk_links_promoted", "success"), ("mk_links_refused", "skipped")],
        ids=["promoted", "refused"],
    )
    def test_the_ui_shows_the_urls_promote_pushed(self, served, probes, dag_id, state):
        run_url, version_url = _urls(served, probes.mlflow_run, probes.version)
        assert _links_after_run(probes.bag, dag_id) == (
            state,
            {"MLflow run": run_url, "Model version": version_url},
        )

    def test_a_task_that_pushed_no_url_has_no_link(self, probes):
        # "" is what the UI hides.
        assert _links_after_run(probes.bag, "mk_links_unanswered") == (
            "failed",
            {"MLflow run": "", "Model version": ""},
        )


class TestReportUrls:
    def test_artifact_urls_point_at_logged_files(self, served, tmp_path):
        reg = served.registry
        mlflow_run = reg.ensure_run(MODEL, f"manual__{served.run_id}_card", {})
        card = tmp_path / "card" / "model_card.html"
        card.parent.mkdir()
        card.write_text("<html></html>")
        reg.log_artifacts(mlflow_run, card.parent, L.MODEL_CARD)
        assert reg.has_artifact(mlflow_run, L.MODEL_CARD_HTML)
        assert not reg.has_artifact(mlflow_run, L.DATA_DOCS_INDEX)
        exp = reg.experiment_id(MODEL)
        assert reg.run_url(MODEL, mlflow_run, L.MODEL_CARD_HTML) == (
            f"{served.url}/#/experiments/{exp}/runs/{mlflow_run}/artifacts/model_card/model_card.html"
        )


class TestLocalStore:
    def test_a_local_store_has_no_ui_to_link_to(self, mlflow_store):
        assert mlflow_store.ui_base is None
        assert mlflow_store.run_url("flight_delay", "abc") == ""
        assert mlflow_store.version_url("flight_delay", "1") == ""
