"""Reading what producers land: file listings with identities, file contents, SQL queries.

This module only reads; deciding what is new, and remembering what was taken, is the job
of modelkeeper.data.collect and modelkeeper.data.manifest. A file's identity is what
fsspec (or the local file system) reports for it: path, size and modification time, plus
the ETag on object stores. A file re-landed with other content has another identity, so
it counts as new.
"""

from __future__ import annotations

import glob
import io
import os
import re
import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

import pandas as pd
import pyarrow as pa

from modelkeeper.contracts.errors import DataError

WATERMARK_PLACEHOLDER = "{watermark}"
EPOCH_LITERAL = "'1970-01-01 00:00:00'"
_WILDCARD = re.compile(r"[*?[]")  # what makes a path part a glob (glob.has_magic's test)


class SourceError(DataError):
    """An input cannot be read (corrupt, truncated, wrong encoding).

    A data error: retrying reads the same bytes. `path` names the offending file so it
    can be quarantined.
    """

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


@dataclass(frozen=True)
class FileId:
    """A landed file as the storage reports it; `key` is what the manifest remembers."""

    path: str  # absolute local path or full URI
    size: int
    mtime: str | None  # ISO timestamp, or None where the store has none
    etag: str | None = None

    @property
    def key(self) -> str:
        return f"{self.path}|{self.size}|{self.mtime}|{self.etag or ''}"


# -- files ---------------------------------------------------------------------------------


def _is_uri(pattern: str | os.PathLike[str]) -> bool:
    return "://" in str(pattern)


def _iso(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value)).isoformat()
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def list_files(pattern: str, *, base: str | os.PathLike[str]) -> list[FileId]:
    """The files matching `pattern`, in name order, with their identities.

    `pattern` is a glob: relative (to `base`, a folder or an object-store URI), absolute,
    or a URI (s3://, gs://, file://, memory://, ...) listed through fsspec
    (modelkeeper.data.objstore). Listing reads metadata only, never contents.
    """
    if not _is_uri(pattern) and _is_uri(base):  # relative to an object-store root
        pattern = f"{str(base).rstrip('/')}/{pattern}"
    if not _is_uri(pattern):
        full = pattern if os.path.isabs(pattern) else str(Path(base) / pattern)
        out = []
        for p in sorted(glob.glob(full, recursive=True)):
            if os.path.isfile(p):
                st = os.stat(p)
                out.append(FileId(os.path.abspath(p), st.st_size, _iso(st.st_mtime_ns / 1e9)))
        return out
    from modelkeeper.data.objstore import glob_info  # only URIs need fsspec

    return [_file_id(uri, info) for uri, info in glob_info(pattern)]


def landing_folder(pattern: str, *, base: str | os.PathLike[str]) -> str:
    """The folder `pattern` looks in: its path up to the first part with a wildcard (the
    parent of a pattern without one), absolute or a full URI like list_files' paths."""
    if not _is_uri(pattern) and _is_uri(base):
        pattern = f"{str(base).rstrip('/')}/{pattern}"
    if not _is_uri(pattern) and not os.path.isabs(pattern):
        pattern = str(Path(base) / pattern)
    if _is_uri(pattern):
        scheme, rest = pattern.split("://", 1)
        head, parts = f"{scheme}://", rest.split("/")
    else:
        pattern = os.path.abspath(pattern)
        head, parts = "", pattern.split(os.sep)
    fixed = next((i for i, part in enumerate(parts) if _WILDCARD.search(part)), len(parts) - 1)
    return head + "/".join(parts[:fixed]) if head else os.sep.join(parts[:fixed]) or os.sep


