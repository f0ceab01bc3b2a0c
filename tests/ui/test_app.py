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

from modelkeeper.monitoring.history import History, Measurement
from modelkeeper.records.audit import AuditEvent

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
            Measurement(MODEL, "evaluation", "roc_auc", 0.73, window_start="2026-02-22", run_id="a", **base),
            Measurement(MODEL, "realized", "log_loss", 0.45, window_start="2026-03-01", run_id="m1", **base),
            Measurement(MODEL, "drift", "column:temp", 0.01, detail={"drifted": True}, window_start="2026-03-01", run_id="s0", **base),
            Measurement(MODEL, "drift", "column:temp", 0.02, detail={"drifted": True}, window_start="2026-03-08", run_id="s1", **base),
            Measurement(MODEL, "drift", "column:hour", 0.40, detail={"drifted": False}, window_start="2026-03-08", run_id="s1", **base),
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


ROUTES = [
    "/modelkeeper/models",
    f"/modelkeeper/models/{MODEL}",
    f"/modelkeeper/dags/retrain_{MODEL}/health",
    f"/modelkeeper/reports/{MODEL}/b/model_card/model_card.html",
    "/modelkeeper/outbox",
]


@pytest.fixture
def reports(storage):
    """Run b's report folder as evaluate and monitor leave it, plus files never served."""
    folder = storage.report_dir(MODEL, "b")
    storage.write_text("<h1>card of v2</h1>", folder / "model_card" / "model_card.html")
    storage.write_text("<html>drift</html>", folder / "drift.html")
    storage.write_text("secret", storage.root / "landing" / "flights" / "x.html")
    storage.write_text("tmp", folder / ".drift.html.abc.tmp")
    storage.write_text("x", folder / "raw.parquet")
    return folder


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
        # realized, estimated (2 windows), at evaluation, log_loss, drift share, scored rows
        assert html.count("<circle class='point' cx") == 1 + 2 + 1 + 1 + 1 + 1
        assert "data-series='at evaluation' data-window='2026-02-22' data-value='0.73'" in html
        assert "<h3>log_loss (realized)</h3>" in html
        assert "data-series='log_loss' data-window='2026-03-01' data-value='0.45'" in html
        assert "data-series='rows' data-window='2026-03-08' data-value='1234'" in html
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


class TestDagTab:
    def test_a_models_dag_shows_its_health(self, client, auth_manager, seeded):
        cookies = {"_token": token(auth_manager, "viewer")}
        for dag_id in DAGS:
            page = client.get(f"/modelkeeper/dags/{dag_id}/health", cookies=cookies)
            assert page.status_code == 200, page.text
            assert "first champion" in page.text and f"<h1>{MODEL}</h1>" in page.text

    def test_another_dag_gets_a_note(self, client, auth_manager, seeded):
        cookies = {"_token": token(auth_manager, "viewer")}
        page = client.get("/modelkeeper/dags/some_etl/health", cookies=cookies)
        assert page.status_code == 404
        assert "DAG some_etl belongs to no model you may read" in page.text


class TestModelPageParts:
    def test_versions_link_to_mlflow_and_the_reports_their_run_wrote(
        self, client, auth_manager, seeded, reports
    ):
        html = client.get(
            f"/modelkeeper/models/{MODEL}", cookies={"_token": token(auth_manager, "viewer")}
        ).text
        row = html.split("<tr data-version='2'>")[1].split("</tr>")[0]
        assert "refusal" in row and "roc_auc &lt;0.70&gt; worse" in row
        assert f"href='/modelkeeper/reports/{MODEL}/b/model_card/model_card.html'" in row
        assert f"href='/modelkeeper/reports/{MODEL}/b/drift.html'" in row
        assert "Data Docs" not in row  # run b wrote none
        # a local MLflow store has no UI: no MLflow link rather than a dead one
        assert "MLflow version" not in row
        assert "<tr data-version='1'>" in html

    def test_a_version_event_outside_any_run_has_no_report_links(
        self, client, auth_manager, seeded, audit_db
    ):
        """A person's rollback (or a seeded trail) has no run id: no links, no error."""
        audit_db.record(AuditEvent(MODEL, "promotion", "bob", "by hand", version_after="7"))
        html = client.get(
            f"/modelkeeper/models/{MODEL}", cookies={"_token": token(auth_manager, "viewer")}
        )
        assert html.status_code == 200, html.text
        row = html.text.split("<tr data-version='7'>")[1].split("</tr>")[0]
        assert "by hand" in row and "<td class='links'>—</td>" in row

    def test_most_drifted_columns(self, client, auth_manager, seeded):
        html = client.get(
            f"/modelkeeper/models/{MODEL}", cookies={"_token": token(auth_manager, "viewer")}
        ).text
        grid = html.split("<table class='grid'>")[1].split("</table>")[0]
        assert grid.index("<td>temp</td>") < grid.index("<td>hour</td>")  # 2 drifts before 0
        assert grid.count("class='cell drifted' data-column='temp'") == 2
        assert "class='cell unknown' data-column='hour' data-window='2026-03-01'" in grid
        assert "class='cell stable' data-column='hour' data-window='2026-03-08'" in grid


