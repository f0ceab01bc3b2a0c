"""The rollback trigger form's texts (issue 23 item 14): each model's champion, what
`previous` points at and its versions' records, read from a real audit trail (SQLite,
through the `modelkeeper_audit` Connection as the DAG file reads it at parse time).
The browser check is tests/browser/test_real_runs.py::test_the_rollback_form_shows_the_champion.
"""

from __future__ import annotations

import json

from modelkeeper_airflow import rollback_form


def _seed(path):
    from modelkeeper.records.audit import AuditEvent, AuditLog

    audit = AuditLog.from_url(f"sqlite:///{path}")
    for event in (
        AuditEvent("flight_delay", "promotion", "scheduler", "first champion", version_after="1", candidate_version="1", run_id="r1"),
        AuditEvent("flight_delay", "refusal", "scheduler", "refused: roc_auc 0.700 → 0.699; worse", version_before="1", version_after="1", candidate_version="2", run_id="r2"),
        AuditEvent("flight_delay", "promotion", "scheduler", "promoted v3: roc_auc 0.700 → 0.720", version_before="1", version_after="3", candidate_version="3", run_id="r3"),
    ):  # fmt: skip
        audit.record(event)


def test_the_form_shows_champions_and_version_records(tmp_path, monkeypatch):
    _seed(tmp_path / "audit.db")
    conn = {"conn_type": "sqlite", "host": str(tmp_path / "audit.db")}
    monkeypatch.setenv("AIRFLOW_CONN_MODELKEEPER_AUDIT", json.dumps(conn))

    form = rollback_form.form(["flight_delay", "us_births"])

    assert form["labels"]["flight_delay"].startswith("flight_delay (champion v3 since 20")
    assert form["labels"]["us_births"] == "us_births (champion none)"
    assert "- **flight_delay**: champion **v3** since 20" in form["model_md"]
    assert "_previous_ is v1" in form["model_md"]
    target = form["target_md"]
    assert "  - v3: promotion " in target
    assert "by scheduler: promoted v3: roc_auc 0.700 → 0.720" in target
    assert target.index("v3: promotion") < target.index("v2: refusal") < target.index("v1: ")
    assert "- **us_births**: no versions yet" in target


def test_an_unreadable_trail_leaves_the_form_usable(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_MODELKEEPER_AUDIT",
        json.dumps({"conn_type": "sqlite", "host": "/nonexistent/dir/audit.db"}),
    )
    form = rollback_form.form(["flight_delay"])
    assert form["labels"] == {}
    assert "could not be read when this form was built" in form["model_md"]
    assert form["target_md"].startswith("_previous_")
