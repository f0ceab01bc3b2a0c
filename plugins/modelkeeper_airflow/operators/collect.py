from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelkeeper_airflow.operators.base import ModelkeeperOperator

if TYPE_CHECKING:
    from modelkeeper.sources import Batch


class CollectOperator(ModelkeeperOperator):
    """Snapshot what landed since the watermark into Parquet keyed by (model, run)."""

    def stage(self, context: Any) -> Batch:
        from modelkeeper.errors import DataError
        from modelkeeper.sources import SourceError, collect

        self._reject_unknown_conf(context)
        spec, storage, run_id = self.spec, self.storage, context["run_id"]
        read_sql = self._sql_reader(spec.source.conn_id) if spec.source.kind == "sql" else None
        try:
            batch = collect(spec, storage, run_id, read_sql=read_sql)
        except SourceError as exc:
            # Unreadable input: retrying reads the same bytes, so keep it aside and fail now.
            where = self._quarantine(spec.name, run_id, exc)
            raise DataError(f"collect failed: {exc} (quarantined in {where})") from exc
        self.log.info(
            "collected %s rows (%s .. %s) after watermark %s into %s",
            batch.rows,
            batch.start,
            batch.end,
            batch.watermark_before,
            batch.path,
        )
        return batch

    @staticmethod
    def _sql_reader(conn_id: str):  # noqa: ANN205
        from airflow.providers.common.sql.hooks.sql import DbApiHook
        from airflow.sdk import BaseHook

        from modelkeeper.errors import ConfigError

        try:
            hook = BaseHook.get_connection(conn_id).get_hook()
        except Exception as exc:  # unknown conn type / provider missing: a config error
            raise ConfigError(
                f"connection {conn_id!r} is not a usable SQL connection: {exc}"
            ) from exc
        if not isinstance(hook, DbApiHook):
            raise ConfigError(f"connection {conn_id!r} is not a SQL connection")
        return lambda query: hook.get_df(query, df_type="pandas")

    @staticmethod
    def _reject_unknown_conf(context: Any) -> None:
        """Params validate the keys they declare; Airflow lets any other key through.

        An unknown key is a typo or an attempt to steer the run (``skip_validation``...):
        stop before anything is read.
        """
        from modelkeeper.errors import ConfigError

        conf = getattr(context["dag_run"], "conf", None) or {}
        allowed = set(context.get("params") or {})
        unknown = sorted(set(conf) - allowed)
        if unknown:
            raise ConfigError(
                f"unknown trigger conf keys {unknown}; this DAG accepts {sorted(allowed)}"
            )

    def _quarantine(self, model: str, run_id: str, exc: Exception) -> Any:
        from pathlib import Path

        storage = self.storage
        folder = storage.quarantine_dir(model, run_id)
        path = Path(exc.path) if getattr(exc, "path", None) else None
        if path is not None and path.is_file():  # a copy: the landing zone is the producer's
            storage.copy_into(path, folder / path.name)
        storage.write_text(f"{exc}\n", folder / "REASON.txt")
        return folder
