"""The scheduler's side of modelkeeper: a retrain run's outcome becomes its note.

Airflow 3.3 gives a task no way to write its DAG run's note (the SDK's `dag_run.note` is a
read-only snapshot; apache/airflow#64890). A listener can: the scheduler calls
`on_dag_run_success` / `on_dag_run_failed` with the DagRun row attached to its session,
which commits afterwards. The stage that knew the outcome pushed it as XCom
`lineage.OUTCOME_XCOM`; the latest one of the run is copied to the note.

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

#: DAG runs whose outcome becomes their note.
PREFIX = "retrain_"
#: Airflow's limit for a DAG run note (DAGRunPatchBody.note).
MAX_NOTE_CHARS = 1000


def note_for(dag_run: Any, outcome: str | None) -> str | None:
    """The note to set on `dag_run`, or None to leave it as it is.

    A note a person wrote (it carries their user id) is kept; so is a run without an
    outcome. A note without a user is ours from an earlier try, and is replaced.
    """
    if not outcome or not str(dag_run.dag_id).startswith(PREFIX):
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


def set_note(dag_run: Any) -> None:
    """Copy the run's outcome to its note; log, never raise."""
    try:
        if not str(getattr(dag_run, "dag_id", "")).startswith(PREFIX):
            return
        note = note_for(dag_run, latest_outcome(dag_run))
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
        set_note(dag_run)
