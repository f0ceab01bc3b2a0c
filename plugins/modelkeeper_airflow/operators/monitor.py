from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from modelkeeper_airflow.links import DriftReportLink, MlflowRunLink
from modelkeeper_airflow.operators.base import ModelkeeperOperator

if TYPE_CHECKING:
    from modelkeeper.decisions.retrain import Monitoring


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
        import pandas as pd

        from modelkeeper.contracts import lineage as L
        from modelkeeper.contracts.results import Accepted
        from modelkeeper.decisions.retrain import Monitoring, age_days
        from modelkeeper.modeling.evaluation import predict, score_model
        from modelkeeper.modeling.training import features_frame
        from modelkeeper.monitoring.drift import DriftError, compute_drift

        spec, storage, registry = self.spec, self.storage, self.registry
        accepted = Accepted.from_dict(self.accepted)
        batch = self.storage.read_parquet(accepted.path) if accepted.path else pd.DataFrame()
        champion = registry.alias(spec.registered_model_name)
        run_id = self.mlflow_run(context)
        self._close_orphaned_runs(context, keep=run_id)
        done = registry.version_for_run(spec.registered_model_name, run_id)
        trained = done.version if done is not None else None
        if champion is None:
            self.log.info("no champion yet: nothing to compare the batch against")
            return Monitoring(champion_version=None, batch_rows=len(batch), trained_version=trained)

        model, reference, problem = self._usable(champion)
        if problem is not None:
            # Never a dead end: decide retrains, and the gate's rule for a champion it
            # cannot compare with applies (spec promotion.unusable_champion).
            self.log.warning("champion v%s is unusable: %s", champion.version, problem)
            return Monitoring(
                champion_version=champion.version,
                batch_rows=len(batch),
                trained_version=trained,
                champion_problem=problem,
            )
        task = spec.target.task
        for frame in (reference, batch):
            if frame.empty:  # a forced run with no new rows: nothing to predict on
                continue
            y_pred, proba = predict(model, features_frame(frame, spec), task)
            frame["prediction"] = proba if proba is not None else y_pred
        reports = storage.report_dir(spec.name, context["run_id"])
        try:
            drift = compute_drift(
                reference,
                batch,
                spec,
                extra_numeric=["prediction"],
                html_path=reports / L.REPORT_DRIFT,
                json_path=reports / "drift.json",
            )
        except DriftError as exc:
            self.log.warning("drift not computed: %s", exc)
            drift = None
        champion_metric = None
        if len(batch) and len(batch) >= spec.retrain.min_new_rows:
            champion_metric = score_model(model, batch, spec, slices=False).metrics.get(
                spec.metrics.primary
            )

        result = Monitoring(
            champion_version=champion.version,
            batch_rows=len(batch),
            drift_share=None if drift is None else drift.drifted_share,
            drift_summary=None if drift is None else drift.summary,
            champion_metric=champion_metric,
            trained_version=trained,
            champion_age_days=age_days(champion.tags.get(L.DATA_END), accepted.end),
        )
        registry.log_metrics(
            run_id,
            {
                "drift_share": result.drift_share,
                f"champion_batch_{spec.metrics.primary}": champion_metric,
            },
        )
        registry.log_artifacts(run_id, reports / L.REPORT_DRIFT, L.DRIFT_REPORTS)
        registry.log_artifacts(run_id, reports / "drift.json", L.DRIFT_REPORTS)
        if (reports / L.REPORT_DRIFT).exists():
            # The logged copy, in the MLflow UI's artifact view, beside the run's other
            # artifacts (the health page links the report folder's copy).
            self.push_link(
                context,
                L.LINK_DRIFT_REPORT,
                lambda: registry.run_url(spec.name, run_id, L.DRIFT_HTML),
            )
        self.log.info(
            "champion v%s on %s new rows: %s=%s; %s",
            champion.version,
            len(batch),
            spec.metrics.primary,
            champion_metric,
            result.drift_summary or "drift not computed",
        )
        return result

    def _usable(self, champion: Any) -> tuple[Any, Any, str | None]:
        """(model, reference, None), or why the champion cannot be measured.

        An MLflow outage is not the champion's fault: transient errors propagate (retry).
        """
        import tempfile

        import pandas as pd

        from modelkeeper.contracts import lineage as L
        from modelkeeper.contracts.errors import TransientError

        registry, spec = self.registry, self.spec
        try:
            model = registry.load_model(champion.uri)
        except TransientError:
            raise
        except Exception as exc:
            return None, None, f"its model cannot be loaded ({type(exc).__name__}: {exc})"
        columns = registry.input_columns(champion.uri)
        if columns is not None and sorted(columns) != sorted(spec.features.all):
            gone = sorted(set(columns) - set(spec.features.all))
            new = sorted(set(spec.features.all) - set(columns))
            return None, None, f"the spec's features changed since (new: {new}, dropped: {gone})"
        try:
            with tempfile.TemporaryDirectory() as tmp:
                path = registry.download(champion.run_id, L.REFERENCE_ARTIFACT, tmp)
                reference = pd.read_parquet(path)
        except TransientError:
            raise
        except Exception as exc:
            return None, None, f"it has no stored reference data ({type(exc).__name__}: {exc})"
        return model, reference, None

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
