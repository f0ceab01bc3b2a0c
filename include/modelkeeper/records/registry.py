"""The MLflow adapter: runs, models, datasets, registry versions and aliases.

The only module that talks to MLflow: every call goes through a Registry (operators never
reach past it). One MLflow run per Airflow DAG run, found again by its `airflow_run_id`
tag so retries and reruns resume it instead of adding runs; one registered version per
MLflow run, found again the same way.

MLflow's errors are translated once, for every call made here (records/mlflow_errors.py):
"does not exist" becomes RegistryNotFound, an unreachable or failing server
RegistryUnavailable (worth a retry).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib.metadata import version as pkg_version
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from modelkeeper.contracts.lineage import CHAMPION, MODEL_ARTIFACT, PREVIOUS, RUN_TAG
from modelkeeper.records.mlflow_errors import (
    RegistryError,
    RegistryNotFound,
    RegistryUnavailable,
    TranslatingClient,
    error_code,
    translated,
)

# MLflow draws tqdm bars on stderr while it downloads artifacts, and Airflow files a task's
# stderr as ERROR lines: a green evaluate read red. Read per call, so setting it here is enough.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

if TYPE_CHECKING:
    import pandas as pd

    from modelkeeper.contracts.spec_sections import ColumnRule

__all__ = [
    "CHAMPION",
    "PREVIOUS",
    "RUN_TAG",
    "Registry",
    "RegistryError",
    "RegistryNotFound",
    "RegistryUnavailable",
    "VersionInfo",
]

#: MLflow caps tag values (8000 characters for run tags); reasons are cut here, once.
MAX_TAG_CHARS = 5000


@dataclass(frozen=True)
class VersionInfo:
    name: str
    version: str
    run_id: str | None
    source: str
    tags: dict[str, str]

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def _quote(value: str) -> str:
    """A double-quoted MLflow filter literal (its parser does not unescape quotes)."""
    if '"' in value:
        raise ValueError(f"{value!r}: double quotes cannot be matched in an MLflow filter")
    return f'"{value}"'


class Registry:
    def __init__(self, tracking_uri: str, *, artifact_location: str | None = None) -> None:
        from mlflow import MlflowClient

        self.tracking_uri = tracking_uri
        # A local store (tests) needs an absolute artifact folder, or artifacts land in ./mlruns.
        self.artifact_location = artifact_location
        self.client = TranslatingClient(
            MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri), tracking_uri
        )

    def _translated(self, what: str) -> contextlib.AbstractContextManager[None]:
        """For mlflow's module-level calls: the same translation as the client's."""
        return translated(self.tracking_uri, what)

    def ping(self) -> None:
        """Raise RegistryUnavailable unless the tracking server answers."""
        self.client.search_experiments(max_results=1)

    def _fluent(self):
        """mlflow's module-level API, pointed at this registry (it keeps one global URI)."""
        import mlflow

        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        return mlflow

    # -- runs ------------------------------------------------------------------------
    def experiment_id(self, name: str) -> str:
        exp = self.client.get_experiment_by_name(name)
        if exp is not None:
            return exp.experiment_id
        location = None
        if self.artifact_location and "://" in self.artifact_location:
            # An object store (s3://bucket/prefix, the storage root's store): MLflow's S3
            # client finds the endpoint in MLFLOW_S3_ENDPOINT_URL, credentials in boto3's chain.
            location = f"{self.artifact_location.rstrip('/')}/{name}"
        elif self.artifact_location:
            location = Path(self.artifact_location, name).resolve().as_uri()
        try:
            return self.client.create_experiment(name, artifact_location=location)
        except Exception:  # created concurrently by another task: read it back
            exp = self.client.get_experiment_by_name(name)
            if exp is None:
                raise
            return exp.experiment_id

    def find_run(self, experiment: str, airflow_run_id: str) -> str | None:
        runs = self.client.search_runs(
            [self.experiment_id(experiment)],
            filter_string=f"tags.{RUN_TAG} = {_quote(airflow_run_id)}",
            max_results=1,
        )
        return runs[0].info.run_id if runs else None

    def ensure_run(
        self,
        experiment: str,
        airflow_run_id: str,
        tags: dict[str, str],
        run_name: str | None = None,
    ) -> str:
        """The MLflow run of this DAG run: created once, resumed by retries and reruns.

        `run_name` (default: the Airflow run id) is only given to a run being created."""
        run_id = self.find_run(experiment, airflow_run_id)
        if run_id is None:
            run = self.client.create_run(
                self.experiment_id(experiment),
                run_name=run_name or airflow_run_id,
                tags={RUN_TAG: airflow_run_id, **tags},
            )
            return run.info.run_id
        self.set_run_tags(run_id, tags)
        return run_id

    def open_runs(self, experiment: str) -> dict[str, str]:
        """MLflow runs still RUNNING in the experiment: {mlflow run id: Airflow run id}."""
        runs = self.client.search_runs(
            [self.experiment_id(experiment)],
            filter_string="attributes.status = 'RUNNING'",
            max_results=1000,
        )
        return {r.info.run_id: r.data.tags.get(RUN_TAG, "") for r in runs}

    def close_run(self, run_id: str, status: str = "FINISHED") -> None:
        self.client.set_terminated(run_id, status=status)

    def set_run_tags(self, run_id: str, tags: dict[str, Any]) -> None:
        for key, value in tags.items():
            self.client.set_tag(run_id, key, str(value)[:MAX_TAG_CHARS])

    def log_params(self, run_id: str, params: dict[str, Any]) -> None:
        for key, value in params.items():
            self.client.log_param(run_id, key, str(value)[:6000])

    def log_metrics(self, run_id: str, metrics: dict[str, float], prefix: str = "") -> None:
        for key, value in metrics.items():
            if value is not None:
                self.client.log_metric(run_id, f"{prefix}{key}", float(value))

    def log_artifacts(self, run_id: str, path: str | os.PathLike[str], artifact_path: str) -> None:
        """Log a file or folder (local, or on the object-store storage root: MLflow's client
        wants a local file, so a remote one is read through a temporary local copy)."""
        from modelkeeper.data.objstore import local_copy

        with local_copy(path) as local:
            if local.is_dir():
                self.client.log_artifacts(run_id, str(local), artifact_path)
            elif local.exists():
                self.client.log_artifact(run_id, str(local), artifact_path)

    def download(self, run_id: str, artifact_path: str, dst: str | Path) -> Path:
        mlflow = self._fluent()
        Path(dst).mkdir(parents=True, exist_ok=True)
        with self._translated(f"download {artifact_path} of run {run_id}"):
            return Path(
                mlflow.artifacts.download_artifacts(
                    run_id=run_id, artifact_path=artifact_path, dst_path=str(dst)
                )
            )

    def log_model(
        self,
        run_id: str,
        model: Any,
        example: pd.DataFrame,
        datasets: list[tuple[pd.DataFrame, str, str, str | None]] = (),
        columns: Sequence[ColumnRule] = (),
    ) -> str:
        """Log the fitted pipeline with signature and input example; returns the model URI.

        pyfunc enforces the signature on every prediction. With `columns` (the spec's rules
        of the features, in order) the inputs are declared from the spec
        (`mlflow_schema.input_schema`: a column is accepted as a landed file gives it back,
        with or without missing values); without, they are inferred from `example` as it
        is typed. The outputs are inferred from the model's predictions on `example`.
        `datasets` are (frame, name, source, context) logged with `mlflow.log_input`.
        """
        import mlflow.sklearn
        from mlflow.models import ModelSignature, infer_signature

        from modelkeeper.records.mlflow_schema import input_schema

        mlflow = self._fluent()
        with _without_int_hint():
            signature = infer_signature(example, model.predict(example))
        if columns:
            signature = ModelSignature(inputs=input_schema(columns), outputs=signature.outputs)
        # Explicit requirements: inferring them costs 15+ s and lists test tools.
        requirements = [
            f"{p}=={pkg_version(p)}" for p in ("scikit-learn", "pandas", "numpy", "cloudpickle")
        ]
        with (
            self._translated(f"log the model of run {run_id}"),
            mlflow.start_run(run_id=run_id, log_system_metrics=False),
            _without_int_hint(),
        ):
            for frame, name, source, context in datasets:
                dataset = mlflow.data.from_pandas(frame, source=source, name=name)
                mlflow.log_input(dataset, context=context)
            info = mlflow.sklearn.log_model(
                model,
                name=MODEL_ARTIFACT,
                signature=signature,
                input_example=example,
                pip_requirements=requirements,
                serialization_format="cloudpickle",
            )
        # `with start_run` ended the run; it stays open until the DAG run finishes.
        self.client.update_run(run_id, status="RUNNING")
        return info.model_uri

    # -- links into the MLflow UI ---------------------------------------------------------
    @property
    def ui_base(self) -> str | None:
        """The MLflow UI's address: the tracking URI when it is a server (http/https);
        None for a local store (a sqlite or file URI has no UI to link to)."""
        uri = self.tracking_uri.rstrip("/")
        return uri if uri.startswith(("http://", "https://")) else None

    def run_url(self, experiment: str, run_id: str | None, artifact: str | None = None) -> str:
        """The run's page in the MLflow UI (or one of its artifacts there); "" without a UI."""
        base = self.ui_base
        if not base or not run_id:
            return ""
        url = f"{base}/#/experiments/{self.experiment_id(experiment)}/runs/{run_id}"
        return f"{url}/artifacts/{artifact}" if artifact else url

    def version_url(self, name: str, version: str | None) -> str:
        """A registered version's page in the MLflow UI; "" without a UI."""
        base = self.ui_base
        if not base or not version:
            return ""
        return f"{base}/#/models/{quote(name, safe='')}/versions/{version}"

    def has_artifact(self, run_id: str, path: str) -> bool:
        """Whether the run has logged `path` (a file, or a folder with something in it)."""
        parent, _, _ = path.rpartition("/")
        listed = self.client.list_artifacts(run_id, parent or None)
        return any(a.path == path for a in listed)

    # -- registry ----------------------------------------------------------------------
    def _version(self, mv: Any) -> VersionInfo:
        return VersionInfo(mv.name, str(mv.version), mv.run_id, mv.source, dict(mv.tags or {}))

    def version_for_run(self, name: str, run_id: str) -> VersionInfo | None:
        try:
            found = self.client.search_model_versions(
                f"name = {_quote(name)} and run_id = {_quote(run_id)}"
            )
        except RegistryNotFound:  # no registered model yet
            return None
        return self._version(found[0]) if found else None

    def versions_tagged(self, name: str, tags: dict[str, str]) -> list[VersionInfo]:
        """The versions of `name` carrying every tag in `tags`, oldest first."""
        where = " and ".join(f"tags.{k} = {_quote(str(v))}" for k, v in tags.items())
        try:
            found = self.client.search_model_versions(f"name = {_quote(name)} and {where}")
        except RegistryNotFound:
            return []
        return sorted((self._version(mv) for mv in found), key=lambda v: int(v.version))

    def register(self, name: str, model_uri: str, run_id: str, tags: dict[str, Any]) -> VersionInfo:
        """Register the run's model once; a retry finds the existing version."""
        existing = self.version_for_run(name, run_id)
        if existing is not None:
            return existing
        try:
            self.client.create_registered_model(name)
        except Exception as exc:
            if error_code(exc) != "RESOURCE_ALREADY_EXISTS":
                raise
        # MLflow 3 logged models ("models:/m-<id>"): a server wants the id alongside the source.
        model_id = (
            model_uri.removeprefix("models:/") if model_uri.startswith("models:/m-") else None
        )
        tags = {k: str(v)[:MAX_TAG_CHARS] for k, v in tags.items()}
        mv = self.client.create_model_version(
            name, model_uri, run_id=run_id, tags=tags, model_id=model_id
        )
        return self._version(mv)

    def get_version(self, name: str, version: str) -> VersionInfo:
        return self._version(self.client.get_model_version(name, str(version)))

    def alias(self, name: str, alias: str = CHAMPION) -> VersionInfo | None:
        try:
            return self._version(self.client.get_model_version_by_alias(name, alias))
        except RegistryNotFound:
            return None  # no such model
        except Exception as exc:
            if error_code(exc) == "INVALID_PARAMETER_VALUE":
                return None  # no such alias on it
            raise

    def set_version_tags(self, name: str, version: str, tags: dict[str, Any]) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(name, str(version), key, str(value)[:MAX_TAG_CHARS])

    def describe_version(self, name: str, version: str, text: str) -> None:
        self.client.update_model_version(name, str(version), description=text)

    def move_champion(
        self, name: str, version: str, expected: str | None, *, keep_previous: bool = False
    ) -> tuple[bool, str | None]:
        """Compare-and-set: point `champion` at `version` only if it is still `expected`.

        The old champion becomes `previous` (unless `keep_previous`, used by rollbacks).
        Returns (moved, champion_before). Callers serialise through a one-slot pool, so
        the read and the write here are not interleaved with another promotion.
        """
        current = self.alias(name, CHAMPION)
        before = current.version if current else None
        if before == str(version):  # a retry after the move succeeded: nothing left to do
            return True, expected
        if before != expected:
            return False, before
        if before is not None and not keep_previous:
            self.client.set_registered_model_alias(name, PREVIOUS, before)
        self.client.set_registered_model_alias(name, CHAMPION, str(version))
        return True, before

    def load_model(self, uri: str) -> Any:
        import mlflow.sklearn

        self._fluent()
        with self._translated(f"load {uri}"):
            return mlflow.sklearn.load_model(uri)

    def load_champion_pyfunc(self, name: str, alias: str = CHAMPION) -> tuple[Any, str | None]:
        """`models:/<name>@<alias>` loaded as any MLflow consumer loads it (pyfunc), with the
        version it resolved to; (None, None) when there is no such alias."""
        import mlflow.pyfunc

        self._fluent()
        for _ in range(3):  # the alias may move while loading: load until it stands still
            before = self.alias(name, alias)
            if before is None:
                return None, None
            with self._translated(f"load models:/{name}@{alias}"):
                model = mlflow.pyfunc.load_model(f"models:/{name}@{alias}")
            after = self.alias(name, alias)
            if after is not None and after.version == before.version:
                return model, before.version
        raise RegistryError(f"{name}@{alias} kept moving while it was being loaded")

    def input_columns(self, uri: str) -> list[str] | None:
        from mlflow.models import get_model_info

        self._fluent()
        with self._translated(f"read the signature of {uri}"):
            signature = get_model_info(uri).signature
        return None if signature is None else list(signature.inputs.input_names())


@contextlib.contextmanager
def _without_int_hint() -> Iterator[None]:
    """MLflow warns, for every frame with an int column it infers a schema of, that
    missing values would break it. The spec declares the model's inputs (a nullable int
    column takes both, `mlflow_schema.input_schema`) and dataset schemas are not enforced:
    the hint is not repeated into every training log."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="Hint: Inferred schema contains integer column", category=UserWarning
        )
        # MLflow registers its local-file dataset source twice and says so on every logged
        # dataset; it picks the right one either way.
        warnings.filterwarnings(
            "ignore", message="The specified dataset source can be interpreted in multiple ways"
        )
        yield
