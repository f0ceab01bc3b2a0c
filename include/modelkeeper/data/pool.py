"""The accepted pool: validated rows by event date, trusted once a manifest record lists them.

`accepted/<model>/date=YYYY-MM-DD/<run>.parquet` (partitions.py's layout). The pool is
written first and the run's record committed after (manifest.py's protocol); readers open
only the partitions committed records list, never a listing of the folder.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pandas as pd

from modelkeeper.contracts.spec import SqlSource
from modelkeeper.data.manifest import Manifest
from modelkeeper.data.partitions import in_days, read_partitions, write_partitions
from modelkeeper.data.sources import naive_utc, parse_timestamps

if TYPE_CHECKING:
    from modelkeeper.contracts.results import Accepted, FileOutcome, Unmatched
    from modelkeeper.contracts.spec import ModelSpec
    from modelkeeper.data.storage import Storage


def commit_accepted(
    spec: ModelSpec,
    storage: Storage,
    run_id: str,
    df: pd.DataFrame | None,
    *,
    files: list[FileOutcome] = (),  # type: ignore[assignment]
    result: Accepted | None = None,
    manifest: Manifest | None = None,
    unmatched: list[Unmatched] = (),  # type: ignore[assignment]
) -> None:
    """Add validated rows to the pool and commit the run's record: pool first, then the
    record (the commit), so a crash in between leaves nothing any reader trusts."""
    manifest = manifest or Manifest(storage, spec.name)
    ts_col = spec.data_schema.timestamp_column
    pool: list[dict] = []
    end = None
    if df is not None and len(df):
        if not pd.api.types.is_datetime64_any_dtype(df[ts_col]):
            df = df.assign(**{ts_col: naive_utc(parse_timestamps(df[ts_col]))})
        pool = _write_pool(spec, storage, run_id, df)
        end = df[ts_col].max().isoformat()
    watermark = end
    if isinstance(spec.source, SqlSource):
        watermark = max(filter(None, [end, manifest.watermark()]), default=None)
    manifest.commit(
        {
            "run_id": run_id,
            "committed_at": datetime.now(UTC).isoformat(),
            "files": [f.to_dict() for f in files],
            "pool": pool,
            "watermark": watermark,
            "result": None if result is None else result.to_dict(),
            "unmatched": [u.to_dict() for u in unmatched],
        }
    )


def _write_pool(spec: ModelSpec, storage: Storage, run_id: str, df: pd.DataFrame) -> list[dict]:
    """Accepted rows as one partition per event date, under this run's name; the records'
    paths are relative to the root (the pool moves with it)."""
    parts = write_partitions(
        storage,
        storage.accepted_dir(spec.name),
        df,
        ts_col=spec.data_schema.timestamp_column,
        run_id=run_id,
    )
    return [
        {
            "path": p.path.relative_to(storage.root).as_posix(),
            "date": p.date,
            "rows": p.rows,
            "start": p.start,
            "end": p.end,
        }
        for p in parts
    ]


def load_pool(
    spec: ModelSpec,
    storage: Storage,
    *,
    since: pd.Timestamp | None = None,
    until: pd.Timestamp | None = None,
    columns: list[str] | None = None,
    manifest: Manifest | None = None,
) -> pd.DataFrame:
    """Accepted rows with event times in [since, until], reading only the partitions of
    those dates; a key re-landed later replaces the earlier rows."""
    manifest = manifest or Manifest(storage, spec.name)
    ts_col = spec.data_schema.timestamp_column
    files = [
        storage.root / p["path"] for p in manifest.partitions() if in_days(p["date"], since, until)
    ]
    df = read_partitions(storage, files, ts_col=ts_col, since=since, until=until, columns=columns)
    if not files:
        return df
    key = spec.data_schema.unique_key
    if key and set(key) <= set(df.columns):
        df = df.drop_duplicates(subset=key, keep="last")  # the last committed version wins
    return df.sort_values(ts_col, kind="stable").reset_index(drop=True)


def load_window(
    spec: ModelSpec, storage: Storage, *, days: int, until: str | None = None
) -> pd.DataFrame:
    """The last `days` days of accepted rows up to `until` (the newest accepted row when
    None), reading only the partitions of those days."""
    manifest = Manifest(storage, spec.name)
    ends = [
        min(p["end"], until) if until else p["end"]
        for p in manifest.partitions()
        if until is None or p["start"] <= until
    ]
    if not ends:
        return pd.DataFrame()
    # Partitions are whole days: read from the day before the window could start.
    since = pd.Timestamp(max(ends)).normalize() - pd.Timedelta(days=days + 1)
    df = load_pool(
        spec,
        storage,
        since=since,
        until=None if until is None else pd.Timestamp(until),
        manifest=manifest,
    )
    if df.empty:
        return df
    ts_col = spec.data_schema.timestamp_column
    start = df[ts_col].max() - pd.Timedelta(days=days)
    return df[df[ts_col] > start].reset_index(drop=True)
