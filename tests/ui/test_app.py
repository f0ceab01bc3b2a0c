"""The plugin app behind the real SimpleAuthManager, on real stores.

The app is mounted at /modelkeeper in a bare FastAPI parent, the way Airflow's
init_plugins mounts it (so root_path and links are as in the api-server). The audit
trail and the history are a real SQLite DB seeded through AuditLog and History; the
registry is a local MLflow store with a champion alias; the Airflow metadata DB holds
the model's DAGs (get_authorized_dag_ids reads them from there).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from modelkeeper.audit import AuditEvent
from modelkeeper.history import History, Measurement

MODEL = "flight_delay"
DAGS = (f"retrain_{MODEL}", f"score_{MODEL}", f"monitor_{MODEL}")


@pytest.fixture(scope="module")
def auth_manager(airflow_db):  # noqa: ARG001 - the metadata DB get_authorized_dag_ids reads
    """SimpleAuthManager, initialised like the api-server does (with a JWT secret of its
    own), with the model's DAGs in the metadata DB."""
    from airflow.api_fastapi.app import init_auth_manager
    from airflow.models.dag import DagModel
    from airflow.models.dagbundle import DagBundleModel
    from airflow.utils.session import create_session

    with create_session() as session:
        if session.get(DagBundleModel, "dags-folder") is None:
            session.add(DagBundleModel(name="dags-folder"))
            session.flush()
        for dag_id in DAGS:
            if session.get(DagModel, dag_id) is None:
                session.add(DagModel(dag_id=dag_id, bundle_name="dags-folder", fileloc="x.py"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW__API_AUTH__JWT_SECRET", secrets.token_hex(64))
        yield init_auth_manager()


def token(auth_manager, role: str | None) -> str:
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return auth_manager.generate_jwt(SimpleAuthManagerUser(username=f"u-{role}", role=role))


@pytest.fixture
def seeded(mlflow_store, audit_db):
    """v1 promoted (then v2 refused), monitoring for two windows, one scoring run."""
    run = mlflow_store.ensure_run(MODEL, "manual__v1", {})
    v1 = mlflow_store.register(MODEL, f"runs:/{run}/model", run, {}).version
    mlflow_store.move_champion(MODEL, v1, expected=None)
    audit_db.record(
        AuditEvent(MODEL, "promotion", "ann", "first champion", version_after=v1, run_id="a")
    )
    audit_db.record(
        AuditEvent(
            MODEL, "refusal", "scheduler", "roc_auc <0.70> worse", version_before=v1,
            version_after=v1, candidate_version="2", run_id="b",
        )
    )  # fmt: skip
    base = {"version": v1, "dag_id": f"monitor_{MODEL}"}
    History(audit_db.engine).record(
        [
            Measurement(MODEL, "realized", "roc_auc", 0.71, window_start="2026-03-01", run_id="m1", **base),
            Measurement(MODEL, "estimated", "roc_auc", 0.70, window_start="2026-03-01", run_id="m1", **base),
            Measurement(MODEL, "estimated", "roc_auc", 0.66, window_start="2026-03-08", run_id="m1", **base),
            Measurement(MODEL, "drift", "drift_share", 0.25, window_start="2026-03-08", run_id="s1", **base),
            Measurement(MODEL, "scoring", "rows", 1234, window_start="2026-03-08", run_id="s1", **base),
        ]
    )  # fmt: skip
    return v1


@pytest.fixture
def client(auth_manager):  # noqa: ARG001 - the global auth manager the routes use
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from modelkeeper_plugin import ModelkeeperPlugin

    (entry,) = ModelkeeperPlugin.fastapi_apps
    parent = FastAPI()
    parent.mount(entry["url_prefix"], entry["app"])
    return TestClient(parent)


ROUTES = ["/modelkeeper/models", f"/modelkeeper/models/{MODEL}"]


class TestAccess:
    @pytest.mark.parametrize("route", ROUTES)
    def test_anonymous_is_401(self, client, route):
        assert client.get(route).status_code == 401

    @pytest.mark.parametrize("route", ROUTES)
    def test_garbage_token_is_403(self, client, route):
        assert client.get(route, cookies={"_token": "not-a-jwt"}).status_code == 403
        bearer = {"Authorization": "Bearer not-a-jwt"}
        assert client.get(route, headers=bearer).status_code == 403

    def test_no_openapi_or_docs_route(self, client):
        assert client.get("/modelkeeper/openapi.json").status_code == 404
        assert client.get("/modelkeeper/docs").status_code == 404

    def test_a_user_without_a_role_sees_no_model(self, client, auth_manager, seeded):
        """Real SimpleAuthManager rules: no role, no DAG may be read."""
        cookies = {"_token": token(auth_manager, None)}
        page = client.get("/modelkeeper/models", cookies=cookies)
        assert page.status_code == 200
        assert MODEL not in page.text
        assert client.get(f"/modelkeeper/models/{MODEL}", cookies=cookies).status_code == 404

    def test_a_user_who_may_read_only_other_dags_does_not_see_it(
        self, client, auth_manager, seeded, monkeypatch
    ):
        """MOCKED: get_authorized_dag_ids, because SimpleAuthManager's rules are per role
        for every DAG (no per-DAG denial without multi-team); this user may read only
        another model's DAGs, so the filter by the model's own DAG ids must hide it."""
        monkeypatch.setattr(
            auth_manager, "get_authorized_dag_ids", lambda **_: {"retrain_other", "score_x"}
        )
        cookies = {"_token": token(auth_manager, "viewer")}
        assert MODEL not in client.get("/modelkeeper/models", cookies=cookies).text
        assert client.get(f"/modelkeeper/models/{MODEL}", cookies=cookies).status_code == 404


class TestPages:
    def test_viewer_sees_the_model_listed(self, client, auth_manager, seeded):
        page = client.get("/modelkeeper/models", cookies={"_token": token(auth_manager, "viewer")})
        assert page.status_code == 200, page.text
        assert "text/html" in page.headers["content-type"]
        assert f"href='/modelkeeper/models/{MODEL}'" in page.text
        assert f"v{seeded} since " in page.text
        assert "0.710" in page.text and "0.660" in page.text and "0.25" in page.text
        assert "class='spark'" in page.text

    def test_bearer_works_as_well_as_the_cookie(self, client, auth_manager, seeded):
        headers = {"Authorization": f"Bearer {token(auth_manager, 'viewer')}"}
        assert client.get("/modelkeeper/models", headers=headers).status_code == 200

    def test_model_page(self, client, auth_manager, seeded):
        page = client.get(
            f"/modelkeeper/models/{MODEL}", cookies={"_token": token(auth_manager, "viewer")}
        )
        assert page.status_code == 200, page.text
        html = page.text
        assert "first champion" in html and "roc_auc &lt;0.70&gt; worse" in html
        assert html.count("data-series='estimated'") == 1 + 2  # polyline + one per window
        assert html.count("<circle class='point' cx") == 1 + 2 + 1  # realized, estimated, drift
        assert "1234" in html
        assert "href='/modelkeeper/models'" in html

    def test_unknown_model_is_404(self, client, auth_manager, seeded):
        cookies = {"_token": token(auth_manager, "admin")}
        assert client.get("/modelkeeper/models/nope", cookies=cookies).status_code == 404

    def test_no_registry_connection_still_shows_trail_and_history(
        self, client, auth_manager, audit_db, monkeypatch
    ):
        """No `mlflow_default` Connection at all (the browser test's Airflow has none)."""
        monkeypatch.delenv("AIRFLOW_CONN_MLFLOW_DEFAULT", raising=False)
        audit_db.record(AuditEvent(MODEL, "rollback", "bob", "v2 broke scoring", run_id="r"))
        page = client.get(
            f"/modelkeeper/models/{MODEL}", cookies={"_token": token(auth_manager, "viewer")}
        )
        assert page.status_code == 200, page.text
        assert "champion unknown: the MLflow registry is not configured" in page.text
        assert "v2 broke scoring" in page.text

    def test_empty_stores_render(self, client, auth_manager, mlflow_store, audit_db):
        page = client.get(
            f"/modelkeeper/models/{MODEL}", cookies={"_token": token(auth_manager, "viewer")}
        )
        assert page.status_code == 200, page.text
        assert "no measurements yet" in page.text


class TestPlugin:
    def test_entries_validate_as_the_plugins_api_does(self):
        """One invalid entry makes GET /api/v2/plugins drop the whole plugin."""
        from airflow.api_fastapi.core_api.datamodels.plugins import (
            ExternalViewResponse,
            FastAPIAppResponse,
        )

        from modelkeeper_plugin import ModelkeeperPlugin

        (view,) = ModelkeeperPlugin.external_views
        assert ExternalViewResponse(**view).url_route == "models"
        (app,) = ModelkeeperPlugin.fastapi_apps
        assert FastAPIAppResponse(**{**app, "app": str(app["app"])}).url_prefix == "/modelkeeper"

    def test_importing_the_plugin_builds_no_app(self):
        """Every component imports the plugin; only a request builds the app."""
        code = (
            "import sys, modelkeeper_plugin; "
            "heavy = [m for m in ('modelkeeper_airflow.ui.app', 'modelkeeper.spec', "
            "'airflow.api_fastapi.core_api.security', 'mlflow') if m in sys.modules]; "
            "print(heavy)"
        )
        # The plugins folder on the path as Airflow puts it there (pytest's pythonpath
        # setting does not reach a child process).
        plugins = str(Path(__file__).resolve().parents[2] / "plugins")
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([plugins, os.environ.get("PYTHONPATH", "")]),
        }
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
        assert out.returncode == 0, out.stderr[-2000:]
        assert out.stdout.strip() == "[]", out.stdout