def _batch(i: int, statistic: float, advantage: float, share: float, **run) -> list:
    """The rows monitor records for a labelled batch: the detector's and the evidence."""
    detector = {"value": 0.7, "statistic": statistic, "threshold": 2.3, "alarm": statistic > 2.3}
    shadow = {"lo": advantage - 0.005, "hi": advantage + 0.005, "level": 0.95, "champion": 0.7}
    at = {"run_id": f"r{i}", "rows": 800, "recorded_at": f"2026-03-1{i}T06:00:00+00:00", **run}
    return [
        Measurement(MODEL, "detector", "roc_auc", statistic, detail=detector, **at),
        Measurement(MODEL, "evidence", "shadow_advantage", advantage, detail=shadow, **at),
        Measurement(MODEL, "evidence", "drift_share", share, detail={"calibrated_threshold": 0.12}, **at),
    ]  # fmt: skip


@pytest.fixture
def evidence(seeded, audit_db):
    """Three labelled batches of the retrain pipeline, a retrain decision on the last one
    that the gate refused, and a later one whose run never ended."""
    run = {"version": seeded, "dag_id": f"retrain_{MODEL}"}
    steps = [(0.2, 0.001, 0.1), (1.4, 0.006, 0.3), (2.9, 0.011, 0.5)]
    History(audit_db.engine).record([r for i, s in enumerate(steps) for r in _batch(i, *s, **run)])
    metrics = {
        "triggers": ["shadow", "detector"],
        "shadow": {"advantage": 0.011, "lo": 0.006, "hi": 0.016, "level": 0.95},
        "detector": {"statistic": 2.9, "threshold": 2.3},
        "drift": {"share": 0.5, "calibrated_threshold": 0.12},
    }
    gate = "refused: roc_auc 0.700 → 0.703 (+0.003 < +0.005 required, 95% CI [+0.0010, +0.0050])"
    trail = [
        AuditEvent(MODEL, "decision", "scheduler", "retraining pays off <shadow>", version_before=seeded, metrics=metrics, run_id="r2"),
        AuditEvent(MODEL, "refusal", "scheduler", gate, version_before=seeded, version_after=seeded, candidate_version="3", run_id="r2"),
        AuditEvent(MODEL, "decision", "ann", "forced by a person: new features", version_before=seeded, metrics={"triggers": []}, run_id="r9"),
    ]  # fmt: skip
    for event in trail:
        audit_db.record(event)
    return seeded


