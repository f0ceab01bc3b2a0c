"""What each stage of `retrain_<model>` hands to the next, as typed results.

The contract of the pipeline in one place (collect's Batch and validate's Accepted live
with ingestion, monitor's Monitoring and decide's RetrainDecision with the retrain rule,
the ChampionChange of promote / rollback / rejection with governance):

    collect  -> ingest.Batch         validate -> ingest.Accepted  monitor  -> Monitoring
    decide   -> RetrainDecision      train    -> Trained          evaluate -> Evaluated
    approve  -> Approval             promote  -> ChampionChange   finish   -> Finished

Each is a frozen dataclass; `to_dict()` is the JSON that crosses the task boundary
(references such as paths and run ids, never data) and `from_dict()` rebuilds it.
"""

from __future__ import annotations

from dataclasses import dataclass

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
