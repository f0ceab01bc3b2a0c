from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from modelkeeper_airflow.links import MlflowRunLink, ModelVersionLink
from modelkeeper_airflow.operators.base import ModelkeeperOperator

if TYPE_CHECKING:
    from modelkeeper.contracts.results import ChampionChange


class PromoteOperator(ModelkeeperOperator):
    """Move `champion` to the blessed candidate by compare-and-set; run it in a one-slot pool.

    Moves nothing when the decision was NOT_BLESSED, in dry-run mode, when the version
    lacks the passed-validation lineage tag, or when the champion moved since evaluation:
    the reason is recorded and the task ends SKIPPED (finish still runs, the DAG run stays
    green), so a grid shows at a glance which runs promoted. The move, the tags and the
    audit row are modelkeeper.records.governance.act's. Either way the run's one-line outcome goes
    to XCom (lineage.OUTCOME_XCOM), for the DAG run's note.

    :param evaluation: evaluate's Evaluated; :param approval: approve's Approval (both
        upstream `.output`s; the approval only matters in `approval` mode).
    :param mode: the run's promotion mode ("" means the spec's).
    """

    template_fields: Sequence[str] = ("model", "evaluation", "approval", "mode")
    operator_extra_links = (MlflowRunLink(), ModelVersionLink())

    def __init__(self, *, evaluation: Any, approval: Any = None, mode: str = "", **kwargs: Any):
        super().__init__(**kwargs)
        self.evaluation = evaluation
        self.approval = approval
        self.mode = mode

    def stage(self, context: Any) -> ChampionChange:
        from modelkeeper.contracts import lineage as L
        from modelkeeper.contracts.results import Approval, Evaluated
        from modelkeeper.stages.promote import outcome_line, promote

        evaluated = Evaluated.from_dict(self.evaluation)
        ws = self.workspace(audit=True)
        change = promote(
            ws,
            self.run(context),
            evaluated,
            mode=self.mode,
            approval=Approval.from_dict(self.approval) if self.approval else None,
        )
        # Links after the checks: a bad mode or a missing approval fails at once, untouched
        # by anything MLflow could say while building a URL.
        self.link_mlflow_run(context, evaluated.mlflow_run_id)
        self.push_link(
            context,
            L.LINK_MODEL_VERSION,
            lambda: self.registry.version_url(ws.name, evaluated.candidate_version),
        )
        self._notify(context, change)
        line = outcome_line(ws, evaluated, change)
        context["ti"].xcom_push(key=L.OUTCOME_XCOM, value=line)
        if change.action != "promoted":
            from airflow.sdk.exceptions import AirflowSkipException

            # Skipping ends the task by raising: hand the result on first (finish reads it).
            self.publish(context, change)
            raise AirflowSkipException(line)
        return change

    def _notify(self, context: Any, change: ChampionChange) -> None:
        spec = self.spec
        if change.action in ("promoted", "refused", "kept"):
            from modelkeeper.contracts import lineage as L
            from modelkeeper_airflow.notify import notify

            promoted = change.action == "promoted"
            event = L.NOTIFY_PROMOTION if promoted else L.NOTIFY_REFUSAL
            subject = (
                f"{spec.name}: v{change.candidate_version} is champion"
                if promoted
                else f"{spec.name}: candidate v{change.candidate_version} not promoted"
            )
            for line in notify(
                spec,
                event,
                subject=subject,
                text=change.reason,
                context=context,
                details={
                    "candidate": change.candidate_version,
                    "champion_before": change.champion_before,
                    "champion_after": change.champion_after,
                },
            ):
                self.log.info("notification: %s", line)
