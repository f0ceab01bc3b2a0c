"""modelkeeper's Airflow plugin: the model health pages and a listener for run notes.

Every Airflow component imports this file (the package modelkeeper_airflow is in
.airflowignore, so this is the one module the plugin manager scans): it stays light.
The pages' FastAPI app is built on its first request (modelkeeper_airflow/ui/lazy.py),
so only the api-server ever imports FastAPI routes, the auth manager or the core.
Operator extra links are declared on the operators, not registered here (see
modelkeeper_airflow/links.py for why). How libraries log in task processes is set here
once (modelkeeper_airflow/logs.py).
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from modelkeeper_airflow import logs
from modelkeeper_airflow.listener import RunNoteListener
from modelkeeper_airflow.ui import URL_PREFIX
from modelkeeper_airflow.ui.lazy import LazyApp

# Every Airflow process (each task among them) loads this file before any task code runs:
# MLflow's records go to the task log at their own level, not to stderr as ERROR lines.
logs.configure()


class ModelkeeperPlugin(AirflowPlugin):
    name = "modelkeeper"
    listeners = [RunNoteListener()]
    fastapi_apps = [{"app": LazyApp(), "url_prefix": URL_PREFIX, "name": "modelkeeper"}]
    # The UI shows it at /plugin/models, in an iframe whose src is href (relative, so a
    # sub-path [api] base_url still works).
    external_views = [
        {
            "name": "Models",
            "href": "modelkeeper/models",
            "destination": "nav",
            "url_route": "models",
        },
        # A tab on every DAG (3.3 has no per-DAG views): a model's DAGs show its health
        # page, any other DAG a one-line note.
        {
            "name": "Model health",
            "href": "modelkeeper/dags/{DAG_ID}/health",
            "destination": "dag",
            "url_route": "model-health",
        },
        # The notifications kept in the local outbox (make run has no mail server).
        {
            "name": "Outbox",
            "href": "modelkeeper/outbox",
            "destination": "nav",
            "url_route": "outbox",
        },
    ]
