from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from modelkeeper_airflow.links import DriftReportLink, MlflowRunLink
from modelkeeper_airflow.operators.base import ModelkeeperOperator

if TYPE_CHECKING:
    from modelkeeper.contracts.results import Monitoring


class MonitorOperator(ModelkeeperOperator):
    """Data drift, prediction drift and performance decay of the champion on the new batch.

    Reference data is the sample the champion was trained on, stored as an artifact of
    its MLflow run; the champion's predicted probability is added to both sides as a
    `prediction` column, so prediction drift is measured like any other column.

    :param accepted: validate's Accepted (its `.output`): the rows this run accepted.
    """

    template_fields: Sequence[str] = ("model", "accepted")
    operator_extra_links = (MlflowRunLink(), DriftReportLink())

    def __init__(self, *, accepted: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.accepted = accepted

    def stage(self, context: Any) -> Monitoring:
        from modelkeeper.contracts import lineage as L
        from modelkeeper.contracts.results import Accepted
        from modelkeeper.stages.monitor import monitor

        mlflow_run = self.mlflow_run(context)
        self._close_orphaned_runs(context, keep=mlflow_run)
        result = monitor(
            self.workspace(history=True),
            self.run(context, mlflow_run),
            Accepted.from_dict(self.accepted),
        )
        reports = self.storage.report_dir(self.spec.name, context["run_id"])
        if result.drift_share is not None and (reports / L.REPORT_DRIFT).exists():
            # The logged copy, in the MLflow UI's artifact view, beside the run's other
            # artifacts (the health page links the report folder's copy).
            self.push_link(
                context,
                L.LINK_DRIFT_REPORT,
                lambda: self.registry.run_url(self.spec.name, mlflow_run, L.DRIFT_HTML),
            )
        return result

    def _close_orphaned_runs(self, context: Any, keep: str) -> None:
        """Mark FAILED the MLflow runs of DAG runs that ended without closing them.

        The DAG's failure callback closes its run, unless MLflow was down at that moment
        (the outage that failed the run): the next run sweeps up what it could not.
        """
        ti, registry = context["ti"], self.registry
        for mlflow_run, airflow_run in registry.open_runs(self.spec.name).items():
            if mlflow_run == keep or not airflow_run:
                continue
            try:
                state = ti.get_dagrun_state(dag_id=context["dag"].dag_id, run_id=airflow_run)
            except Exception as exc:  # unknown run (another DAG, deleted): leave it alone
                self.log.info("not closing MLflow run %s: %r", mlflow_run, exc)
                continue
            if state in ("success", "failed"):
                registry.close_run(mlflow_run, "FAILED")
                self.log.warning(
                    "MLflow run %s of %s was left RUNNING after the DAG run ended %s: "
                    "marked FAILED",
                    mlflow_run,
                    airflow_run,
                    state,
                )
