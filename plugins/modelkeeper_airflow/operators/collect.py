from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from modelkeeper_airflow.operators.base import ModelkeeperOperator


class CollectOperator(ModelkeeperOperator):
    """Snapshot what landed since the watermark into Parquet keyed by (model, run)."""

    def execute(self, context: Any) -> dict:
        from modelkeeper.sources import SourceError, collect

        self._reject_unknown_conf(context)
        spec, storage = self.spec(), self.storage()
        read_sql = None
        if spec.source.kind == "sql":
            from airflow.providers.common.sql.hooks.sql import DbApiHook
            from airflow.sdk import BaseHook

            conn_id = spec.source.conn_id
            try:
                hook = BaseHook.get_connection(conn_id).get_hook()
            except Exception as exc:  # unknown conn type / provider missing: a config error
                raise AirflowFailException(
                    f"connection {conn_id!r} is not a usable SQL connection: {exc}"
                ) from exc
            if not isinstance(hook, DbApiHook):
                raise AirflowFailException(f"connection {conn_id!r} is not a SQL connection")

            def read_sql(query: str):  # noqa: ANN202
                return hook.get_df(query, df_type="pandas")

        try:
            batch = collect(spec, storage, context["run_id"], read_sql=read_sql)
        except SourceError as exc:
            # Unreadable input: retrying reads the same bytes, so keep it aside and fail now.
            where = self._quarantine(storage, spec.name, context["run_id"], exc)
            raise AirflowFailException(f"collect failed: {exc} (quarantined in {where})") from exc
        self.log.info(
            "collected %s rows (%s .. %s) after watermark %s into %s",
            batch.rows,
            batch.start,
            batch.end,
            batch.watermark_before,
            batch.path,
        )
        return batch.to_dict()

    @staticmethod
    def _reject_unknown_conf(context: Any) -> None:
        """Params validate the keys they declare; Airflow lets any other key through.

        An unknown key is a typo or an attempt to steer the run (``skip_validation``...):
        stop before anything is read.
        """
        conf = getattr(context["dag_run"], "conf", None) or {}
        allowed = set(context.get("params") or {})
        unknown = sorted(set(conf) - allowed)
        if unknown:
            raise AirflowFailException(
                f"unknown trigger conf keys {unknown}; this DAG accepts {sorted(allowed)}"
            )

    @staticmethod
    def _quarantine(storage: Any, model: str, run_id: str, exc: Exception) -> Any:
        from pathlib import Path

        folder = storage.quarantine_dir(model, run_id)
        path = Path(exc.path) if getattr(exc, "path", None) else None
        if path is not None and path.is_file():  # a copy: the landing zone is the producer's
            storage.copy_into(path, folder / path.name)
        storage.write_text(f"{exc}\n", folder / "REASON.txt")
        return folder
