"""collect: snapshot what no committed run has taken yet (manifest.py has the protocol)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa

from modelkeeper.contracts.errors import ConfigError
from modelkeeper.contracts.results import Batch, BatchFile, Unmatched
from modelkeeper.contracts.spec import FileSource, SqlSource
from modelkeeper.data.keys import anti_join
from modelkeeper.data.manifest import Manifest
from modelkeeper.data.pool import load_pool
from modelkeeper.data.sources import (
    FileId,
    SourceError,
    list_files,
    list_unmatched,
    naive_utc,
    parse_timestamps,
    read_file,
    substitute_watermark,
)

if TYPE_CHECKING:
    from modelkeeper.contracts.spec import ModelSpec
    from modelkeeper.data.objstore import Location
    from modelkeeper.data.storage import Storage

BATCH_META = "batch.json"
NAMED_AT_MOST = 10  # unmatched files named in a warning; batch.json lists them all


def collect(
    spec: ModelSpec,
    storage: Storage,
    run_id: str,
    *,
    read_sql: Callable[[str], pd.DataFrame] | None = None,
) -> Batch:
    """Snapshot the files (or query rows) no committed run has taken yet.

    Idempotent per run: a complete snapshot (batch.json is written last) is returned as
    is, so a retry sees exactly what the first attempt saw. Unreadable files are copied to
    quarantine here and reported in the batch; `accept` records them. Files in the landing
    folder that the pattern does not match, and that no run named yet, are listed in the
    batch's `unmatched` (`accept` warns and records them).
    """
    folder = storage.snapshot_dir(spec.name, run_id)
    meta = folder / BATCH_META
    if meta.exists():
        return Batch.from_dict(storage.read_json(meta))
    manifest = Manifest(storage, spec.name)
    source = spec.source
    skipped: list[str] = []
    unmatched: list[Unmatched] = []
    if isinstance(source, FileSource):
        files, skipped, unmatched, since = _new_files(spec, storage, run_id, manifest, folder)
    elif isinstance(source, SqlSource):
        if read_sql is None:
            raise ConfigError(f"model {spec.name!r} has a SQL source: collect needs read_sql")
        files, since = _new_sql_rows(spec, storage, manifest, folder, read_sql)
    else:  # pragma: no cover - the spec's discriminator admits only the two kinds
        raise TypeError(f"unknown source {type(source).__name__}")
    starts = [f.start for f in files if f.start]
    ends = [f.end for f in files if f.end]
    batch = Batch(
        folder=str(folder),
        files=files,
        rows=sum(f.rows for f in files),
        start=min(starts) if starts else None,
        end=max(ends) if ends else None,
        since=since,
        skipped=skipped,
        unmatched=unmatched,
    )
    storage.write_json(batch.to_dict(), meta)
    return batch


def describe_unmatched(unmatched: list[Unmatched], spec: ModelSpec) -> str | None:
    """The warning that names the files a source's pattern left out (None without any)."""
    if not unmatched or not isinstance(spec.source, FileSource):
        return None
    pattern = spec.source.path
    names = [u.name for u in unmatched[:NAMED_AT_MOST]]
    more = len(unmatched) - len(names)
    listed = ", ".join(names) + (f" and {more} more (batch.json lists them)" if more else "")
    return (
        f"not taken: {len(unmatched)} file(s) in the landing folder do not match the source "
        f"pattern {pattern}: {listed} (each named once; rename or move a file for a run to "
        "take it)"
    )


def _new_files(
    spec: ModelSpec, storage: Storage, run_id: str, manifest: Manifest, folder: Location
) -> tuple[list[BatchFile], list[str], list[Unmatched], str | None]:
    source = spec.source
    assert isinstance(source, FileSource)
    taken, seen = manifest.taken(excluding=run_id), manifest.paths()
    files: list[BatchFile] = []
    skipped: list[str] = []
    listed = list_files(source.path, base=storage.root)
    named = manifest.named(excluding=run_id)
    unmatched = [
        Unmatched(fid.path, fid.key, name)
        for name, fid in list_unmatched(source.path, base=storage.root, matched=listed)
        if fid.key not in named
    ]
    for fid in listed:
        before = taken.get(fid.key)
        if before is not None:
            if before["outcome"] == "unreadable":
                skipped.append(
                    f"{fid.path}: unreadable, quarantined by run {before['run_id']}; "
                    "re-land a readable file to ingest it"
                )
            continue
        snapshot = folder / "files" / f"{len(files):04d}.parquet"
        files.append(_snapshot_file(spec, storage, run_id, fid, snapshot, fid.path in seen))
    last = manifest.last_take()
    return files, skipped, unmatched, last["committed_at"] if last else None


