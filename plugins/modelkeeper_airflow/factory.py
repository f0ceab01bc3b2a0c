"""One `retrain_<model>` DAG per model spec. Runs at parse time: keep it light.

The only place that knows how the stages are wired: each operator receives its
upstream stages' results as arguments (their `.output`), never by a task id of its own.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from airflow.sdk import (
    DAG,
    Asset,
    AssetAny,
    AssetOrTimeSchedule,
    CronTriggerTimetable,
    DeadlineAlert,
    DeadlineReference,
    Param,
    SyncCallback,
)

from modelkeeper.contracts import lineage as L
from modelkeeper_airflow.callbacks import close_mlflow_run
from modelkeeper_airflow.operators import (
    AlarmOperator,
    CollectOperator,
    DecideOperator,
    EvaluateOperator,
    FinishOperator,
    MeasureOperator,
    MonitorOperator,
    PromoteOperator,
    PromotionApprovalOperator,
    ScoreOperator,
    TrainOperator,
    ValidateOperator,
    WatchOperator,
)

if TYPE_CHECKING:
    from modelkeeper.contracts.spec import ModelSpec

PROMOTION_POOL = "modelkeeper_promotion"
#: Owner of the DAGs that serve every model (rollback, reconcile).
PLATFORM_OWNER = "ml-platform@example.com"

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


def _schedule(cron: str | None, assets: list[str]):
    """A cron schedule, Asset updates, or either (whichever comes first)."""
    timetable = CronTriggerTimetable(cron, timezone="UTC") if cron else None
    wanted = [Asset(a) for a in dict.fromkeys(assets) if a]
    if not wanted:
        return timetable
    anyone = AssetAny(*wanted)  # a list would mean all of them
    if timetable is None:
        return anyone
    return AssetOrTimeSchedule(timetable=timetable, assets=anyone)


def _on_failure(spec: ModelSpec) -> list:
    from modelkeeper_airflow.notify import on_failure

    return [close_mlflow_run(spec.name), on_failure(spec.name)]


def _retry_delay() -> timedelta:
    """First wait before retrying a transient failure (MLflow or the database away);
    doubles on each retry. MODELKEEPER_RETRY_DELAY_SECONDS, default 20."""
    from modelkeeper.contracts.settings import settings

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


def dag_args(owner: str) -> dict:
    """What every modelkeeper DAG shares: no catchup, one run at a time, default_args."""
    return {
        "start_date": datetime(2026, 1, 1),
        "catchup": False,
        "max_active_runs": 1,
        "default_args": default_args(owner),
    }


def _retrain_params() -> dict[str, Param]:
    """The trigger form of `retrain_<model>`."""
    return {
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


def _retrain_doc(spec: ModelSpec) -> str:
    return DOC_TEMPLATE.format(
        name=spec.name,
        description=spec.description.strip(),
        owner=spec.owner,
        intended_use=spec.intended_use or "-",
        limitations=spec.limitations or "-",
        schedule=spec.schedule or "manual",
        primary=spec.metrics.primary,
        mode=spec.promotion.mode,
        asset=f" and on updates of Asset `{spec.trigger_asset}`" if spec.trigger_asset else "",
    )


def _collected(model: str, stream: str | None = None, suffix: str = "") -> ValidateOperator:
    """collect → validate of one stream's new files; validate's result is what follows."""
    collect = CollectOperator(task_id=f"collect{suffix}", model=model, stream=stream)
    return ValidateOperator(
        task_id=f"validate{suffix}", model=model, stream=stream, batch=collect.output
    )


def build_retrain_dag(spec: ModelSpec) -> DAG:
    common = {"model": spec.name}
    mode = "{{ 'dry_run' if params.dry_run else ('' if params.promotion_mode == 'spec' else params.promotion_mode) }}"
    with DAG(
        dag_id=spec.dag_id,
        description=spec.description.strip().splitlines()[0][:200],
        doc_md=_retrain_doc(spec),
        # New data, an alarm from monitoring (its reason shows in decide), or the clock.
        schedule=_schedule(spec.schedule, [spec.trigger_asset, L.alarm_asset(spec.name)]),
        params=_retrain_params(),
        tags=["modelkeeper", f"model:{spec.name}", *spec.tags],
        on_failure_callback=_on_failure(spec),
        **dag_args(spec.owner),
    ) as dag:
        validate = _collected(spec.name)
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
            outlets=[Asset(L.champion_asset(spec.name))],  # scoring picks up a new champion
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
        validate >> monitor >> decide >> train >> evaluate >> approve >> promote >> finish
    return dag


SCORE_DOC = """\
# Scoring: `{name}`

Scores new rows with the champion, loaded as any MLflow consumer loads it
(`models:/{name}@champion`): collect (new files only) → validate (the spec's suite without
the label; a bad batch is quarantined and nothing is predicted from it) → score
(destination + prediction log, latency p50/p95) → watch (drift against the champion's
out-of-sample holdout, prediction drift, data quality) → alarm (an Asset event that
retrains, with a cooldown). Runs {when}. {deadline}
"""

MONITOR_DOC = """\
# Monitoring: `{name}`

