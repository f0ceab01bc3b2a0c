"""The one date-partitioned store (pool, prediction log, labels), on a local root and on
an s3:// root (moto's server on loopback, see tests/conftest.py's s3_env)."""

from __future__ import annotations

import uuid

import pandas as pd
import pytest

from modelkeeper.data.partitions import (
    list_partitions,
    read_partitioned,
    read_partitions,
    write_partitions,
)
from modelkeeper.data.storage import Storage

TS = "time_hour"


@pytest.fixture(params=["local", "s3"])
def storage(request, tmp_path, monkeypatch) -> Storage:
    if request.param == "local":
        return Storage(tmp_path / "storage")
    s3_env = request.getfixturevalue("s3_env")
    for k, v in s3_env["env"].items():
        monkeypatch.setenv(k, v)
    return Storage(f"s3://{s3_env['bucket']}/{uuid.uuid4().hex[:8]}")


def rows(start: str, hours: int, value: int = 0) -> pd.DataFrame:
    times = pd.date_range(start, periods=hours, freq="h")
    return pd.DataFrame({TS: times, "value": [value] * hours})


def names(storage: Storage, files: list) -> list[str]:
    root = str(storage.root).rstrip("/")
    return [str(f)[len(root) + 1 :] for f in files]


class TestWrite:
    def test_one_file_per_event_date_named_after_the_run(self, storage):
        parts = write_partitions(
            storage,
            storage.root / "log" / "m",
            rows("2013-01-01 20:00", 8),
            ts_col=TS,
            run_id="r:1",
        )
        assert [(p.date, p.rows) for p in parts] == [("2013-01-01", 4), ("2013-01-02", 4)]
        assert parts[0].start == "2013-01-01T20:00:00" and parts[1].end == "2013-01-02T03:00:00"
        assert names(storage, [p.path for p in parts]) == [
            "log/m/date=2013-01-01/r_1.parquet",
            "log/m/date=2013-01-02/r_1.parquet",
        ]

    def test_a_rerun_replaces_its_own_part_and_keeps_other_runs(self, storage):
        prefix = storage.root / "log" / "m"
        write_partitions(storage, prefix, rows("2013-01-01", 3, value=1), ts_col=TS, run_id="a")
        write_partitions(storage, prefix, rows("2013-01-01", 3, value=2), ts_col=TS, run_id="b")
        write_partitions(storage, prefix, rows("2013-01-01", 2, value=3), ts_col=TS, run_id="a")
        got = read_partitioned(storage, prefix, ts_col=TS)
        assert sorted(got["value"].tolist()) == [2, 2, 2, 3, 3]


class TestRead:
    @pytest.fixture
    def prefix(self, storage):
        prefix = storage.root / "log" / "m"
        for day in ("2013-01-01", "2013-01-02", "2013-01-03"):
            write_partitions(storage, prefix, rows(f"{day} 10:00", 4), ts_col=TS, run_id="r")
        return prefix

    def test_since_until_open_only_those_days(self, storage, prefix):
        since, until = pd.Timestamp("2013-01-02 11:00"), pd.Timestamp("2013-01-02 12:00")
        files = list_partitions(prefix, since=since, until=until)
        assert names(storage, files) == ["log/m/date=2013-01-02/r.parquet"]
        got = read_partitions(storage, files, ts_col=TS, since=since, until=until)
        assert got[TS].tolist() == [since, until]  # both bounds inclusive

    def test_open_ended(self, storage, prefix):
        got = read_partitioned(storage, prefix, ts_col=TS, since=pd.Timestamp("2013-01-02"))
        assert len(got) == 8 and pd.api.types.is_datetime64_any_dtype(got[TS])
        assert len(read_partitioned(storage, prefix, ts_col=TS)) == 12

    def test_nothing_stored_is_an_empty_frame_with_the_columns_asked(self, storage):
        got = read_partitioned(storage, storage.root / "none", ts_col=TS, columns=[TS, "value"])
        assert got.empty and list(got.columns) == [TS, "value"]

    def test_hidden_files_are_not_read(self, tmp_path):
        storage = Storage(tmp_path)
        write_partitions(storage, tmp_path / "p", rows("2013-01-01", 2), ts_col=TS, run_id="r")
        rows("2013-01-01", 5).to_parquet(tmp_path / "p" / "date=2013-01-01" / ".r.parquet")
        assert len(read_partitioned(storage, tmp_path / "p", ts_col=TS)) == 2
