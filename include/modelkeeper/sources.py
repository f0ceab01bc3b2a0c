"""Collect a model's new data into a per-run snapshot.

`collect` reads the spec's source (files or SQL), keeps the rows past the processed
watermark (or the training window on a first run) and writes
snapshots/<model>/<run>/batch.parquet plus a batch.json sidecar. It never moves the
watermark: the validation step does that once the batch is accepted. A rerun of the same
run reuses its snapshot, so retries see exactly the data the first attempt saw.
"""

from __future__ import annotations

import glob
import io
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pandas as pd
import pyarrow as pa

from modelkeeper.errors import DataError
from modelkeeper.handoff import Handoff
from modelkeeper.spec import FileSource, SqlSource

if TYPE_CHECKING:
    from modelkeeper.spec import ModelSpec
    from modelkeeper.storage import Storage

WATERMARK_PLACEHOLDER = "{watermark}"
EPOCH_LITERAL = "'1970-01-01 00:00:00'"
BATCH_FILE = "batch.parquet"
BATCH_META = "batch.json"


class SourceError(DataError):
    """An input cannot be read (corrupt, truncated, wrong encoding).

    A data error: retrying reads the same bytes, so callers should not retry. `path` names
    the offending file so it can be quarantined.
    """

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


@dataclass(frozen=True)
class Batch(Handoff):
    path: str  # the snapshot parquet
    rows: int
    start: str | None  # min timestamp of the batch (ISO), None when it has none
    end: str | None  # max timestamp (ISO): the watermark once the batch is accepted
    watermark_before: str | None
    files: list[str]  # source files read; empty for SQL


# -- files ---------------------------------------------------------------------------------


def _is_uri(pattern: str) -> bool:
    return "://" in pattern


def _parse(data: bytes, fmt: Literal["parquet", "csv"], name: str) -> pd.DataFrame:
    # The bytes are already in memory, so every failure here is about the content:
    # I/O errors (possibly transient) surface earlier, unchanged, from the read itself.
    try:
        if fmt == "csv":
            return pd.read_csv(io.BytesIO(data), encoding="utf-8", encoding_errors="strict")
        return pd.read_parquet(io.BytesIO(data))
    except (ValueError, OSError, pa.ArrowException) as exc:
        # UnicodeDecodeError, pandas ParserError/EmptyDataError and ArrowInvalid are
        # ValueErrors; pyarrow reports corrupt pages and footers as OSError.
        raise SourceError(
            f"cannot read {fmt} file {name}: {type(exc).__name__}: {exc}", path=name
        ) from exc


def _read_local(
    pattern: str, fmt: Literal["parquet", "csv"]
) -> tuple[list[pd.DataFrame], list[str]]:
    files = sorted(p for p in glob.glob(pattern, recursive=True) if os.path.isfile(p))
    return [_parse(Path(p).read_bytes(), fmt, p) for p in files], files


def _read_uri(pattern: str, fmt: Literal["parquet", "csv"]) -> tuple[list[pd.DataFrame], list[str]]:
    import fsspec  # an Airflow dependency; only URIs need it

    fs, path = fsspec.core.url_to_fs(pattern)
    paths = sorted(p for p in fs.glob(path) if fs.isfile(p))
    frames, files = [], []
    for p in paths:
        name = fs.unstrip_protocol(p)
        with fs.open(p, "rb") as fh:
            data = fh.read()
        frames.append(_parse(data, fmt, name))
        files.append(name)
    return frames, files


def read_files(
    pattern: str, fmt: Literal["parquet", "csv"], *, base: Path
) -> tuple[pd.DataFrame, list[str]]:
    """Read every file matching `pattern` into one frame; return it with the files read.

    `pattern` is a glob: relative (to `base`), absolute, or a URI (s3://, gs://, file://,
    memory://, ...) read through fsspec. Files are read in name order; the result has the
    union of their columns. No match gives an empty frame: whether that is acceptable is
    validation's call. A file that cannot be parsed raises SourceError naming it.
    """
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"unsupported file format {fmt!r} (parquet or csv)")
    if _is_uri(pattern):
        frames, files = _read_uri(pattern, fmt)
    else:
        full = pattern if os.path.isabs(pattern) else str(Path(base) / pattern)
        frames, files = _read_local(full, fmt)
    if not frames:
        return pd.DataFrame(), []
    # Empty frames only contribute their columns (concat warns about all-NA entries).
    non_empty = [f for f in frames if len(f)] or frames[:1]
    df = pd.concat(non_empty, ignore_index=True, sort=False)
    missing = [c for f in frames for c in f.columns if c not in df.columns]
    for col in dict.fromkeys(missing):
        df[col] = pd.Series(dtype="object", index=df.index)
    return df, files


# -- SQL ----------------------------------------------------------------------------------


