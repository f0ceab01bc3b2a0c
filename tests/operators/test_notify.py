"""notify(): real SMTP (aiosmtpd) and HTTP receivers on loopback, started here.

Connections come from the environment (`AIRFLOW_CONN_*`, JSON form) as the rest of the
suite sets them; the notifiers are Airflow's own SmtpNotifier and HttpNotifier.
"""

from __future__ import annotations

import base64
import datetime as dt
import email
import email.policy
import json
import logging
import shutil
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from modelkeeper.contracts.spec import Notify, get_spec
from modelkeeper_airflow.notify import notify, on_failure
from tests.helpers import FakeTI, make_context

RUN_ID = "manual__2026-01-05T06:00:00+00:00"
QUOTED_RUN_ID = "manual__2026-01-05T06%3A00%3A00%2B00%3A00"
BASE_URL = "http://airflow.example:8080"
HOOK_PASSWORD = "hook-secret-7f3a9"
SMTP_PASSWORD = "smtp-secret-51c2e"
DETAILS = {"candidate_version": "4", "champion_version": "3", "roc_auc": 0.731}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Inbox:
    """aiosmtpd handler: keeps every message it is given."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: ARG002 (aiosmtpd API)
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        msg["X-Rcpt-To"] = ",".join(envelope.rcpt_tos)
        self.messages.append(msg)
        return "250 OK"


def _html(msg: email.message.EmailMessage) -> str:
    return next(p.get_content() for p in msg.walk() if p.get_content_type() == "text/html")


@pytest.fixture
def smtp_server(monkeypatch):
    """A real SMTP server on loopback, reachable as the `smtp_default` Connection."""
    from aiosmtpd.controller import Controller

    inbox = _Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", _smtp_conn(port))
    yield inbox
    controller.stop()


def _smtp_conn(port: int, **fields) -> str:
    extra = {
        "from_email": "modelkeeper@example.org",
        "disable_tls": True,
        "disable_ssl": True,
        "timeout": 5,
        "retry_limit": 0,
    }
    return json.dumps(
        {"conn_type": "smtp", "host": "127.0.0.1", "port": port, "extra": extra, **fields}
    )


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server API)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        # Strict, as most JSON readers are: NaN or Infinity tokens fail the test.
        strict = json.loads(body, parse_constant=lambda token: pytest.fail(f"JSON has {token}"))
        self.server.requests.append(
            {"path": self.path, "headers": dict(self.headers), "body": strict}
        )
        self.send_response(self.server.status)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):  # keep the test output quiet
        pass


@pytest.fixture
def webhook(monkeypatch):
    """A local HTTP receiver, reachable as the `modelkeeper_hook` Connection (basic auth)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.requests, server.status = [], 200
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hooks/modelkeeper"
    monkeypatch.setenv("AIRFLOW_CONN_MODELKEEPER_HOOK", _hook_conn(url))
    yield server
    server.shutdown()
    server.server_close()


def _hook_conn(url: str) -> str:
    return json.dumps({"conn_type": "http", "host": url, "login": "bot", "password": HOOK_PASSWORD})


@pytest.fixture(autouse=True)
def _base_url(monkeypatch):
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", BASE_URL)


@pytest.fixture
def outbox(storage):
    """The outbox under the test's storage root: a callable listing its entries."""
    from modelkeeper.records import outbox as box

    return lambda **kw: box.read(storage, **kw)


def _spec(**notify):
    return get_spec("flight_delay").model_copy(update={"notify": Notify(**notify)})


def _context(task_id: str = "promote") -> dict:
    return make_context(RUN_ID, task_id, {})


def _promotion(spec, **kw):
    return notify(
        spec,
        "promotion",
        subject="version 4 is the new champion",
        text="promoted: roc_auc 0.712 → 0.731 (+0.019 ≥ +0.005)",
        context=_context(),
        details=DETAILS,
        **kw,
    )


