"""After real runs: the health pages, the Model health tab and the extra links, in a browser.

The session's real Airflow (tests/browser/conftest.py) gets, through the REST API, an
`mlflow_default` Connection to a real `mlflow server` and the promotion pool (as
scripts/bootstrap_airflow.py makes them for `make run`), a scheduler, and nine demo weeks
in its storage root. `retrain_flight_delay` is triggered as from the UI and runs to success (v1
becomes champion), then a week of unlabelled flights lands and `score_flight_delay` scores
it (drift share, per-column drift and scoring numbers go to the history). Nothing is
seeded: every number the pages show comes from those two runs.

Screenshots: tests/browser/artifacts/real_runs/*.png.
"""

from __future__ import annotations

import re
import shutil
import time

import pytest

from tests.procs import wait_for

pytestmark = pytest.mark.slow

MODEL = "flight_delay"
RETRAIN, SCORE = f"retrain_{MODEL}", f"score_{MODEL}"


@pytest.fixture(scope="module")
def shots(artifacts):
    folder = artifacts / "real_runs"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def _run_to_success(ui, dag_id: str, timeout: float = 900) -> str:
    ui.ok("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
    run = ui.ok("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": {}})
    run_id = run["dag_run_id"]

    def done() -> bool:
        state = ui.ok("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"]
        if state == "failed":
            tis = ui.ok("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
            states = {t["task_id"]: t["state"] for t in tis["task_instances"]}
            raise AssertionError(f"{dag_id} {run_id} failed: {states}\n{ui.log_tail('scheduler')}")
        return state == "success"

    wait_for(f"{dag_id} to succeed", done, timeout, interval=3)
    ui.ok("PATCH", f"/dags/{dag_id}", json={"is_paused": True})  # no scheduled run after
    return run_id


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """An MLflow server of this module's own: the session's shared one serves the e2e
    tests' flight_delay, whose first run must find no champion."""
    from tests.conftest import serve_mlflow

    yield from serve_mlflow(tmp_path_factory.mktemp("mlflow-real-runs"))


@pytest.fixture(scope="module")
def runs(airflow_ui, mlflow_server):
    from modelkeeper.data.storage import Storage
    from modelkeeper.demo import land_next_features_and_labels, land_next_weeks
    from modelkeeper_airflow.factory import PROMOTION_POOL

    ui = airflow_ui
    ui.ok(
        "POST",
        "/connections",
        json={"connection_id": "mlflow_default", "conn_type": "http", "host": mlflow_server},
    )
    ui.ok("POST", "/pools", json={"name": PROMOTION_POOL, "slots": 1})  # as bootstrap makes it
    storage = Storage(ui.storage_root)
    land_next_weeks(storage, n=9)
    if "scheduler" not in ui.procs:
        # Only the runs this test triggers: unpausing must not add the schedule's own run
        # for the latest interval (it would take the batch first).
        ui.env["AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE"] = "False"
        ui.start_component("scheduler")
    started = time.monotonic()
    retrain = _run_to_success(ui, RETRAIN)
    assert land_next_features_and_labels(storage)["features"]
    score = _run_to_success(ui, SCORE)
    print(f"retrain + score runs: {time.monotonic() - started:.0f}s")
    return {"retrain": retrain, "score": score, "mlflow": mlflow_server}


def _links(ui, dag_id: str, run_id: str, task_id: str) -> dict[str, str]:
    from urllib.parse import quote

    path = f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}/links"
    return {k: v for k, v in ui.ok("GET", path)["extra_links"].items() if v}


def test_models_page_shows_the_champion_from_the_run(page, airflow_ui, runs, shots):
    page.goto("/plugin/models", wait_until="domcontentloaded")
    frame = page.frame_locator("iframe")
    row = frame.locator(f"tr[data-model='{MODEL}']")
    row.wait_for(state="visible", timeout=60_000)
    assert re.search(r"v1 since \d{4}-\d\d-\d\d", row.inner_text()), row.inner_text()
    page.screenshot(path=str(shots / "models.png"), full_page=True)


