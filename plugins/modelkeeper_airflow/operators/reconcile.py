from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelkeeper_airflow.operators.base import ModelkeeperOperator

if TYPE_CHECKING:
    from modelkeeper.contracts.results import Reconciled


class ReconcileOperator(ModelkeeperOperator):
    """Fail loudly when the registry's `champion` disagrees with the audit trail."""

    def stage(self, context: Any) -> Reconciled:
        from modelkeeper.contracts.results import Reconciled
        from modelkeeper.records.audit import ReconcileMismatch, reconcile

        champion = self.registry.alias(self.spec.registered_model_name)
        ok, message = reconcile(self.audit, self.spec.name, champion.version if champion else None)
        if not ok:
            raise ReconcileMismatch(message)
        self.log.info("%s", message)
        return Reconciled(ok=ok, message=message)
