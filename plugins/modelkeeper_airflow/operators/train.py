from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from modelkeeper_airflow.operators.base import ModelkeeperOperator
from modelkeeper_airflow.operators.monitor import REFERENCE_ARTIFACT


class TrainOperator(ModelkeeperOperator):
    """Fit the spec's pipeline on accepted data, log it all to MLflow, register a version.

    The version is registered with its lineage tags (validation passed, data snapshot
    hash, spec hash, DAG run) but no alias; only the promote step moves `champion`.
    A retry finds the version already registered for this MLflow run and reuses it.
    """

    def execute(self, context: Any) -> dict:
        import hashlib

        from modelkeeper.training import (
            TrainingDataError,
            features_frame,
            fit,
            load_accepted,
            time_split,
        )

        spec, storage, registry = self.spec(), self.storage(), self.registry()
        run_id, snapshot = context["run_id"], self.upstream(context, "collect")
        validation = self.upstream(context, "validate", key="validation")
        retrain = self.upstream(context, "decide", key="retrain")
        try:
            window = load_accepted(spec, storage, until=snapshot.get("end"))
            split = time_split(window, spec)
        except TrainingDataError as exc:
            raise AirflowFailException(f"cannot train {spec.name}: {exc}") from exc

        snap_dir = storage.snapshot_dir(spec.name, run_id)
        train_path = storage.write_parquet(split.train, snap_dir / "train.parquet")
        holdout_path = storage.write_parquet(split.holdout, snap_dir / "holdout.parquet")
        data_hash = hashlib.sha256(train_path.read_bytes() + holdout_path.read_bytes()).hexdigest()[
            :16
        ]

        mlflow_run = self.mlflow_run(context, registry, spec)
        result = {
            "mlflow_run_id": mlflow_run,
            "holdout_path": str(holdout_path),
            "data_snapshot_hash": data_hash,
            **split.describe(),
        }
        done = registry.version_for_run(spec.registered_model_name, mlflow_run)
        if done is not None:
            # A retry after the version was registered (or a cleared run): the model is
            # complete in MLflow already, so reuse it rather than add a second version.
            self.log.info("v%s already registered for this run; reusing it", done.version)
            return {**result, "model_uri": done.source, "version": done.version}

        model = fit(spec, split.train)
        registry.log_params(
            mlflow_run,
            {
                "estimator": spec.estimator.class_path,
                **{f"estimator.{k}": v for k, v in spec.estimator.params.items()},
                "features.numeric": ",".join(spec.features.numeric),
                "features.categorical": ",".join(spec.features.categorical),
                "target": spec.target.column,
                "retrain_reason": retrain["reason"],
                **split.describe(),
            },
        )
        registry.client.set_tag(mlflow_run, "data_snapshot_hash", data_hash)
        reference = split.train.sample(
            n=min(spec.drift.sample_rows, len(split.train)), random_state=0
        )
        reference_path = storage.write_parquet(reference, snap_dir / "reference.parquet")
        registry.log_artifacts(mlflow_run, reference_path, REFERENCE_ARTIFACT.rsplit("/", 1)[0])
        reports = storage.report_dir(spec.name, run_id)
        registry.log_artifacts(mlflow_run, reports / "validation.json", "reports/validation")
        registry.log_artifacts(mlflow_run, reports / "data_docs", "reports/validation/data_docs")

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
        version = registry.register(
            spec.registered_model_name,
            model_uri,
            mlflow_run,
            tags={
                "validation": "passed" if validation["success"] else "failed",
                "validation_report": validation["report"],
                "data_snapshot_hash": data_hash,
                "spec_hash": spec.fingerprint(),
                "airflow_dag_id": context["dag"].dag_id,
                "airflow_run_id": run_id,
                "train_window": f"{split.train_start} .. {split.train_end}",
                # The newest row it saw: the gate never lets an older window replace a newer.
                "data_end": split.holdout_end,
            },
        )
        self.log.info(
            "trained %s on %s rows (%s .. %s); registered %s v%s (MLflow run %s)",
            spec.estimator.class_path,
            len(split.train),
            split.train_start,
            split.train_end,
            spec.registered_model_name,
            version.version,
            mlflow_run,
        )
        return {**result, "model_uri": model_uri, "version": version.version}
