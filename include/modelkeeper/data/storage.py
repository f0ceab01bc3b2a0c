"""Where a model's data and reports live, keyed by (model, run) so a rerun replaces.

Layout under the storage root (a local folder by default, or an object-store URI such as
`s3://bucket/prefix`; `MODELKEEPER_STORAGE` sets it, see settings):

    landing/                          where sources drop files (the demo feed writes here)
    snapshots/<model>/<run>/          the new files one run collected, and what it accepted
    manifest/<model>/<run>.json       what each run took and what became of it (manifest.py)
    accepted/<model>/date=D/<run>.parquet   rows that passed validation: the training pool
    quarantine/<model>/<run>/         rejected files with their validation report
    reports/<model>/<run>/            GX result + Data Docs, Evidently HTML + JSON
    prediction_log/<model>/date=D/<run>.parquet   what the champion predicted (scoring.py)
    outbox/<model>/<time>-<event>-<random>.json   every notification (records/outbox.py)

Every location is a `modelkeeper.data.objstore.Location`: a `pathlib.Path` under a local root,
a URI-backed path under an object-store root. What crosses task boundaries is `str()` of
it: the local path as before, or the full URI, never a host path for remote storage.

Atomic writes: locally every write goes to a temporary name and is renamed when
complete; on an object store the finished file is uploaded in one PUT (S3 has no
rename, but a PUT is all or nothing). Either way a killed task never leaves half a file
behind under the final name. Outputs made of several objects are trusted only once the
object that commits them exists: a run's manifest record (the pool partitions it lists),
a snapshot's batch.json, Data Docs' index.html.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelkeeper.contracts.jsonio import dumps
from modelkeeper.contracts.settings import settings
from modelkeeper.data import objstore
from modelkeeper.data.objstore import Location, atomic_write  # noqa: F401 - re-exported

if TYPE_CHECKING:
    import pandas as pd

PathLike = str | os.PathLike[str]


def run_key(run_id: str) -> str:
    """A file-system-safe, stable name for an Airflow run id."""
    key = re.sub(r"[^A-Za-z0-9._-]+", "_", run_id).strip("_")
    if not key:
        raise ValueError(f"run id {run_id!r} gives an empty storage key")
    return key


class Storage:
    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        loc = objstore.location(str(root or settings().storage_root).rstrip("/") or "/")
        self.root: Location = loc.resolve() if isinstance(loc, Path) else loc

    @property
    def remote(self) -> bool:
        """True when the root is an object-store URI (no host paths to hand around)."""
        return objstore.is_remote(self.root)

    # -- locations -----------------------------------------------------------------
    def at(self, where: PathLike) -> Location:
        """A location from a string some stage handed over (a path or URI); a relative
        one is taken under the root."""
        if objstore.is_uri(where) or Path(where).is_absolute():
            return objstore.location(where)
        return self.root / str(where)

    def landing_dir(self) -> Location:
        return self.root / "landing"

    def snapshot_dir(self, model: str, run_id: str) -> Location:
        return self.root / "snapshots" / model / run_key(run_id)

    def accepted_dir(self, model: str) -> Location:
        return self.root / "accepted" / model

    def quarantine_dir(self, model: str, run_id: str) -> Location:
        return self.root / "quarantine" / model / run_key(run_id)

    def report_dir(self, model: str, run_id: str) -> Location:
        return self.root / "reports" / model / run_key(run_id)

    # -- atomic writes ---------------------------------------------------------------
    def write_parquet(self, df: pd.DataFrame, path: PathLike) -> Location:
        return atomic_write(path, lambda tmp: df.to_parquet(tmp, index=False))

    def write_json(self, data: Any, path: PathLike) -> Location:
        return self.write_text(dumps(data, indent=2, sort_keys=True), path)

    def write_text(self, text: str, path: PathLike) -> Location:
        return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))

    def copy_into(self, src: PathLike, path: PathLike) -> Location:
        return objstore.copy(src, path)

    def move_into(self, src: PathLike, path: PathLike) -> Location:
        """Move a file the store wrote (a snapshot) elsewhere under it: one copy, not two."""
        return objstore.move(src, path)

    # -- reads -------------------------------------------------------------------------
    @staticmethod
    def read_json(path: PathLike, default: Any = None) -> Any:
        try:
            return json.loads(objstore.read_text(path))
        except FileNotFoundError:
            return default

    @staticmethod
    def read_parquet(path: PathLike, columns: list[str] | None = None) -> pd.DataFrame:
        """A Parquet file a stage wrote, by the path or URI it handed over."""
        return objstore.read_parquet(path, columns=columns)
