"""Tell people what happened to a model, through Airflow's own notifiers.

`notify(spec, event, ...)` sends one message to every target in the spec's `notify`
section, for the events listed in `notify.on`:

- the local outbox (modelkeeper.records.outbox: a JSON file under the storage root,
  listed on the plugin's Outbox page) keeps every message, with what the other targets
  did; under `make run`, where no mail server is configured, that is where they go;
- each address in `notify.email` gets an e-mail through `SmtpNotifier`
  (apache-airflow-providers-smtp) over the `[email] email_conn_id` Connection,
  `smtp_default` unless configured, when that Connection is defined (else its line says
  "not sent", not FAILED); the sender is `[email] from_email` or the Connection's
  `from_email` extra;
- `notify.webhook_conn_id` gets a JSON POST through `HttpNotifier`
  (apache-airflow-providers-http). The Connection's host holds the whole URL
  (`https://hooks.example.com/services/T0/B0`); login/password become basic auth and
  any other extra becomes a header, as with every HttpHook. The body's `text` is the
  whole message, so Slack/Mattermost-style incoming webhooks show it as it is.

A notification is never worth failing a run for: every error (no Connection, a refused
connection, a timeout, an HTTP 500) is caught, logged as a warning and returned as a
`"<target>: FAILED: ..."` line for the caller to log and hand on. The Connections'
passwords, and a webhook URL's path (often its token), are scrubbed from those lines.

`on_failure(model)` gives a DAG `on_failure_callback` sending the `failure` event.
Airflow and the providers are imported inside the functions: this module is imported
by DAG files at parse time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from modelkeeper.contracts.jsonio import dumps, jsonable

if TYPE_CHECKING:
    from modelkeeper.contracts.spec import ModelSpec

log = logging.getLogger(__name__)

#: Seconds a webhook may take when its Connection sets no `timeout` extra (HttpHook's
#: default is to wait forever, which would hang the calling task).
WEBHOOK_TIMEOUT_SECONDS = 30
_MAX_ERROR_CHARS = 400


@dataclass(frozen=True)
class Message:
    """One notification, rendered for e-mail (HTML) and for a webhook (JSON)."""

    model: str
    owner: str
    event: str
    subject: str
    reason: str
    dag_id: str
    run_id: str | None
    task_id: str | None
    run_url: str | None
    task_url: str | None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return f"[modelkeeper] {self.model} {self.event}: {self.subject}"

    @property
    def versions(self) -> dict[str, Any]:
        """Details named `*version` (e.g. `candidate_version`, `champion_version`)."""
        return {k: v for k, v in self.details.items() if k.endswith("version")}

    def lines(self) -> list[tuple[str, str]]:
        rows = [
            ("Model", f"{self.model} (owner: {self.owner})"),
            ("Event", self.event),
            ("What happened", self.subject),
            ("Why", self.reason),
        ]
        if self.versions:
            rows.append(("Versions", ", ".join(f"{k} {v}" for k, v in self.versions.items())))
        others = {k: v for k, v in self.details.items() if k not in self.versions}
        for key, value in others.items():
            shown = value if isinstance(value, str) else dumps(value, sort_keys=True)
            rows.append((key, shown))
        rows.append(("DAG run", f"{self.dag_id} / {self.run_id or '?'}"))
        if self.run_url:
            rows.append(("Run", self.run_url))
        if self.task_url:
            rows.append((f"Task {self.task_id}", self.task_url))
        return rows

    def text(self) -> str:
        return "\n".join([self.title, "", *(f"{k}: {v}" for k, v in self.lines())])

    def html(self) -> str:
        from modelkeeper_airflow.templates import render

        urls = {k for k, v in self.details.items() if k.endswith("_url") and isinstance(v, str)}
        links = {"Run", f"Task {self.task_id}", *urls}
        return render("notification.html.j2", message=self, links=links)

    def payload(self) -> dict[str, Any]:
        return {
            "source": "modelkeeper",
            "model": self.model,
            "owner": self.owner,
            "event": self.event,
            "subject": self.subject,
            "reason": self.reason,
            "text": self.text(),
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "task_id": self.task_id,
            "run_url": self.run_url,
            "task_url": self.task_url,
            "details": self.details,
        }


def notify(
    spec: ModelSpec,
    event: str,
    *,
    subject: str,
    text: str,
    context: Mapping[str, Any],
    details: dict | None = None,
) -> list[str]:
    """Send `event` about `spec`'s model to its notify targets; never raises.

    `subject` says what happened in a line, `text` why; `details` (versions as
    `*_version` keys, metrics, ...) must be JSON-able (modelkeeper.contracts.jsonio), or
    the message is not sent and the line says why. Returns one line per target,
    `"email to a@b.c: sent"` or `"webhook hook: FAILED: <error>"`, then the outbox's
    (`"outbox: kept in <path>"`); `[]` when the event is not in `notify.on`.
    """
    try:
        targets = spec.notify
        if event not in targets.on:
            log.info(
                "notify %s: event %r is not in notify.on %s: not sent", spec.name, event, targets.on
            )
            return []
        message = Message(
            model=spec.name,
            owner=spec.owner,
            event=event,
            subject=subject,
            reason=text,
            details=jsonable(details or {}),
            **_whereabouts(spec, context),
        )
    except Exception as exc:  # a notification must never fail the task
        line = f"notify {event}: FAILED: {_describe(exc, ())}"
        log.warning("%s", line)
        return [line]

    # The notifiers get the context without the DAG: the message is already rendered
    # (never Jinja-render it: a reason may contain "{{"), and the sandboxed default
    # environment is all SmtpNotifier needs to fill in the Connection's sender.
    notifier_context = {k: v for k, v in context.items() if k != "dag"}
    results = []
    if targets.email:
        smtp_conn_id = _smtp_conn_id()
        if _connection_exists(smtp_conn_id):
            results += [
                _deliver(
                    f"email to {address}", lambda a=address: _email(a, message, notifier_context)
                )
                for address in targets.email
            ]
        else:  # no mail server configured (make run): the outbox has it, nothing failed
            results += [
                _skipped(f"email to {address}", f"no Connection {smtp_conn_id!r}")
                for address in targets.email
            ]
    if targets.webhook_conn_id:
        conn_id = targets.webhook_conn_id
        results.append(
            _deliver(f"webhook {conn_id}", lambda: _webhook(conn_id, message, notifier_context))
        )
    results.append(_keep(message, results))
    return results


def _smtp_conn_id() -> str:
    """The Connection SmtpNotifier uses: `[email] email_conn_id`, else `smtp_default`."""
    from airflow.sdk import conf

    return conf.get("email", "email_conn_id", fallback=None) or "smtp_default"


def _connection_exists(conn_id: str) -> bool:
    """False only when no Connection `conn_id` is defined; other lookup errors count as
    existing, so the notifier reports them as FAILED."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return False
    except Exception:  # noqa: BLE001 - the notifier tries again and reports it
        return True
    return True


