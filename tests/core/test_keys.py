"""One key matcher for every join by key: the SQL lookback, drop_known and the label join.

Real frames typed the ways other systems hand keys over (ints as floats or text, times
with or without an offset, as text), against the demo spec's key
(carrier: category, flight: int, origin: category, time_hour: datetime).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelkeeper.contracts.spec import ModelSpec, load_spec
from modelkeeper.data.keys import anti_join, key_frame, left_join

ROOT = Path(__file__).resolve().parents[2]
KEY = ["carrier", "flight", "origin", "time_hour"]
T = pd.Timestamp("2013-02-26 05:00")


@pytest.fixture(scope="module")
def spec() -> ModelSpec:
    return load_spec(ROOT / "include" / "models" / "flight_delay.yaml")


def frame(flights: list, times: list, carriers: list | None = None) -> pd.DataFrame:
    n = len(flights)
    return pd.DataFrame(
        {
            "carrier": carriers or ["UA"] * n,
            "flight": flights,
            "origin": ["EWR"] * n,
            "time_hour": times,
        }
    )


class TestKeyFrame:
    @pytest.mark.parametrize(
        "flights",
        [
            pytest.param([1, 2], id="int"),
            pytest.param([1.0, 2.0], id="float"),
            pytest.param(["1", "2"], id="text"),
            pytest.param(["1.0", "2"], id="text-with-decimal-point"),
            pytest.param(pd.array([1, 2], dtype="Int64"), id="nullable-int"),
        ],
    )
    def test_an_int_key_reads_the_same_however_it_is_typed(self, spec, flights):
        got = key_frame(frame(list(flights), [T, T]), KEY, spec)
        assert got["flight"].tolist() == ["1", "2"]

    @pytest.mark.parametrize(
        "times",
        [
            pytest.param([T], id="naive"),
            pytest.param([T.tz_localize("UTC")], id="aware-utc"),
            pytest.param([pd.Timestamp("2013-02-26 06:00", tz="Europe/Paris")], id="aware-cet"),
            pytest.param(["2013-02-26T05:00:00"], id="iso-text"),
            pytest.param(["2013-02-26T00:00:00-05:00"], id="iso-text-offset"),
            pytest.param(pd.Series([T]).astype("datetime64[us]").tolist(), id="microsecond-unit"),
        ],
    )
    def test_a_time_key_is_one_instant_on_the_naive_utc_clock(self, spec, times):
        assert key_frame(frame([1], times), KEY, spec).equals(key_frame(frame([1], [T]), KEY, spec))

    def test_whole_numbers_beyond_float_precision_stay_distinct(self, spec):
        big = 2**60
        got = key_frame(frame([big, big + 1], [T, T]), KEY, spec)["flight"]
        assert got.tolist() == [str(big), str(big + 1)]

    def test_missing_parts_are_none(self, spec):
        df = frame([1, np.nan], [T, None], carriers=["UA", None])
        got = key_frame(df, KEY, spec)
        assert got.isna().sum().to_dict() == {
            "carrier": 1,
            "flight": 1,
            "origin": 0,
            "time_hour": 1,
        }

    def test_a_key_the_schema_does_not_list_is_compared_as_it_is(self, spec):
        df = frame([1], [T]).assign(seat=[12.0])
        assert key_frame(df, ["seat"], spec)["seat"].tolist() == ["12.0"]


class TestAntiJoin:
    def test_drops_known_keys_typed_differently(self, spec):
        rows = frame([1, 2, 3], [T, T, T])
        known = frame(["1", 3.0], ["2013-02-26T05:00:00Z", "2013-02-26T05:00:00+00:00"])
        got = anti_join(rows, known, KEY, spec)
        assert got["flight"].tolist() == [2]
        assert got.index.tolist() == [0]

    def test_a_fraction_does_not_match_a_whole_number(self, spec):
        got = anti_join(frame([1], [T]), frame([1.5], [T]), KEY, spec)
        assert len(got) == 1

    def test_a_row_with_a_missing_key_part_is_never_known(self, spec):
        rows = frame([np.nan, 1.0], [T, pd.NaT])
        known = frame([np.nan, 1.0], [T, pd.NaT])  # the same missing parts
        assert len(anti_join(rows, known, KEY, spec)) == 2

    def test_nothing_known_keeps_every_row(self, spec):
        rows = frame([1, 2], [T, T])
        assert anti_join(rows, rows.iloc[0:0], KEY, spec).equals(rows)


class TestLeftJoin:
    def test_a_midnight_only_side_still_matches_times_of_day(self, spec):
        # A column of midnights prints without its time of day: matching must not use text.
        midnight = pd.Timestamp("2013-02-26")
        left = frame([1, 2], [midnight, T])
        right = frame([1], [midnight]).assign(delayed=[1])
        assert left_join(left, right, KEY, spec, ["delayed"])["delayed"].tolist()[0] == 1

    def test_tz_aware_labels_join_naive_predictions(self, spec):
        left = frame([1, 2], [T, T])
        right = frame([2.0, 1.0], [T.tz_localize("UTC").tz_convert("America/New_York")] * 2)
        got = left_join(left, right.assign(delayed=[1, 0]), KEY, spec, ["delayed"])
        assert got["delayed"].tolist() == [0, 1]

    def test_left_rows_order_and_index_are_kept_and_the_last_duplicate_wins(self, spec):
        left = frame([3, 1, 2], [T, T, T]).set_axis([10, 11, 12])
        right = frame([1, 1, 9], [T, T, T]).assign(delayed=[0, 1, 1])
        got = left_join(left, right, KEY, spec, ["delayed"])
        assert got.index.tolist() == [10, 11, 12]
        assert got["flight"].tolist() == [3, 1, 2]
        assert got["delayed"].isna().tolist() == [True, False, True]
        assert got.loc[11, "delayed"] == 1

    def test_a_missing_key_part_gets_nothing_even_from_a_missing_part(self, spec):
        left = frame([np.nan, 1], [T, T])
        right = frame([np.nan, 1], [T, T]).assign(delayed=[1, 0])
        got = left_join(left, right, KEY, spec, ["delayed"])
        assert pd.isna(got["delayed"].iloc[0]) and got["delayed"].iloc[1] == 0

    def test_taking_a_key_column_is_refused(self, spec):
        left = frame([1], [T])
        with pytest.raises(ValueError, match="part of the key"):
            left_join(left, left, KEY, spec, ["flight"])
