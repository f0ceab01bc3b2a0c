from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelkeeper_airflow.operators.base import ModelkeeperOperator

if TYPE_CHECKING:
    from modelkeeper.contracts.results import Batch


class CollectOperator(ModelkeeperOperator):
    """Snapshot the files (or SQL rows) no run has taken yet, keyed by (model, run).

    Opens only new files; a file that cannot be read is copied to quarantine and handed
    on as unreadable (validate records it, so later runs skip it with a warning). For the
    scoring stream nothing is taken while there is no champion to score it with.
    """

    def stage(self, context: Any) -> Batch:
        from modelkeeper.stages.ingest import collect, stream_spec

        self._reject_unknown_conf(context)
        if (
            self.stream == "scoring"
            and self.registry.alias(self.spec.registered_model_name) is None
        ):
            from airflow.sdk.exceptions import AirflowSkipException

            raise AirflowSkipException("no champion yet: new rows wait for one, untaken")
        ws = self.workspace(registry=False)
        source = stream_spec(ws, self.stream).source
        read_sql = self._sql_reader(source.conn_id) if source.kind == "sql" else None
        return collect(ws, self.run(context), stream=self.stream, read_sql=read_sql)

    @staticmethod
    def _sql_reader(conn_id: str):  # noqa: ANN205
        from airflow.providers.common.sql.hooks.sql import DbApiHook
        from airflow.sdk import BaseHook

        from modelkeeper.contracts.errors import ConfigError

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
        from modelkeeper.contracts.errors import ConfigError

        conf = getattr(context["dag_run"], "conf", None) or {}
        allowed = set(context.get("params") or {})
        unknown = sorted(set(conf) - allowed)
        if unknown:
            raise ConfigError(
                f"unknown trigger conf keys {unknown}; this DAG accepts {sorted(allowed)}"
            )
