"""Operator extra links: the URLs operators push during execute, and what get_link returns.

Against a real `mlflow server` (a local SQLite store has no UI, so no links). The model is a
copy of the demo spec under another name, so this module's versions and alias moves stay
out of the flight_delay model other modules use on the same server.

Not exercised here: the worker's finalize step that calls get_link and stores its result
(that needs a running Airflow); get_link is called directly with a fake XCom lookup.
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


def _get_link(link, op, xcoms: dict, monkeypatch) -> str:
    """get_link as the worker's finalize calls it, with XCom read from the fake store."""
    from airflow.sdk.execution_time.xcom import XCom

    monkeypatch.setattr(
        XCom,
        "get_value",
        classmethod(lambda cls, *, ti_key, key: xcoms.get((ti_key.task_id, key))),
    )
    return link.get_link(op, ti_key=SimpleNamespace(task_id=op.task_id))


class TestPromoteAndFinishLinks:
    @pytest.mark.parametrize("promote", [True, False], ids=["promoted", "refused"])
    def test_run_and_version_urls(self, served, monkeypatch, promote):
        from modelkeeper_airflow.links import MlflowRunLink, ModelVersionLink

        reg, (champ, cand) = served.registry, served.versions
        run_id = f"manual__{served.run_id}"
        mlflow_run = reg.ensure_run(MODEL, run_id, {})
        xcoms = {("evaluate", "return_value"): _evaluated(mlflow_run, cand, champ, promote)}
        tasks = retrain_tasks(MODEL)
        state, _ = run_to_state(tasks["promote"], run_id, xcoms, params=DEFAULT_PARAMS)
        assert state == ("success" if promote else "skipped")

        exp = reg.experiment_id(MODEL)
        run_url = f"{served.url}/#/experiments/{exp}/runs/{mlflow_run}"
        version_url = f"{served.url}/#/models/{MODEL}/versions/{cand}"
        # Pushed before promote skipped: the worker's finalize still computes the links.
        assert xcoms[("promote", L.LINK_MLFLOW_RUN)] == run_url
        assert xcoms[("promote", L.LINK_MODEL_VERSION)] == version_url
        op = tasks["promote"]
        assert _get_link(MlflowRunLink(), op, xcoms, monkeypatch) == run_url
        assert _get_link(ModelVersionLink(), op, xcoms, monkeypatch) == version_url

        run_operator(tasks["finish"], run_id, xcoms)
        assert xcoms[("finish", L.LINK_MLFLOW_RUN)] == run_url

    def test_no_url_no_link(self, served, monkeypatch):
        from modelkeeper_airflow.links import DataDocsLink

        op = retrain_tasks(MODEL)["validate"]
        # A validate that pushed no Data Docs URL (it never got to build them): hidden.
        assert _get_link(DataDocsLink(), op, {}, monkeypatch) == ""


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
