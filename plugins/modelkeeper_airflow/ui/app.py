"""The plugin's FastAPI app, mounted by Airflow at /modelkeeper (see modelkeeper_plugin.py).

A plugin app is not behind Airflow's auth manager: every route here depends on
`GetUserDep` (no token: 401, bad token: 403), and a model is shown only to a user who
may read one of its DAGs (unknown or forbidden: 404, so existence does not leak).
`AuthManagerDep` and the Readable*FilterDep dependencies read `request.app.state`,
which is this sub-app's, so they are not used (docs/notes/airflow-ui-facts.md, 2).
Imported only by ui.lazy, on the api-server's first request to the app.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.core_api.security import GetUserDep
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from modelkeeper_airflow.ui import REPORTS_ROUTE, health, outbox, render, reports, verdict

if TYPE_CHECKING:
    from modelkeeper.contracts.spec import ModelSpec

log = logging.getLogger(__name__)


def readable_specs(user: Any) -> list[ModelSpec]:
    """The valid specs of which `user` may read at least one DAG."""
    from modelkeeper.contracts.spec import valid_specs

    dag_ids = get_auth_manager().get_authorized_dag_ids(user=user, method="GET")
    return [s for s in valid_specs() if health.model_dag_ids(s) & dag_ids]


def report_links(spec: ModelSpec, base: str) -> Any:
    """run_id -> {label: URL} of the report pages that run's folder holds (this app's)."""
    from modelkeeper.contracts import lineage as L
    from modelkeeper.data.storage import Storage, run_key

    storage = Storage()
    pages = {
        "Data Docs": L.REPORT_DATA_DOCS,
        "Drift report": L.REPORT_DRIFT,
        "Model card": L.REPORT_MODEL_CARD,
    }

    def links(run_id: str | None) -> dict[str, str]:
        if not run_id:  # an event recorded outside a DAG run (a person's rollback)
            return {}
        found = reports.existing(storage, spec.name, run_id, pages)
        prefix = f"{base}{REPORTS_ROUTE}/{spec.name}/{run_key(run_id)}"
        return {label: f"{prefix}/{page}" for label, page in found.items()}

    return links


def airflow_run_url(dag_id: str | None, run_id: str | None) -> str | None:
    """A DAG run's page in the Airflow UI ([api] base_url + /dags/<dag>/runs/<run>)."""
    from modelkeeper_airflow.notify import run_url

    return run_url(dag_id, run_id) if dag_id and run_id else None


def last_runs(spec: ModelSpec) -> list[verdict.LastRun]:
    """The latest run of each of the model's DAGs, from Airflow's metadata DB (the verdict:
    a failed last run fails the model). Unreadable: none, and a warning in the log."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    found = []
    try:
        with create_session() as session:
            for dag_id in sorted(health.model_dag_ids(spec)):
                run = session.scalars(
                    select(DagRun)
                    .where(DagRun.dag_id == dag_id)
                    .order_by(DagRun.run_after.desc(), DagRun.id.desc())
                    .limit(1)
                ).first()
                if run is None:
                    continue
                at = run.end_date or run.start_date or run.run_after
                found.append(
                    verdict.LastRun(
                        dag_id,
                        run.run_id,
                        str(run.state),
                        at.isoformat(timespec="seconds") if at else None,
                        airflow_run_url(dag_id, run.run_id),
                    )
                )
    except Exception as exc:  # noqa: BLE001 - the page still shows what the stores hold
        log.warning("could not read the latest runs of %s: %s", spec.name, exc)
    return found


def read_health(
    specs: list[ModelSpec], *, scoring_runs: bool, base: str = ""
) -> list[health.ModelHealth]:
    """The models' health from the registry, audit trail and history (503 if unreachable)."""
    from modelkeeper.contracts.errors import UnavailableError
    from modelkeeper.monitoring.history import History
    from modelkeeper.records.audit import AuditLog
    from modelkeeper_airflow import clients

    registry, registry_error = None, None
    try:
        registry = clients.registry()
    except Exception as exc:  # noqa: BLE001 - a missing or bad Connection: shown on the page
        log.warning("no MLflow registry for the model pages: %s", exc)
        registry_error = f"is not configured ({type(exc).__name__}: {exc})"
    try:
        engine = clients.audit_engine()
        audit, history = AuditLog(engine), History(engine)
        return [
            health.collect(
                s,
                registry,
                audit,
                history,
                scoring_runs=scoring_runs,
                registry_error=registry_error,
                report_links=report_links(s, base),
                last_runs=last_runs(s),
            )
            for s in specs
        ]
    except UnavailableError as exc:  # the audit/history DB: nothing to show without it
        raise HTTPException(status_code=503, detail=str(exc)) from exc


def _base(request: Request) -> str:
    """Where the app is mounted (/modelkeeper), for links between its pages."""
    return request.scope.get("root_path", "").rstrip("/")


def create_app() -> FastAPI:
    # No OpenAPI/docs routes: they would be the only anonymous ones.
    app = FastAPI(title="modelkeeper", openapi_url=None, docs_url=None, redoc_url=None)
    app.include_router(outbox.router)  # /outbox: the notifications kept locally

    @app.get("/models", response_class=HTMLResponse)
    def models(request: Request, user: GetUserDep) -> HTMLResponse:
        found = read_health(readable_specs(user), scoring_runs=False)
        return HTMLResponse(render.models_page(found, base=_base(request), run_url=airflow_run_url))

    @app.get("/models/{model}", response_class=HTMLResponse)
    def model(model: str, request: Request, user: GetUserDep) -> HTMLResponse:
        specs = [s for s in readable_specs(user) if s.name == model]
        if not specs:
            raise HTTPException(status_code=404, detail=f"no model {model!r} you may read")
        base = _base(request)
        (found,) = read_health(specs, scoring_runs=True, base=base)
        return HTMLResponse(render.model_page(found, base=base, run_url=airflow_run_url))

    @app.get("/dags/{dag_id}/health", response_class=HTMLResponse)
    def dag_health(dag_id: str, request: Request, user: GetUserDep) -> HTMLResponse:
        """The "Model health" tab, which Airflow 3.3 shows on every DAG: the model page of
        the model the DAG belongs to, or a short note for any other DAG."""
        specs = [s for s in readable_specs(user) if dag_id in health.model_dag_ids(s)]
        base = _base(request)
        if not specs:
            return HTMLResponse(render.not_a_model_page(dag_id, base=base), status_code=404)
        (found,) = read_health(specs, scoring_runs=True, base=base)
        return HTMLResponse(render.model_page(found, base=base, run_url=airflow_run_url))

    @app.get(REPORTS_ROUTE + "/{model}/{run}/{page:path}")
    def report(model: str, run: str, page: str, user: GetUserDep) -> Response:
        """A file of a run's report folder (Data Docs, drift report, model card), for a
        user who may read the model; sandboxed (see reports.SANDBOX_CSP)."""
        from modelkeeper.data.storage import Storage

        if not [s for s in readable_specs(user) if s.name == model]:
            raise HTTPException(status_code=404, detail=f"no model {model!r} you may read")
        try:
            path = reports.report_file(Storage(), model, run, page)
        except reports.ReportNotFound as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from exc
        headers = {"Content-Security-Policy": reports.SANDBOX_CSP}
        kind = reports.media_type(path)
        if isinstance(path, Path):
            return FileResponse(path, media_type=kind, headers=headers)
        from modelkeeper.data.objstore import read_bytes

        return Response(read_bytes(path), media_type=kind, headers=headers)

    return app
