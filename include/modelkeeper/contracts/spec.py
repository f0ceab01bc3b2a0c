"""Typed model spec: one YAML file per model under include/models/.

Adding a model means adding a file; every field is validated here so a bad spec
fails at load time with an error naming the field.
"""

from __future__ import annotations

import hashlib
import importlib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from modelkeeper.contracts.errors import SpecError
from modelkeeper.contracts.jsonio import dumps
from modelkeeper.contracts.lineage import NotifyEvent
from modelkeeper.contracts.metric_names import CLASSIFICATION, REGRESSION
from modelkeeper.contracts.settings import settings

__all__ = [
    "ModelSpec",
    "SpecError",
    "get_spec",
    "load_spec",
    "load_specs",
    "spec_dir",
    "valid_specs",
]


class _Strict(BaseModel):
    # Unknown keys are typos until proven otherwise.
    model_config = ConfigDict(extra="forbid", frozen=True)


class FileSource(_Strict):
    kind: Literal["files"]
    path: str = Field(
        description="Glob of CSV/Parquet files: a local path (relative to the storage root) or a URI"
    )
    format: Literal["parquet", "csv"] = "parquet"


class SqlSource(_Strict):
    kind: Literal["sql"]
    conn_id: str = Field(description="Airflow Connection to run the query through")
    query: str = Field(
        description="SELECT returning the schema columns; '{watermark}' becomes the last "
        "accepted event time minus the lookback"
    )
    lookback_minutes: float = Field(
        60,
        ge=0,
        description="re-read this far behind the watermark and drop rows already taken "
        "(by schema.unique_key): rows committed late within it are taken exactly once",
    )


class ColumnRule(_Strict):
    name: str
    dtype: Literal["float", "int", "category", "datetime", "bool"]
    nullable: bool = True
    min: float | None = None
    max: float | None = None
    allowed: list[str] | None = None
    max_unseen_share: float = Field(
        0.0, ge=0, le=1, description="share of values outside `allowed` tolerated"
    )
    max_null_share: float = Field(
        0.5, ge=0, le=1, description="share of nulls tolerated in a nullable column"
    )

    @model_validator(mode="after")
    def _range(self) -> ColumnRule:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"column {self.name!r}: min {self.min} > max {self.max}")
        if self.allowed is not None and self.dtype != "category":
            raise ValueError(f"column {self.name!r}: `allowed` only applies to dtype category")
        return self


class DataSchema(_Strict):
    timestamp_column: str
    columns: list[ColumnRule]
    min_rows: int = Field(1, ge=1)
    max_rows: int | None = None
    extra_columns: Literal["warn", "fail"] = "warn"
    unique_key: list[str] | None = Field(
        None, description="columns that identify a row; duplicates fail"
    )

    @field_validator("columns")
    @classmethod
    def _unique(cls, columns: list[ColumnRule]) -> list[ColumnRule]:
        names = [c.name for c in columns]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate column names: {dupes}")
        return columns

    def column(self, name: str) -> ColumnRule:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


class Features(_Strict):
    numeric: list[str] = []
    categorical: list[str] = []

    @property
    def all(self) -> list[str]:
        return [*self.numeric, *self.categorical]


class Target(_Strict):
    column: str
    task: Literal["classification", "regression"] = "classification"


class Estimator(_Strict):
    class_path: str = Field(
        description="import path, e.g. sklearn.ensemble.HistGradientBoostingClassifier"
    )
    params: dict[str, Any] = {}

    @field_validator("class_path")
    @classmethod
    def _path(cls, value: str) -> str:
        if "." not in value:
            raise ValueError(f"{value!r} is not a dotted import path")
        return value

    def load_class(self) -> type:
        module, _, name = self.class_path.rpartition(".")
        try:
            return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as exc:
            raise SpecError(
                f"estimator.class_path {self.class_path!r} cannot be imported: {exc}"
            ) from exc


class Guardrail(_Strict):
    name: str
    tolerance: float = Field(0.0, ge=0, description="how much worse than the champion it may get")


class Metrics(_Strict):
    primary: str
    guardrails: list[Guardrail] = []


class ColumnDrift(_Strict):
    method: str | None = Field(
        None, description="Evidently stattest name, e.g. wasserstein, jensenshannon, psi"
    )
    threshold: float | None = None


class Drift(_Strict):
    share_threshold: float = Field(
        0.5, gt=0, le=1, description="retrain when this share of columns drifts"
    )
    sample_rows: int = Field(
        20_000, ge=100, description="rows sampled from each side before Evidently runs"
    )
    columns: dict[str, ColumnDrift] = {}


class Window(_Strict):
    training_days: int = Field(56, ge=1, description="days of accepted data to train on")
    holdout_days: int = Field(7, ge=1, description="most recent days held out for evaluation")


