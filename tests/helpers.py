"""Test helpers: a minimal task context for calling operators' execute() directly."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from sklearn.base import BaseEstimator, ClassifierMixin


class FakeTI:
    """Stands in for the TaskInstance: an in-memory XCom shared by one fake DAG run."""

    def __init__(self, xcoms: dict, task_id: str) -> None:
        self.xcoms = xcoms
        self.task_id = task_id

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[(self.task_id, key)] = value

    def xcom_pull(self, task_ids: str, key: str = "return_value") -> Any:
        return self.xcoms.get((task_ids, key))

    def get_dagrun_state(self, dag_id: str, run_id: str) -> str:
        """Other DAG runs' states, as a test sets them: xcoms[("dag_run_state", run_id)]."""
        return self.xcoms.get(("dag_run_state", run_id), "running")


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
) -> dict:
    return {
        "run_id": run_id,
        "ti": FakeTI(xcoms, task_id),
        "dag": SimpleNamespace(dag_id=dag_id),
        "dag_run": SimpleNamespace(
            run_id=run_id, triggering_user_name=user, run_type=run_type, conf=conf or {}
        ),
        "params": params or {},
    }


def run_operator(op: Any, run_id: str, xcoms: dict, **kw: Any) -> Any:
    """execute() an operator like the worker would, storing its return value as XCom."""
    ctx = make_context(run_id, op.task_id, xcoms, **kw)
    if hasattr(op, "choose_branch"):
        result = op.choose_branch(ctx)
    else:
        result = op.execute(ctx)
    xcoms[(op.task_id, "return_value")] = result
    return result


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
