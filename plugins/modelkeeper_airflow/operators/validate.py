from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from modelkeeper_airflow.links import DataDocsLink, MlflowRunLink
from modelkeeper_airflow.operators.base import ModelkeeperOperator

if TYPE_CHECKING:
    from modelkeeper.contracts.results import Accepted, Batch


class ValidateOperator(ModelkeeperOperator):
    """Great Expectations gate, file by file: rejected files are quarantined with their
    report, the rest join the training pool, and the run's manifest record is committed.

    Evidence first (reports + this task's result), then the error, so the UI shows why.
    A run whose batch had a quarantined or unreadable file fails at once (no retries).

    :param batch: collect's Batch (its `.output`).
    """

    template_fields: Sequence[str] = ("model", "batch")
    # The Data Docs are built in the run's report folder here; the link opens them there,
    # served by the UI plugin (no MLflow run exists yet: monitor creates it; train links
    # the copy it logs). A rejected batch gets the link too: it shows why.
    operator_extra_links = (MlflowRunLink(), DataDocsLink())

    def __init__(self, *, batch: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.batch = batch

    def stage(self, context: Any) -> Accepted:
        from modelkeeper.contracts import lineage as L
        from modelkeeper.contracts.errors import DataError
        from modelkeeper.contracts.results import Batch
        from modelkeeper.stages.ingest import validate
        from modelkeeper_airflow import links

        batch = Batch.from_dict(self.batch)
        result = validate(
            self.workspace(registry=False), self.run(context), batch, stream=self.stream
        )
        if result.data_docs:
            name, run_id = self.ingest_spec.name, context["run_id"]
            self.push_link(
                context,
                L.LINK_DATA_DOCS,
                lambda: links.report_url(name, run_id, L.REPORT_DATA_DOCS),
            )
        if not result.success:
            self.publish(context, result)
            raise DataError(f"{result.summary} (quarantined in {result.quarantine})")
        if result.rows == 0:
            self._no_new_data(context, batch)
        self.log.info("%s", result.summary)
        return result

    def _owed_batches(self, context: Any) -> list[str]:
        """Earlier scoring runs whose accepted rows were never predicted (a failed run)."""
        from modelkeeper.serving.pending import owed

        return [run_id for run_id, _ in owed(self.storage, self.spec, context["run_id"])]

    def _no_new_data(self, context: Any, batch: Batch) -> None:
        """What a run with nothing new means depends on why it started.

        A person (manual trigger or backfill, forced or not): go on, so decide can retrain
        on accepted data (forced, or no champion yet) or say why not. Asset-triggered by an
        alarm: go on too (decide shows the alarm's reason). Asset-triggered otherwise: an
        earlier run already took this update; skip, stay green. Scheduled: fine if another
        run took new data within the last schedule period (an Asset run on the same tick);
        otherwise the producer may have stopped: fail. Files the source's pattern left out
        are named with the time (a `week_09.csv` beside `*.parquet` files explains a lot).
        """
        from datetime import datetime

        from airflow.sdk.exceptions import AirflowSkipException

        from modelkeeper.contracts.errors import DataError
        from modelkeeper.data.collect import describe_unmatched
        from modelkeeper.data.manifest import Manifest, previous_tick

        run_type = getattr(context["dag_run"].run_type, "value", context["dag_run"].run_type)
        unmatched = describe_unmatched(batch.unmatched, self.ingest_spec)
        since = (batch.since or "the start") + (f" ({unmatched})" if unmatched else "")
        if self.stream == "scoring" and (owed := self._owed_batches(context)):
            self.log.info(
                "no new scoring data since %s; runs %s still owe predictions", since, owed
            )
            return
        if self.stream is not None:  # scoring or labels: nothing new is nothing to do
            raise AirflowSkipException(f"no new {self.stream} data since {since}")
        alarm = self.alarm_reason(context)
        if run_type == "asset_triggered" and alarm:
            self.log.info("no new data since %s; an alarm started this run: %s", since, alarm)
            return
        if run_type == "asset_triggered":
            raise AirflowSkipException(
                f"no new data since {since}: an earlier run already processed this update"
            )
        if run_type in ("manual", "backfill"):
            self.log.info("no new data since %s; the run goes on with accepted data", since)
            return
        spec = self.spec
        last = Manifest(self.storage, spec.name).last_take()
        tick = previous_tick(spec.schedule, getattr(context["dag_run"], "run_after", None))
        taken = last and datetime.fromisoformat(last["committed_at"])
        if taken and tick is not None and taken >= datetime.fromisoformat(tick):
            raise AirflowSkipException(
                f"nothing new for this tick: run {last['run_id']} took the latest data "
                f"({last['committed_at']}, after the previous tick {tick})"
            )
        raise DataError(
            f"no new data since {since}: nothing landed for a whole schedule period (the "
            "producer may have stopped); trigger with force_retrain=true to retrain on the "
            "data already accepted"
        )