class TestRetrainingEvidence:
    def test_the_model_page_shows_the_evidence_and_the_decisions(
        self, client, auth_manager, evidence
    ):
        page = client.get(
            f"/modelkeeper/models/{MODEL}", cookies={"_token": token(auth_manager, "viewer")}
        )
        assert page.status_code == 200, page.text
        html = page.text.split("<section id='retraining-evidence'>")[1].split("</section>")[0]
        assert html.count("data-series='detector statistic' data-window") == 3
        assert "data-series='alarm' data-window='2026-03-12 06:00' data-value='2.9'" in html
        assert html.count("<path class='interval'") == 3
        assert "data-window='2026-03-11 06:00' data-lo='0.001' data-hi='0.011'" in html
        assert html.count("data-series='drift share' data-window") == 3
        refused = html.split("<tr data-run='r2'>")[1].split("</tr>")[0]
        assert f"<td>v{evidence}</td>" in refused and "shadow, detector" in refused
        assert "shadow +0.0110 [+0.0060, +0.0160]" in refused
        assert "detector 2.90 / 2.30" in refused and "drift 50% vs 12% by chance" in refused
        assert "refused v3</strong>: roc_auc 0.700 → 0.703" in refused
        assert "95% CI [+0.0010, +0.0050]" in refused
        assert "retraining pays off &lt;shadow&gt;" in refused
        forced = html.split("<tr data-run='r9'>")[1].split("</tr>")[0]
        assert "forced by a person: new features" in forced and "nothing after it" in forced
        assert html.index("data-run='r9'") < html.index("data-run='r2'")  # newest first

    def test_the_list_says_the_last_decision(self, client, auth_manager, evidence):
        page = client.get("/modelkeeper/models", cookies={"_token": token(auth_manager, "viewer")})
        assert page.status_code == 200, page.text
        assert "<small class='last-decision'>last retrain " in page.text

    def test_no_batch_yet_says_so(self, client, auth_manager, seeded):
        page = client.get(
            f"/modelkeeper/models/{MODEL}", cookies={"_token": token(auth_manager, "viewer")}
        )
        html = page.text.split("<section id='retraining-evidence'>")[1].split("</section>")[0]
        assert "no labelled batch measured yet" in html and "no retrain decided yet" in html


class TestReports:
    def test_a_report_page_is_served_sandboxed(self, client, auth_manager, seeded, reports):
        url = f"/modelkeeper/reports/{MODEL}/b/model_card/model_card.html"
        page = client.get(url, cookies={"_token": token(auth_manager, "viewer")})
        assert page.status_code == 200, page.text
        assert page.text == "<h1>card of v2</h1>"
        assert page.headers["content-type"].startswith("text/html")
        assert page.headers["content-security-policy"].startswith("sandbox allow-scripts")
        assert "allow-same-origin" not in page.headers["content-security-policy"]

    @pytest.mark.parametrize(
        "page",
        [
            "../../../landing/flights/x.html",
            "..%2F..%2F..%2Flanding%2Fflights%2Fx.html",
            "model_card/../../../../landing/flights/x.html",
            "%2Fetc%2Fpasswd",
            ".drift.html.abc.tmp",
            "raw.parquet",
            "nothing.html",
        ],
    )
    def test_only_report_files_inside_the_folder(self, client, auth_manager, seeded, reports, page):
        url = f"/modelkeeper/reports/{MODEL}/b/{page}"
        answer = client.get(url, cookies={"_token": token(auth_manager, "admin")})
        assert answer.status_code == 404, answer.text
        assert "secret" not in answer.text and "tmp" != answer.text

    def test_a_run_that_is_not_a_run_key(self, client, auth_manager, seeded, reports):
        url = f"/modelkeeper/reports/{MODEL}/..%2F..%2Flanding/flights/x.html"
        answer = client.get(url, cookies={"_token": token(auth_manager, "admin")})
        assert answer.status_code == 404 and "secret" not in answer.text

    def test_a_symlink_out_of_the_folder_is_refused(
        self, client, auth_manager, seeded, reports, storage
    ):
        (reports / "link.html").symlink_to(storage.root / "landing" / "flights" / "x.html")
        url = f"/modelkeeper/reports/{MODEL}/b/link.html"
        answer = client.get(url, cookies={"_token": token(auth_manager, "admin")})
        assert answer.status_code == 404 and "points out of the report folder" in answer.text

    def test_a_user_who_may_not_read_the_model_gets_nothing(
        self, client, auth_manager, seeded, reports
    ):
        url = f"/modelkeeper/reports/{MODEL}/b/model_card/model_card.html"
        answer = client.get(url, cookies={"_token": token(auth_manager, None)})
        assert answer.status_code == 404 and "card of v2" not in answer.text


