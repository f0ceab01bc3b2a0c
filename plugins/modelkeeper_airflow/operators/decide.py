from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseBranchOperator

from modelkeeper_airflow.operators.base import ModelkeeperOperator


class DecideOperator(ModelkeeperOperator, BaseBranchOperator):
    """Branch: go on to `train` when retraining is needed or forced, else straight to `finish`.

    The reason is pushed as XCom ``retrain`` and logged, so a green run that did not
    retrain says why ("no retrain: ...").
    """

    template_fields: Sequence[str] = ("model", "force", "force_reason")

    def __init__(
        self,
        *,
        force: bool | str = False,
        force_reason: str = "",
        train_task_id: str = "train",
        finish_task_id: str = "finish",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.force = force
        self.force_reason = force_reason
        self.train_task_id = train_task_id
        self.finish_task_id = finish_task_id

    def choose_branch(self, context: Any) -> list[str]:
        from modelkeeper.retrain import Monitoring, should_retrain

        spec = self.spec()
        monitoring = Monitoring(**self.upstream(context, "monitor"))
        force = self.force if isinstance(self.force, bool) else str(self.force).lower() == "true"
        decision = should_retrain(monitoring, spec, force=force, force_reason=self.force_reason)
        context["ti"].xcom_push(key="retrain", value=decision.to_dict())
        self.log.info("%s", decision.reason)
        # finish always runs (after promote when retraining): keep it off the skip list.
        return (
            [self.train_task_id, self.finish_task_id] if decision.retrain else [self.finish_task_id]
        )
