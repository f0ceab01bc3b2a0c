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
        import hashlib

        from modelkeeper.contracts import lineage as L
        from modelkeeper.contracts.results import Accepted, Trained
        from modelkeeper.decisions.retrain import RetrainDecision
        from modelkeeper.modeling.training import features_frame, fit, load_accepted, time_split

        spec, storage, registry = self.spec, self.storage, self.registry
        run_id = context["run_id"]
        validation = Accepted.from_dict(self.validation)
        retrain = RetrainDecision.from_dict(self.retrain)
        # A rerun or backfilled run trains on what it accepted, not on what came later.
        window = load_accepted(spec, storage, until=validation.end)
        split = time_split(window, spec)

        snap_dir = storage.snapshot_dir(spec.name, run_id)
        train_path = storage.write_parquet(split.train, snap_dir / "train.parquet")
        holdout_path = storage.write_parquet(split.holdout, snap_dir / "holdout.parquet")
        digest = hashlib.sha256(train_path.read_bytes() + holdout_path.read_bytes())
        data_hash = digest.hexdigest()[:16]

        mlflow_run = self.mlflow_run(context)
        name = spec.registered_model_name

        def result(version: str | None, model_uri: str | None, note: str = "") -> Trained:
            return Trained(
                mlflow_run_id=mlflow_run,
                version=version,
                model_uri=model_uri,
                holdout_path=str(holdout_path),
                data_snapshot_hash=data_hash,
                note=note,
                **split.describe(),
            )

        done = registry.version_for_run(name, mlflow_run)
        if done is not None:
            # A retry after the version was registered (or a cleared run): the model is
            # complete in MLflow already, so reuse it rather than add a second version.
            self.log.info("v%s already registered for this run; reusing it", done.version)
            self._link(context, mlflow_run, done.version)
            return result(done.version, done.source)
        same = registry.versions_tagged(
            name, {L.DATA_SNAPSHOT_HASH: data_hash, L.SPEC_HASH: spec.fingerprint()}
        )
        if same:
            # A forced retrain with nothing new would register the same model again.
            from airflow.sdk.exceptions import AirflowSkipException

            champion = registry.alias(name)
            twin = same[-1]
            who = "champion " if champion and champion.version == twin.version else ""
            verdict = twin.tags.get(L.DECISION_REASON)
            note = (
                f"nothing new: {who}v{twin.version} was trained on exactly this data and spec "
                f"(snapshot {data_hash}); no second version registered"
                + (f" (its gate said: {verdict})" if verdict and not who else "")
            )
            from modelkeeper.records.outcome import nothing_new

            self.log.info("%s", note)
            self.push_link(
                context, L.LINK_MODEL_VERSION, lambda: registry.version_url(name, twin.version)
            )
            context["ti"].xcom_push(
                key=L.OUTCOME_XCOM,
                value=nothing_new(champion.version if champion else None, twin.version),
            )
            self.publish(context, result(None, None, note))
            raise AirflowSkipException(note)

        model = fit(spec, split.train)
        registry.log_params(
            mlflow_run,
            {
                "estimator": spec.estimator.class_path,
                **{f"estimator.{k}": v for k, v in spec.estimator.params.items()},
                "features.numeric": ",".join(spec.features.numeric),
                "features.categorical": ",".join(spec.features.categorical),
                "target": spec.target.column,
                "retrain_reason": retrain.reason,
                **split.describe(),
            },
        )
        registry.set_run_tags(mlflow_run, {L.DATA_SNAPSHOT_HASH: data_hash})
        reference = split.train.sample(
            n=min(spec.drift.sample_rows, len(split.train)), random_state=0
        )
        reference_path = storage.write_parquet(reference, snap_dir / L.REFERENCE_FILE)
        registry.log_artifacts(mlflow_run, reference_path, L.REFERENCE_DIR)
        reports = storage.report_dir(spec.name, run_id)
        registry.log_artifacts(mlflow_run, reports / "validation.json", L.VALIDATION_REPORTS)
        registry.log_artifacts(mlflow_run, reports / "data_docs", L.DATA_DOCS)

        target = spec.target.column
        model_uri = registry.log_model(
            mlflow_run,
            model,
            features_frame(split.train.head(5), spec),
            datasets=[
                (
                    split.train[[*spec.features.all, target]],
                    f"{spec.name}-train",
                    str(train_path),
                    "training",
                ),
                (
                    split.holdout[[*spec.features.all, target]],
                    f"{spec.name}-holdout",
                    str(holdout_path),
                    "evaluation",
                ),
            ],
        )
        tags = {
            L.VALIDATION: L.VALIDATION_PASSED if validation.success else L.VALIDATION_FAILED,
            L.DATA_SNAPSHOT_HASH: data_hash,
            L.SPEC_HASH: spec.fingerprint(),
            L.DAG_TAG: context["dag"].dag_id,
            L.RUN_TAG: run_id,
            L.TRAIN_WINDOW: f"{split.train_start} .. {split.train_end}",
            # The newest row it saw: the gate never lets an older window replace a newer.
            L.DATA_END: split.holdout_end,
        }
        if validation.report:  # none when the run brought no new rows
            tags[L.VALIDATION_REPORT] = validation.report
        version = registry.register(name, model_uri, mlflow_run, tags=tags)
        self._link(context, mlflow_run, version.version)
        self.log.info(
            "trained %s on %s rows (%s .. %s); registered %s v%s (MLflow run %s)",
            spec.estimator.class_path,
            len(split.train),
            split.train_start,
            split.train_end,
            name,
            version.version,
            mlflow_run,
        )
        return result(version.version, model_uri)

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
