"""What each stage of `retrain_<model>` hands to the next, as typed results.

The contract of the pipeline in one place (monitor's Monitoring and decide's
RetrainDecision live with the retrain rule, the ChampionChange of promote / rollback /
rejection with governance):

    collect  -> Batch                validate -> Accepted         monitor  -> Monitoring
    decide   -> RetrainDecision      train    -> Trained          evaluate -> Evaluated
    approve  -> Approval             promote  -> ChampionChange   finish   -> Finished

Each is a frozen dataclass; `to_dict()` is the JSON that crosses the task boundary
(references such as paths and run ids, never data) and `from_dict()` rebuilds it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from modelkeeper.contracts.handoff import Handoff
from modelkeeper.decisions.promotion import Decision
from modelkeeper.modeling.evaluation import ModelScore


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
class Finished(Handoff):
    """The run's outcome in one line, as finish logged it and tagged it on the MLflow run."""

    summary: str
    mlflow_run_id: str | None = None


@dataclass(frozen=True)
class Reconciled(Handoff):
    """Whether the registry's champion agrees with the audit trail."""

    ok: bool
    message: str


# -- ingestion (modelkeeper.data.collect, modelkeeper.data.accept) ---------------------------

Outcome = Literal["accepted", "quarantined", "unreadable"]


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
class Batch(Handoff):
    """collect's result: the new files of a run, as references."""

    folder: str
    files: list[BatchFile]
    rows: int
    start: str | None  # earliest event time among the new rows
    end: str | None  # latest
    since: str | None  # files: the last commit before; SQL: the watermark read from
    skipped: list[str] = field(default_factory=list)  # known-unreadable files passed over


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
