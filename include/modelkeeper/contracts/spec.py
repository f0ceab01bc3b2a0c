"""Typed model spec: one YAML file per model under include/models/.

Adding a model means adding a file; every field is validated here so a bad spec
fails at load time with an error naming the field.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml
from pydantic import ConfigDict, Field, ValidationError, model_validator

from modelkeeper.contracts.errors import SpecError
from modelkeeper.contracts.jsonio import dumps
from modelkeeper.contracts.metric_names import CLASSIFICATION, REGRESSION
from modelkeeper.contracts.settings import settings
from modelkeeper.contracts.spec_sections import (
    Backtest,
    ColumnDrift,
    ColumnRule,
    DataSchema,
    Drift,
    Estimator,
    Features,
    FileSource,
    Labels,
    Metrics,
    MonitoringPolicy,
    Notify,
    Promotion,
    Retrain,
    Scoring,
    SqlSource,
    Strict,
    Target,
    Window,
)

# The sections callers import from here (their home is spec_sections.py).
__all__ = [
    "ColumnDrift",
    "ColumnRule",
    "DataSchema",
    "Estimator",
    "FileSource",
    "ModelSpec",
    "Notify",
    "SpecError",
    "SqlSource",
    "Window",
    "get_spec",
    "load_spec",
    "load_specs",
    "spec_dir",
    "valid_specs",
]


class ModelSpec(Strict):
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
    def feature_rules(self) -> list[ColumnRule]:
        """The schema's rules of the features, in the features' order (the model's inputs)."""
        return [self.data_schema.column(name) for name in self.features.all]

    @property
    def row_keys(self) -> list[list[str]]:
        """Every key that identifies a row of this model's data: `schema.unique_key`, the
        scoring key and the labels key, each once. Whichever path reads a file (training
        ingestion, scoring rows, labels), its rows must not repeat any of these keys whose
        columns the path reads (`schema.duplicates` says refuse, or keep the last): one file,
        one verdict. A stream's spec (data/streams.py) has its own key as `unique_key`."""
        keys: list[list[str]] = []
        sections = (self.scoring, self.labels)
        for key in (self.data_schema.unique_key, *(s.key if s else None for s in sections)):
            if key and list(key) not in keys:
                keys.append(list(key))
        return keys

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
