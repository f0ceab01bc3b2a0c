"""The Outbox page: the notifications kept in the local outbox (modelkeeper.records.outbox).

Under `make run` no mail server is configured, so this page is where an owner reads what
modelkeeper told them: newest first, of the models the caller may read (same rule as the
model pages: `GetUserDep`, then only models with a DAG the user may read). Included in
the plugin app by ui/app.py; shown in the UI's nav as "Outbox" (modelkeeper_plugin.py).
"""

from __future__ import annotations

from airflow.api_fastapi.core_api.security import GetUserDep
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from modelkeeper_airflow.templates import render

ROUTE = "/outbox"
LIMIT = 200  # the newest; older files stay in the folder

router = APIRouter()


@router.get(ROUTE, response_class=HTMLResponse)
def outbox_page(request: Request, user: GetUserDep) -> HTMLResponse:
    from modelkeeper.data.storage import Storage
    from modelkeeper.records import outbox
    from modelkeeper_airflow.ui.app import readable_specs

    storage = Storage()
    models = {s.name for s in readable_specs(user)}
    entries = outbox.read(storage, models=models, limit=LIMIT) if models else []
    base = request.scope.get("root_path", "").rstrip("/")
    return HTMLResponse(
        render(
            "outbox.html.j2",
            entries=entries,
            limit=LIMIT,
            folder=str(outbox.outbox_dir(storage)),
            base=base,
        )
    )
