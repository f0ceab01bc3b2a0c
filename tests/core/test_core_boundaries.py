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
