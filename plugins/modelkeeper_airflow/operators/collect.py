from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from modelkeeper_airflow.operators.base import ModelkeeperOperator


class CollectOperator(ModelkeeperOperator):
    """Snapshot what landed since the watermark into Parquet keyed by (model, run)."""

    def execute(self, context: Any) -> dict:
        from modelkeeper.sources import SourceError, collect

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
            # Unreadable input: retrying reads the same bytes, so fail now.
            raise AirflowFailException(f"collect failed: {exc}") from exc
        self.log.info(
            "collected %s rows (%s .. %s) after watermark %s into %s",
            batch.rows,
            batch.start,
            batch.end,
            batch.watermark_before,
            batch.path,
        )
        return batch.to_dict()
