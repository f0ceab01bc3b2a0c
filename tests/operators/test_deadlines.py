"""Deadlines reach the owner (issue 23 item 12), through notify and a real SMTP server.

- A `score_<model>` run not finished by `scoring.deadline_minutes` after it was queued:
  the DAG carries an Airflow deadline alert whose callback, run by Airflow's own callback
  runner (what the executor runs when the scheduler finds the deadline missed), e-mails
  the owner with an absolute link to the run.
- Labels overdue (`labels.expected_delay_days` after scoring; measured by the core in
  tests/core/test_estimates.py): monitor's measure task e-mails the owner.
- An approval request e-mails the owner a direct link to the approval task's page.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from types import SimpleNamespace

import pytest

from modelkeeper.contracts.spec import get_spec
from tests.helpers import DEFAULT_PARAMS, make_context, retrain_tasks
from tests.operators.test_governance import _evaluated
from tests.operators.test_notify import BASE_URL, _html, smtp_server  # noqa: F401 (fixture)

MODEL = "flight_delay"
RUN_ID = "scheduled__2026-01-05T06:00:00+00:00"
QUOTED = "scheduled__2026-01-05T06%3A00%3A00%2B00%3A00"


@pytest.fixture(autouse=True)
def _base_url(monkeypatch):
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", BASE_URL)


class TestScoringDeadline:
    def test_the_score_dag_carries_a_deadline_alert_from_the_spec(self):
        from airflow.sdk import DeadlineReference, SyncCallback

        from modelkeeper_airflow.factory import build_score_dag

        spec = get_spec(MODEL)
        (alert,) = build_score_dag(spec).deadline
        assert isinstance(alert.reference, type(DeadlineReference.DAGRUN_QUEUED_AT))
        assert alert.interval == timedelta(minutes=spec.scoring.deadline_minutes)
        assert isinstance(alert.callback, SyncCallback)
        assert alert.callback.path == "modelkeeper_airflow.callbacks.scoring_deadline_missed"
        assert alert.callback.kwargs == {"model": MODEL}

    def test_a_missed_deadline_e_mails_the_owner_with_the_run_s_link(self, smtp_server):  # noqa: F811
        """Airflow's callback runner imports the callback by its path and calls it with the
        context the scheduler builds for a missed deadline."""
        from airflow.sdk.execution_time.callback_supervisor import execute_callback

        from modelkeeper_airflow.factory import build_score_dag

        alert = build_score_dag(get_spec(MODEL)).deadline[0]
        context = {
            "dag_run": {
                "dag_id": "score_flight_delay",
                "dag_run_id": RUN_ID,
                "queued_at": "2026-01-05T06:00:01+00:00",
                "state": "running",
            },
            "deadline": {"id": str(uuid.uuid4()), "deadline_time": "2026-01-05T08:00:01+00:00"},
        }
        ok, error = execute_callback(
            alert.callback.path,
            {**alert.callback.kwargs, "context": context},
            None,
            None,
            logging.getLogger("test"),
        )
        assert (ok, error) == (True, None)
        (msg,) = smtp_server.messages
        assert msg["Subject"] == (
            "[modelkeeper] flight_delay alarm: flight_delay: scoring run late (deadline missed)"
        )
        html = _html(msg)
        assert f'href="{BASE_URL}/dags/score_flight_delay/runs/{QUOTED}"' in html
        assert "had not finished by its deadline 2026-01-05T08:00:01+00:00" in html


class TestLabelsDeadline:
    def test_overdue_labels_e_mail_the_owner(self, smtp_server):  # noqa: F811
        from modelkeeper.contracts.results import Measured
        from modelkeeper_airflow.operators.score import labels_overdue

        measured = Measured(0, 703, [], overdue=703, overdue_since="2026-01-05T06:00:00+00:00")
        context = make_context(RUN_ID, "measure", {}, dag_id="monitor_flight_delay")
        lines = labels_overdue(get_spec(MODEL), measured, context)
        [line] = [x for x in lines if x.startswith("email")]
        assert line.endswith(": sent"), lines
        assert any(x.startswith("outbox: kept") for x in lines), lines  # and kept (item 11)
        (msg,) = smtp_server.messages
        assert (
            msg["Subject"] == "[modelkeeper] flight_delay alarm: flight_delay: 703 labels overdue"
        )
        html = _html(msg)
        assert "703 predictions still have no label 7 days after they were scored" in html
        assert f'href="{BASE_URL}/dags/monitor_flight_delay/runs/{QUOTED}/tasks/measure"' in html


class TestApprovalRequest:
    def test_the_request_links_to_the_approval_task(self, smtp_server, monkeypatch):  # noqa: F811
        """The HITL request itself is written through the execution API (not running here):
        that one call is recorded instead; the operator then waits for the answer."""
        from airflow.providers.standard.operators import hitl
        from airflow.sdk.exceptions import TaskAwaitingInput

        written = []
        monkeypatch.setattr(hitl, "upsert_hitl_detail", lambda **kw: written.append(kw))
        op = retrain_tasks(MODEL)["approve"]
        xcoms = {("evaluate", "return_value"): _evaluated("mlflow-run", "2", "1", True)}
        ctx = make_context(
            RUN_ID, "approve", xcoms, params={**DEFAULT_PARAMS, "promotion_mode": "approval"}
        )
        ctx.update(task=op, task_instance=SimpleNamespace(id=uuid.uuid4()))
        op.render_template_fields(ctx)
        with pytest.raises(TaskAwaitingInput):
            op.execute(ctx)
        assert written and written[0]["subject"] == "Promote flight_delay v2 over v1?"
        (msg,) = smtp_server.messages
        assert msg["Subject"] == (
            "[modelkeeper] flight_delay approval: Promote flight_delay v2 over v1?"
        )
        url = f"{BASE_URL}/dags/retrain_flight_delay/runs/{QUOTED}/tasks/approve/required_actions"
        html = _html(msg)
        assert f'<a href="{url}">' in html
        assert f"Approve or reject: {url}" in html