class TestEmail:
    def test_each_address_gets_the_model_event_reason_and_run_link(self, smtp_server):
        spec = _spec(email=["ops@example.org", "owner@example.org"])

        assert _promotion(spec)[:2] == [
            "email to ops@example.org: sent",
            "email to owner@example.org: sent",
        ]

        assert [m["X-Rcpt-To"] for m in smtp_server.messages] == [
            "ops@example.org",
            "owner@example.org",
        ]
        msg = smtp_server.messages[0]
        assert msg["From"] == "modelkeeper@example.org"
        assert msg["Subject"] == (
            "[modelkeeper] flight_delay promotion: version 4 is the new champion"
        )
        body = _html(msg)
        run = f"{BASE_URL}/dags/retrain_flight_delay/runs/{QUOTED_RUN_ID}"
        for expected in (
            "flight_delay",
            "promotion",
            "promoted: roc_auc 0.712 → 0.731 (+0.019 ≥ +0.005)",
            "candidate_version 4, champion_version 3",
            "roc_auc",
            f'<a href="{run}">',
            f'<a href="{run}/tasks/promote">',
        ):
            assert expected in body

    def test_text_that_looks_like_jinja_is_sent_as_it_is(self, smtp_server):
        notify(
            _spec(email=["ops@example.org"]),
            "refusal",
            subject="refused",
            text="guardrail {{ log_loss }} breached {% raw %}",
            context=_context("evaluate"),
        )
        assert "guardrail {{ log_loss }} breached {% raw %}" in _html(smtp_server.messages[0])

    def test_every_text_is_escaped(self, smtp_server):
        xss = "<script>alert('x')</script>"
        notify(
            _spec(email=["ops@example.org"]),
            "refusal",
            subject=xss,
            text=xss,
            context=_context("evaluate"),
            details={"note": xss},
        )
        body = _html(smtp_server.messages[0])
        assert "<script" not in body
        assert body.count("&lt;script&gt;") == 4  # the title, what happened, why, the note

    def test_without_a_base_url_the_run_link_is_relative(self, smtp_server, monkeypatch):
        monkeypatch.delenv("AIRFLOW__API__BASE_URL")
        _promotion(_spec(email=["ops@example.org"]))
        assert f'<a href="/dags/retrain_flight_delay/runs/{QUOTED_RUN_ID}">' in _html(
            smtp_server.messages[0]
        )


class TestWebhook:
    def test_posts_the_message_as_json_with_the_connections_auth(self, webhook):
        assert _promotion(_spec(webhook_conn_id="modelkeeper_hook"))[0] == (
            "webhook modelkeeper_hook: sent"
        )

        (request,) = webhook.requests
        assert request["path"] == "/hooks/modelkeeper"
        assert request["headers"]["Content-Type"] == "application/json"
        expected_auth = base64.b64encode(f"bot:{HOOK_PASSWORD}".encode()).decode()
        assert request["headers"]["Authorization"] == f"Basic {expected_auth}"
        body = request["body"]
        run = f"{BASE_URL}/dags/retrain_flight_delay/runs/{QUOTED_RUN_ID}"
        assert {k: v for k, v in body.items() if k != "text"} == {
            "source": "modelkeeper",
            "model": "flight_delay",
            "owner": "ml-platform@example.com",
            "event": "promotion",
            "subject": "version 4 is the new champion",
            "reason": "promoted: roc_auc 0.712 → 0.731 (+0.019 ≥ +0.005)",
            "dag_id": "retrain_flight_delay",
            "run_id": RUN_ID,
            "task_id": "promote",
            "run_url": run,
            "task_url": f"{run}/tasks/promote",
            "details": DETAILS,
        }
        # `text` is the whole message: what a chat webhook shows.
        assert body["text"].splitlines()[0] == (
            "[modelkeeper] flight_delay promotion: version 4 is the new champion"
        )
        assert f"Run: {run}" in body["text"]

    def test_an_http_error_is_reported(self, webhook):
        webhook.status = 500
        line, _ = _promotion(_spec(webhook_conn_id="modelkeeper_hook"))
        assert line.startswith("webhook modelkeeper_hook: FAILED: ")
        assert "500" in line

    def test_credentials_in_the_url_never_reach_the_report(self, webhook, monkeypatch):
        webhook.status = 500
        host, port = webhook.server_address
        url = f"http://bot:{HOOK_PASSWORD}@{host}:{port}/services/T0/B0/tok3n-abc"
        monkeypatch.setenv(
            "AIRFLOW_CONN_MODELKEEPER_HOOK",
            json.dumps({"conn_type": "http", "host": url, "password": HOOK_PASSWORD}),
        )
        line, _ = _promotion(_spec(webhook_conn_id="modelkeeper_hook"))
        assert line.startswith("webhook modelkeeper_hook: FAILED: HTTPError: 500")
        assert f"http://bot:***@{host}:{port}/***" in line
        assert HOOK_PASSWORD not in line and "tok3n-abc" not in line

    @pytest.mark.parametrize(
        ("details", "line", "sent"),
        [
            pytest.param(
                {"window_end": dt.datetime(2026, 1, 5), "auc": float("nan")},
                "webhook modelkeeper_hook: sent",
                {"window_end": "2026-01-05T00:00:00", "auc": "NaN"},
                id="strict-json",
            ),
            pytest.param(
                {"kinds": ["drift", object()]},
                "notify alarm: FAILED: TypeError: $.kinds[1]: builtins.object",
                None,
                id="not-json-is-not-sent",
            ),
        ],
    )
    def test_details_go_out_as_strict_json_or_not_at_all(self, webhook, details, line, sent):
        result, *_ = notify(
            _spec(webhook_conn_id="modelkeeper_hook"),
            "alarm",
            subject="drift",
            text="7 of 10 columns drifted",
            context=_context("check"),
            details=details,
        )
        assert result.startswith(line), result
        assert [r["body"]["details"] for r in webhook.requests] == ([sent] if sent else [])


