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


# -- issue 23 items 4, 13, 14, 16: what people see after a monitor run and a failed run ---
MONITOR = f"monitor_{MODEL}"
UNSCORED = 30  # labels whose key no prediction has


def _run_to_end(ui, dag_id: str, timeout: float = 600) -> tuple[str, str]:
    """Trigger `dag_id` and wait until it succeeds or fails: (run_id, state)."""
    ui.ok("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
    run_id = ui.ok("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": {}})[
        "dag_run_id"
    ]
    ended: dict = {}

    def done() -> bool:
        ended["state"] = ui.ok("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"]
        return ended["state"] in ("success", "failed")

    wait_for(f"{dag_id} to end", done, timeout, interval=3)
    ui.ok("PATCH", f"/dags/{dag_id}", json={"is_paused": True})
    return run_id, ended["state"]


def _note(ui, dag_id: str, run_id: str) -> str | None:
    """The run's note: the listener sets it in the scheduler as the run ends."""
    found: dict = {}

    def noted() -> bool:
        found["note"] = ui.ok("GET", f"/dags/{dag_id}/dagRuns/{run_id}").get("note")
        return bool(found["note"])

    wait_for(f"a note on {dag_id} {run_id}", noted, 30, interval=1)
    return found["note"]


def _task_log(ui, dag_id: str, run_id: str, task_id: str) -> str:
    from urllib.parse import quote

    path = f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}/logs/1"
    content = ui.ok("GET", path, headers={"Accept": "application/json"})["content"]
    return "\n".join(str(c.get("event", "")) if isinstance(c, dict) else str(c) for c in content)


@pytest.fixture(scope="module")
def later_runs(airflow_ui, runs):
    """After `runs`: labels for the scored week plus some whose key was never scored land,
    and monitor_<model> runs (green); then a scoring file with an impossible hour lands and
    score_<model> fails in validate."""
    from modelkeeper.data.storage import Storage
    from modelkeeper.demo import load_flights, week_frame
    from modelkeeper.demo.flights import FEATURES_SUBDIR, LANDING_SUBDIR

    ui, storage = airflow_ui, Storage(airflow_ui.storage_root)
    started = time.monotonic()
    week9 = week_frame(load_flights(), 9)
    unscored = week9.head(UNSCORED).assign(flight=range(9000, 9000 + UNSCORED))
    labels = storage.landing_dir() / LANDING_SUBDIR / "week_09.parquet"
    storage.write_parquet(pd_concat([week9, unscored]), labels)
    monitor, state = _run_to_end(ui, MONITOR)
    assert state == "success", ui.ok("GET", f"/dags/{MONITOR}/dagRuns/{monitor}/taskInstances")
    bad = week_frame(load_flights(), 10).drop(columns=["delayed"]).assign(hour=99)
    storage.write_parquet(bad, storage.landing_dir() / FEATURES_SUBDIR / "week_10.parquet")
    failed, state = _run_to_end(ui, SCORE)
    assert state == "failed"
    print(f"monitor + failed score runs: {time.monotonic() - started:.0f}s")
    return {"monitor": monitor, "failed": failed}


def pd_concat(frames):
    import pandas as pd

    return pd.concat(frames, ignore_index=True)


def test_run_notes_say_what_happened(airflow_ui, later_runs):
    """Item 4: the monitor run's note counts the labels that match no prediction; item 16:
    the failed run's note says what failed and why. Both set by the listener in the real
    scheduler; the green run's measure log says the same, with no ERROR line."""
    note = _note(airflow_ui, MONITOR, later_runs["monitor"])
    assert f"; {UNSCORED} labels match no prediction (kept" in note, note
    log = _task_log(airflow_ui, MONITOR, later_runs["monitor"], "measure")
    assert f"{UNSCORED} labels match no prediction" in log, log[-3000:]
    failed = _note(airflow_ui, SCORE, later_runs["failed"])
    assert failed.startswith("validate failed: DataError: validation failed"), failed
    assert "column=hour" in failed and "; " not in failed[-3:], failed


