from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseBranchOperator

from modelkeeper_airflow.errors import fail_or_retry
from modelkeeper_airflow.operators.base import ModelkeeperOperator


class DecideOperator(ModelkeeperOperator, BaseBranchOperator):
    """Branch: go on to `train_task_id` when retraining is needed or forced, else to
    `finish_task_id` alone.

    Its result is the RetrainDecision, logged, so a green run that did not retrain says why
    ("no retrain: ...").

    :param monitoring: monitor's Monitoring (its `.output`).
    """

    template_fields: Sequence[str] = ("model", "monitoring", "force", "force_reason")

    def __init__(
        self,
        *,
        monitoring: Any,
        train_task_id: str,
        finish_task_id: str,
        force: bool | str = False,
        force_reason: str = "",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.monitoring = monitoring
        self.train_task_id = train_task_id
        self.finish_task_id = finish_task_id
        self.force = force
        self.force_reason = force_reason

    def execute(self, context: Any) -> dict:
        started = time.time()
        try:
            self.do_branch(context, self.choose_branch(context))
            return self.decision.to_dict()
        finally:
            self.log_cost(started)

    def choose_branch(self, context: Any) -> list[str]:
        with fail_or_retry():
            self.decision = self.stage(context)
        # Skipping the branch not taken ends the task by raising: hand the result on first.
        self.publish(context, self.decision)
        if not self.decision.retrain:  # the run's outcome is known now ("no retrain: ...")
            from modelkeeper.contracts import lineage as L

            context["ti"].xcom_push(key=L.OUTCOME_XCOM, value=self.decision.reason)
        # finish always runs (after promote when retraining): keep it off the skip list.
        if self.decision.retrain:
            return [self.train_task_id, self.finish_task_id]
        return [self.finish_task_id]

    def stage(self, context: Any):  # noqa: ANN201
        from modelkeeper.contracts.results import Monitoring
        from modelkeeper.stages.decide import decide

        force = self.force if isinstance(self.force, bool) else str(self.force).lower() == "true"
        return decide(
            self.workspace(audit=True),
            self.run(context),
            Monitoring.from_dict(self.monitoring),
            force=force,
            force_reason=self.force_reason or "",
            alarm=self.alarm_reason(context),
        )
