"""Matching rows by key across frames that may type the key differently.

Predictions, labels and pool rows come from different files and systems: a flight number
may arrive as int, float or text, a time as a datetime (with or without an offset) or as
ISO text. Each key column is brought to the type the spec declares for it, then compared
as text, column by column (a merge factorizes them; joining each row's key into one
string was most of the monitoring step at 1M rows). A key with a missing part (NaN, NaT,
None) is no key: it never matches, on either side.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from modelkeeper.data.sources import naive_utc, parse_timestamps

if TYPE_CHECKING:
    from modelkeeper.contracts.spec import ModelSpec


def key_frame(df: pd.DataFrame, key: list[str], spec: ModelSpec) -> pd.DataFrame:
    """The key columns of `df` as comparable text (None where missing), index 0..n-1."""
    return pd.DataFrame({k: _key_text(df[k], _dtype(spec, k)) for k in key})


def anti_join(
    df: pd.DataFrame, known: pd.DataFrame, key: list[str], spec: ModelSpec
) -> pd.DataFrame:
    """Rows of `df` whose key is not among `known`'s keys (index reset)."""
    if df.empty or known.empty:
        return df.reset_index(drop=True)
    seen = key_frame(known, key, spec).dropna().drop_duplicates()
    hit = key_frame(df, key, spec).merge(seen, on=key, how="left", indicator=True)
    return df[~hit["_merge"].eq("both").to_numpy()].reset_index(drop=True)


def left_join(
    left: pd.DataFrame,
    right: pd.DataFrame,
    key: list[str],
    spec: ModelSpec,
    columns: list[str],
) -> pd.DataFrame:
    """`left` with `columns` taken from `right`'s row of the same key (the last one when
    `right` repeats a key), missing where `right` has none; `left`'s rows and order kept."""
    if clash := set(columns) & set(key):
        raise ValueError(f"columns {sorted(clash)} are part of the key")
    found = key_frame(right, key, spec).assign(**{c: right[c].to_numpy() for c in columns})
    found = found.dropna(subset=key).drop_duplicates(subset=key, keep="last")
    joined = key_frame(left, key, spec).merge(found, on=key, how="left", validate="many_to_one")
    return left.assign(**{c: joined[c].to_numpy() for c in columns})


def _dtype(spec: ModelSpec, name: str) -> str | None:
    try:
        return spec.data_schema.column(name).dtype
    except KeyError:  # a key the schema does not list: compared as it is
        return None


def _key_text(col: pd.Series, dtype: str | None) -> pd.Series:
    """One key column, comparable across frames: times as naive-UTC nanoseconds, ints
    without a decimal point, floats as floats, anything else as text. A value that does
    not convert to the spec's number type keeps its own text (it matches only that)."""
    if dtype == "datetime":
        # Not as text: a column of midnights prints without its time of day.
        ts = _times(col).astype("datetime64[ns]")
        nanos = pd.Series(ts.to_numpy().view("int64"), dtype="Int64")
        return nanos.mask(ts.isna().to_numpy())
    text = col.astype(str)
    if dtype == "int" and pd.api.types.is_integer_dtype(col):
        pass  # already whole numbers, exactly (no trip through float)
    elif dtype in ("int", "float"):
        num = pd.to_numeric(col, errors="coerce").astype("float64")
        ok = num.notna() & ((num % 1 == 0) if dtype == "int" else True)
        # 1, 1.0 and "1" agree (floats hold whole numbers exactly up to 2**53).
        typed = num.where(ok, 0).astype("int64").astype(str) if dtype == "int" else num.astype(str)
        text = text.where(~ok, typed)
    return pd.Series(np.where(col.isna().to_numpy(), None, text.to_numpy(dtype=object)))


def _times(col: pd.Series) -> pd.Series:
    """Event times on one naive UTC clock (unparseable ones NaT)."""
    try:
        return naive_utc(parse_timestamps(col))
    except (TypeError, ValueError):  # naive and aware values mixed in one column
        return pd.to_datetime(col, errors="coerce", utc=True).dt.tz_localize(None)
