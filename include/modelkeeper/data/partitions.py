"""Frames stored by event date: `<prefix>/date=YYYY-MM-DD/<run>.parquet`.

The one layout the accepted pool (`accepted/<model>/`, labels included: they are the pool
of the `<model>__labels` stream) and the prediction log (`prediction_log/<model>/`) share.
Each run writes one file per event date under its own name, so a rerun replaces its own
parts and never another run's; a reader given a since/until opens only the partitions of
those days. Every read and write goes through `Storage` (local root or object store).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from modelkeeper.data.storage import run_key

if TYPE_CHECKING:
    from modelkeeper.data.objstore import Location
    from modelkeeper.data.storage import Storage

DATE_PREFIX = "date="


@dataclass(frozen=True)
class Partition:
    """One file a run wrote: its location, event date, row count and event-time bounds."""

    path: Location
    date: str  # YYYY-MM-DD
    rows: int
    start: str  # ISO, earliest event time in it
    end: str  # latest


def write_partitions(
    storage: Storage, prefix: Location, df: pd.DataFrame, *, ts_col: str, run_id: str
) -> list[Partition]:
    """`df` as one file per event date of `ts_col` (a datetime column), named after the run."""
    out = []
    for day, part in df.groupby(df[ts_col].dt.strftime("%Y-%m-%d"), sort=True):
        path = prefix / f"{DATE_PREFIX}{day}" / f"{run_key(run_id)}.parquet"
        written = storage.write_parquet(part.reset_index(drop=True), path)
        start, end = part[ts_col].min().isoformat(), part[ts_col].max().isoformat()
        out.append(Partition(written, str(day), len(part), start, end))
    return out


def in_days(day: str, since: pd.Timestamp | None, until: pd.Timestamp | None) -> bool:
    """Whether the partition of `day` can hold event times in [since, until]."""
    lo = None if since is None else since.strftime("%Y-%m-%d")
    hi = None if until is None else until.strftime("%Y-%m-%d")
    return (lo is None or day >= lo) and (hi is None or day <= hi)


def list_partitions(
    prefix: Location,
    *,
    since: pd.Timestamp | None = None,
    until: pd.Timestamp | None = None,
) -> list[Location]:
    """Every file under `prefix` whose date can hold event times in [since, until].

    For stores where each file counts once written (the prediction log); the pool trusts
    only the partitions its committed manifest records list, never a listing.
    """
    return [
        f
        for folder in sorted(prefix.glob(f"{DATE_PREFIX}*"))
        if in_days(folder.name[len(DATE_PREFIX) :], since, until)
        for f in sorted(folder.glob("*.parquet"))
        if not f.name.startswith(".")  # a local writer's temporary file
    ]


def read_partitions(
    storage: Storage,
    files: list[Location],
    *,
    ts_col: str,
    since: pd.Timestamp | None = None,
    until: pd.Timestamp | None = None,
    columns: list[str] | None = None,
) -> pd.DataFrame:
    """The rows of `files` with event times in [since, until], `ts_col` as datetimes."""
    if not files:
        return pd.DataFrame(columns=columns or [])
    frames = [storage.read_parquet(f, columns=columns) for f in files]
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    df[ts_col] = pd.to_datetime(df[ts_col])
    if since is not None:
        df = df[df[ts_col] >= since]
    if until is not None:
        df = df[df[ts_col] <= until]
    return df


def read_partitioned(
    storage: Storage,
    prefix: Location,
    *,
    ts_col: str,
    since: pd.Timestamp | None = None,
    until: pd.Timestamp | None = None,
    columns: list[str] | None = None,
) -> pd.DataFrame:
    """Every row stored under `prefix` with event times in [since, until]."""
    files = list_partitions(prefix, since=since, until=until)
    return read_partitions(storage, files, ts_col=ts_col, since=since, until=until, columns=columns)
