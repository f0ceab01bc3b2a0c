"""The core stays plain Python: importing any modelkeeper module loads no airflow."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import modelkeeper

ROOT = Path(__file__).resolve().parents[2]


def _core_modules() -> list[str]:
    # The prefix lets walk_packages import and descend into the subpackages.
    # (A __main__ module runs its command when imported: not a library module.)
    found = pkgutil.walk_packages(modelkeeper.__path__, "modelkeeper.")
    return sorted(m.name for m in found if not m.name.endswith(".__main__"))


class TestCoreImports:
    def test_the_core_has_the_modules_we_check(self):
        # A guard for the test itself: an empty list would pass vacuously.
        assert {
            "modelkeeper.contracts.spec",
            "modelkeeper.records.registry",
            "modelkeeper.records.governance",
        } <= set(_core_modules())

    def test_importing_every_core_module_loads_no_airflow(self):
        code = (
            "import importlib, sys\n"
            f"for name in {_core_modules()!r}: importlib.import_module(name)\n"
            "print('AIRFLOW=' + ','.join(sorted(m for m in sys.modules "
            "if m == 'airflow' or m.startswith('airflow.'))))\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
        )
        assert "AIRFLOW=\n" in out.stdout + "\n", out.stdout[-800:]


class TestBacktestUsesTheStages:
    """The backtest replays through modelkeeper.stages, the functions the operators call:
    it never predicts, computes drift, fits, logs or registers a model itself."""

    LOW_LEVEL_MODULES = (
        "modelkeeper.modeling",
        "modelkeeper.monitoring.drift",
        "modelkeeper.quality",
        "modelkeeper.serving",
        "modelkeeper.data.collect",
        "modelkeeper.data.accept",
    )
    LOW_LEVEL_CALLS = {"predict", "score_model", "compute_drift", "fit", "log_model", "register"}

    def _modules(self):
        import ast

        folder = ROOT / "include" / "modelkeeper" / "backtest"
        found = {p.name: ast.parse(p.read_text()) for p in sorted(folder.glob("*.py"))}
        assert {"engine.py", "replay.py", "policies.py"} <= set(found)  # the check sees them
        return found

    def test_imports_no_low_level_module(self):
        import ast

        bad = []
        for name, tree in self._modules().items():
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.module:
                    mods = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
                elif isinstance(node, ast.Import):
                    mods = [a.name for a in node.names]
                else:
                    continue
                bad += [f"{name}: {m}" for m in mods if m.startswith(self.LOW_LEVEL_MODULES)]
        assert not bad, bad

    def test_calls_no_low_level_step(self):
        import ast

        bad = []
        for name, tree in self._modules().items():
            for node in ast.walk(tree):
                if isinstance(node, ast.Call):
                    called = getattr(node.func, "attr", getattr(node.func, "id", ""))
                    if called in self.LOW_LEVEL_CALLS:
                        bad.append(f"{name}:{node.lineno} {called}()")
        assert not bad, bad
