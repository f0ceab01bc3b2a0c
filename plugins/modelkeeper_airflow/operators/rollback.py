from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from modelkeeper_airflow.operators.base import ModelkeeperOperator


class RollbackOperator(ModelkeeperOperator):
    """Point `champion` back at `target_version` ("previous" or a number), audited.

    Goes through the same compare-and-set as promotion. `previous` is left where it is,
    so triggering the same rollback twice finds the target already champion: a no-op.
    """

    template_fields: Sequence[str] = ("model", "target_version", "reason")

    def __init__(
        self, *, target_version: str = "previous", reason: str = "", **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.target_version = target_version
        self.reason = reason

    def execute(self, context: Any) -> dict:
        from modelkeeper.audit import AuditEvent
        from modelkeeper.registry import PREVIOUS

        spec, registry = self.spec(), self.registry()
        name = spec.registered_model_name
        current = registry.alias(name)
        target = str(self.target_version).strip()
        if target == PREVIOUS:
            previous = registry.alias(name, PREVIOUS)
            if previous is None:
                raise AirflowFailException(f"{name} has no `previous` version to roll back to")
            target = previous.version
        try:
            registry.get_version(name, target)
        except Exception as exc:
            raise AirflowFailException(f"{name} has no version {target!r}: {exc}") from exc
        before = current.version if current else None
        who = self.who(context)
        if before == target:
            self.log.info("v%s is already champion: nothing to do", target)
            return {"action": "noop", "champion": target}

        moved, now = registry.move_champion(name, target, expected=before, keep_previous=True)
        if not moved:  # another promotion slipped in between: let the retry re-read
            raise RuntimeError(f"champion changed during rollback (v{before} then, v{now} now)")
        reason = f"rollback v{before} → v{target} by {who}: {self.reason or 'no reason given'}"
        registry.set_version_tags(
            name, target, {"rolled_back_by": who, "rolled_back_in": context["run_id"]}
        )
        if before is not None:
            registry.set_version_tags(name, before, {"rolled_back_from": "true"})
        self.audit().record(
            AuditEvent(
                model=spec.name,
                event="rollback",
                who=who,
                reason=reason,
                version_before=before,
                version_after=target,
                candidate_version=target,
                mode="manual",
                dag_id=context["dag"].dag_id,
                run_id=context["run_id"],
            )
        )
        self.log.info("%s", reason)
        return {
            "action": "rolled_back",
            "champion_before": before,
            "champion": target,
            "reason": reason,
        }


class ReconcileOperator(ModelkeeperOperator):
    """Fail loudly when the registry's `champion` disagrees with the audit trail."""

    def execute(self, context: Any) -> dict:
        from modelkeeper.audit import reconcile

        spec, registry = self.spec(), self.registry()
        champion = registry.alias(spec.registered_model_name)
        ok, message = reconcile(self.audit(), spec.name, champion.version if champion else None)
        if not ok:
            raise AirflowFailException(message)
        self.log.info("%s", message)
        return {"ok": ok, "message": message}
