"""What every stage works with: the model's spec, its stores, and which run it serves.

A DAG task builds a Workspace from its Airflow Connections (one per task); the backtest
builds one per replayed policy, on its own storage root and MLflow store, and shares a
Memo between them so that a model trained on the same data and spec is fitted once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelkeeper.contracts.spec import ModelSpec
    from modelkeeper.data.storage import Storage
    from modelkeeper.monitoring.history import History
    from modelkeeper.records.audit import AuditLog
    from modelkeeper.records.registry import Registry


@dataclass(frozen=True)
class Fitted:
    """A fitted pipeline logged to MLflow, ready to be registered under any name."""

    model: Any
    model_uri: str
    mlflow_run_id: str  # the run that logged it
    fit_seconds: float


@dataclass
class Memo:
    """In-process caches, keyed by what makes their values immutable.

    `models`: loaded models by their logged-model source (a version's `models:/m-…`
    source never changes). `fits`: fitted pipelines by (data snapshot hash, spec's
    training fingerprint). `scores`: a model's metrics on a frame, by (model source,
    frame key, with slices): the same model scored on the same rows scores the same. A DAG task has a fresh Memo; the backtest shares one between
    policies, which is why comparing four policies costs little more than one.
    """

    models: dict[str, Any] = field(default_factory=dict)
    fits: dict[tuple[str, str], Fitted] = field(default_factory=dict)
    frames: dict[str, Any] = field(default_factory=dict)  # artifacts read by run and path
    scores: dict[tuple[str, str, bool], Any] = field(default_factory=dict)
    predictions: dict[tuple[str, str], Any] = field(default_factory=dict)
    predict_ms: dict[tuple[str, str], float] = field(default_factory=dict)  # per 1k rows
    shadows: dict[tuple, Any] = field(default_factory=dict)  # shadow-recipe fits


@dataclass
class Workspace:
    """The model a stage acts on and the stores it reads and writes.

    `model_name` is the registered model (default: the spec's); the backtest gives each
    policy its own, on a shared storage root. `history` and `audit` may be None where
    nobody reads them (the backtest keeps its own records). `reports`: write the pages
    people read (Data Docs, drift report, model card); the backtest writes none.
    """

    spec: ModelSpec
    storage: Storage
    registry: Registry | None  # None only for the stages that never touch MLflow (ingest)
    history: History | None = None
    audit: AuditLog | None = None
    model_name: str | None = None
    reports: bool = True
    memo: Memo = field(default_factory=Memo)

    @property
    def name(self) -> str:
        return self.model_name or self.spec.registered_model_name

    @property
    def experiment(self) -> str:
        return self.model_name or self.spec.name

    def load_model(self, source: str) -> Any:
        """A version's model (sklearn flavour), loaded once per process by its source."""
        if source not in self.memo.models:
            self.memo.models[source] = self.registry.load_model(source)
        return self.memo.models[source]

    def score(self, source: str, frame_key: str, frame: Any, *, slices: bool = True) -> Any:
        """The model at `source` scored on `frame` (modeling.evaluation's metrics), once
        per process for the frame known as `frame_key` (a file path or a content hash),
        from the predictions `predict` made once."""
        from modelkeeper.modeling.evaluation import score_predictions

        key = (source, frame_key, slices)
        if key not in self.memo.scores:
            y_pred, proba = self.predict(source, frame_key, frame)
            latency = self.memo.predict_ms.get((source, frame_key))
            self.memo.scores[key] = score_predictions(
                frame, y_pred, proba, self.spec, slices=slices, latency=latency
            )
        return self.memo.scores[key]

    def predict(self, source: str, frame_key: str, frame: Any) -> tuple[Any, Any]:
        """(predicted values or classes, positive-class probability or None) of the model
        at `source` on `frame`, once per process for the frame known as `frame_key`."""
        from modelkeeper.modeling.evaluation import predict
        from modelkeeper.modeling.training import features_frame

        key = (source, frame_key)
        if key not in self.memo.predictions:
            import time

            model = self.load_model(source)
            X = features_frame(frame, self.spec)
            started = time.perf_counter()
            self.memo.predictions[key] = predict(model, X, self.spec.target.task)
            self.memo.predict_ms[key] = (time.perf_counter() - started) * 1e6 / max(len(X), 1)
        return self.memo.predictions[key]

    def run_frame(self, mlflow_run_id: str, artifact: str) -> Any:
        """A Parquet artifact of an MLflow run (a reference sample), read once."""
        import tempfile

        import pandas as pd

        key = f"{mlflow_run_id}/{artifact}"
        if key not in self.memo.frames:
            with tempfile.TemporaryDirectory() as tmp:
                path = self.registry.download(mlflow_run_id, artifact, tmp)
                self.memo.frames[key] = pd.read_parquet(path)
        return self.memo.frames[key].copy()


@dataclass(frozen=True)
class Run:
    """Which run a stage serves: the DAG run (or backtest step) whose outputs it keys."""

    run_id: str
    dag_id: str = ""
    mlflow_run_id: str | None = None
    who: str = "scheduler"


def open_run(
    ws: Workspace, run: Run, tags: dict[str, str] | None = None, run_name: str | None = None
) -> Run:
    """`run` with its MLflow run: created by the first stage that needs one, then resumed
    (a retry or a cleared run finds it again by the run id)."""
    from dataclasses import replace

    from modelkeeper.contracts import lineage as L

    tags = {L.SPEC_HASH: ws.spec.fingerprint(), L.OWNER: ws.spec.owner, **(tags or {})}
    mlflow_run = ws.registry.ensure_run(ws.experiment, run.run_id, tags=tags, run_name=run_name)
    return replace(run, mlflow_run_id=mlflow_run)


def finish(ws: Workspace, run: Run, summary: str) -> None:
    """The run's outcome in one line on its MLflow run, which is then closed."""
    from modelkeeper.contracts import lineage as L

    if run.mlflow_run_id is not None:
        ws.registry.set_run_tags(run.mlflow_run_id, {L.OUTCOME: summary})
        ws.registry.close_run(run.mlflow_run_id, "FINISHED")