def _skipped(label: str, why: str) -> str:
    line = f"{label}: not sent: {why} (kept in the outbox)"
    log.info("notify %s", line)
    return line


def _keep(message: Message, delivered: list[str]) -> str:
    """The local outbox (modelkeeper.records.outbox) keeps every message, whatever the
    channels did: under `make run` it is where notifications go."""
    try:
        from modelkeeper.data.storage import Storage
        from modelkeeper.records import outbox

        where = outbox.post(Storage(), message.payload(), delivered=delivered)
    except Exception as exc:  # a notification must never fail the task
        line = f"outbox: FAILED: {_describe(exc, ())}"
        log.warning("notify %s", line)
        return line
    log.info("notify outbox: kept in %s", where)
    return f"outbox: kept in {where}"


def _whereabouts(spec: ModelSpec, context: Mapping[str, Any]) -> dict[str, str | None]:
    """The DAG, run and task the message is about, and their pages in the UI."""
    dag_run = context.get("dag_run")
    dag = context.get("dag")
    ti = context.get("ti")
    dag_id = getattr(dag, "dag_id", None) or getattr(dag_run, "dag_id", None) or spec.dag_id
    run_id = context.get("run_id") or getattr(dag_run, "run_id", None)
    task_id = getattr(ti, "task_id", None)
    map_index = getattr(ti, "map_index", -1)
    return {
        "dag_id": dag_id,
        "run_id": run_id,
        "task_id": task_id,
        "run_url": run_url(dag_id, run_id) if run_id else None,
        "task_url": task_url(dag_id, run_id, task_id, map_index) if run_id and task_id else None,
    }