class Retrain(_Strict):
    performance_floor: float | None = Field(
        None, description="retrain when the champion's primary metric on the new batch falls below"
    )
    min_new_rows: int = Field(
        1, ge=0, description="rows a batch needs before the champion is scored on it"
    )
    max_age_days: int | None = Field(
        None,
        ge=1,
        description="retrain when the champion's data ends this many days before the new batch's",
    )


class Promotion(_Strict):
    mode: Literal["auto", "dry_run", "approval"] = "auto"
    min_improvement: float = Field(
        0.0, ge=0, description="absolute improvement of the primary metric required"
    )
    min_relative_improvement: float = Field(0.0, ge=0)
    floor: float | None = Field(None, description="a first model must reach this primary metric")
    min_eval_rows: int = Field(100, ge=1)
    slices: list[str] = []
    max_slice_gap: float | None = None
    min_slice_rows: int = Field(50, ge=1)
    max_latency_ratio: float | None = Field(
        None, gt=0, description="candidate predict time / champion's, at most"
    )
    unusable_champion: Literal["approval", "refuse"] = Field(
        "approval",
        description="when the champion cannot be loaded or takes other inputs: a candidate "
        "that clears the floor and slice checks waits for a person (approval), or is refused",
    )


class Backtest(_Strict):
    """How `python -m modelkeeper.backtest` replays the model's data (optional section)."""

    step_days: int = Field(7, ge=1, description="days of data that arrive in one replayed step")
    warmup_steps: int | None = Field(
        None,
        ge=1,
        description="steps ingested before the first model is trained (default: enough steps "
        "to fill window.training_days)",
    )


class FilesDestination(_Strict):
    kind: Literal["files"]
    path: str = Field(
        description="folder for prediction Parquet files: relative to the storage root, "
        "absolute, or a URI"
    )


class SqlDestination(_Strict):
    kind: Literal["sql"]
    conn_id: str = Field(description="Airflow Connection of the database to write into")
    table: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.]{0,127}$")


class Scoring(_Strict):
    """Batch scoring with the champion: the `score_<model>` DAG."""

    source: FileSource | SqlSource = Field(discriminator="kind")
    key: list[str] = Field(min_length=1, description="columns identifying one prediction")
    destination: FilesDestination | SqlDestination = Field(discriminator="kind")
    schedule: str | None = None
    trigger_asset: str | None = Field(None, description="Asset whose updates trigger scoring")


class Labels(_Strict):
    """Ground truth that arrives after the prediction, joined to it by key."""

    source: FileSource | SqlSource = Field(discriminator="kind")
    key: list[str] = Field(min_length=1)
    column: str | None = Field(None, description="the label column (default: target.column)")
    expected_delay_days: float = Field(7, ge=0, description="how late labels usually come")
    trigger_asset: str | None = Field(None, description="Asset whose updates bring labels")
    min_rows: int = Field(200, ge=1, description="labelled rows a window needs to be measured")


class SliceFloor(_Strict):
    column: str
    floor: float


class MonitoringPolicy(_Strict):
    """Alarms raised from what scoring and late labels show (the `monitor_<model>` DAG)."""

    schedule: str | None = "@daily"
    drift_share: float | None = Field(
        None, gt=0, le=1, description="alarm when this share of columns drifts in a scored batch"
    )
    metric_floor: float | None = Field(
        None, description="alarm when the realized or estimated primary metric falls below"
    )
    slice_floors: list[SliceFloor] = []
    min_rows: int = Field(500, ge=1, description="rows a measurement needs to raise an alarm")
    window_days: int = Field(7, ge=1, description="length of a measured window")
    window_anchor: str = Field(
        "1970-01-05", description="a day windows start on (default: Mondays)"
    )
    cooldown_hours: float = Field(
        72, ge=0, description="no second alarm-triggered retrain within this long"
    )


class Notify(_Strict):
    """Who is told what, through Airflow's notifiers."""

    email: list[str] = Field([], description="addresses for SmtpNotifier (smtp_default)")
    webhook_conn_id: str | None = Field(
        None, description="an HTTP Connection a JSON message is POSTed to"
    )
    on: list[NotifyEvent] = list(NotifyEvent.__args__)


