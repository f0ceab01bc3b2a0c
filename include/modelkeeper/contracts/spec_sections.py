"""The sections of a model spec (contracts/spec.py puts them together as ModelSpec).

Each is a frozen pydantic model that refuses unknown keys: a typo in a YAML file is an
error naming the field, not a setting silently ignored.
"""

from __future__ import annotations

import importlib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from modelkeeper.contracts.errors import SpecError
from modelkeeper.contracts.lineage import NotifyEvent


class Strict(BaseModel):
    # Unknown keys are typos until proven otherwise.
    model_config = ConfigDict(extra="forbid", frozen=True)


class FileSource(Strict):
    kind: Literal["files"]
    path: str = Field(
        description="Glob of CSV/Parquet files: a local path (relative to the storage root) or a URI"
    )
    format: Literal["parquet", "csv"] = "parquet"


class SqlSource(Strict):
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


class ColumnRule(Strict):
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


class DataSchema(Strict):
    timestamp_column: str
    columns: list[ColumnRule]
    min_rows: int = Field(1, ge=1)
    max_rows: int | None = None
    extra_columns: Literal["warn", "fail"] = "warn"
    unique_key: list[str] | None = Field(
        None, description="columns that identify a row (see duplicates)"
    )
    duplicates: Literal["refuse", "keep_last"] = Field(
        "refuse",
        description="rows of one batch (one file or several) that repeat a unique_key: "
        "refuse the batch, or keep the last one (file order, then row order) and say how many "
        "were dropped; either way the count is reported",
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


class Features(Strict):
    numeric: list[str] = []
    categorical: list[str] = []

    @property
    def all(self) -> list[str]:
        return [*self.numeric, *self.categorical]


class Target(Strict):
    column: str
    task: Literal["classification", "regression"] = "classification"


class Estimator(Strict):
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


class Guardrail(Strict):
    name: str
    tolerance: float = Field(0.0, ge=0, description="how much worse than the champion it may get")


class Metrics(Strict):
    primary: str
    guardrails: list[Guardrail] = []


class ColumnDrift(Strict):
    method: str | None = Field(
        None, description="Evidently stattest name, e.g. wasserstein, jensenshannon, psi"
    )
    threshold: float | None = None


class Drift(Strict):
    share_threshold: float = Field(
        0.5, gt=0, le=1, description="retrain when this share of columns drifts"
    )
    sample_rows: int = Field(
        20_000, ge=100, description="rows sampled from each side before Evidently runs"
    )
    columns: dict[str, ColumnDrift] = {}
    trigger: Literal["never", "fixed", "calibrated"] | None = Field(
        None,
        description="whether drift retrains by itself: never (evidence only), fixed (at "
        "share_threshold) or calibrated (above what the champion's own reference shows by "
        "chance); default: fixed when share_threshold is set, else never",
    )


class Window(Strict):
    training_days: int = Field(56, ge=1, description="days of accepted data to train on")
    holdout_days: int = Field(7, ge=1, description="most recent days held out for evaluation")


class ShadowChallenger(Strict):
    """A cheap challenger scored beside the champion on each labelled batch: retrain when
    it is better beyond noise and by enough to matter."""

    enabled: bool = True
    sample_rows: int = Field(
        20_000, ge=100, description="accepted rows of the training window it is fitted on"
    )
    max_share: float = Field(
        0.25,
        gt=0,
        le=1,
        description="at most this share of the window's rows (a shadow costs a fraction of a "
        "full fit on small data too)",
    )
    min_rows: int = Field(
        2_000,
        ge=1,
        description="but never fewer rows than this (all of a smaller window): fitted on less, "
        "the two fits' own noise passes for a difference the new data makes",
    )
    fit_share: float = Field(
        0.25,
        gt=0,
        le=1,
        description="share of the estimator's trees or boosting iterations the shadow and its "
        "twin fit (n_estimators, or max_iter of the histogram gradient boosters)",
    )
    level: float = Field(
        0.95,
        gt=0,
        lt=1,
        description="two-sided interval of its advantage: its lower end must clear 0",
    )
    min_gain: float | None = Field(
        None,
        ge=0,
        description="advantage worth a retrain; default: the gate's min_improvement, else "
        "0.5% of the champion's metric",
    )


class ChangeDetector(Strict):
    """A CUSUM on the champion's per-batch metric against its own baseline."""

    enabled: bool = True
    false_alarm_rate: float = Field(
        1 / 52, gt=0, lt=0.5, description="false alarms per batch it is calibrated to"
    )
    warmup_batches: int = Field(
        3, ge=1, description="labelled batches after promotion that complete the baseline"
    )


class Retrain(Strict):
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
    shadow: ShadowChallenger = ShadowChallenger()
    detector: ChangeDetector = ChangeDetector()


class Promotion(Strict):
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
    paired_test: bool = Field(
        True,
        description="the gain must also clear the noise: the candidate's paired interval "
        "against the champion on the same holdout rows lies above 0",
    )
    level: float = Field(0.95, gt=0, lt=1, description="two-sided level of that interval")
    unusable_champion: Literal["approval", "refuse"] = Field(
        "approval",
        description="when the champion cannot be loaded or takes other inputs: a candidate "
        "that clears the floor and slice checks waits for a person (approval), or is refused",
    )


class Backtest(Strict):
    """How `python -m modelkeeper.backtest` replays the model's data (optional section)."""

    step_days: int = Field(7, ge=1, description="days of data that arrive in one replayed step")
    warmup_steps: int | None = Field(
        None,
        ge=1,
        description="steps ingested before the first model is trained (default: enough steps "
        "to fill window.training_days)",
    )
    windows: list[int | Literal["all"]] = Field(
        [56, "all"],
        description="other training windows (days, or all history) replayed beside the "
        "spec's own, to see whether the window matters more than the trigger",
    )


class FilesDestination(Strict):
    kind: Literal["files"]
    path: str = Field(
        description="folder for prediction Parquet files: relative to the storage root, "
        "absolute, or a URI"
    )


class SqlDestination(Strict):
    kind: Literal["sql"]
    conn_id: str = Field(description="Airflow Connection of the database to write into")
    table: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.]{0,127}$")


