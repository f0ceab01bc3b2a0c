from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from modelkeeper_airflow.links import DataDocsLink, MlflowRunLink, ModelVersionLink
from modelkeeper_airflow.operators.base import ModelkeeperOperator

if TYPE_CHECKING:
    from modelkeeper.contracts.results import Trained


class TrainOperator(ModelkeeperOperator):
    """Fit the spec's pipeline on accepted data, log it all to MLflow, register a version.

    The version is registered with its lineage tags (validation passed, data snapshot
    hash, spec hash, DAG run) but no alias; only the promote step moves `champion`.
    A retry finds the version already registered for this MLflow run and reuses it.

    :param validation: validate's Accepted; :param retrain: decide's RetrainDecision
        (both upstream `.output`s).
    """

    template_fields: Sequence[str] = ("model", "validation", "retrain")
    operator_extra_links = (MlflowRunLink(), ModelVersionLink(), DataDocsLink())

    def __init__(self, *, validation: Any, retrain: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.validation = validation
        self.retrain = retrain

    def stage(self, context: Any) -> Trained:
        from modelkeeper.contracts import lineage as L
        from modelkeeper.contracts.results import Accepted, RetrainDecision
        from modelkeeper.stages.train import train

        mlflow_run = self.mlflow_run(context)
        trained = train(
            self.workspace(),
            self.run(context, mlflow_run),
            Accepted.from_dict(self.validation),
            RetrainDecision.from_dict(self.retrain),
        )
        if trained.version is not None:
            self._link(context, mlflow_run, trained.version)
            return trained
        # Nothing new: the twin version is the model; the run ends green, skipped here.
        from airflow.sdk.exceptions import AirflowSkipException

        name = self.spec.registered_model_name
        self.push_link(
            context,
            L.LINK_MODEL_VERSION,
            lambda: self.registry.version_url(name, trained.twin_version),
        )
        context["ti"].xcom_push(key=L.OUTCOME_XCOM, value=trained.outcome)
        self.publish(context, trained)
        raise AirflowSkipException(trained.note)

    def _link(self, context: Any, mlflow_run: str, version: str) -> None:
        """Model version and Data Docs links (the Data Docs as logged in the MLflow run,
        opened in the MLflow UI's artifact view; validate links the report folder's copy,
        served by the UI plugin). No Data Docs link when the run logged none (a run with no new rows)."""
        from modelkeeper.contracts import lineage as L

        registry, name = self.registry, self.spec.registered_model_name
        self.push_link(context, L.LINK_MODEL_VERSION, lambda: registry.version_url(name, version))

        def data_docs() -> str:
            if registry.ui_base and registry.has_artifact(mlflow_run, L.DATA_DOCS_INDEX):
                return registry.run_url(self.spec.name, mlflow_run, L.DATA_DOCS_INDEX)
            return ""

        self.push_link(context, L.LINK_DATA_DOCS, data_docs)
