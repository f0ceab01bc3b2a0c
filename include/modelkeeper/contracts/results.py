"""What each stage hands to the next, as typed results: the contract of the pipelines.

    collect  -> Batch                validate -> Accepted         monitor  -> Monitoring
    decide   -> RetrainDecision      train    -> Trained          evaluate -> Evaluated
    approve  -> Approval             promote  -> ChampionChange   finish   -> Finished
    score    -> Scored               watch    -> Watched          measure  -> Measured
    alarm    -> Alarm

Each is a frozen dataclass; `to_dict()` is the JSON that crosses the task boundary
(references such as paths and run ids, never data) and `from_dict()` rebuilds it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from modelkeeper.contracts import lineage as L
from modelkeeper.contracts.handoff import Handoff
from modelkeeper.contracts.jsonio import as_float

Outcome = Literal["accepted", "quarantined", "unreadable"]  # what became of a collected file


# -- ingestion: collect, validate (modelkeeper.stages.ingest) --------------------------------


@dataclass(frozen=True)
class BatchFile(Handoff):
    """One new file of a batch (for SQL, the run's query result)."""

    source: str  # path or URI as listed; "sql:<conn_id>" for a query
    key: str  # its identity in the manifest
    snapshot: str | None  # the rows as read, None when unreadable
    rows: int = 0
    start: str | None = None
    end: str | None = None
    columns: list[str] = field(default_factory=list)
    error: str | None = None  # why it could not be read
    quarantine: str | None = None  # where the unreadable bytes were copied
    relanded: bool = False  # its path was taken before, with other content

    @property
    def name(self) -> str:
        return self.source.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Unmatched(Handoff):
    """A file in the source's landing folder that its pattern does not match: not taken,
    named once (the run's manifest record keeps its identity)."""

    source: str  # path or URI
    key: str  # its identity, as a taken file's
    name: str  # relative to the landing folder ("notes.txt", "2013/week_03.parquet")


@dataclass(frozen=True)
class Batch(Handoff):
    """collect's result: the new files of a run, as references."""

    folder: str
    files: list[BatchFile]
    rows: int
    start: str | None  # earliest event time among the new rows
    end: str | None  # latest
    since: str | None  # files: the last commit before; SQL: the watermark read from
    skipped: list[str] = field(default_factory=list)  # known-unreadable files passed over
    unmatched: list[Unmatched] = field(default_factory=list)  # not named by an earlier run


@dataclass(frozen=True)
class FileOutcome(Handoff):
    source: str
    key: str
    outcome: Outcome
    rows: int
    reason: str = ""
    quarantine: str | None = None


@dataclass(frozen=True)
class Accepted(Handoff):
    """accept's result: what the run's files became, and where the accepted rows are."""

    success: bool  # every new file accepted
    summary: str
    rows: int  # accepted rows (after replacing re-landed keys within the batch)
    path: str | None  # the accepted rows of this run, one Parquet file (monitor reads it)
    start: str | None
    end: str | None
    files: list[FileOutcome] = field(default_factory=list)
    failures: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    report: str | None = None
    data_docs: str | None = None
    quarantine: str | None = None
    extra_columns: list[str] = field(default_factory=list)  # undeclared, allowed by the spec


# -- retraining: monitor, decide (stages.monitor, stages.evidence, stages.decide) ------------


@dataclass(frozen=True)
class Comparison(Handoff):
    """Model `b` against model `a` on the same rows (decisions.stats.compare): `advantage`
    > 0 means b is better, whatever the metric's direction, with a `level` two-sided
    interval [lo, hi] of the advantage."""

    metric: str
    a: float
    b: float
    advantage: float
    lo: float
    hi: float
    rows: int
    level: float
    method: str

    def significant(self, min_gain: float = 0.0) -> bool:
        """b is better beyond noise (the interval is above 0) and by at least `min_gain`."""
        return self.lo > 0 and self.advantage >= min_gain

    def describe(self) -> str:
        return (
            f"{self.metric} {self.a:.3f} → {self.b:.3f} ({self.advantage:+.4f}, "
            f"{self.level:.0%} CI [{self.lo:+.4f}, {self.hi:+.4f}], {self.rows} rows)"
        )


@dataclass(frozen=True)
class Detector(Handoff):
    """The champion's change detector after this batch (decisions.stats: CUSUM on its
    per-batch metric, standardised by its baseline; alarm when statistic > threshold)."""

    statistic: float
    threshold: float
    z: float | None = None  # this batch's standardised shortfall (None while warming up)
    baseline: float | None = None
    sd: float | None = None
    batches: int = 0  # labelled batches this champion has been measured on
    alarm: bool = False
    note: str = ""

    def describe(self) -> str:
        state = "ALARM" if self.alarm else "ok"
        base = "" if self.baseline is None else f", baseline {self.baseline:.3f} ± {self.sd:.3f}"
        return f"detector {self.statistic:.2f} / {self.threshold:.2f} {state}{base}" + (
            f" ({self.note})" if self.note else ""
        )


@dataclass(frozen=True)
class Shadow(Handoff):
    """Would retraining pay off? The shadow (a cheap fit on the window before this batch)
    against the champion's twin (the same recipe on the champion's rows), both scored on
    the batch (stages.shadow): `comparison.a` is the twin's metric, `b` the shadow's."""

    comparison: Comparison
    train_rows: int
    fit_seconds: float  # the shadow's fit (CPU seconds)
    twin_seconds: float = 0.0  # the twin's fit (once per champion in a process)
    baseline: float | None = None  # the champion's metric on its own holdout: the scale
    champion: float | None = None  # the champion's own metric on the batch, for context


@dataclass(frozen=True)
class Monitoring(Handoff):
    champion_version: str | None
    batch_rows: int
    drift_share: float | None = None
    drift_summary: str | None = None
    champion_metric: float | None = None  # primary metric of the champion on the new batch
    champion_metrics: dict[str, float] = field(default_factory=dict)  # all of its metrics there
    trained_version: str | None = None  # a version this DAG run registered already (a rerun)
    champion_problem: str | None = None  # why the champion could not be measured at all
    # Days from the newest row the champion learned from (or was held out on) to the newest
    # row of the new batch: how stale it is (spec retrain.max_age_days).
    champion_age_days: float | None = None
    drift_threshold: float | None = None  # calibrated on the champion's reference
    detector: Detector | None = None
    shadow: Shadow | None = None
    shadow_note: str | None = None  # why there is no shadow, when the spec asks for one
    held_back: str | None = None  # a refused candidate holds age/floor/detector triggers


@dataclass(frozen=True)
class RetrainDecision(Handoff):
    retrain: bool
    reason: str
    # What triggered a retrain: "shadow", "detector", "drift", "floor" (alarms), "age",
    # "alarm" (the monitor DAG's); empty for a person, a first model or a rerun.
    triggers: list[str] = field(default_factory=list)


# -- retraining: train, evaluate, approve, promote, finish -----------------------------------


@dataclass(frozen=True)
class Trained(Handoff):
    """The registered candidate and the data it was trained and held out on."""

    mlflow_run_id: str
    version: str | None  # None: nothing new to train on (see note)
    model_uri: str | None
    holdout_path: str
    data_snapshot_hash: str
    train_rows: int
    holdout_rows: int
    train_start: str
    train_end: str
    holdout_start: str
    holdout_end: str
    note: str = ""  # why no version was registered, when none was
    twin_version: str | None = None  # the version already trained on this data and spec
    outcome: str = ""  # the run's one-line outcome when no version was registered
    fit_seconds: float = 0.0  # CPU seconds of the fit (the same data's fit, when reused)
    train_path: str = ""  # the rows it was trained on (beside holdout_path)


@dataclass(frozen=True)
class ModelScore(Handoff):
    metrics: dict[str, float]
    rows: int
    classes: list[Any] = field(default_factory=list)
    slices: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    latency_ms_per_1k: float | None = None

    @classmethod
    def from_dict(cls, data: Any) -> ModelScore:
        score = super().from_dict(data)
        # JSON carried undefined metrics (r2 on one row) as "NaN": numbers again.
        metrics = {k: as_float(v) for k, v in score.metrics.items()}
        slices = {
            col: {val: {k: as_float(v) for k, v in m.items()} for val, m in per.items()}
            for col, per in score.slices.items()
        }
        return cls(metrics, score.rows, score.classes, slices, score.latency_ms_per_1k)


@dataclass(frozen=True)
class Decision(Handoff):
    promote: bool
    reason: str
    checks: list[str] = field(default_factory=list)
    candidate_version: str | None = None
    champion_version: str | None = None
    # Blessed, but only a person may promote it (no usable champion to compare with).
    needs_approval: bool = False

    @property
    def verdict(self) -> str:
        return "BLESSED" if self.promote else "NOT_BLESSED"

    def to_dict(self) -> dict:
        return {**super().to_dict(), "verdict": self.verdict}  # for a person reading XCom


@dataclass(frozen=True)
class Evaluated(Handoff):
    """Challenger and champion scored on the same holdout, and the gate's decision."""

    decision: Decision
    candidate: ModelScore
    candidate_version: str
    mlflow_run_id: str
    champion: ModelScore | None = None
    # What the alias pointed at when the gate decided: promote's compare-and-set.
    champion_version: str | None = None
    comparison: Comparison | None = None  # candidate against champion, paired on the holdout
    holdout_end: str | None = None  # newest row of that holdout


@dataclass(frozen=True)
class Approval(Handoff):
    """A person's answer in approval mode (`asked` is False when nobody was asked)."""

    asked: bool
    approved: bool = False
    by: str | None = None
    note: str = ""

    @property
    def rejected(self) -> bool:
        return self.asked and not self.approved


@dataclass(frozen=True)
class ChampionChange(Handoff):
    """What happened to the alias, in the words the audit trail and the UI show."""

    action: L.Action
    reason: str
    champion_before: str | None
    champion_after: str | None
    candidate_version: str | None
    mode: str
    who: str

    @property
    def summary(self) -> str:
        lead = f"{self.action}:"
        return self.reason if self.reason.startswith(lead) else f"{lead} {self.reason}"


@dataclass(frozen=True)
class Finished(Handoff):
    """The run's outcome in one line, as finish logged it and tagged it on the MLflow run."""

    summary: str
    mlflow_run_id: str | None = None


@dataclass(frozen=True)
class Reconciled(Handoff):
    """Whether the registry's champion agrees with the audit trail."""

    ok: bool
    message: str


@dataclass(frozen=True)
class Measurement(Handoff):
    """One number about one model version over one window: a realized or estimated metric,
    overall or for one value of a slice column, a drift share, a detector statistic... A
    row of the monitoring history (monitoring.history); `model` and `version` are left
    empty by the code that computes a number and filled by the stage that records it."""

    model: str
    kind: str  # monitoring.history.Kind
    metric: str
    value: float | None
    version: str | None = None
    window_start: str | None = None  # ISO, inclusive
    window_end: str | None = None  # ISO, exclusive
    rows: int | None = None  # the rows it was measured on
    slice_column: str | None = None
    slice_value: str | None = None
    run_id: str | None = None
    dag_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    recorded_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    @classmethod
    def from_dict(cls, data: Any) -> Measurement:
        m = super().from_dict(data)
        value = None if m.value is None else float(as_float(m.value))
        return cls(**{**{f: getattr(m, f) for f in m.__dataclass_fields__}, "value": value})

    def key(self) -> str:
        """The history row's identity: a retried task writes nothing twice."""
        parts = (self.model, self.dag_id, self.run_id, self.kind, self.metric, self.version)
        where = (self.window_start, self.slice_column, self.slice_value)
        return "|".join(str(p) for p in (*parts, *where))

    @property
    def series_key(self) -> tuple[str | None, str | None, str | None, str]:
        """What a realized and an estimated measurement of the same thing share."""
        return (self.window_start, self.slice_column, self.slice_value, self.metric)


# -- the champion at work: score, watch, measure, alarm (stages.serve, stages.measure) -------


@dataclass(frozen=True)
class Scored(Handoff):
    """score's result: what was predicted, by which version, how fast, written where."""

    version: str | None
    rows: int  # predictions written
    skipped_known: int = 0  # keys this version had predicted already
    failed: int = 0  # rows the model could not score
    p50_ms_per_1k: float | None = None
    p95_ms_per_1k: float | None = None
    log_files: list[str] | None = None
    destination: str | None = None
    path: str | None = None  # this run's predictions, one Parquet file (monitoring reads it)
    note: str = ""
    # The features of every row scored, when earlier runs' owed rows were caught up too
    # (serving.pending); else None and watch reads validate's accepted rows.
    rows_path: str | None = None
    caught_up: list[str] = field(default_factory=list)  # the earlier runs whose rows those were


@dataclass(frozen=True)
class Watched(Handoff):
    """watch's result: drift and quality of one scored batch."""

    version: str | None
    rows: int
    drift_share: float | None = None
    drift_summary: str | None = None
    prediction_drift: dict | None = None
    worst_quality: dict | None = None


@dataclass(frozen=True)
class Measured(Handoff):
    """measure's result: realized and estimated metrics of the windows it looked at."""

    joined: int  # predictions that have their label now
    pending: int  # predictions still waiting for one
    measurements: list[dict]  # the primary metric's, for the alarm
    unmatched: int = 0  # labels of the open windows whose key no prediction has (yet)
    overdue: int = 0  # predictions still unlabelled labels.expected_delay_days after scoring
    overdue_since: str | None = None  # when the oldest of those was scored


@dataclass(frozen=True)
class Alarm(Handoff):
    """Why the champion needs retraining, or why not; `status` fired/suppressed/none."""

    status: str  # "fired", "suppressed" (cooldown) or "none"
    reason: str
    kinds: list[str]
    version: str | None = None  # the version serving: whose measurements these are
    last_fired: str | None = None  # when the last alarm that fired was recorded
    detector: Detector | None = None  # that version's detector after its last window