class TestTargetDown:
    """A target that is down never fails the caller: it gets a FAILED line."""

    def test_refused_connections_are_reported_not_raised(self, monkeypatch, caplog):
        closed = _free_port()
        monkeypatch.setenv(
            "AIRFLOW_CONN_SMTP_DEFAULT",
            _smtp_conn(closed, login="mailer", password=SMTP_PASSWORD),
        )
        monkeypatch.setenv(
            "AIRFLOW_CONN_MODELKEEPER_HOOK", _hook_conn(f"http://127.0.0.1:{closed}/hook")
        )
        spec = _spec(email=["ops@example.org"], webhook_conn_id="modelkeeper_hook")

        with caplog.at_level(logging.WARNING, logger="modelkeeper_airflow.notify"):
            email_line, hook_line, _ = _promotion(spec)

        assert email_line.startswith("email to ops@example.org: FAILED: ConnectionRefusedError")
        assert hook_line.startswith("webhook modelkeeper_hook: FAILED: ConnectionRefusedError")
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any("ops@example.org: FAILED" in w for w in warnings)
        assert any("modelkeeper_hook: FAILED" in w for w in warnings)
        for secret in (SMTP_PASSWORD, HOOK_PASSWORD):
            assert secret not in email_line + hook_line
            assert secret not in caplog.text

    def test_a_missing_webhook_connection_is_reported(self):
        line, _ = _promotion(_spec(webhook_conn_id="nowhere"))
        assert line.startswith("webhook nowhere: FAILED: ")
        assert "isn't defined" in line or "not found" in line

    def test_one_target_down_does_not_stop_the_others(self, smtp_server, monkeypatch):
        monkeypatch.setenv(
            "AIRFLOW_CONN_MODELKEEPER_HOOK", _hook_conn(f"http://127.0.0.1:{_free_port()}/")
        )
        lines = _promotion(_spec(email=["ops@example.org"], webhook_conn_id="modelkeeper_hook"))
        assert lines[0] == "email to ops@example.org: sent"
        assert "FAILED" in lines[1]
        assert lines[2].startswith("outbox: kept in ")
        assert len(smtp_server.messages) == 1


class TestEvents:
    def test_an_event_not_in_on_sends_nothing(self, smtp_server, webhook):
        spec = _spec(email=["ops@example.org"], webhook_conn_id="modelkeeper_hook", on=["failure"])
        assert _promotion(spec) == []
        assert smtp_server.messages == [] and webhook.requests == []

    def test_no_targets_leaves_it_in_the_outbox(self, outbox):
        (line,) = _promotion(_spec())
        assert line.startswith("outbox: kept in ")
        assert [e.subject for e in outbox()] == ["version 4 is the new champion"]

    def test_a_context_it_cannot_read_is_reported(self, webhook):
        (line,) = notify(
            _spec(webhook_conn_id="modelkeeper_hook"),
            "alarm",
            subject="s",
            text="t",
            context=None,
        )  # nothing sent, nothing kept: there is no message to keep
        assert line.startswith("notify alarm: FAILED: AttributeError")
        assert webhook.requests == []