Joins labels that arrived late to the prediction log: realized `{primary}` per window
with at least {min_rows} labels, estimates meanwhile (CBPE for a classifier, DLE for a
regressor); every number goes to the history table; the serving version's change detector
over its windows (or decay below a floor the spec sets) raises an alarm that retrains
`retrain_{name}` (cooldown {cooldown} h). Runs {when}.
"""


def _when(cron: str | None, assets: list[str]) -> str:
    parts = [f"on `{cron}`"] if cron else []
    parts += [f"on updates of Asset `{a}`" for a in dict.fromkeys(assets) if a]
    return " and ".join(parts) or "when triggered"


def _dag(spec: ModelSpec, dag_id: str, doc: str, schedule, kind: str, **kw) -> DAG:
    return DAG(
        dag_id=dag_id,
        description=f"{kind} of {spec.name}",
        doc_md=doc,
        schedule=schedule,
        tags=["modelkeeper", f"model:{spec.name}", kind],
        on_failure_callback=_on_failure(spec),
        **dag_args(spec.owner),
        **kw,
    )


def scoring_deadline(spec: ModelSpec) -> DeadlineAlert | None:
    """A `score_<model>` run not finished `scoring.deadline_minutes` after it was queued:
    Airflow's deadline alert calls callbacks.scoring_deadline_missed (on a worker, a
    SyncCallback), which tells the owner through notify."""
    minutes = spec.scoring.deadline_minutes if spec.scoring else None
    if minutes is None:
        return None
    from modelkeeper_airflow.callbacks import scoring_deadline_missed

    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(minutes=minutes),
        callback=SyncCallback(scoring_deadline_missed, kwargs={"model": spec.name}),
        name=f"score_{spec.name} finished within {minutes:g} min",
    )


def _alarm(spec: ModelSpec, **upstream) -> AlarmOperator:
    """The alarm stage: an Asset event that retrains (with the spec's cooldown)."""
    return AlarmOperator(
        task_id="alarm", model=spec.name, outlets=[Asset(L.alarm_asset(spec.name))], **upstream
    )


def build_score_dag(spec: ModelSpec) -> DAG:
    """`score_<model>`, for a spec with a `scoring` section."""
    assert spec.scoring is not None
    assets = [spec.scoring.trigger_asset, L.champion_asset(spec.name)]
    minutes = spec.scoring.deadline_minutes
    doc = SCORE_DOC.format(
        name=spec.name,
        when=_when(spec.scoring.schedule, assets),
        deadline=(
            f"A run not finished {minutes:g} minutes after it was queued alarms the owner "
            "(a deadline alert)."
            if minutes
            else ""
        ),
    )
    schedule = _schedule(spec.scoring.schedule, assets)
    deadline = scoring_deadline(spec)
    extra = {} if deadline is None else {"deadline": deadline}
    with _dag(spec, spec.score_dag_id, doc, schedule, "scoring", **extra) as dag:
        validate = _collected(spec.name, "scoring")
        score = ScoreOperator(task_id="score", accepted=validate.output, model=spec.name)
        watch = WatchOperator(
            task_id="watch", accepted=validate.output, scored=score.output, model=spec.name
        )
        _alarm(spec, watched=watch.output)
    return dag


def build_monitor_dag(spec: ModelSpec) -> DAG:
    """`monitor_<model>`, for a spec with `labels` (and `monitoring`) sections."""
    assert spec.labels is not None and spec.monitoring is not None
    assets = [spec.labels.trigger_asset]
    doc = MONITOR_DOC.format(
        name=spec.name,
        primary=spec.metrics.primary,
        min_rows=spec.labels.min_rows,
        cooldown=spec.monitoring.cooldown_hours,
        when=_when(spec.monitoring.schedule, assets),
    )
    schedule = _schedule(spec.monitoring.schedule, assets)
    with _dag(spec, spec.monitor_dag_id, doc, schedule, "monitoring") as dag:
        validate = _collected(spec.name, "labels", suffix="_labels")
        # Runs without new labels too: newly scored windows still get their estimates.
        measure = MeasureOperator(
            task_id="measure", labels=validate.output, trigger_rule="none_failed", model=spec.name
        )
        _alarm(spec, measured=measure.output)
    return dag


def specs_to_build(prefix: str) -> list[ModelSpec]:
    """The specs a DAG file builds `<prefix><model>` DAGs for: all that load, or, in a task
    process (Airflow's parsing context names its DAG), just that task's model."""
    from airflow.sdk import get_parsing_context

    from modelkeeper.contracts.spec import SpecError, get_spec, valid_specs

    wanted = get_parsing_context().dag_id
    if wanted:
        if not wanted.startswith(prefix):
            return []  # another file's DAG: build nothing here
        try:
            return [get_spec(wanted.removeprefix(prefix))]
        except SpecError:
            return []
    return valid_specs()
