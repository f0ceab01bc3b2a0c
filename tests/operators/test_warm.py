"""Warm task processes (plugins/modelkeeper_airflow/warm.py): what the workers import first.

The speed itself is measured by `make bench` (bench/startup.py); these check what makes
it safe and complete: every library module the code imports lazily is warmed, and warming
starts no thread (a fork copies only the thread that forks).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from modelkeeper_airflow.celery_config import CELERY_CONFIG

ROOT = Path(__file__).resolve().parents[2]
#: Libraries a task imports inside functions, each worth seconds of a cold start.
HEAVY = {
    "numpy", "pandas", "pyarrow", "scipy", "sqlalchemy", "sklearn", "great_expectations",
    "evidently", "mlflow", "jinja2", "fsspec",
}  # fmt: skip
#: Code that tasks never import (tools run by hand or by make; the API server's pages).
NOT_IN_TASKS = ("modelkeeper/backtest/", "modelkeeper/demo/", "modelkeeper_airflow/ui/")


def _warm_modules() -> tuple[str, ...]:
    tree = ast.parse((ROOT / "plugins/modelkeeper_airflow/warm.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "MODULES":
            return ast.literal_eval(node.value)
    raise AssertionError("warm.py has no MODULES")


def _lazy_heavy_imports() -> dict[str, str]:
    """{module: first file} of every heavy-library import in the task code."""
    found: dict[str, str] = {}
    for base in (ROOT / "include/modelkeeper", ROOT / "plugins/modelkeeper_airflow"):
        for path in sorted(base.rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if any(part in rel for part in NOT_IN_TASKS) or "/vendor/" in rel:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    if name.split(".")[0] in HEAVY:
                        found.setdefault(name, rel)
    return found


def test_every_heavy_import_of_the_task_code_is_warmed() -> None:
    warmed = _warm_modules()
    covered = {m for name in warmed for m in _parents(name)}
    imports = _lazy_heavy_imports()
    assert len(imports) > 20, imports  # the walk found the code's imports
    missing = {name: where for name, where in imports.items() if name not in covered}
    assert not missing, f"add these to warm.MODULES (first import in the file named): {missing}"


def _parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def test_warming_imports_everything_and_starts_no_thread() -> None:
    probe = (
        "import sys, threading, json\n"
        "import modelkeeper_airflow.warm as w\n"
        "print(json.dumps({'missing': [m for m in w.MODULES if m not in sys.modules],\n"
        "  'threads': [t.name for t in threading.enumerate()]}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env={"PYTHONPATH": f"{ROOT / 'plugins'}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["missing"] == [], seen
    assert seen["threads"] == ["MainThread"], seen


def test_celery_workers_import_the_warm_module_before_forking_their_pool() -> None:
    from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG

    assert "modelkeeper_airflow.warm" in CELERY_CONFIG["imports"]
    # Everything else is Airflow's default (broker, result backend, queues...).
    rest = {k: v for k, v in CELERY_CONFIG.items() if k != "imports"}
    assert rest == {k: v for k, v in DEFAULT_CELERY_CONFIG.items() if k != "imports"}
