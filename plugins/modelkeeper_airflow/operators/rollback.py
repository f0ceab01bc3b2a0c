from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from modelkeeper.contracts.lineage import PREVIOUS
from modelkeeper_airflow.operators.base import ModelkeeperOperator

if TYPE_CHECKING:
    from modelkeeper.contracts.results import ChampionChange


class RollbackOperator(ModelkeeperOperator):
    """Point `champion` back at `target_version` ("previous" or a number), audited.

    Goes through the same act-and-audit as promotion. `previous` is left where it is,
    so triggering the same rollback twice finds the target already champion: a no-op.
    An unknown version fails at once; MLflow unreachable retries, then fails saying so.
    """

    template_fields: Sequence[str] = ("model", "target_version", "reason")

    def __init__(self, *, target_version: str = PREVIOUS, reason: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target_version = target_version
        self.reason = reason

    def stage(self, context: Any) -> ChampionChange:
        from modelkeeper.contracts import lineage as L
        from modelkeeper.contracts.errors import NotFoundError
        from modelkeeper.records.governance import ChangeRequest, act

        registry = self.registry
        name = self.spec.registered_model_name
        current = registry.alias(name)
        target = str(self.target_version).strip()
        if target == L.PREVIOUS:
            previous = registry.alias(name, L.PREVIOUS)
            if previous is None:
                raise NotFoundError(f"{name} has no `{L.PREVIOUS}` version to roll back to")
            target = previous.version
        try:
            registry.get_version(name, target)
        except NotFoundError as exc:  # only when MLflow says so; an outage propagates
            raise NotFoundError(f"{name} has no version {target!r}: {exc}") from exc
        change = act(
            registry,
            self.audit,
            ChangeRequest(
                model=name,
                request="rollback",
                version=target,
                expected=current.version if current else None,
                reason=self.reason or "",
                who=self.who(context),
                mode="manual",
                dag_id=context["dag"].dag_id,
                run_id=context["run_id"],
            ),
        )
        self.log.info("%s", change.reason)
        return change
