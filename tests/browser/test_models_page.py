"""The "Models" nav entry shows modelkeeper's health pages inside the Airflow UI.

/plugin/models is the UI's plugin page: an iframe whose src is the external view's href
(modelkeeper/models, the plugin app). The iframe gets the admin's `_token` cookie (same
origin), so the app's auth lets it through and the model is listed; following its link
stays inside the iframe (the sandbox allows no top navigation).
The test seeds the api-server's audit/history DB (the `modelkeeper_audit` Connection of
the `airflow_ui` fixture) through the core's writers, so the charts have points to draw.
This Airflow has no `mlflow_default` Connection, so the champion shows as unknown.

Screenshots: tests/browser/artifacts/models_page/{list,model}.png.
"""

from __future__ import annotations

import shutil

import pytest

pytestmark = pytest.mark.slow

MODEL = "flight_delay"


@pytest.fixture(scope="module")
def shots(artifacts):
    folder = artifacts / "models_page"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


@pytest.fixture(scope="module")
def seeded(airflow_ui):
    from modelkeeper.monitoring.history import History, Measurement
    from modelkeeper.records.audit import AuditEvent, AuditLog

    url = f"sqlite:///{airflow_ui.base / 'audit.db'}"
    AuditLog.from_url(url).record(
        AuditEvent(MODEL, "promotion", "admin", "first champion <v1>", version_after="1")
    )
    weeks = ["2026-03-01", "2026-03-08", "2026-03-15", "2026-03-22"]
    rows = [
        Measurement(MODEL, kind, "roc_auc", value + 0.01 * i, version="1", window_start=week)
        for i, week in enumerate(weeks)
        for kind, value in (("realized", 0.70), ("estimated", 0.69))
        if not (kind == "realized" and i == 3)  # the last week's labels are not in yet
    ]
    rows += [
        Measurement(MODEL, "drift", "drift_share", 0.1 * i, window_start=w, run_id=f"s{i}")
        for i, w in enumerate(weeks)
    ]
    History.from_url(url).record(rows)
    return len(weeks)


def test_models_page_in_the_ui(page, airflow_ui, shots, seeded):
    page.goto("/plugin/models", wait_until="domcontentloaded")
    frame = page.frame_locator("iframe")
    link = frame.get_by_role("link", name=MODEL)
    link.wait_for(state="visible", timeout=60_000)  # the app is built on its first request
    assert frame.get_by_role("heading", name="Models").is_visible()
    page.screenshot(path=str(shots / "list.png"), full_page=True)

    link.click()
    heading = frame.get_by_role("heading", name=MODEL, exact=True)
    heading.wait_for(state="visible")
    # escaped, shown as text (in the audit timeline and in v1's row of the versions table)
    reason = frame.locator("tr[data-event='promotion'] td.reason")
    assert reason.inner_text() == "first champion <v1>"
    assert "first champion <v1>" in frame.locator("tr[data-version='1']").inner_text()
    assert frame.locator("circle[data-series='estimated']").count() == seeded
    assert frame.locator("circle[data-series='realized']").count() == seeded - 1
    assert frame.locator("circle[data-series='drift share']").count() == seeded
    page.screenshot(path=str(shots / "model.png"), full_page=True)


def test_the_app_refuses_a_visitor_without_a_token(airflow_ui):
    import requests

    r = requests.get(f"{airflow_ui.url}/modelkeeper/models", timeout=30)
    assert r.status_code == 401
