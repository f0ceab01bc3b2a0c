"""Operator extra links: buttons on a task instance that open its MLflow run, model version
or report.

Declared on the operator classes (`operator_extra_links`), never registered in a plugin:
the worker calls `get_link` in its finalize step, for every terminal state, and stores the
result as an XCom the API server serves. A plugin-registered link would instead run
`get_link` in the API server, where the SDK's XCom access fails. Each operator pushes the
URL under its key (modelkeeper.contracts.lineage.LINK_*) during execute; `get_link` reads it back, so
a task that never got that far simply has no link ("" is hidden by the UI).
"""

from __future__ import annotations

from typing import Any, ClassVar

from airflow.sdk import BaseOperatorLink

from modelkeeper.contracts import lineage as L


class _XComLink(BaseOperatorLink):
    """A link whose URL the operator pushed to XCom under `url_key` during execute."""

    url_key: ClassVar[str]

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        from airflow.sdk.execution_time.xcom import XCom

        return XCom.get_value(ti_key=ti_key, key=self.url_key) or ""


def _link(class_name: str, name: str, url_key: str) -> type[_XComLink]:
    """A link class. Its name must be unique: Airflow stores each link's value under
    `_link_<ClassName>`, and the UI finds it there."""
    return type(
        class_name, (_XComLink,), {"name": name, "url_key": url_key, "__module__": __name__}
    )


MlflowRunLink = _link("MlflowRunLink", "MLflow run", L.LINK_MLFLOW_RUN)
ModelVersionLink = _link("ModelVersionLink", "Model version", L.LINK_MODEL_VERSION)
DataDocsLink = _link("DataDocsLink", "Data Docs", L.LINK_DATA_DOCS)
DriftReportLink = _link("DriftReportLink", "Drift report", L.LINK_DRIFT_REPORT)
ModelCardLink = _link("ModelCardLink", "Model card", L.LINK_MODEL_CARD)


def report_url(model: str, run_id: str, page: str) -> str:
    """A page of a run's report folder as the UI plugin serves it (`page`: one of
    lineage.REPORT_*): `[api] base_url` + /modelkeeper/reports/<model>/<run key>/<page>.
    Relative when base_url is unset, as notify.run_url."""
    from urllib.parse import quote

    from airflow.sdk import conf

    from modelkeeper.data.storage import run_key
    from modelkeeper_airflow.ui import REPORTS_ROUTE, URL_PREFIX

    base = (conf.get("api", "base_url", fallback="") or "").rstrip("/")
    return f"{base}{URL_PREFIX}{REPORTS_ROUTE}/{quote(model, safe='')}/{run_key(run_id)}/{page}"


def push(context: Any, key: str, url: str) -> None:
    """Hand a link's URL to get_link (which runs after execute, on the same worker)."""
    if url:
        context["ti"].xcom_push(key=key, value=url)
