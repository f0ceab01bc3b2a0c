from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from modelkeeper_airflow.operators.base import ModelkeeperOperator

if TYPE_CHECKING:
    from modelkeeper.sources import Batch
    from modelkeeper.stages import Validated


class ValidateOperator(ModelkeeperOperator):
    """Great Expectations gate: a failed batch is quarantined with its report, then the run stops.

    Evidence first (report files + this task's result), then the error, so the UI shows
    why; the watermark moves past the batch either way so it is not collected again, and
    only passed batches join the training pool.

    :param batch: collect's Batch (its `.output`).
    """

    template_fields: Sequence[str] = ("model", "batch")

    def __init__(self, *, batch: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.batch = batch

    def stage(self, context: Any) -> Validated:
        import dataclasses
        from pathlib import Path

        import pandas as pd

        from modelkeeper.errors import DataError
        from modelkeeper.sources import Batch
        from modelkeeper.stages import Validated
        from modelkeeper.validation import validate_frame

        spec, storage, run_id = self.spec, self.storage, context["run_id"]
        batch = Batch.from_dict(self.batch)
        df = pd.read_parquet(batch.path)
        if len(df) == 0:
            nothing = self._no_new_data(context, batch)
            if nothing is not None:
                return nothing
        reports = storage.report_dir(spec.name, run_id)
        outcome = validate_frame(df, spec, docs_dir=reports / "data_docs")
        if len(df) == 0 and not outcome.success:
            outcome = dataclasses.replace(
                outcome,
                summary=f"no new data since {batch.watermark_before}: {outcome.summary}; "
                "trigger with force_retrain=true to retrain on the data already accepted",
            )
        report = storage.write_json(outcome.to_dict(), reports / "validation.json")
        for warning in outcome.warnings:
            self.log.warning("validation warning: %s", warning)
        result = Validated(
            success=outcome.success,
            summary=outcome.summary,
            rows=len(df),
            failures=outcome.failures,
            warnings=outcome.warnings,
            report=str(report),
            data_docs=str(reports / "data_docs" / "index.html"),
        )

        if not outcome.success:
            quarantine = storage.quarantine_dir(spec.name, run_id)
            storage.copy_into(Path(batch.path), quarantine / "batch.parquet")
            storage.copy_into(report, quarantine / "validation.json")
            storage.write_text(outcome.summary + "\n", quarantine / "REASON.txt")
            result = dataclasses.replace(result, quarantine=str(quarantine))
            self.publish(context, result)
            if batch.end:
                storage.set_watermark(spec.name, batch.end, run_id)
            raise DataError(f"{outcome.summary} (batch quarantined in {quarantine})")

        storage.copy_into(Path(batch.path), storage.accepted_path(spec.name, run_id))
        if batch.end:
            storage.set_watermark(spec.name, batch.end, run_id)
        self.log.info("%s (%s rows)", outcome.summary, len(df))
        return result

    def _no_new_data(self, context: Any, batch: Batch) -> Validated | None:
        """What an empty batch means depends on why the run started.

        A person (manual trigger or backfill, forced or not): nothing new to validate; go
        on, so decide can retrain on accepted data (forced, or no champion yet) or say why
        not. A backfilled interval's rows were taken by the run that saw them land: collect
        follows the data's watermark, not the Airflow interval.
        Asset-triggered: an earlier run already took this update; skip, stay green.
        Scheduled: no data for the interval is an alert; fail below.
        """
        from airflow.sdk.exceptions import AirflowSkipException

        from modelkeeper.stages import Validated

        run_type = getattr(context["dag_run"].run_type, "value", context["dag_run"].run_type)
        since = batch.watermark_before
        if run_type == "asset_triggered":
            raise AirflowSkipException(
                f"no new rows since {since}: an earlier run already processed this update"
            )
        if run_type not in ("manual", "backfill"):
            return None
        self.log.info(
            "no new rows since %s; nothing to validate, the run goes on with accepted data", since
        )
        return Validated(success=True, summary=f"no new rows since {since}", rows=0)