class TestReportsOnObjectStorage:
    """The storage root is an s3:// URI (moto's server stands in for S3, tests/conftest.py):
    the api-server reads the report pages from the bucket, behind the same checks."""

    @pytest.fixture
    def s3_reports(self, s3_env, monkeypatch):
        import uuid

        from modelkeeper.data.storage import Storage

        for k, v in s3_env["env"].items():
            monkeypatch.setenv(k, v)
        monkeypatch.setenv("MODELKEEPER_STORAGE", f"s3://{s3_env['bucket']}/{uuid.uuid4().hex[:8]}")
        storage = Storage()
        folder = storage.report_dir(MODEL, "b")
        storage.write_text("<h1>card on s3</h1>", folder / "model_card" / "model_card.html")
        return storage

    def test_served_from_the_bucket(self, client, auth_manager, seeded, s3_reports):
        cookies = {"_token": token(auth_manager, "viewer")}
        url = f"/modelkeeper/reports/{MODEL}/b/model_card/model_card.html"
        page = client.get(url, cookies=cookies)
        assert page.status_code == 200, page.text
        assert page.text == "<h1>card on s3</h1>"
        assert page.headers["content-security-policy"].startswith("sandbox")
        html = client.get(f"/modelkeeper/models/{MODEL}", cookies=cookies).text
        assert f"href='{url}'" in html  # the version row links it
        for bad in ("../../x.html", "model_card/../../../x.html", "nothing.html"):
            assert (
                client.get(f"/modelkeeper/reports/{MODEL}/b/{bad}", cookies=cookies).status_code
                == 404
            )


class TestPlugin:
    def test_entries_validate_as_the_plugins_api_does(self):
        """One invalid entry makes GET /api/v2/plugins drop the whole plugin."""
        from airflow.api_fastapi.core_api.datamodels.plugins import (
            ExternalViewResponse,
            FastAPIAppResponse,
        )

        from modelkeeper_plugin import ModelkeeperPlugin

        nav, tab, outbox = (ExternalViewResponse(**v) for v in ModelkeeperPlugin.external_views)
        assert (nav.destination, nav.url_route) == ("nav", "models")
        assert (outbox.destination, outbox.href) == ("nav", "modelkeeper/outbox")
        assert (tab.destination, tab.href) == ("dag", "modelkeeper/dags/{DAG_ID}/health")
        (app,) = ModelkeeperPlugin.fastapi_apps
        assert FastAPIAppResponse(**{**app, "app": str(app["app"])}).url_prefix == "/modelkeeper"

    def test_importing_the_plugin_builds_no_app(self):
        """Every component imports the plugin; only a request builds the app."""
        code = (
            "import sys, modelkeeper_plugin; "
            "heavy = [m for m in ('modelkeeper_airflow.ui.app', 'modelkeeper.contracts.spec', "
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


class TestOutboxPage:
    """The notifications kept in the local outbox, of the models the user may read."""

    @pytest.fixture
    def kept(self, storage, auth_manager):  # noqa: ARG002 - the DAGs the viewer may read
        from modelkeeper.records.outbox import post

        for model, subject in [(MODEL, "version 4 is the new champion <b>"), ("other", "x")]:
            payload = {
                "model": model,
                "event": "promotion",
                "subject": subject,
                "reason": "promoted: roc_auc 0.712 → 0.731",
                "text": f"[modelkeeper] {model} promotion: {subject}",
                "run_url": "http://127.0.0.1:1/dags/retrain_flight_delay/runs/r1",
                "task_url": "http://127.0.0.1:1/dags/retrain_flight_delay/runs/r1/tasks/promote",
            }
            post(storage, payload, delivered=["email to a@b.c: not sent: no Connection"])
        return storage

    def test_lists_the_readable_models_notifications(self, client, auth_manager, kept):
        page = client.get("/modelkeeper/outbox", cookies={"_token": token(auth_manager, "viewer")})
        assert page.status_code == 200, page.text
        html = page.text
        assert html.count("<tr class='entry'") == 1  # "other" is no model the user may read
        assert f"data-model='{MODEL}' data-event='promotion'" in html
        assert "version 4 is the new champion &lt;b&gt;" in html
        assert "promoted: roc_auc 0.712 → 0.731" in html
        assert "href='http://127.0.0.1:1/dags/retrain_flight_delay/runs/r1/tasks/promote'" in html
        assert "email to a@b.c: not sent: no Connection" in html
        assert f"href='/modelkeeper/models/{MODEL}'" in html

    def test_a_user_without_a_role_sees_none(self, client, auth_manager, kept):
        page = client.get("/modelkeeper/outbox", cookies={"_token": token(auth_manager, None)})
        assert page.status_code == 200
        assert "<tr class='entry'" not in page.text and "No notifications yet." in page.text

    def test_an_empty_outbox(self, client, auth_manager, storage):  # noqa: ARG002
        page = client.get("/modelkeeper/outbox", cookies={"_token": token(auth_manager, "viewer")})
        assert page.status_code == 200 and "No notifications yet." in page.text