def substitute_watermark(query: str, watermark: str | None) -> str:
    """Replace "{watermark}" in `query` by a quoted SQL timestamp literal.

    The literal is rebuilt from the parsed timestamp, never copied from the input, and a
    watermark that is not an ISO timestamp raises ValueError: nothing can be injected.
    No watermark (first run) gives the epoch, '1970-01-01 00:00:00'.
    """
    if watermark is None:
        literal = EPOCH_LITERAL
    else:
        if not isinstance(watermark, str):
            raise ValueError(f"watermark must be an ISO timestamp string, got {watermark!r}")
        try:
            parsed = datetime.fromisoformat(watermark.strip())
        except ValueError as exc:
            raise ValueError(f"watermark {watermark!r} is not an ISO timestamp") from exc
        literal = f"'{parsed.isoformat(sep=' ')}'"
    return query.replace(WATERMARK_PLACEHOLDER, literal)


# -- collect ------------------------------------------------------------------------------


def _parse_ts(values: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values):
        return values
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (FutureWarning, UserWarning))
        parsed = pd.to_datetime(values, errors="coerce", format="ISO8601")
        if not pd.api.types.is_datetime64_any_dtype(parsed):
            # Mixed UTC offsets come back as objects: put them on one clock.
            parsed = pd.to_datetime(values, errors="coerce", format="ISO8601", utc=True)
    return parsed


def _like(stamp: pd.Timestamp, ts: pd.Series) -> pd.Timestamp:
    """`stamp` made comparable with `ts` (naive values are taken as UTC against aware ones)."""
    aware = getattr(ts.dt, "tz", None) is not None
    if aware and stamp.tzinfo is None:
        return stamp.tz_localize("UTC")
    if not aware and stamp.tzinfo is not None:
        return stamp.tz_convert("UTC").tz_localize(None)
    return stamp


def _new_rows(
    df: pd.DataFrame, column: str, watermark: str | None, training_days: int
) -> tuple[pd.DataFrame, str | None, str | None]:
    """Rows after the watermark (first run: the last `training_days` days), start, end."""
    if column not in df.columns or df.empty:
        return df, None, None
    ts = _parse_ts(df[column])
    if ts.isna().all():
        return df, None, None  # nothing to filter on: validation will name the column
    if watermark is not None:
        cutoff = _like(pd.Timestamp(watermark), ts)
    else:
        cutoff = ts.max() - pd.Timedelta(days=training_days)
    # Rows whose timestamp does not parse are kept (as NaT) so validation reports them
    # instead of them vanishing here.
    keep = (ts > cutoff) | ts.isna()
    out = df.loc[keep].reset_index(drop=True)
    kept = ts[keep].reset_index(drop=True)
    out[column] = kept
    if kept.isna().all():
        return out, None, None
    return out, kept.min().isoformat(), kept.max().isoformat()


def _write_snapshot(storage: Storage, df: pd.DataFrame, path: Path) -> None:
    try:
        storage.write_parquet(df, path)
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        # A column holding mixed types (e.g. numbers in one CSV, text in another) cannot
        # be stored as is: keep it as text so validation can report its type.
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


def collect(
    spec: ModelSpec,
    storage: Storage,
    run_id: str,
    *,
    read_sql: Callable[[str], pd.DataFrame] | None = None,
) -> Batch:
    """Snapshot the model's new rows for run `run_id`; return the Batch describing them.

    Idempotent per run: when the run already has a complete snapshot (batch.json is
    written last, after batch.parquet) it is returned as is, without reading the source.
    SQL sources need `read_sql` (query -> DataFrame); its errors propagate unchanged.
    """
    folder = storage.snapshot_dir(spec.name, run_id)
    parquet, meta = folder / BATCH_FILE, folder / BATCH_META
    if parquet.exists() and meta.exists():
        return Batch.from_dict(storage.read_json(meta))

    watermark = storage.watermark(spec.name)
    source = spec.source
    if isinstance(source, FileSource):
        df, files = read_files(source.path, source.format, base=storage.root)
    elif isinstance(source, SqlSource):
        if read_sql is None:
            raise ValueError(f"model {spec.name!r} has a SQL source: collect needs read_sql")
        df, files = read_sql(substitute_watermark(source.query, watermark)), []
    else:  # pragma: no cover - the spec's discriminator admits only the two kinds
        raise TypeError(f"unknown source {type(source).__name__}")

    df, start, end = _new_rows(
        df, spec.data_schema.timestamp_column, watermark, spec.window.training_days
    )
    _write_snapshot(storage, df, parquet)
    batch = Batch(
        path=str(parquet),
        rows=len(df),
        start=start,
        end=end,
        watermark_before=watermark,
        files=files,
    )
    storage.write_json(batch.to_dict(), meta)
    return batch
