from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from modelkeeper_airflow.links import MlflowRunLink, ModelVersionLink
from modelkeeper_airflow.operators.base import ModelkeeperOperator

if TYPE_CHECKING:
    from modelkeeper.records.governance import ChampionChange

MODES = ("auto", "dry_run", "approval")


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
        from modelkeeper.contracts.errors import ConfigError
        from modelkeeper.contracts.results import Approval, Evaluated
        from modelkeeper.records.governance import ChangeRequest, act
        from modelkeeper.records.outcome import of_change

        spec = self.spec
        evaluated = Evaluated.from_dict(self.evaluation)
        decision = evaluated.decision
        mode = self.mode or spec.promotion.mode
        if mode not in MODES:
            raise ConfigError(f"promotion mode {mode!r} is not one of {MODES}")

        who, reason = self.who(context), decision.reason
        asked = mode == "approval" or (decision.needs_approval and mode != "dry_run")
        if asked and decision.promote:
            approval = Approval.from_dict(self.approval) if self.approval else None
            if approval is None or not approval.approved:
                raise ConfigError("approval needed, but the approve task recorded no approval")
            who = approval.by or who
            reason = f"approved by {who}; {reason}"

        request = (
            "keep" if not decision.promote else ("dry_run" if mode == "dry_run" else "promote")
        )
        primary = spec.metrics.primary
        metrics = {"candidate_" + primary: evaluated.candidate.metrics.get(primary)}
        if evaluated.champion:
            metrics["champion_" + primary] = evaluated.champion.metrics.get(primary)
        change = act(
            self.registry,
            self.audit,
            ChangeRequest(
                model=spec.registered_model_name,
                request=request,
                version=evaluated.candidate_version,
                expected=evaluated.champion_version,
                reason=reason,
                who=who,
                mode=mode,
                dag_id=context["dag"].dag_id,
                run_id=context["run_id"],
                metrics=metrics,
                mlflow_run_id=evaluated.mlflow_run_id,
            ),
        )
        self.log.info("%s", change.reason)
        # Links after the checks: a bad mode or a missing approval fails at once, untouched
        # by anything MLflow could say while building a URL.
        self.link_mlflow_run(context, evaluated.mlflow_run_id)
        self.push_link(
            context,
            L.LINK_MODEL_VERSION,
            lambda: self.registry.version_url(
                spec.registered_model_name, evaluated.candidate_version
            ),
        )
        self._notify(context, change)
        line = of_change(
            change,
            primary,
            metrics["candidate_" + primary],
            metrics.get("champion_" + primary),
        )
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
