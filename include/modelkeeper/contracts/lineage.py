"""The vocabulary: every name modelkeeper writes into MLflow and the audit trail.

Run and version tags, their values, artifact paths, registry aliases and audit actions
are spelled here and nowhere else, so a reader (or a query in the MLflow UI) can rely on
them and a rename is one edit.
"""

from __future__ import annotations

from typing import Literal

# -- registry aliases -------------------------------------------------------------------------
CHAMPION = "champion"
PREVIOUS = "previous"  # the champion before the last promotion: one-step rollback target

# -- MLflow run tags (one MLflow run per Airflow DAG run) ------------------------------------
RUN_TAG = "airflow_run_id"  # finds a DAG run's MLflow run again on retries and reruns
DAG_TAG = "airflow_dag_id"
SPEC_HASH = "spec_hash"
DATA_SNAPSHOT_HASH = "data_snapshot_hash"
OWNER = "owner"
DECISION = "decision"  # BLESSED / NOT_BLESSED
DECISION_REASON = "decision_reason"
PROMOTION = "promotion"  # what promote (or a rejection) did: promoted, kept, refused, ...
PROMOTION_REASON = "promotion_reason"
OUTCOME = "outcome"  # finish's one-line summary of the DAG run
RUN_URL = "airflow_run_url"  # the Airflow DAG run's page, back from the MLflow run

# -- model version tags (lineage) ----------------------------------------------------------------
VALIDATION = "validation"
VALIDATION_PASSED = "passed"
VALIDATION_FAILED = "failed"
VALIDATION_REPORT = "validation_report"
TRAIN_WINDOW = "train_window"
DATA_END = "data_end"  # newest row trained or held out on: an older window never wins
JUDGED_AGAINST = "judged_against"  # the champion version the gate compared it with, or "none"
PROMOTED_BY = "promoted_by"
PROMOTED_IN = "promoted_in"
REJECTED_BY = "rejected_by"
ROLLED_BACK_BY = "rolled_back_by"
ROLLED_BACK_IN = "rolled_back_in"
ROLLED_BACK_FROM = "rolled_back_from"
# What the decisions measure a champion against (evaluate writes them on the version).
BASELINE_METRIC = "baseline_metric"  # its primary metric on its holdout
BASELINE_SD = "baseline_sd"  # that metric's sd on a batch of its holdout's size (bootstrap)
BASELINE_ROWS = "baseline_rows"
DRIFT_THRESHOLD = "drift_share_by_chance"  # the drift share its own reference shows by chance
# Newest row of a holdout on which it beat a refused challenger: it is as fresh as that.
HELD_UNTIL = "held_until"

# -- artifact paths inside an MLflow run -----------------------------------------------------------
REFERENCE_DIR = "reference"
REFERENCE_FILE = "reference.parquet"
REFERENCE_ARTIFACT = f"{REFERENCE_DIR}/{REFERENCE_FILE}"  # what later runs measure drift against
HOLDOUT_SCORED_FILE = "holdout_scored.parquet"
# The holdout with the model's own (out-of-sample) probability: scored batches' reference.
HOLDOUT_SCORED_ARTIFACT = f"{REFERENCE_DIR}/{HOLDOUT_SCORED_FILE}"
CALIBRATION_FILE = "calibration.json"
CALIBRATION_ARTIFACT = f"{REFERENCE_DIR}/{CALIBRATION_FILE}"  # CBPE's calibrator, fitted there
VALIDATION_REPORTS = "reports/validation"
DATA_DOCS = "reports/validation/data_docs"
DRIFT_REPORTS = "reports/drift"
MODEL_CARD = "model_card"
MODEL_ARTIFACT = "model"
# The pages a person opens (the operators' extra links point at them in the MLflow UI).
DATA_DOCS_INDEX = f"{DATA_DOCS}/index.html"
DRIFT_HTML = f"{DRIFT_REPORTS}/drift.html"
MODEL_CARD_HTML = f"{MODEL_CARD}/model_card.html"

# -- pages inside a run's report folder (Storage.report_dir), served by the UI plugin ---------
REPORT_DATA_DOCS = "data_docs/index.html"  # validate's GX Data Docs
REPORT_DRIFT = "drift.html"  # monitor's (retrain) or watch's (score) Evidently report
DRIFT_JSON = "drift.json"  # the same drift report as plain JSON
REPORT_MODEL_CARD = f"{MODEL_CARD}/model_card.html"  # evaluate's model card

# -- Airflow XCom keys (besides each task's return value) ------------------------------------
OUTCOME_XCOM = "modelkeeper_outcome"  # a run's one-line outcome: becomes its note
FAILURE_XCOM = "modelkeeper_failure"  # what failed in a task and why: a failed run's note
# The URLs behind the operators' extra links, pushed during execute (modelkeeper_airflow.links).
LINK_MLFLOW_RUN = "mlflow_run_url"
LINK_MODEL_VERSION = "model_version_url"
LINK_DATA_DOCS = "data_docs_url"
LINK_DRIFT_REPORT = "drift_report_url"
LINK_MODEL_CARD = "model_card_url"

# -- Assets (Airflow data-aware scheduling) ---------------------------------------------------


def champion_asset(model: str) -> str:
    """Updated when a retrain run's promote step ends: scoring picks up a new champion."""
    return f"modelkeeper/{model}/champion"


def alarm_asset(model: str) -> str:
    """Updated by an alarm (its extra says why): triggers retrain_<model>."""
    return f"modelkeeper/{model}/alarm"


# -- audit trail actions ------------------------------------------------------------------------------
AuditAction = Literal[
    "decision", "promotion", "refusal", "dry_run", "approval", "rejection", "rollback"
]
ALIAS_MOVES: tuple[AuditAction, ...] = ("promotion", "rollback")  # change the champion alias

# What the owner is told about (spec `notify.on`).
NotifyEvent = Literal["alarm", "promotion", "refusal", "failure", "approval"]
NOTIFY_ALARM, NOTIFY_PROMOTION, NOTIFY_REFUSAL, NOTIFY_FAILURE, NOTIFY_APPROVAL = (
    NotifyEvent.__args__
)

# What a promote, rollback or rejection step did, and the audit action it is recorded as.
Action = Literal["promoted", "kept", "refused", "dry_run", "rejected", "rolled_back", "noop"]
AUDIT_ACTION: dict[str, AuditAction] = {
    "promoted": "promotion",
    "rolled_back": "rollback",
    "dry_run": "dry_run",
    "rejected": "rejection",
    "kept": "refusal",
    "refused": "refusal",
}
