from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from modelkeeper_airflow.operators.base import ModelkeeperOperator

if TYPE_CHECKING:
    from modelkeeper.contracts.results import Finished


class FinishOperator(ModelkeeperOperator):
    """Close the run's MLflow run and state the outcome in one line.

    :param retrain: decide's RetrainDecision; :param trained: train's Trained (None when
        train did not run); :param promotion: promote's ChampionChange (None when promote
        was skipped). All upstream `.output`s.
    :param approval_task_id: the approve task, read by id rather than through its
        `.output`: an `.output` would make finish a direct downstream of approve, and
        approve skips its direct downstream tasks on Reject.
    """

    template_fields: Sequence[str] = ("model", "retrain", "trained", "promotion")

    def __init__(
        self,
        *,
        retrain: Any,
        approval_task_id: str,
        trained: Any = None,
        promotion: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.retrain = retrain
        self.trained = trained
        self.promotion = promotion
        self.approval_task_id = approval_task_id

    def stage(self, context: Any) -> Finished:
        from modelkeeper.contracts import lineage as L
        from modelkeeper.contracts.results import (
            Approval,
            ChampionChange,
            Finished,
            RetrainDecision,
            Trained,
        )

        registry = self.registry
        answer = context["ti"].xcom_pull(task_ids=self.approval_task_id)
        approval = Approval.from_dict(answer) if answer else None
        if self.promotion:
            summary = ChampionChange.from_dict(self.promotion).summary
        elif approval is not None and approval.rejected:
            summary = f"rejected: {approval.note}"
        elif self.trained and Trained.from_dict(self.trained).version is None:
            summary = Trained.from_dict(self.trained).note  # nothing new to train on
        else:
            summary = RetrainDecision.from_dict(self.retrain).reason
        run_id = registry.find_run(self.spec.name, context["run_id"])
        self.link_mlflow_run(context, run_id)
        if run_id is not None:
            registry.set_run_tags(run_id, {L.OUTCOME: summary})
            registry.close_run(run_id, "FINISHED")
        self.log.info("%s", summary)
        return Finished(summary=summary, mlflow_run_id=run_id)
