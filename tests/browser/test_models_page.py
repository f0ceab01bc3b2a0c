"""The "Models" nav entry shows modelkeeper's health pages inside the Airflow UI.

/plugin/models is the UI's plugin page: an iframe whose src is the external view's href
(modelkeeper/models, the plugin app). The iframe gets the admin's `_token` cookie (same
origin), so the app's auth lets it through and the model is listed; following its link
stays inside the iframe (the sandbox allows no top navigation).
The test seeds the api-server's audit/history DB (the `modelkeeper_audit` Connection of
the `airflow_ui` fixture) through the core's writers, so the charts have points to draw.
This Airflow has no `mlflow_default` Connection, so the champion shows as unknown.
The retrain pipeline's evidence is seeded the same way: per labelled batch the detector,
the shadow's advantage and the drift share (history), and a retrain decision with the
gate's refusal that followed it (audit trail).

Screenshots: tests/browser/artifacts/models_page/{list,model,evidence}.png.
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
    audit = AuditLog.from_url(url)
    audit.record(AuditEvent(MODEL, "promotion", "admin", "first champion <v1>", version_after="1"))
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
    rows += _evidence(weeks)
    History.from_url(url).record(rows)
    metrics = {
        "triggers": ["shadow", "detector"],
        "shadow": {"advantage": 0.014, "lo": 0.006, "hi": 0.022, "level": 0.95},
        "detector": {"statistic": 3.4, "threshold": 2.9},
        "drift": {"share": 0.5, "calibrated_threshold": 0.22},
    }
    gate = "refused: roc_auc 0.730 → 0.733 (+0.003 < +0.005 required, 95% CI [-0.0008, +0.0068])"
    for event in (
        AuditEvent(MODEL, "decision", "scheduler", "retraining pays off", version_before="1", metrics=metrics, run_id="e3"),
        AuditEvent(MODEL, "refusal", "scheduler", gate, version_before="1", version_after="1", candidate_version="2", run_id="e3"),
    ):  # fmt: skip
        audit.record(event)
    return len(weeks)


def _evidence(weeks: list[str]) -> list:
    """Per labelled batch (a run each): the detector climbing to an alarm on the last one,
    the shadow's advantage growing beyond noise, the drift share against its threshold."""
    from modelkeeper.monitoring.history import Measurement

    rows = []
    for i, week in enumerate(weeks):
        stat, adv = [0.0, 0.9, 2.1, 3.4][i], [-0.003, 0.002, 0.008, 0.014][i]
        at = {"version": "1", "run_id": f"e{i}", "recorded_at": f"{week}T07:00:00+00:00"}
        detector = {"value": 0.7, "statistic": stat, "threshold": 2.9, "alarm": stat > 2.9}
        shadow = {"lo": adv - 0.008, "hi": adv + 0.008, "level": 0.95, "champion": 0.73}
        drift = {"calibrated_threshold": 0.22}
        rows += [
            Measurement(MODEL, "detector", "roc_auc", stat, detail=detector, **at),
            Measurement(MODEL, "evidence", "shadow_advantage", adv, detail=shadow, **at),
            Measurement(MODEL, "evidence", "drift_share", 0.15 * i + 0.05, detail=drift, **at),
        ]
    return rows


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
    # the scored batches' drift and the labelled batches' (retraining evidence)
    assert frame.locator("circle[data-series='drift share']").count() == 2 * seeded
    page.screenshot(path=str(shots / "model.png"), full_page=True)

    section = frame.locator("#retraining-evidence")
    section.scroll_into_view_if_needed()
    assert section.get_by_role("heading", name="Retraining evidence").is_visible()
    assert section.locator("circle[data-series='detector statistic']").count() == seeded
    assert section.locator("circle[data-series='alarm']").count() == 1
    assert section.locator("path.interval").count() == seeded
    decision = section.locator("tr[data-run='e3']")
    assert decision.is_visible()
    words = decision.inner_text()
    assert "shadow +0.0140 [+0.0060, +0.0220]" in words and "detector 3.40 / 2.90" in words
    assert "drift 50% vs 22% by chance" in words and "refused v2" in words
    assert "95% CI [-0.0008, +0.0068]" in words


def test_the_evidence_section_on_its_own(page, shots, seeded):
    """The model page opened directly (the same token cookie), for a picture of the
    section at full width."""
    page.goto(f"/modelkeeper/models/{MODEL}", wait_until="domcontentloaded")
    section = page.locator("#retraining-evidence")
    section.wait_for(state="visible", timeout=60_000)
    assert page.locator("tr[data-run='e3'] td.outcome").inner_text().startswith("refused v2")
    section.screenshot(path=str(shots / "evidence.png"))


def test_the_app_refuses_a_visitor_without_a_token(airflow_ui):
    import requests

    r = requests.get(f"{airflow_ui.url}/modelkeeper/models", timeout=30)
    assert r.status_code == 401
