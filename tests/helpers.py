"""Test helpers: a minimal task context for running operators like a worker would.

`run_operator` renders the operator's template fields first (resolving `.output`
references from the fake XCom store, as Airflow resolves them from its own), then calls
execute(). `retrain_tasks` gives copies of the real factory DAG's tasks, so operator tests
exercise the wiring the DAG files use.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from sklearn.base import BaseEstimator, ClassifierMixin


def strict_json(value: Any, what: str) -> Any:
    """`value`, if it is strict JSON already (no NaN, no objects): what crosses a task
    boundary must be, so a test fails where an operator hands on anything else."""
    import json

    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise AssertionError(f"{what} is not strict JSON: {exc}: {value!r:.500}") from exc
    return value


class FakeTI:
    """Stands in for the TaskInstance: an in-memory XCom shared by one fake DAG run."""

    map_index = -1

    def __init__(self, xcoms: dict, task_id: str) -> None:
        self.xcoms = xcoms
        self.task_id = task_id

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[(self.task_id, key)] = strict_json(value, f"XCom {self.task_id}/{key}")

    def xcom_pull(self, task_ids: str, key: str = "return_value", default: Any = None, **_: Any):
        return self.xcoms.get((task_ids, key), default)

    def get_dagrun_state(self, dag_id: str, run_id: str) -> str:
        """Other DAG runs' states, as a test sets them: xcoms[("dag_run_state", run_id)]."""
        return self.xcoms.get(("dag_run_state", run_id), "running")


class OutletEvents(dict):
    """Stands in for context["outlet_events"]: extras set by a task, by Asset name."""

    def __getitem__(self, asset: Any) -> Any:
        return self.setdefault(getattr(asset, "name", asset), SimpleNamespace(extra={}))


def make_context(
    run_id: str,
    task_id: str,
    xcoms: dict,
    *,
    user: str | None = None,
    dag_id: str = "retrain_flight_delay",
    run_type: str = "manual",
    params: dict | None = None,
    conf: dict | None = None,
    run_after: Any = None,
) -> dict:
    return {
        "run_id": run_id,
        "ti": FakeTI(xcoms, task_id),
        "dag": SimpleNamespace(dag_id=dag_id),
        "dag_run": SimpleNamespace(
            run_id=run_id,
            triggering_user_name=user,
            run_type=run_type,
            conf=conf or {},
            run_after=run_after,
        ),
        "params": params or {},
        "outlet_events": xcoms.setdefault(("outlet_events", run_id), OutletEvents()),
    }


def run_operator(op: Any, run_id: str, xcoms: dict, **kw: Any) -> Any:
    """Render and execute() an operator like the worker would; its return value becomes XCom.

    A branch operator's choose_branch() runs instead of execute() (skipping tasks needs the
    real runtime); it hands its result on itself, and the branch it chose is returned.
    """
    ctx = make_context(run_id, op.task_id, xcoms, **kw)
    ctx["task"] = op
    op.render_template_fields(ctx)
    if hasattr(op, "choose_branch"):
        return op.choose_branch(ctx)
    result = op.execute(ctx)
    xcoms[(op.task_id, "return_value")] = strict_json(result, f"{op.task_id}'s return value")
    return result


def run_to_state(op: Any, run_id: str, xcoms: dict, **kw: Any) -> tuple[str, Any]:
    """run_operator, and the state the task would end in: ("success", its return value) or
    ("skipped", the result it handed on before skipping, if any)."""
    from airflow.sdk.exceptions import AirflowSkipException

    try:
        return "success", run_operator(op, run_id, xcoms, **kw)
    except AirflowSkipException:
        return "skipped", xcoms.get((op.task_id, "return_value"))


def retrain_tasks(model: str = "flight_delay") -> dict[str, Any]:
    """Fresh copies of `retrain_<model>`'s tasks as the factory wires them, by task id."""
    from modelkeeper.contracts.spec import get_spec
    from modelkeeper_airflow.factory import build_retrain_dag

    dag = build_retrain_dag(get_spec(model))
    return {task.task_id: task.prepare_for_execution() for task in dag.tasks}


#: Trigger-form values of a run nobody changed anything for (the Params' defaults).
DEFAULT_PARAMS = {
    "force_retrain": False,
    "reason": None,
    "dry_run": False,
    "promotion_mode": "spec",
}


class OverconfidentClassifier(ClassifierMixin, BaseEstimator):
    """Wraps a fitted classifier and sharpens its probabilities (same ranking, worse log loss).

    Used to build a candidate that beats the champion on roc_auc but breaks the log_loss
    guardrail. Lives in an importable module so MLflow's cloudpickle can load it back.
    """

    def __init__(self, model: Any, sharpness: float = 4.0) -> None:
        self.model = model
        self.sharpness = sharpness

    def fit(self, X: Any, y: Any) -> OverconfidentClassifier:  # sklearn tools want an estimator
        self.model.fit(X, y)
        return self

    @property
    def classes_(self) -> Any:
        return self.model.classes_

    def predict(self, X: Any) -> Any:
        return self.model.predict(X)

    def predict_proba(self, X: Any) -> Any:
        import numpy as np

        p = np.clip(self.model.predict_proba(X)[:, 1], 1e-6, 1 - 1e-6)
        sharp = 1 / (1 + np.exp(-self.sharpness * np.log(p / (1 - p))))
        return np.column_stack([1 - sharp, sharp])


