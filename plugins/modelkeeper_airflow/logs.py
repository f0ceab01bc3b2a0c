"""What a task log says, decided once for every Airflow process (the plugin calls
`configure()` at import, before any task code runs).

Airflow's task runner forwards a task process's stderr line by line as ERROR (logger
`task.stderr`), whatever the line says. MLflow, when imported, gives its own loggers a
handler that writes to stderr and stops them from propagating: every MLflow warning, and
even its INFO lines ("Waiting up to 300 seconds for model version..."), showed as a red
ERROR in a green train log. With MLflow's logging configuration turned off, its records
go through the host's logging like everyone else's: the task log, at their own level.
Genuine errors stay errors: nothing here filters or lowers a record.
"""

from __future__ import annotations

import logging
import os
import sys

# MLflow's own switch (mlflow.environment_variables.MLFLOW_CONFIGURE_LOGGING), read when
# `mlflow` is imported. A deployment that sets it keeps its choice.
MLFLOW_CONFIGURE_LOGGING = "MLFLOW_CONFIGURE_LOGGING"


def configure() -> None:
    """Route MLflow's log records to the host's handlers; idempotent."""
    os.environ.setdefault(MLFLOW_CONFIGURE_LOGGING, "false")
    if "mlflow" in sys.modules and os.environ[MLFLOW_CONFIGURE_LOGGING].lower() == "false":
        # Imported before the plugin (a forked process, a test): undo what its import did.
        route_to_host("mlflow")


def route_to_host(name: str) -> None:
    """Let logger `name` propagate to the root logger's handlers, with none of its own
    (MLflow's import gave it one that writes to stderr)."""
    logger = logging.getLogger(name)
    logger.handlers.clear()
    logger.propagate = True
    logger.setLevel(logging.NOTSET)