class Scoring(Strict):
    """Batch scoring with the champion: the `score_<model>` DAG."""

    source: FileSource | SqlSource = Field(discriminator="kind")
    key: list[str] = Field(min_length=1, description="columns identifying one prediction")
    destination: FilesDestination | SqlDestination = Field(discriminator="kind")
    schedule: str | None = None
    trigger_asset: str | None = Field(None, description="Asset whose updates trigger scoring")
    deadline_minutes: float | None = Field(
        120,
        gt=0,
        description="a score_<model> run not finished this long after it was queued raises "
        "an alarm to the owner (an Airflow deadline alert); null: no deadline",
    )


class Labels(Strict):
    """Ground truth that arrives after the prediction, joined to it by key."""

    source: FileSource | SqlSource = Field(discriminator="kind")
    key: list[str] = Field(min_length=1)
    column: str | None = Field(None, description="the label column (default: target.column)")
    expected_delay_days: float = Field(
        7,
        ge=0,
        description="how late labels usually come: a prediction still without its label this "
        "long after it was scored raises an alarm to the owner (monitor_<model>'s measure)",
    )
    trigger_asset: str | None = Field(None, description="Asset whose updates bring labels")
    min_rows: int = Field(200, ge=1, description="labelled rows a window needs to be measured")


class SliceFloor(Strict):
    column: str
    floor: float


class MonitoringPolicy(Strict):
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


class Notify(Strict):
    """Who is told what, through Airflow's notifiers."""

    email: list[str] = Field([], description="addresses for SmtpNotifier (smtp_default)")
    webhook_conn_id: str | None = Field(
        None, description="an HTTP Connection a JSON message is POSTed to"
    )
    on: list[NotifyEvent] = list(NotifyEvent.__args__)
