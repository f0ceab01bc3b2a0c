"""The plugin's ASGI app, built on its first request.

Every Airflow component imports the plugin file, but only the api-server serves the app:
this stand-in keeps FastAPI, the auth manager and the core out of the scheduler's,
the DAG processor's and the workers' imports.
"""

from __future__ import annotations

from typing import Any


class LazyApp:
    """An ASGI app that builds `modelkeeper_airflow.ui.app.create_app()` when first called."""

    def __init__(self) -> None:
        self._app: Any = None

    @property
    def app(self) -> Any:
        if self._app is None:
            from modelkeeper_airflow.ui.app import create_app

            self._app = create_app()
        return self._app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)

    def __repr__(self) -> str:  # GET /api/v2/plugins shows it as a string
        return "modelkeeper_airflow.ui.app:create_app"
