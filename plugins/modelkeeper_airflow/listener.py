"""The scheduler's side of modelkeeper: a run's outcome becomes its note.

Airflow 3.3 gives a task no way to write its DAG run's note (the SDK's `dag_run.note` is a
read-only snapshot; apache/airflow#64890). A listener can: the scheduler calls
`on_dag_run_success` / `on_dag_run_failed` with the DagRun row attached to its session,
which commits afterwards. The stage that knew the outcome pushed it as XCom
`lineage.OUTCOME_XCOM`; the latest one of the run is copied to the note (a retrain's
promotion or refusal, a monitor run's labels: joined, pending, matching no prediction).
A failed run's note says what failed and why: each failed task's `lineage.FAILURE_XCOM`
(pushed by the operator as it raised), or its task id when it left none.

Loaded by the scheduler (and every other component) through plugins/modelkeeper_plugin.py:
nothing heavy at import time, and a listener never raises (Airflow logs and swallows
listener errors, but a broken note is no reason to look like one).
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.listeners import hookimpl

from modelkeeper.contracts import lineage as L

log = logging.getLogger(__name__)

#: DAG runs whose outcome becomes their note: every DAG modelkeeper builds.
PREFIXES = ("retrain_", "score_", "monitor_", "modelkeeper_")
#: Airflow's limit for a DAG run note (DAGRunPatchBody.note).
MAX_NOTE_CHARS = 1000


def note_for(dag_run: Any, outcome: str | None) -> str | None:
    """The note to set on `dag_run`, or None to leave it as it is.

    A note a person wrote (it carries their user id) is kept; so is a run without an
    outcome. A note without a user is ours from an earlier try, and is replaced.
    """
    if not outcome or not str(dag_run.dag_id).startswith(PREFIXES):
        return None
    existing = getattr(dag_run, "dag_run_note", None)
    if existing is not None and getattr(existing, "user_id", None) is not None:
        return None
    text = str(outcome)[:MAX_NOTE_CHARS]
    return None if getattr(dag_run, "note", None) == text else text


def latest_outcome(dag_run: Any) -> str | None:
    """The latest outcome any task of the run pushed, read in the scheduler's session."""
    from airflow.models.xcom import XComModel
    from sqlalchemy import select
    from sqlalchemy.orm import object_session

    session = object_session(dag_run)
    if session is None:
        return None
    row = session.execute(
        select(XComModel.value)
        .where(
            XComModel.dag_id == dag_run.dag_id,
            XComModel.run_id == dag_run.run_id,
            XComModel.key == L.OUTCOME_XCOM,
        )
        .order_by(XComModel.timestamp.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    value = XComModel.deserialize_value(row)
    return None if value is None else str(value)


def failure_text(dag_run: Any) -> str | None:
    """What failed in the run and why: "validate failed: DataError: ...", one part
    per failed task (its FAILURE_XCOM, or its id when it pushed none), and the outcome the
    run had reached before, if any. None when no task failed (a run failed by a timeout)."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from sqlalchemy import select
    from sqlalchemy.orm import object_session

    session = object_session(dag_run)
    if session is None:
        return None
    failed = session.scalars(
        select(TaskInstance.task_id)
        .where(
            TaskInstance.dag_id == dag_run.dag_id,
            TaskInstance.run_id == dag_run.run_id,
            TaskInstance.state == "failed",
        )
        .order_by(TaskInstance.start_date)
    ).all()
    if not failed:
        return None
    why = {}
    for row in session.execute(
        select(XComModel.task_id, XComModel.value)
        .where(
            XComModel.dag_id == dag_run.dag_id,
            XComModel.run_id == dag_run.run_id,
            XComModel.key == L.FAILURE_XCOM,
        )
        .order_by(XComModel.timestamp)
    ):
        why[row.task_id] = XComModel.deserialize_value(row)  # the last try's wins
    parts = [str(why.get(t) or f"{t} failed (no reason recorded: see its log)") for t in failed]
    text = "; ".join(parts)
    outcome = latest_outcome(dag_run)
    return f"{text} (before that: {outcome})" if outcome else text


def set_note(dag_run: Any, *, failed: bool = False) -> None:
    """Copy the run's outcome (or, for a failed run, what failed and why) to its note;
    log, never raise."""
    try:
        if not str(getattr(dag_run, "dag_id", "")).startswith(PREFIXES):
            return
        text = failure_text(dag_run) if failed else None
        note = note_for(dag_run, text or latest_outcome(dag_run))
        if note is not None:
            dag_run.note = note
    except Exception:
        log.warning("could not set the note of %s", getattr(dag_run, "run_id", "?"), exc_info=True)


class RunNoteListener:
    @hookimpl
    def on_dag_run_success(self, dag_run: Any, msg: str) -> None:
        set_note(dag_run)

    @hookimpl
    def on_dag_run_failed(self, dag_run: Any, msg: str) -> None:
        set_note(dag_run, failed=True)
