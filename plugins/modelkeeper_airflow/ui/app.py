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
from typing import TYPE_CHECKING, Any

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.core_api.security import GetUserDep
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse

from modelkeeper_airflow.ui import health, render

if TYPE_CHECKING:
    from modelkeeper.spec import ModelSpec

log = logging.getLogger(__name__)


def readable_specs(user: Any) -> list[ModelSpec]:
    """The valid specs of which `user` may read at least one DAG."""
    from modelkeeper.spec import valid_specs

    dag_ids = get_auth_manager().get_authorized_dag_ids(user=user, method="GET")
    return [s for s in valid_specs() if health.model_dag_ids(s) & dag_ids]


def read_health(specs: list[ModelSpec], *, scoring_runs: bool) -> list[health.ModelHealth]:
    """The models' health from the registry, audit trail and history (503 if unreachable)."""
    from modelkeeper.audit import AuditLog
    from modelkeeper.errors import UnavailableError
    from modelkeeper.history import History
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

    @app.get("/models", response_class=HTMLResponse)
    def models(request: Request, user: GetUserDep) -> HTMLResponse:
        found = read_health(readable_specs(user), scoring_runs=False)
        return HTMLResponse(render.models_page(found, base=_base(request)))

    @app.get("/models/{model}", response_class=HTMLResponse)
    def model(model: str, request: Request, user: GetUserDep) -> HTMLResponse:
        specs = [s for s in readable_specs(user) if s.name == model]
        if not specs:
            raise HTTPException(status_code=404, detail=f"no model {model!r} you may read")
        (found,) = read_health(specs, scoring_runs=True)
        return HTMLResponse(render.model_page(found, base=_base(request)))

    return app
