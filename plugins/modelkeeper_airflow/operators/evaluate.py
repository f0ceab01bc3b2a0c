from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from modelkeeper_airflow.links import MlflowRunLink, ModelCardLink
from modelkeeper_airflow.operators.base import ModelkeeperOperator

if TYPE_CHECKING:
    from modelkeeper.contracts.results import Evaluated


class EvaluateOperator(ModelkeeperOperator):
    """Score challenger and champion on the same held-out frame and decide (BLESSED or not).

    Hands on the decision with the champion version it was made against; the promote
    step moves the alias only if the champion is still that version.

    :param trained: train's Trained; :param monitoring: monitor's Monitoring (for the
        model card's drift section). Both are upstream `.output`s.
    """

    template_fields: Sequence[str] = ("model", "trained", "monitoring")
    operator_extra_links = (MlflowRunLink(), ModelCardLink())

    def __init__(self, *, trained: Any, monitoring: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.trained = trained
        self.monitoring = monitoring

    def stage(self, context: Any) -> Evaluated:
        from modelkeeper.contracts import lineage as L
        from modelkeeper.contracts.results import Monitoring, Trained
        from modelkeeper.stages.evaluate import evaluate

        trained = Trained.from_dict(self.trained)
        self.link_mlflow_run(context, trained.mlflow_run_id)
        monitoring = Monitoring.from_dict(self.monitoring) if self.monitoring else None
        result = evaluate(
            self.workspace(history=True),
            self.run(context, trained.mlflow_run_id),
            trained,
            monitoring,
        )
        # The logged card in the MLflow UI's artifact view, with the version's run (the
        # health page links the report folder's copy).
        self.push_link(
            context,
            L.LINK_MODEL_CARD,
            lambda: self.registry.run_url(self.spec.name, trained.mlflow_run_id, L.MODEL_CARD_HTML),
        )
        return result