class TestOutbox:
    """Every message is kept in the local outbox; a channel without its Connection is
    skipped, not FAILED (`make run` has no mail server)."""

    def test_without_a_mail_connection_the_message_waits_in_the_outbox(
        self, storage, outbox, monkeypatch, caplog
    ):
        monkeypatch.delenv("AIRFLOW_CONN_SMTP_DEFAULT", raising=False)
        with caplog.at_level(logging.INFO, logger="modelkeeper_airflow.notify"):
            email_line, outbox_line = _promotion(_spec(email=["ops@example.org"]))

        assert email_line == (
            "email to ops@example.org: not sent: no Connection 'smtp_default' (kept in the outbox)"
        )
        assert outbox_line.startswith("outbox: kept in ")
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert "FAILED" not in caplog.text
        (entry,) = outbox()
        run = f"{BASE_URL}/dags/retrain_flight_delay/runs/{QUOTED_RUN_ID}"
        assert (entry.model, entry.event, entry.subject) == (
            "flight_delay",
            "promotion",
            "version 4 is the new champion",
        )
        assert entry.reason == "promoted: roc_auc 0.712 → 0.731 (+0.019 ≥ +0.005)"
        assert (entry.run_url, entry.task_url) == (run, f"{run}/tasks/promote")
        assert entry.payload["details"] == DETAILS
        assert entry.delivered == [email_line]
        kept = Path(outbox_line.removeprefix("outbox: kept in "))
        assert kept.parent == storage.root / "outbox" / "flight_delay"
        assert kept.name.endswith(".json")

    def test_with_a_connection_the_owner_gets_it_and_the_outbox_a_copy(self, smtp_server, outbox):
        lines = _promotion(_spec(email=["ops@example.org"]))
        assert lines[0] == "email to ops@example.org: sent"
        assert len(smtp_server.messages) == 1
        (entry,) = outbox()
        assert entry.delivered == ["email to ops@example.org: sent"]

    def test_entries_are_listed_newest_first_and_by_model(self, storage, outbox):
        from modelkeeper.records.outbox import post

        t0 = dt.datetime(2026, 1, 5, 6, tzinfo=dt.UTC)
        for minutes, model in [(0, "flight_delay"), (2, "us_births"), (1, "flight_delay")]:
            payload = {"model": model, "event": "alarm", "subject": f"{model} +{minutes}"}
            post(storage, payload, now=t0 + dt.timedelta(minutes=minutes))

        assert [e.subject for e in outbox()] == [
            "us_births +2",
            "flight_delay +1",
            "flight_delay +0",
        ]
        assert [e.subject for e in outbox(models={"flight_delay"}, limit=1)] == ["flight_delay +1"]

    def test_an_outbox_it_cannot_write_is_reported_not_raised(self, tmp_path, monkeypatch):
        blocked = tmp_path / "not-a-folder"
        blocked.write_text("a file where the storage root should be")
        monkeypatch.setenv("MODELKEEPER_STORAGE", str(blocked))
        (line,) = _promotion(_spec())
        assert line.startswith("outbox: FAILED: ")


class _RunTI(FakeTI):
    """The last failed task instance of a run, with the task-state API the DAG processor has."""

    def __init__(self, states: dict[str, str]) -> None:
        super().__init__({}, "train")
        self.states = states

    def get_task_states(self, dag_id: str, run_ids: list[str], **_) -> dict:
        assert dag_id == "retrain_flight_delay"
        return {run_ids[0]: self.states}


@pytest.fixture
def spec_dir(tmp_path, monkeypatch):
    """flight_delay's spec with a notify section, as the callback loads it by name."""
    from modelkeeper.contracts.settings import DEFAULT_SPEC_DIR

    shutil.copy(DEFAULT_SPEC_DIR / "flight_delay.yaml", tmp_path / "flight_delay.yaml")
    raw = yaml.safe_load((tmp_path / "flight_delay.yaml").read_text())
    raw["notify"] = {"webhook_conn_id": "modelkeeper_hook", "on": ["failure"]}
    (tmp_path / "flight_delay.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("MODELKEEPER_SPEC_DIR", str(tmp_path))
    return tmp_path


class TestOnFailure:
    def test_dag_callback_names_the_failed_tasks(self, webhook, spec_dir):  # noqa: ARG002
        context = {
            "dag": SimpleNamespace(dag_id="retrain_flight_delay"),
            "run_id": RUN_ID,
            "reason": "task_failure",
            "ti": _RunTI({"collect": "success", "train": "failed", "evaluate": "upstream_failed"}),
        }
        assert on_failure("flight_delay")(context) is None

        body = webhook.requests[0]["body"]
        run = f"{BASE_URL}/dags/retrain_flight_delay/runs/{QUOTED_RUN_ID}"
        assert body["event"] == "failure"
        assert body["subject"] == "run failed at train"
        assert body["reason"] == "task_failure"
        assert body["details"] == {
            "failed_tasks": ["train"],
            "failed_task_urls": [f"{run}/tasks/train"],
        }
        assert body["run_url"] == run

    def test_task_callback_names_the_exception(self, webhook, spec_dir):  # noqa: ARG002
        context = {**_context("train"), "exception": ValueError("no rows in the window")}
        on_failure("flight_delay")(context)

        body = webhook.requests[0]["body"]
        assert body["subject"] == "run failed at train"
        assert body["reason"] == "the run failed: ValueError: no rows in the window"
        assert body["details"]["exception"] == "ValueError: no rows in the window"

    def test_never_raises(self, caplog):
        with caplog.at_level(logging.WARNING, logger="modelkeeper_airflow.notify"):
            on_failure("no_such_model")({"run_id": RUN_ID})
        assert "no_such_model" in caplog.text
