from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk.exceptions import AirflowSkipException

from modelkeeper_airflow.operators.base import ModelkeeperOperator

ANSWER_KEY = "answer"  # XCom key of the person's answer (chosen option, who)


class PromotionApprovalOperator(ModelkeeperOperator, ApprovalOperator):
    """Waits for a person in the Airflow UI when the run's promotion mode is `approval`.

    Shows the gate's decision and both models' metrics. "Approve" lets `promote` move
    the alias; "Reject" skips `promote` and `finish` records the rejection. In any other
    mode, or when the gate did not bless the candidate, there is nothing to approve and
    the task skips itself at once.
    """

    template_fields: Sequence[str] = ("model", "mode", "subject", "body")

    def __init__(self, *, mode: str = "", **kwargs: Any) -> None:
        kwargs.setdefault("subject", "Promote the challenger to champion?")
        kwargs.setdefault("response_timeout", timedelta(days=7))
        super().__init__(**kwargs)
        self.mode = mode

    def execute(self, context: Any) -> Any:
        spec = self.spec()
        mode = self.mode or spec.promotion.mode
        evaluated = self.upstream(context, "evaluate")
        decision = evaluated["decision"]
        skip = None
        if mode != "approval":
            skip = f"promotion mode is {mode!r}: no approval needed"
        elif not decision["promote"]:
            skip = f"nothing to approve: {decision['reason']}"
        if skip:
            self.log.info("%s", skip)
            raise AirflowSkipException(skip)
        self.subject = (
            f"Promote {spec.registered_model_name} v{evaluated['candidate_version']} "
            f"over v{evaluated['champion_version'] or '-'}?"
        )
        self.body = _body(spec.metrics.primary, evaluated)
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        # On "Reject" the parent skips promote by raising, so its return value never
        # reaches XCom: record the answer first, for promote and finish to read.
        if "chosen_options" in event:
            context["ti"].xcom_push(
                key=ANSWER_KEY,
                value={
                    "chosen_options": list(event["chosen_options"]),
                    "responded_by_user": event.get("responded_by_user"),
                },
            )
        return super().execute_complete(context, event)


def answer(context: Any) -> dict:
    """The person's answer recorded by the approve task ({} when nobody was asked)."""
    return context["ti"].xcom_pull(task_ids="approve", key=ANSWER_KEY) or {}


def _body(primary: str, evaluated: dict) -> str:
    cand, champ = (
        evaluated["candidate"]["metrics"],
        (evaluated["champion"] or {}).get("metrics", {}),
    )
    rows = "\n".join(
        f"| {name} | {champ.get(name, float('nan')):.4f} | {value:.4f} |"
        for name, value in sorted(cand.items())
    )
    return (
        f"**Gate:** {evaluated['decision']['reason']}\n\n"
        f"Scored on the same holdout of {evaluated['candidate']['rows']} rows; primary metric `{primary}`.\n\n"
        f"| metric | champion v{evaluated['champion_version'] or '-'} | candidate v{evaluated['candidate_version']} |\n"
        f"|---|---|---|\n{rows}\n\n"
        "Approve moves the alias `champion`; Reject keeps the current champion. Both are audited."
    )