class ModelSpec(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")
    owner: str
    description: str
    intended_use: str = ""
    limitations: str = ""
    tags: list[str] = []
    schedule: str | None = "@weekly"
    trigger_asset: str | None = Field(
        None, description="Airflow Asset name whose updates also trigger retraining"
    )
    source: FileSource | SqlSource = Field(discriminator="kind")
    data_schema: DataSchema = Field(alias="schema")
    features: Features
    target: Target
    estimator: Estimator
    metrics: Metrics
    drift: Drift = Drift()
    window: Window = Window()
    retrain: Retrain = Retrain()
    promotion: Promotion = Promotion()
    scoring: Scoring | None = None
    labels: Labels | None = None
    monitoring: MonitoringPolicy | None = None
    notify: Notify = Notify()
    backtest: Backtest = Backtest()

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _columns_declared(self) -> ModelSpec:
        declared = {c.name for c in self.data_schema.columns}
        needed = [*self.features.all, self.target.column, self.data_schema.timestamp_column]
        needed += self.promotion.slices
        missing = [c for c in needed if c not in declared]
        if missing:
            raise ValueError(
                f"columns used by features/target/slices but not declared in schema.columns: {missing}"
            )
        overlap = set(self.features.numeric) & set(self.features.categorical)
        if overlap:
            raise ValueError(f"features both numeric and categorical: {sorted(overlap)}")
        if self.target.column in self.features.all:
            raise ValueError(f"target {self.target.column!r} is also a feature")
        if not self.features.all:
            raise ValueError("features: at least one numeric or categorical feature is required")
        if isinstance(self.source, SqlSource) and not self.data_schema.unique_key:
            raise ValueError(
                "schema.unique_key is required with a SQL source: re-read rows (the lookback, "
                "rows tying the watermark) are told apart from new ones by it"
            )
        undeclared_key = [c for c in self.data_schema.unique_key or [] if c not in declared]
        if undeclared_key:
            raise ValueError(
                f"schema.unique_key: columns not declared in schema.columns: {undeclared_key}"
            )
        unknown_drift = [
            c for c in self.drift.columns if c not in self.features.all and c != "prediction"
        ]
        if unknown_drift:
            raise ValueError(f"drift.columns: not features (or 'prediction'): {unknown_drift}")
        for where, section in (("scoring", self.scoring), ("labels", self.labels)):
            bad = [c for c in (section.key if section else []) if c not in declared]
            if bad:
                raise ValueError(f"{where}.key: columns not declared in schema.columns: {bad}")
        if self.labels is not None and self.labels.column not in (None, self.target.column):
            if self.labels.column not in declared:
                raise ValueError(f"labels.column {self.labels.column!r} is not a declared column")
        if self.monitoring is not None:
            bad = [f.column for f in self.monitoring.slice_floors if f.column not in declared]
            if bad:
                raise ValueError(f"monitoring.slice_floors: columns not declared: {bad}")
        if self.labels is not None and self.scoring is None:
            raise ValueError("labels: needs a scoring section (labels are joined to predictions)")
        known = CLASSIFICATION if self.target.task == "classification" else REGRESSION
        names = {
            "metrics.primary": [self.metrics.primary],
            "metrics.guardrails": [g.name for g in self.metrics.guardrails],
        }
        for where, values in names.items():
            bad = [v for v in values if v not in known]
            if bad:
                raise ValueError(
                    f"{where}: unknown {self.target.task} metric(s) {bad}; known: {sorted(known)}"
                )
        return self

    @property
    def registered_model_name(self) -> str:
        return self.name

    @property
    def dag_id(self) -> str:
        return f"retrain_{self.name}"

    @property
    def score_dag_id(self) -> str:
        return f"score_{self.name}"

    @property
    def monitor_dag_id(self) -> str:
        return f"monitor_{self.name}"

    @property
    def label_column(self) -> str:
        return (self.labels.column if self.labels else None) or self.target.column

    def fingerprint(self) -> str:
        """Stable hash of the spec's content, tagged on every MLflow run."""
        # Sorted keys: reordering a mapping in the YAML is not a change of the spec.
        blob = dumps(self.model_dump(mode="json", by_alias=True), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def spec_dir() -> Path:
    return settings().spec_dir


def _format_errors(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        lines.append(f"  {where}: {err['msg']}")
    return "\n".join(lines)


def load_spec(path: str | Path) -> ModelSpec:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SpecError(f"{path}: cannot read spec: {exc}") from exc
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: a spec must be a YAML mapping, got {type(raw).__name__}")
    try:
        spec = ModelSpec.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(f"{path}: invalid model spec:\n{_format_errors(exc)}") from exc
    if path.stem != spec.name:
        raise SpecError(f"{path}: file name must match name {spec.name!r}")
    return spec


def load_specs(directory: str | Path | None = None) -> tuple[list[ModelSpec], list[SpecError]]:
    """The specs that load, and the errors of those that do not: one broken file must not
    take the other models' DAGs down with it."""
    directory = Path(directory) if directory else spec_dir()
    good, bad = [], []
    for path in sorted(directory.glob("*.yaml")):
        try:
            good.append(load_spec(path))
        except SpecError as exc:
            bad.append(exc)
    return good, bad


def valid_specs(directory: str | Path | None = None) -> list[ModelSpec]:
    """The specs that load (dags/modelkeeper_spec_errors.py shows the others in the UI)."""
    return load_specs(directory)[0]


def get_spec(name: str, directory: str | Path | None = None) -> ModelSpec:
    directory = Path(directory) if directory else spec_dir()
    path = directory / f"{name}.yaml"
    if not path.exists():
        raise SpecError(f"no spec for model {name!r} in {directory}")
    return load_spec(path)
