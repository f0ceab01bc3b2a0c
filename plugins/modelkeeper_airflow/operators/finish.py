from __future__ import annotations

from typing import Any

from modelkeeper_airflow.operators.approve import answer
from modelkeeper_airflow.operators.base import ModelkeeperOperator


class FinishOperator(ModelkeeperOperator):
    """Close the run's MLflow run, record a rejection if a person rejected, state the outcome."""

    def execute(self, context: Any) -> dict:
        spec, registry, ti = self.spec(), self.registry(), context["ti"]
        retrain = ti.xcom_pull(task_ids="decide", key="retrain") or {}
        promoted = ti.xcom_pull(task_ids="promote")
        approval = answer(context)
        if promoted:
            action, reason = promoted["action"], promoted["reason"]
            summary = reason if reason.startswith(f"{action}:") else f"{action}: {reason}"
        elif approval and approval.get("chosen_options") == ["Reject"]:
            summary = self._rejected(context, spec, approval)
        else:
            summary = retrain.get("reason", "no retrain")
        run_id = registry.find_run(spec.name, context["run_id"])
        if run_id is not None:
            registry.client.set_tag(run_id, "outcome", summary[:5000])
            registry.close_run(run_id, "FINISHED")
        self.log.info("%s", summary)
        return {"summary": summary, "mlflow_run_id": run_id}

    def _rejected(self, context: Any, spec: Any, approval: dict) -> str:
        from modelkeeper.audit import AuditEvent

        evaluated = self.upstream(context, "evaluate")
        who = (approval.get("responded_by_user") or {}).get("name") or "unknown"
        reason = f"rejected by {who}; gate said: {evaluated['decision']['reason']}"
        self.audit().record(
            AuditEvent(
                model=spec.name,
                event="rejection",
                who=who,
                reason=reason,
                version_before=evaluated["champion_version"],
                version_after=evaluated["champion_version"],
                candidate_version=evaluated["candidate_version"],
                mode="approval",
                dag_id=context["dag"].dag_id,
                run_id=context["run_id"],
            )
        )
        self.registry().set_version_tags(
            spec.registered_model_name, evaluated["candidate_version"], {"rejected_by": who}
        )
        return f"rejected: {reason}"
