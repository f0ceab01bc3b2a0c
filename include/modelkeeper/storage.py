"""Where a model's data and reports live, keyed by (model, run) so a rerun replaces.

Layout under the storage root (a local folder; `MODELKEEPER_STORAGE` overrides, see settings):

    landing/                          where sources drop files (the demo feed writes here)
    snapshots/<model>/<run>/          the new files one run collected, and what it accepted
    manifest/<model>/<run>.json       what each run took and what became of it (ingest.py)
    accepted/<model>/date=D/<run>.parquet   rows that passed validation: the training pool
    quarantine/<model>/<run>/         rejected files with their validation report
    reports/<model>/<run>/            GX result + Data Docs, Evidently HTML + JSON

Every write goes to a temporary name and is renamed when complete, so a killed task
never leaves half a file behind under the final name.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelkeeper.jsonsafe import jsonable
from modelkeeper.settings import settings

if TYPE_CHECKING:
    import pandas as pd


def atomic_write(path: Path, write: Callable[[Path], object]) -> Path:
    """Call `write(tmp)` on a temporary file beside `path`, then rename it into place.

    A killed writer leaves at most a hidden temporary file, never half a file under the
    final name. The only writer in the core: everything that lands on disk goes through it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def run_key(run_id: str) -> str:
    """A file-system-safe, stable name for an Airflow run id."""
    key = re.sub(r"[^A-Za-z0-9._-]+", "_", run_id).strip("_")
    if not key:
        raise ValueError(f"run id {run_id!r} gives an empty storage key")
    return key


class Storage:
    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root or settings().storage_root).resolve()

    # -- locations -----------------------------------------------------------------
    def landing_dir(self) -> Path:
        return self.root / "landing"

    def snapshot_dir(self, model: str, run_id: str) -> Path:
        return self.root / "snapshots" / model / run_key(run_id)

    def accepted_dir(self, model: str) -> Path:
        return self.root / "accepted" / model

    def quarantine_dir(self, model: str, run_id: str) -> Path:
        return self.root / "quarantine" / model / run_key(run_id)

    def report_dir(self, model: str, run_id: str) -> Path:
        return self.root / "reports" / model / run_key(run_id)

    # -- atomic writes ---------------------------------------------------------------
    def write_parquet(self, df: pd.DataFrame, path: Path) -> Path:
        return atomic_write(path, lambda tmp: df.to_parquet(tmp, index=False))

    def write_json(self, data: Any, path: Path) -> Path:
        return self.write_text(json.dumps(jsonable(data), indent=2, sort_keys=True), path)

    def write_text(self, text: str, path: Path) -> Path:
        return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))

    def copy_into(self, src: Path, path: Path) -> Path:
        return atomic_write(path, lambda tmp: shutil.copyfile(src, tmp))

    @staticmethod
    def read_json(path: Path, default: Any = None) -> Any:
        try:
            return json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return default