def run_url(dag_id: str, run_id: str) -> str:
    """The run's page in the Airflow UI: `[api] base_url` + /dags/<dag>/runs/<run>.

    Relative (`/dags/...`) when `base_url` is not set: Airflow cannot guess its own
    public address.
    """
    from airflow.sdk import conf

    base = (conf.get("api", "base_url", fallback="") or "").rstrip("/")
    return f"{base}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"


def task_url(dag_id: str, run_id: str, task_id: str, map_index: int | None = -1) -> str:
    """A task instance's page (its log) in the run, as `ti.log_url` builds it."""
    mapped = f"/mapped/{map_index}" if map_index is not None and map_index >= 0 else ""
    return f"{run_url(dag_id, run_id)}/tasks/{quote(task_id, safe='')}{mapped}"


def approval_url(dag_id: str, run_id: str, task_id: str, map_index: int | None = -1) -> str:
    """Where a person answers an approval task: its page's Required Actions tab (what
    HITLOperator.generate_link_to_ui builds, with the run id quoted and base_url's path
    kept)."""
    return f"{task_url(dag_id, run_id, task_id, map_index)}/required_actions"


def _email(address: str, message: Message, context: Mapping[str, Any]) -> None:
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier
    from airflow.sdk import conf

    notifier = SmtpNotifier(
        to=address,
        from_email=conf.get("email", "from_email", fallback=None) or None,
        subject=message.title,
        html_content=message.html(),
    )
    secrets = _connection_secrets(notifier.smtp_conn_id)
    try:
        notifier.notify(context)
    except Exception as exc:
        raise _Failed(exc, secrets) from exc


def _webhook(conn_id: str, message: Message, context: Mapping[str, Any]) -> None:
    from airflow.providers.http.notifications.http import HttpNotifier
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    secrets = _secrets_of(conn)
    try:
        timeout = float(conn.extra_dejson.get("timeout") or WEBHOOK_TIMEOUT_SECONDS)
        notifier = HttpNotifier(
            http_conn_id=conn_id,
            method="POST",
            json=message.payload(),
            extra_options={"timeout": timeout},
        )
        notifier.notify(context)
    except Exception as exc:
        raise _Failed(exc, secrets) from exc


class _Failed(Exception):
    """A target's error, with the secrets its message must not show."""

    def __init__(self, error: Exception, secrets: tuple[str, ...]) -> None:
        super().__init__(str(error))
        self.error = error
        self.secrets = secrets


def _deliver(label: str, send: Callable[[], Any]) -> str:
    try:
        send()
    except _Failed as failed:
        line = f"{label}: FAILED: {_describe(failed.error, failed.secrets)}"
    except Exception as exc:  # e.g. the Connection cannot be looked up at all
        line = f"{label}: FAILED: {_describe(exc, ())}"
    else:
        log.info("notify %s: sent", label)
        return f"{label}: sent"
    log.warning("notify %s", line)
    return line


def _connection_secrets(conn_id: str | None) -> tuple[str, ...]:
    if not conn_id:
        return ()
    from airflow.sdk import BaseHook

    try:
        return _secrets_of(BaseHook.get_connection(conn_id))
    except Exception:  # the notifier reports the missing Connection itself
        return ()


