from __future__ import annotations

from pathlib import Path
from typing import Any

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from modelkeeper_airflow.operators.base import ModelkeeperOperator


class ValidateOperator(ModelkeeperOperator):
    """Great Expectations gate: a failed batch is quarantined with its report, then the run stops.

    Evidence first (report files + XCom key ``validation``), then the exception, so the
    UI shows why; the watermark moves past the batch either way so it is not collected
    again, and only passed batches join the training pool.
    """

    def execute(self, context: Any) -> dict:
        import dataclasses

        import pandas as pd

        from modelkeeper.validation import validate_frame

        spec, storage, run_id = self.spec(), self.storage(), context["run_id"]
        batch = self.upstream(context, "collect")
        df = pd.read_parquet(batch["path"])
        if len(df) == 0:
            nothing = self._no_new_data(context, batch)
            if nothing is not None:
                return nothing
        reports = storage.report_dir(spec.name, run_id)
        outcome = validate_frame(df, spec, docs_dir=reports / "data_docs")
        if len(df) == 0 and not outcome.success:
            outcome = dataclasses.replace(
                outcome,
                summary=f"no new data since {batch.get('watermark_before')}: {outcome.summary}; "
                "trigger with force_retrain=true to retrain on the data already accepted",
            )
        report = storage.write_json(outcome.to_dict(), reports / "validation.json")
        evidence = {
            "success": outcome.success,
            "summary": outcome.summary,
            "failures": outcome.failures,
            "warnings": outcome.warnings,
            "report": str(report),
            "data_docs": str(reports / "data_docs" / "index.html"),
            "rows": len(df),
        }
        for warning in outcome.warnings:
            self.log.warning("validation warning: %s", warning)

        if not outcome.success:
            quarantine = storage.quarantine_dir(spec.name, run_id)
            storage.copy_into(Path(batch["path"]), quarantine / "batch.parquet")
            storage.copy_into(report, quarantine / "validation.json")
            storage.write_text(outcome.summary + "\n", quarantine / "REASON.txt")
            evidence["quarantine"] = str(quarantine)
            context["ti"].xcom_push(key="validation", value=evidence)
            if batch.get("end"):
                storage.set_watermark(spec.name, batch["end"], run_id)
            raise AirflowFailException(f"{outcome.summary} (batch quarantined in {quarantine})")

        storage.copy_into(Path(batch["path"]), storage.accepted_path(spec.name, run_id))
        if batch.get("end"):
            storage.set_watermark(spec.name, batch["end"], run_id)
        self.log.info("%s (%s rows)", outcome.summary, len(df))
        context["ti"].xcom_push(key="validation", value=evidence)
        return evidence

    def _no_new_data(self, context: Any, batch: dict) -> dict | None:
        """What an empty batch means depends on why the run started.

        A person (manual trigger or backfill, forced or not): nothing new to validate; go
        on, so decide can retrain on accepted data (forced, or no champion yet) or say why
        not. A backfilled interval's rows were taken by the run that saw them land: collect
        follows the data's watermark, not the Airflow interval.
        Asset-triggered: an earlier run already took this update; skip, stay green.
        Scheduled: no data for the interval is an alert; fail below.
        """
        run_type = getattr(context["dag_run"].run_type, "value", context["dag_run"].run_type)
        since = batch.get("watermark_before")
        if run_type == "asset_triggered":
            raise AirflowSkipException(
                f"no new rows since {since}: an earlier run already processed this update"
            )
        if run_type not in ("manual", "backfill"):
            return None
        self.log.info(
            "no new rows since %s; nothing to validate, the run goes on with accepted data", since
        )
        evidence = {
            "success": True,
            "summary": f"no new rows since {since}",
            "rows": 0,
            "failures": [],
            "warnings": [],
            "report": None,
            "data_docs": None,
        }
        context["ti"].xcom_push(key="validation", value=evidence)
        return evidence