def test_the_model_health_tab_after_real_runs(page, airflow_ui, runs, shots):
    page.goto(f"/dags/{RETRAIN}/plugin/model-health", wait_until="domcontentloaded")
    frame = page.frame_locator("iframe")
    frame.get_by_role("heading", name=MODEL, exact=True).wait_for(timeout=60_000)
    assert re.search(r"Champion: v1 since", frame.locator("body").inner_text())
    # The promotion and its reason, from the audit row the promote task wrote.
    # (test_models_page seeds a promotion of its own into the session's audit trail)
    promotion = frame.locator("tr[data-event='promotion']", has_text=runs["retrain"])
    assert promotion.count() == 1
    assert "promoted" in promotion.locator("td.reason").inner_text()
    # Charts with points from the runs: v1's roc_auc at evaluation (retrain), drift share
    # and scored rows (score).
    assert frame.locator("circle[data-series='at evaluation'][data-window^='2013']").count() == 1
    # (only the 2013 windows are this module's: test_models_page seeds 2026 ones)
    assert frame.locator("circle[data-series='drift share'][data-window^='2013']").count() == 1
    rows = frame.locator("circle[data-series='rows'][data-window^='2013']")
    assert rows.count() == 1 and float(rows.get_attribute("data-value")) > 500
    assert frame.locator("table.grid td.cell").count() > 0  # per-column drift
    # v1's row links to its run's model card and Data Docs, served by the plugin.
    version = frame.locator("tr[data-version='1']")
    assert version.get_by_role("link", name="Model card").count() == 1
    assert version.get_by_role("link", name="Data Docs").count() == 1
    page.screenshot(path=str(shots / "model_health_tab.png"), full_page=True)

    # MLflow refuses to be framed and the iframe's sandbox allows no popups: the page's
    # script opens its MLflow links in a new tab through the parent page.
    with page.context.expect_page() as opened:
        version.get_by_role("link", name="MLflow version").click()
    mlflow_page = opened.value
    mlflow_page.wait_for_load_state("domcontentloaded")
    assert mlflow_page.url.startswith(runs["mlflow"]) and "/versions/1" in mlflow_page.url
    mlflow_page.get_by_text(re.compile(r"Version 1")).first.wait_for(timeout=30_000)
    mlflow_page.close()

    version.get_by_role("link", name="Model card").click()  # inside the iframe
    frame.get_by_text("Intended use").first.wait_for(timeout=30_000)
    page.screenshot(path=str(shots / "model_card.png"), full_page=True)


def test_train_extra_links_open_pages_that_load(page, airflow_ui, runs, shots):
    links = _links(airflow_ui, RETRAIN, runs["retrain"], "train")
    assert set(links) == {"MLflow run", "Model version", "Data Docs"}, links
    for name, url in links.items():
        assert url.startswith(runs["mlflow"]), (name, url)
        tab = page.context.new_page()  # a new tab, as the UI opens them (and a real load:
        answer = tab.goto(url, wait_until="domcontentloaded")  # not a same-page #hash)
        assert answer is not None and answer.ok, (name, url)
        if name == "Model version":
            tab.get_by_text(re.compile(r"Version 1")).first.wait_for(timeout=30_000)
        elif name == "MLflow run":
            tab.get_by_text(re.compile(rf"{MODEL} manual \d{{4}}")).first.wait_for(timeout=30_000)
        else:  # the logged Data Docs, rendered in MLflow's artifact view (an iframe)
            docs = tab.frame_locator("iframe").first
            docs.get_by_text(re.compile("Validation Results|Expectation Suites")).first.wait_for(
                timeout=60_000
            )
        tab.screenshot(path=str(shots / f"train-{name.replace(' ', '_')}.png"), full_page=True)
        tab.close()


def test_report_links_open_the_plugin_pages(page, airflow_ui, runs, shots):
    docs = _links(airflow_ui, RETRAIN, runs["retrain"], "validate")["Data Docs"]
    assert (
        docs
        == f"{airflow_ui.url}/modelkeeper/reports/{MODEL}/{_key(runs['retrain'])}/data_docs/index.html"
    )
    answer = page.goto(docs, wait_until="load")
    assert answer.ok
    assert answer.headers["content-security-policy"].startswith("sandbox")
    page.get_by_text(re.compile("Expectation Suites?", re.I)).first.wait_for(timeout=30_000)
    page.screenshot(path=str(shots / "validate-data_docs.png"), full_page=True)

    drift = _links(airflow_ui, SCORE, runs["score"], "watch")["Drift report"]
    answer = page.goto(drift, wait_until="load")
    assert answer.ok
    # Evidently's report is a script-drawn app: its widgets show only if its script ran
    # in the sandbox.
    page.get_by_text("Share of Drifted Columns").first.wait_for(timeout=60_000)
    assert page.get_by_text("humid").count() > 0  # a column row from the real batch
    page.screenshot(path=str(shots / "watch-drift_report.png"), full_page=True)


def test_report_pages_refuse_an_anonymous_visitor(airflow_ui, runs):
    import requests

    url = (
        f"{airflow_ui.url}/modelkeeper/reports/{MODEL}/{_key(runs['retrain'])}/data_docs/index.html"
    )
    assert requests.get(url, timeout=30).status_code == 401
    assert (
        requests.get(f"{airflow_ui.url}/modelkeeper/dags/{RETRAIN}/health", timeout=30).status_code
        == 401
    )


def _key(run_id: str) -> str:
    from modelkeeper.data.storage import run_key

    return run_key(run_id)