def committed(storage: Any, model: str, run_id: str) -> dict | None:
    """The run's manifest record: what it took and what became of each file."""
    from modelkeeper.data.manifest import Manifest

    return Manifest(storage, model).record(run_id)


def accepted_rows(storage: Any, model: str, run_id: str) -> int:
    """Rows the run added to the training pool (0 when it committed nothing)."""
    record = committed(storage, model, run_id)
    return sum(p["rows"] for p in record["pool"]) if record else 0


def answer_approval(
    xcoms: dict, run_id: str, option: str, who: str, model: str = "flight_delay"
) -> None:
    """The person's answer arriving (what the triggerer hands execute_complete)."""
    from datetime import datetime

    op = retrain_tasks(model)["approve"]
    ctx = make_context(
        run_id, "approve", xcoms, params={**DEFAULT_PARAMS, "promotion_mode": "approval"}
    )
    ctx["task"] = op
    op.render_template_fields(ctx)
    event = {
        "chosen_options": [option],
        "params_input": {},
        "responded_at": datetime(2026, 1, 1),
        "responded_by_user": {"id": who, "name": who},
        "timedout": False,
    }
    try:
        op.execute_complete(ctx, event)
    except Exception as exc:  # the parent's skip of downstream tasks (promote) on Reject
        assert type(exc).__name__ == "DownstreamTasksSkipped", exc


def run_dag_tasks(
    tasks: dict[str, Any], order: list[str], run_id: str, xcoms: dict, **kw: Any
) -> dict[str, str]:
    """Run tasks in order like the scheduler would, skipping what an upstream skip skips;
    returns each task's state ("success" or "skipped")."""
    from airflow.sdk.exceptions import AirflowSkipException

    states: dict[str, str] = {}
    for task_id in order:
        task = tasks[task_id]
        ups = task.upstream_task_ids
        rule = getattr(task, "trigger_rule", "all_success")
        rule = str(getattr(rule, "value", rule))  # str(TriggerRule.X) is "TriggerRule.X"
        if ups and rule.endswith("all_success") and any(states.get(u) == "skipped" for u in ups):
            states[task_id] = "skipped"
            continue
        try:
            run_operator(task, run_id, xcoms, **kw)
            states[task_id] = "success"
        except AirflowSkipException:
            states[task_id] = "skipped"
    return states


def dag_tasks(builder: str, model: str = "flight_delay") -> dict[str, Any]:
    """Fresh copies of a factory DAG's tasks (builder: build_score_dag, build_monitor_dag)."""
    from modelkeeper.contracts.spec import get_spec
    from modelkeeper_airflow import factory

    dag = getattr(factory, builder)(get_spec(model))
    return {task.task_id: task.prepare_for_execution() for task in dag.tasks}


RETRAIN_ORDER = [
    "collect",
    "validate",
    "monitor",
    "decide",
    "train",
    "evaluate",
    "approve",
    "promote",
    "finish",
]


def run_pipeline(
    run_id: str,
    force: bool = False,
    mode: str = "spec",
    model: str = "flight_delay",
    states: dict | None = None,
) -> dict:
    """Run the factory DAG's tasks in order, as the scheduler would (decide's branch and
    approve's self-skip included); returns the XComs. `states`, if given, is filled with
    each task's end state ("success" or "skipped")."""
    from airflow.sdk.exceptions import AirflowSkipException

    params = {**DEFAULT_PARAMS, "force_retrain": force, "reason": "test", "promotion_mode": mode}
    tasks, xcoms, skipped = retrain_tasks(model), {}, set()
    states = {} if states is None else states
    for task_id in RETRAIN_ORDER:
        if task_id in skipped:
            states[task_id] = "skipped"
            continue
        try:
            out = run_operator(tasks[task_id], run_id, xcoms, params=params)
            states[task_id] = "success"
        except AirflowSkipException:
            states[task_id] = "skipped"
            if task_id == "train":  # evaluate and promote need a candidate
                skipped |= {"evaluate", "approve", "promote"}
            continue
        if task_id == "decide" and "train" not in out:
            skipped |= {"train", "evaluate", "approve", "promote"}  # the branch not taken
    return xcoms


#: Trigger-form Params a person must choose on purpose (no default; the form's Trigger
#: button waits for them): DAG id -> Param name. Every other Param has a valid default.
CHOSEN_ON_PURPOSE = {"modelkeeper_rollback": "model"}
