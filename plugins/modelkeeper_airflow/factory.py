"""One `retrain_<model>` DAG per model spec. Runs at parse time: keep it light.

The only place that knows how the stages are wired: each operator receives its
upstream stages' results as arguments (their `.output`), never by a task id of its own.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from airflow.sdk import DAG, Asset, AssetOrTimeSchedule, CronTriggerTimetable, Param

from modelkeeper_airflow.callbacks import close_mlflow_run
from modelkeeper_airflow.operators import (
    CollectOperator,
    DecideOperator,
    EvaluateOperator,
    FinishOperator,
    MonitorOperator,
    PromoteOperator,
    PromotionApprovalOperator,
    TrainOperator,
    ValidateOperator,
)

if TYPE_CHECKING:
    from modelkeeper.spec import ModelSpec

PROMOTION_POOL = "modelkeeper_promotion"

DOC_TEMPLATE = """\
# Retraining: `{name}`

{description}

- **Owner:** {owner}
- **Intended use:** {intended_use}
- **Limitations:** {limitations}
- **Schedule:** {schedule}{asset}
- **Primary metric:** `{primary}`; promotion mode `{mode}`

Flow: collect → validate (Great Expectations) → monitor (Evidently drift, champion on
the new batch) → decide → train → evaluate (challenger vs champion, same holdout) →
approve (only in `approval` mode: a person decides in the UI) → promote (alias
`champion`, compare-and-set, audited) → finish.

Trigger with **force_retrain** to retrain regardless of drift, **dry_run** to decide
without moving the alias. Spec: `include/models/{name}.yaml`.
"""


def _schedule(spec: ModelSpec):
    timetable = CronTriggerTimetable(spec.schedule, timezone="UTC") if spec.schedule else None
    if spec.trigger_asset:
        asset = Asset(spec.trigger_asset)
        return AssetOrTimeSchedule(timetable=timetable, assets=[asset]) if timetable else [asset]
    return timetable


def _retry_delay() -> timedelta:
    """First wait before retrying a transient failure (MLflow or the database away);
    doubles on each retry. MODELKEEPER_RETRY_DELAY_SECONDS, default 20."""
    from modelkeeper.settings import settings

    return timedelta(seconds=settings().retry_delay_seconds)


def default_args(owner: str) -> dict:
    """Every modelkeeper task retries transient errors with backoff; permanent ones fail
    at once whatever these say (modelkeeper_airflow.errors)."""
    return {
        "owner": owner,
        "retries": 2,
        "retry_delay": _retry_delay(),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=5),
    }


def build_retrain_dag(spec: ModelSpec) -> DAG:
    params = {
        "force_retrain": Param(
            False, type="boolean", description="Retrain even if nothing drifted."
        ),
        # Nullable, not "": the trigger form treats an empty string as a missing value.
        "reason": Param(
            None,
            type=["null", "string"],
            maxLength=500,
            description="Why (recorded with the run). Optional.",
        ),
        "dry_run": Param(False, type="boolean", description="Decide and record, move no alias."),
        "promotion_mode": Param(
            "spec",
            type="string",
            enum=["spec", "auto", "dry_run", "approval"],
            description="Override the spec's promotion mode for this run.",
        ),
    }
    common = {"model": spec.name}
    mode = "{{ 'dry_run' if params.dry_run else ('' if params.promotion_mode == 'spec' else params.promotion_mode) }}"
    with DAG(
        dag_id=spec.dag_id,
        description=spec.description.strip().splitlines()[0][:200],
        doc_md=DOC_TEMPLATE.format(
            name=spec.name,
            description=spec.description.strip(),
            owner=spec.owner,
            intended_use=spec.intended_use or "-",
            limitations=spec.limitations or "-",
            schedule=spec.schedule or "manual",
            primary=spec.metrics.primary,
            mode=spec.promotion.mode,
            asset=f" and on updates of Asset `{spec.trigger_asset}`" if spec.trigger_asset else "",
        ),
        schedule=_schedule(spec),
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        params=params,
        default_args=default_args(spec.owner),
        tags=["modelkeeper", f"model:{spec.name}", *spec.tags],
        on_failure_callback=close_mlflow_run(spec.name),
    ) as dag:
        collect = CollectOperator(task_id="collect", **common)
        validate = ValidateOperator(task_id="validate", batch=collect.output, **common)
        monitor = MonitorOperator(task_id="monitor", accepted=validate.output, **common)
        decide = DecideOperator(
            task_id="decide",
            monitoring=monitor.output,
            train_task_id="train",
            finish_task_id="finish",
            force="{{ params.force_retrain }}",
            force_reason="{{ params.reason or '' }}",
            **common,
        )
        train = TrainOperator(
            task_id="train",
            validation=validate.output,
            retrain=decide.output,
            execution_timeout=timedelta(minutes=30),
            **common,
        )
        evaluate = EvaluateOperator(
            task_id="evaluate",
            trained=train.output,
            monitoring=monitor.output,
            execution_timeout=timedelta(minutes=15),
            **common,
        )
        # A retry would ask the person again: approve never retries.
        approve = PromotionApprovalOperator(
            task_id="approve", evaluation=evaluate.output, mode=mode, retries=0, **common
        )
        # Runs after approve, or without it when approve skipped itself (not approval mode).
        promote = PromoteOperator(
            task_id="promote",
            evaluation=evaluate.output,
            approval=approve.output,
            mode=mode,
            pool=PROMOTION_POOL,
            trigger_rule="none_failed_min_one_success",
            **common,
        )
        finish = FinishOperator(
            task_id="finish",
            retrain=decide.output,
            trained=train.output,
            promotion=promote.output,
            approval_task_id=approve.task_id,
            trigger_rule="none_failed_min_one_success",
            **common,
        )
        collect >> validate >> monitor >> decide >> train >> evaluate >> approve >> promote
        promote >> finish
    return dag
