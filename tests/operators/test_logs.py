"""How libraries log in Airflow processes (modelkeeper_airflow/logs.py, issue 23 item 15).

Airflow's task runner logs every stderr line of a task as ERROR. MLflow's import gives its
loggers a stderr handler of their own: its warnings read as errors in a green train log.
Each case runs in a fresh interpreter, as a task process would: the plugin first (or
MLflow first, as in a process that imported it before the plugin), then MLflow logs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, logging, sys
seen = []
class Host(logging.Handler):  # the task runner's handler on the root logger
    def emit(self, record):
        seen.append([record.name, record.levelname, record.getMessage()])
logging.getLogger().addHandler(Host())
logging.getLogger().setLevel(logging.INFO)
if sys.argv[1] == "mlflow-first":
    import mlflow
from modelkeeper_airflow import logs
logs.configure()
import mlflow.sklearn
logging.getLogger("mlflow.sklearn").warning("a warning")
logging.getLogger("mlflow.store").info("an info line")
logging.getLogger("mlflow.tracking").error("a genuine error")
print(json.dumps(seen))
"""


class TestMlflowLogsGoThroughTheHost:
    @pytest.mark.parametrize(
        "order", [pytest.param("plugin-first", id="plugin-first"), "mlflow-first"]
    )
    def test_each_record_keeps_its_level_and_nothing_reaches_stderr(self, order: str) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_CONFIGURE_LOGGING",)} | {
            "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT)])
        }
        done = subprocess.run(
            [sys.executable, "-c", PROBE, order],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
            check=True,
        )
        seen = json.loads(done.stdout.strip().splitlines()[-1])
        assert seen == [
            ["mlflow.sklearn", "WARNING", "a warning"],
            ["mlflow.store", "INFO", "an info line"],
            ["mlflow.tracking", "ERROR", "a genuine error"],
        ]
        # What would have been an ERROR line in the task log (task.stderr).
        for text in ("a warning", "an info line", "a genuine error"):
            assert text not in done.stderr, done.stderr[-2000:]

    def test_a_deployment_that_sets_mlflows_switch_keeps_its_choice(self) -> None:
        from modelkeeper_airflow import logs

        before = os.environ.get(logs.MLFLOW_CONFIGURE_LOGGING)
        os.environ[logs.MLFLOW_CONFIGURE_LOGGING] = "true"
        try:
            logs.configure()
            assert os.environ[logs.MLFLOW_CONFIGURE_LOGGING] == "true"
        finally:
            if before is None:
                os.environ.pop(logs.MLFLOW_CONFIGURE_LOGGING)
            else:
                os.environ[logs.MLFLOW_CONFIGURE_LOGGING] = before


def test_plugin_discovery_warns_nothing() -> None:
    """Every Airflow process (each task) reads plugins/.airflowignore with pathspec's
    GitWildMatchPattern, deprecated in pathspec 1.0 (pinned below it in pyproject.toml):
    the DeprecationWarning it raised was in every task log."""
    from airflow._shared.module_loading import find_path_from_directory

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        found = list(find_path_from_directory(str(ROOT / "plugins"), ".airflowignore", "glob"))
    names = {Path(f).relative_to(ROOT / "plugins").as_posix() for f in found}
    assert "modelkeeper_plugin.py" in names
    assert not [n for n in names if n.startswith("modelkeeper_airflow/")], names