def test_the_health_page_gives_its_verdict(page, airflow_ui, runs, later_runs, shots):
    """Item 13: the verdict (failing: score's last run failed), coloured, since when, with
    the rule; item 4: the unmatched count; item 16: runs link to Airflow, versions to MLflow."""
    page.goto(f"/dags/{MONITOR}/plugin/model-health", wait_until="domcontentloaded")
    frame = page.frame_locator("iframe")
    frame.get_by_role("heading", name=MODEL, exact=True).wait_for(timeout=60_000)
    box = frame.locator("#verdict")
    assert box.locator("[data-verdict='failing']").first.inner_text() == "failing"
    words = box.inner_text()
    assert f"the latest run of {SCORE} failed" in words, words
    assert "The rule" in words and "floor 0.62 (monitoring.metric_floor)" in words, words
    assert re.search(r"since \d{4}-\d\d-\d\d \d\d:\d\d", words), words
    assert f"{UNSCORED} of" in box.locator(".unmatched").inner_text()
    failed_link = box.locator("a.run", has_text=later_runs["failed"])
    href = failed_link.first.get_attribute("href")
    assert href == _run_page(airflow_ui, SCORE, later_runs["failed"]), href
    # every run id of the audit timeline and the scoring table is a link to its run
    promotion = frame.locator("tr[data-event='promotion']", has_text=runs["retrain"])
    assert promotion.locator("a.run").get_attribute("href") == (
        _run_page(airflow_ui, RETRAIN, runs["retrain"])
    )
    version = frame.locator("tr[data-version='1']")
    assert version.get_by_role("link", name="Airflow run").count() == 1
    assert version.get_by_role("link", name="MLflow version").count() == 1
    page.screenshot(path=str(shots / "verdict_health_tab.png"), full_page=True)
    box.screenshot(path=str(shots / "verdict.png"))

    # the failed run's link opens its run page in Airflow, which shows the note
    with page.context.expect_page() as opened:
        failed_link.first.click()
    run_page = opened.value
    run_page.wait_for_load_state("domcontentloaded")
    assert run_page.url.startswith(href)
    run_page.get_by_text(re.compile("validate failed: DataError")).first.wait_for(timeout=30_000)
    run_page.screenshot(path=str(shots / "failed_run_note.png"), full_page=True)
    run_page.close()


def test_the_mlflow_run_links_back_to_airflow_absolutely(airflow_ui, runs):
    """Item 16: the airflow_run_url tag on the MLflow run is absolute ([api] base_url)."""
    import requests

    found = requests.post(
        f"{runs['mlflow']}/api/2.0/mlflow/runs/search",
        json={
            "experiment_ids": _experiments(runs["mlflow"]),
            "filter": f"tags.airflow_run_url = '{_run_page(airflow_ui, RETRAIN, runs['retrain'])}'",
        },
        timeout=30,
    ).json()
    [run] = found["runs"]
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    assert tags["airflow_run_url"] == _run_page(airflow_ui, RETRAIN, runs["retrain"])


def _run_page(ui, dag_id: str, run_id: str) -> str:
    """A DAG run's page in the Airflow UI, absolute from [api] base_url (notify.run_url)."""
    from urllib.parse import quote

    return f"{ui.url}/dags/{dag_id}/runs/{quote(run_id, safe='')}"


def _experiments(mlflow: str) -> list[str]:
    import requests

    r = requests.post(f"{mlflow}/api/2.0/mlflow/experiments/search", json={"max_results": 100})
    return [e["experiment_id"] for e in r.json()["experiments"]]


def test_the_rollback_form_shows_the_champion(page, airflow_ui, runs, shots):
    """Item 14: the form built at parse time shows the champion the retrain run promoted
    and its record (the DAG file is parsed again first: the serialized one predates it)."""
    from tests.browser.ui import TriggerDialog

    airflow_ui.run("dags", "reserialize")
    dag_id = "modelkeeper_rollback"
    params = airflow_ui.ok("GET", f"/dags/{dag_id}/details")["params"]
    dialog = TriggerDialog.open(page, dag_id, params)
    text = dialog.dialog.inner_text()
    assert re.search(rf"{MODEL}: champion v1 since \d{{4}}-\d\d-\d\d", text), text
    assert re.search(r"v1: promotion \d{4}-\d\d-\d\d \d\d:\d\d by \S+: promoted", text), text
    state = dialog.state()
    assert not state.submit_enabled  # still no model pre-selected
    dialog.screenshot(str(shots / "rollback_form.png"))
