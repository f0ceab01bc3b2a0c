from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.hitl import ApprovalOperator

from modelkeeper_airflow.errors import fail_or_retry
from modelkeeper_airflow.operators.base import ModelkeeperOperator

if TYPE_CHECKING:
    from modelkeeper.contracts.results import Approval, Evaluated
    from modelkeeper.records.governance import ChampionChange


class PromotionApprovalOperator(ModelkeeperOperator, ApprovalOperator):
    """Waits for a person in the Airflow UI when the run's promotion mode is `approval`, or
    when the gate blessed a candidate only a person may promote (no usable champion).

    Shows the gate's decision and both models' metrics. "Approve" lets `promote` move
    the alias; "Reject" skips `promote`, and the rejection is audited here, where the
    answer arrives. In any other mode, or when the gate did not bless the candidate,
    there is nothing to approve and the task skips itself at once. Its result (an
    Approval) is handed on in every case.

    :param evaluation: evaluate's Evaluated (its `.output`).
    :param mode: the run's promotion mode ("" means the spec's).
    """

    template_fields: Sequence[str] = ("model", "evaluation", "mode", "subject", "body")

    def __init__(self, *, evaluation: Any, mode: str = "", **kwargs: Any) -> None:
        kwargs.setdefault("subject", "Promote the challenger to champion?")
        kwargs.setdefault("response_timeout", timedelta(days=7))
        super().__init__(**kwargs)
        self.evaluation = evaluation
        self.mode = mode

    def execute(self, context: Any) -> Any:
        from airflow.sdk.exceptions import AirflowSkipException

        from modelkeeper.contracts.results import Approval, Evaluated

        with fail_or_retry():
            spec = self.spec
            evaluated = Evaluated.from_dict(self.evaluation)
        mode = self.mode or spec.promotion.mode
        decision, skip = evaluated.decision, None
        if not decision.promote:
            skip = f"nothing to approve: {decision.reason}"
        elif mode == "dry_run":
            skip = "dry run: nothing will move, no approval needed"
        elif mode != "approval" and not decision.needs_approval:
            skip = f"promotion mode is {mode!r}: no approval needed"
        if skip:
            self.log.info("%s", skip)
            self.publish(context, Approval(asked=False, note=skip))
            raise AirflowSkipException(skip)
        self.subject = (
            f"Promote {spec.registered_model_name} v{evaluated.candidate_version} "
            f"over v{evaluated.champion_version or '-'}?"
        )
        self.body = _body(spec.metrics.primary, evaluated)
        # The parent calls its notifiers once the request is written, before it waits.
        self.notifiers = [*self.notifiers, lambda ctx: self._ask_owner(ctx, evaluated)]
        # ApprovalOperator's, by name: super() would find ModelkeeperOperator.execute first
        # (this class's MRO), which runs stage() (there is none) instead of asking.
        return ApprovalOperator.execute(self, context)  # waits until a person answers

    def _ask_owner(self, context: Any, evaluated: Evaluated) -> None:
        """Tell the owner a person must answer, with a direct link to this task's page
        (`[api] base_url` + /dags/<dag>/runs/<run>/tasks/<task>/required_actions)."""
        from modelkeeper.contracts import lineage as L
        from modelkeeper_airflow.notify import approval_url, notify

        dag_id, run_id = context["dag"].dag_id, context["run_id"]
        url = approval_url(dag_id, run_id, self.task_id, getattr(context["ti"], "map_index", -1))
        for line in notify(
            self.spec,
            L.NOTIFY_APPROVAL,
            subject=self.subject,
            text=f"{evaluated.decision.reason}. Approve or reject: {url}",
            context=context,
            details={
                "candidate_version": evaluated.candidate_version,
                "champion_version": evaluated.champion_version,
                "approval_url": url,
            },
        ):
            self.log.info("approval request: %s", line)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        if "chosen_options" not in event:  # timed out or failed: the parent raises
            return super().execute_complete(context, event)
        with fail_or_retry():
            approval, rejection = self._answered(context, event)
        # On "Reject" the parent skips promote by raising, so a return value would never
        # reach XCom: hand the answer on first.
        self.publish(context, approval)
        if rejection is not None:
            from modelkeeper.contracts import lineage as L

            context["ti"].xcom_push(key=L.OUTCOME_XCOM, value=self._outcome(rejection))
        super().execute_complete(context, event)
        return approval.to_dict()

    def _outcome(self, rejection: ChampionChange) -> str:
        """The run's one-line outcome when the person rejected the candidate."""
        from modelkeeper.contracts.results import Evaluated
        from modelkeeper.records.outcome import of_change

        evaluated, primary = Evaluated.from_dict(self.evaluation), self.spec.metrics.primary
        champion = evaluated.champion.metrics.get(primary) if evaluated.champion else None
        return of_change(rejection, primary, evaluated.candidate.metrics.get(primary), champion)

    def _answered(
        self, context: Any, event: dict[str, Any]
    ) -> tuple[Approval, ChampionChange | None]:
        """The person's answer, and the audited rejection when it was "Reject"."""
        from modelkeeper.contracts.results import Approval, Evaluated
        from modelkeeper.records.governance import ChangeRequest, act

        who = (event.get("responded_by_user") or {}).get("name") or "unknown"
        approved = list(event["chosen_options"]) == [self.APPROVE]  # the parent's options
        if approved:
            self.log.info("approved by %s", who)
            return Approval(asked=True, approved=True, by=who), None
        evaluated = Evaluated.from_dict(self.evaluation)
        change = act(
            self.registry,
            self.audit,
            ChangeRequest(
                model=self.spec.registered_model_name,
                request="reject",
                version=evaluated.candidate_version,
                expected=evaluated.champion_version,
                reason=f"rejected by {who}; gate said: {evaluated.decision.reason}",
                who=who,
                mode="approval",
                dag_id=context["dag"].dag_id,
                run_id=context["run_id"],
                mlflow_run_id=evaluated.mlflow_run_id,
            ),
        )
        self.log.info("%s", change.reason)
        return Approval(asked=True, approved=False, by=who, note=change.reason), change


def _body(primary: str, evaluated: Evaluated) -> str:
    cand = evaluated.candidate.metrics
    champ = evaluated.champion.metrics if evaluated.champion else {}
    rows = "\n".join(
        f"| {name} | {champ.get(name, float('nan')):.4f} | {value:.4f} |"
        for name, value in sorted(cand.items())
    )
    champion = evaluated.champion_version or "-"
    return (
        f"**Gate:** {evaluated.decision.reason}\n\n"
        f"Scored on the same holdout of {evaluated.candidate.rows} rows; primary metric `{primary}`.\n\n"
        f"| metric | champion v{champion} | candidate v{evaluated.candidate_version} |\n"
        f"|---|---|---|\n{rows}\n\n"
        "Approve moves the alias `champion`; Reject keeps the current champion. Both are audited."
    )