def list_unmatched(
    pattern: str, *, base: str | os.PathLike[str], matched: list[FileId]
) -> list[tuple[str, FileId]]:
    """The files in `pattern`'s landing folder (and the folders below it) that it does not
    match, each with its name relative to that folder, in name order.

    Hidden files and partial uploads count: a producer expects every file it put there to
    be either taken or named. A landing folder that holds the storage root (a pattern
    such as `*.parquet` relative to it) is listed without its sub-folders, which are the
    store's own.
    """
    folder = landing_folder(pattern, base=base)
    taken = {f.path for f in matched}
    sep = "/" if _is_uri(folder) else os.sep
    root = str(base).rstrip("/") if _is_uri(base) else os.path.abspath(base)
    shallow = root == folder or root.startswith(folder.rstrip(sep) + sep)
    out: list[tuple[str, FileId]] = []
    if _is_uri(folder):
        from modelkeeper.data.objstore import find_info

        for uri, name, info in find_info(folder, recursive=not shallow):
            if uri not in taken:
                out.append((name, _file_id(uri, info)))
        return sorted(out)
    for here, dirs, files in os.walk(folder):
        if shallow:
            dirs.clear()
        for name in files:
            path = os.path.abspath(os.path.join(here, name))
            if path in taken or not os.path.isfile(path):
                continue
            st = os.stat(path)
            rel = os.path.relpath(path, folder).replace(os.sep, "/")
            out.append((rel, FileId(path, st.st_size, _iso(st.st_mtime_ns / 1e9))))
    return sorted(out)


def _file_id(uri: str, info: dict) -> FileId:
    """A listed object's identity from what fsspec reports for it."""
    mtime = info.get("mtime") or info.get("LastModified") or info.get("created")
    etag = info.get("ETag") or info.get("etag") or info.get("md5Hash")
    return FileId(uri, int(info.get("size") or 0), _iso(mtime), etag and str(etag))


def read_file(file: FileId | str, fmt: Literal["parquet", "csv"]) -> pd.DataFrame:
    """One landed file's rows. A file that cannot be parsed raises SourceError naming it;
    I/O errors (possibly transient) propagate unchanged."""
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"unsupported file format {fmt!r} (parquet or csv)")
    path = file.path if isinstance(file, FileId) else file
    if _is_uri(path):
        from modelkeeper.data.objstore import read_bytes

        data = read_bytes(path)
    else:
        data = Path(path).read_bytes()
    # The bytes are in memory now, so every failure below is about the content.
    try:
        if fmt == "csv":
            return pd.read_csv(io.BytesIO(data), encoding="utf-8", encoding_errors="strict")
        return pd.read_parquet(io.BytesIO(data))
    except (ValueError, OSError, pa.ArrowException) as exc:
        # UnicodeDecodeError, pandas ParserError/EmptyDataError and ArrowInvalid are
        # ValueErrors; pyarrow reports corrupt pages and footers as OSError.
        raise SourceError(
            f"cannot read {fmt} file {path}: {type(exc).__name__}: {exc}", path=path
        ) from exc


# -- SQL ----------------------------------------------------------------------------------


def substitute_watermark(
    query: str, watermark: str | None, lookback: timedelta = timedelta(0)
) -> str:
    """Replace "{watermark}" in `query` by a quoted SQL timestamp literal, `lookback` earlier.

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
        literal = f"'{(parsed - lookback).isoformat(sep=' ')}'"
    return query.replace(WATERMARK_PLACEHOLDER, literal)


# -- timestamps ------------------------------------------------------------------------------


def parse_timestamps(values: pd.Series) -> pd.Series:
    """Event times as datetimes (unparseable ones NaT, mixed offsets put on UTC)."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return values
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (FutureWarning, UserWarning))
        parsed = pd.to_datetime(values, errors="coerce", format="ISO8601")
        if not pd.api.types.is_datetime64_any_dtype(parsed):
            parsed = pd.to_datetime(values, errors="coerce", format="ISO8601", utc=True)
    return parsed


def naive_utc(ts: pd.Series) -> pd.Series:
    """Event times on one naive clock, so files with and without offsets compare."""
    if getattr(ts.dt, "tz", None) is not None:
        return ts.dt.tz_convert("UTC").dt.tz_localize(None)
    return ts