def _secrets_of(conn: Any) -> tuple[str, ...]:
    """What a FAILED line must not show: the password, and a URL host's credentials and
    path (a chat webhook's URL path is its token, and errors quote the URL)."""
    secrets = [getattr(conn, "password", None)]
    host = getattr(conn, "host", None) or ""
    if "://" in host:
        url = urlsplit(host)
        secrets.append(url.password)
        path = url.path + (f"?{url.query}" if url.query else "")
        if path not in ("", "/"):
            secrets.append(path)
    return tuple(sorted({s for s in secrets if s}, key=len, reverse=True))


def _describe(exc: BaseException, secrets: Iterable[str]) -> str:
    """`<root cause type>: <message> (via <outer type>)`, secrets masked, kept short.

    The root cause is what a person acts on (ConnectionRefusedError, the missing
    Connection), not the library's wrapper around it.
    """
    root = exc
    seen = {id(exc)}
    while (nxt := root.__cause__ or root.__context__) is not None and id(nxt) not in seen:
        seen.add(id(nxt))
        root = nxt
    described = f"{type(root).__name__}: {root}"
    if root is not exc:
        described += f" (via {type(exc).__name__})"
    return _scrub(described, secrets)[:_MAX_ERROR_CHARS]


def _scrub(value: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        value = value.replace(secret, "/***" if secret.startswith("/") else "***")
    try:  # Airflow's masker also knows every other secret this process has fetched
        from airflow.sdk._shared.secrets_masker import redact
    except ImportError:  # moved in another Airflow version: the explicit list above stays
        return value
    return str(redact(value))


def on_failure(spec_name: str) -> Callable[[Any], None]:
    """on_failure_callback: send the `failure` event naming the failed task(s).

    A DAG-level callback (run by the DAG processor) gets the run and its last failed
    task instance, not the exception: the message names every failed task and links
    to its log. Used as a task-level callback, the context's `exception` is named too.
    """

    def callback(context: Any) -> None:
        try:
            from modelkeeper.contracts.spec import get_spec

            spec = get_spec(spec_name)
            failed = _failed_tasks(context)
            dag_id = getattr(context.get("dag"), "dag_id", None) or spec.dag_id
            run_id = context.get("run_id") or getattr(context.get("dag_run"), "run_id", None)
            why = str(context.get("reason") or "the run failed")
            details: dict[str, Any] = {"failed_tasks": failed}
            if run_id:
                details["failed_task_urls"] = [task_url(dag_id, run_id, t) for t in failed]
            exception = context.get("exception")
            if exception is not None:
                details["exception"] = _scrub(f"{type(exception).__name__}: {exception}", ())
                why = f"{why}: {details['exception']}"
            subject = f"run failed at {', '.join(failed)}" if failed else "run failed"
            results = notify(
                spec, "failure", subject=subject, text=why, context=context, details=details
            )
        except Exception as exc:  # a callback that raises only adds noise to a failed run
            log.warning("notify %s failure: FAILED: %s", spec_name, _describe(exc, ()))
            return
        for line in results:
            log.info("notify %s failure: %s", spec_name, line)

    return callback


def _failed_tasks(context: Any) -> list[str]:
    """Task ids that failed in the run (the task-state API), else the context's task."""
    ti = context.get("ti")
    dag = context.get("dag")
    run_id = context.get("run_id") or getattr(context.get("dag_run"), "run_id", None)
    dag_id = getattr(dag, "dag_id", None) or getattr(ti, "dag_id", None)
    try:
        states = ti.get_task_states(dag_id=dag_id, run_ids=[run_id])[run_id]
        failed = sorted(t for t, state in states.items() if state == "failed")
        if failed:
            return failed
    except Exception as exc:  # outside a worker or the DAG processor: no task-state API
        log.debug("task states of %s/%s unavailable: %s", dag_id, run_id, exc)
    task_id = getattr(ti, "task_id", None)
    return [task_id] if task_id else []
