"""Shared plumbing for the stage operators: spec, storage, registry, audit, hand-offs.

Operators stay thin: their inputs are constructor arguments (the upstream stage's
`.output`, wired by the factory), they call the core, log the numbers behind what they
decided and return one typed result (modelkeeper.contracts.results) that becomes their XCom. Clients
are built once per task. Retry or fail is decided in one place (errors.fail_or_retry).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from modelkeeper_airflow.clients import AUDIT_CONN_ID, MLFLOW_CONN_ID
from modelkeeper_airflow.errors import fail_or_retry
from modelkeeper_airflow.links import MlflowRunLink

if TYPE_CHECKING:
    from modelkeeper.contracts.handoff import Handoff
    from modelkeeper.contracts.spec import ModelSpec
    from modelkeeper.data.storage import Storage
    from modelkeeper.monitoring.history import History
    from modelkeeper.records.audit import AuditLog
    from modelkeeper.records.registry import Registry
    from modelkeeper.stages.workspace import Run, Workspace


class ModelkeeperOperator(BaseOperator):
    """Base for every modelkeeper task; `model` names a spec in include/models/.

    Subclasses implement `stage(context)` and return a Handoff; `execute` runs it under the
    retry-or-fail mapping and hands `to_dict()` to XCom.
    """

    template_fields: Sequence[str] = ("model",)
    ui_color = "#e8f4ea"
    # Every stage that has the DAG run's MLflow run links to it (link_mlflow_run); the run is
    # created by monitor, so collect and validate have none yet (the link stays hidden).
    operator_extra_links = (MlflowRunLink(),)

    def __init__(
        self,
        *,
        model: str,
        stream: str | None = None,
        mlflow_conn_id: str = MLFLOW_CONN_ID,
        audit_conn_id: str = AUDIT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model = model
        self.stream = stream  # None: training data; "scoring" or "labels": the model's others
        self.mlflow_conn_id = mlflow_conn_id
        self.audit_conn_id = audit_conn_id

    def execute(self, context: Any) -> dict:
        from airflow.sdk.exceptions import AirflowSkipException

        started = time.time()
        try:
            with fail_or_retry():
                return self.stage(context).to_dict()
        except AirflowSkipException:
            raise
        except Exception as exc:
            self.push_failure(context, exc)
            raise
        finally:
            self.log_cost(started)

    def log_cost(self, started: float) -> None:
        """What this task cost before its work (fork, DAG parse, the API server's start
        call) and the work itself: `make bench` (bench/startup.py) reads this line."""
        age = _process_age()
        if age is None:
            return
        now = time.time()
        self.log.info(
            "modelkeeper: task process up %.2f s before the work, work %.2f s",
            age - (now - started),
            now - started,
        )

    def push_failure(self, context: Any, exc: BaseException) -> None:
        """What failed and why, for the run's note (the listener reads it if the run fails):
        "validate failed: DataError: ...". A retry that succeeds leaves it unread."""
        from airflow.sdk.exceptions import AirflowFailException

        from modelkeeper.contracts import lineage as L

        # fail_or_retry's AirflowFailException already names the core's error class
        text = str(exc) if isinstance(exc, AirflowFailException) else ""
        text = text or f"{type(exc).__name__}: {exc}".rstrip(": ")
        try:
            context["ti"].xcom_push(key=L.FAILURE_XCOM, value=f"{self.task_id} failed: {text}")
        except Exception:  # noqa: BLE001 - the failure itself must surface, not this
            self.log.warning("could not record why %s failed", self.task_id, exc_info=True)

    def stage(self, context: Any) -> Handoff:
        raise NotImplementedError

    # Built lazily inside execute(), once per task: nothing heavy at parse time.
    @cached_property
    def spec(self) -> ModelSpec:
        from modelkeeper.contracts.spec import get_spec

        return get_spec(self.model)

    @cached_property
    def ingest_spec(self) -> ModelSpec:
        """The spec as ingestion sees this task's stream (modelkeeper.data.streams.stream_spec)."""
        from modelkeeper.data.streams import stream_spec

        return self.spec if self.stream is None else stream_spec(self.spec, self.stream)

    @cached_property
    def storage(self) -> Storage:
        from modelkeeper.data.storage import Storage

        return Storage()

    @cached_property
    def registry(self) -> Registry:
        from modelkeeper_airflow import clients

        return clients.registry(self.mlflow_conn_id)

    @cached_property
    def _engine(self) -> Any:
        """The `modelkeeper_audit` SQL Connection's database: audit trail and history."""
        from modelkeeper_airflow import clients

        return clients.audit_engine(self.audit_conn_id)

    @cached_property
    def audit(self) -> AuditLog:
        from modelkeeper.records.audit import AuditLog

        return AuditLog(self._engine)

    @cached_property
    def history(self) -> History:
        """The monitoring series, in the same database as the audit trail."""
        from modelkeeper.monitoring.history import History

        return History(self._engine)

    def workspace(
        self, *, history: bool = False, audit: bool = False, registry: bool = True
    ) -> Workspace:
        """What the core's stage functions work with (modelkeeper.stages); the history and
        the audit trail only for the stages that write them (they open the database), the
        registry for all but ingestion (no MLflow Connection needed to take data in)."""
        from modelkeeper.stages.workspace import Workspace

        return Workspace(
            spec=self.spec,
            storage=self.storage,
            registry=self.registry if registry else None,
            history=self.history if history else None,
            audit=self.audit if audit else None,
        )

    def run(self, context: Any, mlflow_run_id: str | None = None) -> Run:
        """Which run the stage serves: this DAG run, its MLflow run, who started it."""
        from modelkeeper.stages.workspace import Run

        return Run(
            run_id=context["run_id"],
            dag_id=context["dag"].dag_id,
            mlflow_run_id=mlflow_run_id,
            who=self.who(context),
        )

    @staticmethod
    def publish(context: Any, result: Handoff) -> None:
        """Hand `result` on now, for stages that end by raising (a skip, a failed gate):
        Airflow only stores a return value when execute() returns."""
        context["ti"].xcom_push(key="return_value", value=result.to_dict())

    def alarm_reason(self, context: Any) -> str | None:
        """The reason of the alarm whose Asset event started this run, if one did."""
        from modelkeeper.contracts.lineage import alarm_asset

        events = context.get("triggering_asset_events") or {}
        wanted = alarm_asset(self.spec.name)
        reasons = [
            (e.extra or {}).get("reason")
            for asset in events
            if getattr(asset, "name", None) == wanted
            for e in events[asset]
        ]
        return "; ".join(r for r in reasons if r) or None

    @staticmethod
    def who(context: Any) -> str:
        """The Airflow user behind a manual run, "scheduler" for scheduled/asset runs."""
        dag_run = context["dag_run"]
        user = getattr(dag_run, "triggering_user_name", None)
        return user or "scheduler"

    def mlflow_run(self, context: Any) -> str:
        """This DAG run's MLflow run: created by the first stage that needs it, then resumed."""
        from modelkeeper.contracts import lineage as L
        from modelkeeper.stages.workspace import open_run
        from modelkeeper_airflow.notify import run_url

        dag_id, run_id = context["dag"].dag_id, context["run_id"]
        tags = {L.DAG_TAG: dag_id, L.RUN_URL: run_url(dag_id, run_id)}
        run = open_run(self.workspace(), self.run(context), tags, self.mlflow_run_name(context))
        self.link_mlflow_run(context, run.mlflow_run_id)
        return run.mlflow_run_id

    def mlflow_run_name(self, context: Any) -> str:
        """`<model> <run type> <UTC wall time the DAG run started>`: readable, and distinct
        where the Airflow run id is not (manual runs carry no logical date)."""
        from datetime import UTC, datetime

        dag_run = context["dag_run"]
        run_type = getattr(dag_run, "run_type", None) or "run"
        run_type = getattr(run_type, "value", run_type)
        started = getattr(dag_run, "start_date", None) or datetime.now(UTC)
        if started.tzinfo is not None:
            started = started.astimezone(UTC)
        return f"{self.spec.name} {run_type} {started:%Y-%m-%d %H:%M:%S} UTC"

    def link_mlflow_run(self, context: Any, mlflow_run: str | None) -> None:
        """The "MLflow run" extra link of this task (links.MlflowRunLink)."""
        from modelkeeper.contracts import lineage as L

        self.push_link(
            context, L.LINK_MLFLOW_RUN, lambda: self.registry.run_url(self.spec.name, mlflow_run)
        )

    def push_link(self, context: Any, key: str, url: Callable[[], str]) -> None:
        """Push an extra link's URL (links.push). A link is a convenience: one that cannot
        be built (MLflow unreachable for a moment) is logged and left out, never retried
        or failed for."""
        from modelkeeper_airflow import links

        try:
            links.push(context, key, url())
        except Exception as exc:  # noqa: BLE001 - see above
            self.log.warning("no %s link: %s", key, exc)


def _process_age() -> float | None:
    """Seconds since this process started, to 10 ms (psutil's create_time rests on the boot
    time in whole seconds: up to a second off). Linux only; None elsewhere."""
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])  # field 22, starttime
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