def _snapshot_file(
    spec: ModelSpec, storage: Storage, run_id: str, fid: FileId, snapshot: Location, relanded: bool
) -> BatchFile:
    source = spec.source
    assert isinstance(source, FileSource)
    try:
        df = read_file(fid, source.format)
    except SourceError as exc:
        name = fid.path.rstrip("/").rsplit("/", 1)[-1]
        quarantine = storage.quarantine_dir(spec.name, run_id) / name
        try:
            storage.copy_into(fid.path, quarantine / name)  # a copy, local or object store
        except FileNotFoundError:  # gone since it was listed: the reason says enough
            pass
        storage.write_text(f"{exc}\n", quarantine / "REASON.txt")
        return BatchFile(
            fid.path, fid.key, None, error=str(exc), quarantine=str(quarantine), relanded=relanded
        )
    return _snapshot(spec, storage, df, fid.path, fid.key, snapshot, relanded)


def _snapshot(
    spec: ModelSpec,
    storage: Storage,
    df: pd.DataFrame,
    source: str,
    key: str,
    path: Location,
    relanded: bool = False,
) -> BatchFile:
    ts_col = spec.data_schema.timestamp_column
    start = end = None
    if ts_col in df.columns and len(df):
        ts = naive_utc(parse_timestamps(df[ts_col]))
        if ts.notna().any():  # unparseable ones stay NaT: validation names the column
            df = df.assign(**{ts_col: ts})
            start, end = ts.min().isoformat(), ts.max().isoformat()
    _write_snapshot(storage, df, path)
    return BatchFile(
        source, key, str(path), len(df), start, end, [str(c) for c in df.columns], relanded=relanded
    )


def _new_sql_rows(
    spec: ModelSpec,
    storage: Storage,
    manifest: Manifest,
    folder: Location,
    read_sql: Callable[[str], pd.DataFrame],
) -> tuple[list[BatchFile], str | None]:
    source = spec.source
    assert isinstance(source, SqlSource)
    watermark = manifest.watermark()
    lookback = timedelta(minutes=source.lookback_minutes)
    df = read_sql(substitute_watermark(source.query, watermark, lookback))
    key = spec.data_schema.unique_key
    ts_col = spec.data_schema.timestamp_column
    if ts_col in df.columns and len(df):  # one clock and type, so keys compare with the pool's
        df = df.assign(**{ts_col: naive_utc(parse_timestamps(df[ts_col]))})
    if watermark is not None and key and len(df) and set(key) <= set(df.columns):
        # Re-read rows (the lookback, ties) whose key the pool already holds: drop them.
        since = pd.Timestamp(watermark) - lookback
        known = load_pool(spec, storage, since=since, columns=list(dict.fromkeys([*key, ts_col])))
        df = anti_join(df, known, key, spec)
    run = folder.name
    batch_file = _snapshot(
        spec, storage, df, f"sql:{source.conn_id}", f"sql:{run}", folder / "files" / "0000.parquet"
    )
    return [batch_file], watermark


def _write_snapshot(storage: Storage, df: pd.DataFrame, path: Location) -> None:
    try:
        storage.write_parquet(df, path)
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        # A column holding mixed types (numbers and text in one CSV) cannot be stored as
        # is: keep it as text so validation can report its type.
        mixed = [
            c
            for c in df.columns
            if df[c].dtype == object and df[c].dropna().map(type).nunique() > 1
        ]
        if not mixed:
            raise
        fixed = df.copy()
        for col in mixed:
            fixed[col] = fixed[col].astype(str).where(fixed[col].notna(), None)
        storage.write_parquet(fixed, path)
