"""Collecting a model's new data: file globs, SQL with a watermark, per-run snapshots."""

from __future__ import annotations

import json
import shutil
import sqlite3
import uuid
from pathlib import Path

import fsspec
import pandas as pd
import pytest
import sqlalchemy as sa

from modelkeeper import demo
from modelkeeper.sources import Batch, SourceError, collect, read_files, substitute_watermark
from modelkeeper.spec import FileSource, ModelSpec, SqlSource, Window, load_spec
from modelkeeper.storage import Storage

SPEC_PATH = Path(__file__).resolve().parents[2] / "include" / "models" / "flight_delay.yaml"
PG_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
SQL_QUERY = 'SELECT * FROM "{table}" WHERE time_hour > {{watermark}} ORDER BY time_hour'


@pytest.fixture(scope="module")
def spec() -> ModelSpec:
    return load_spec(SPEC_PATH)


@pytest.fixture(scope="module")
def flights() -> pd.DataFrame:
    return demo.load_flights()


@pytest.fixture
def storage(tmp_path) -> Storage:
    return Storage(tmp_path)


def with_source(spec: ModelSpec, source: FileSource | SqlSource) -> ModelSpec:
    return spec.model_copy(update={"source": source})


def weeks(flights: pd.DataFrame, *numbers: int) -> pd.DataFrame:
    return pd.concat([demo.week_frame(flights, w) for w in numbers], ignore_index=True)


def snapshot(batch: Batch) -> pd.DataFrame:
    return pd.read_parquet(batch.path)


SMALL = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})


def write(df: pd.DataFrame, path: Path, fmt: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        df.to_csv(path, index=False)
    else:
        df.to_parquet(path, index=False)
    return path


class TestReadFiles:
    @pytest.mark.parametrize(
        "fmt", [pytest.param("parquet", id="parquet"), pytest.param("csv", id="csv")]
    )
    def test_reads_one_file_relative_to_base(self, tmp_path, fmt):
        path = write(SMALL, tmp_path / "in" / f"part.{fmt}", fmt)
        df, files = read_files(f"in/*.{fmt}", fmt, base=tmp_path)
        pd.testing.assert_frame_equal(df, SMALL)
        assert files == [str(path)]

    @pytest.mark.parametrize(
        "fmt", [pytest.param("parquet", id="parquet"), pytest.param("csv", id="csv")]
    )
    def test_glob_across_files_unions_columns_in_name_order(self, tmp_path, fmt):
        write(pd.DataFrame({"a": [3], "c": [30.0]}), tmp_path / f"2.{fmt}", fmt)
        write(pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}), tmp_path / f"1.{fmt}", fmt)
        write(SMALL, tmp_path / "other" / f"3.{fmt}", fmt)  # not matched by the glob
        df, files = read_files(f"*.{fmt}", fmt, base=tmp_path)
        assert [Path(f).name for f in files] == [f"1.{fmt}", f"2.{fmt}"]
        assert df["a"].tolist() == [1, 2, 3]
        assert set(df.columns) == {"a", "b", "c"}
        assert df["b"].isna().tolist() == [False, False, True]

    def test_absolute_pattern_ignores_base(self, tmp_path):
        path = write(SMALL, tmp_path / "abs" / "x.parquet", "parquet")
        df, files = read_files(
            str(tmp_path / "abs" / "*.parquet"), "parquet", base=Path("/nonexistent")
        )
        assert files == [str(path)] and len(df) == 3

    def test_recursive_glob(self, tmp_path):
        write(SMALL, tmp_path / "y=2013" / "m=01" / "x.parquet", "parquet")
        write(SMALL, tmp_path / "y=2013" / "m=02" / "x.parquet", "parquet")
        df, files = read_files("**/*.parquet", "parquet", base=tmp_path)
        assert len(files) == 2 and len(df) == 6

    def test_memory_uri_through_fsspec(self, tmp_path):
        root = f"memory://mk-{uuid.uuid4().hex}"
        fs = fsspec.filesystem("memory")
        for name in ("b.parquet", "a.parquet"):
            with fs.open(f"{root}/{name}", "wb") as fh:
                SMALL.to_parquet(fh, index=False)
        try:
            df, files = read_files(f"{root}/*.parquet", "parquet", base=tmp_path)
        finally:
            fs.rm(root, recursive=True)
        # fsspec normalises the memory root to an absolute path: memory:///mk-.../a.parquet
        assert [f.rsplit("/", 1)[-1] for f in files] == ["a.parquet", "b.parquet"]
        assert all(f.startswith("memory://") and root[len("memory://") :] in f for f in files)
        assert len(df) == 6

    def test_file_uri(self, tmp_path):
        write(SMALL, tmp_path / "u" / "x.csv", "csv")
        df, files = read_files(f"file://{tmp_path}/u/*.csv", "csv", base=Path("/nonexistent"))
        assert len(df) == 3 and files[0].endswith("/u/x.csv")

    def test_no_match_gives_an_empty_frame(self, tmp_path):
        df, files = read_files("landing/*.parquet", "parquet", base=tmp_path)
        assert df.empty and files == []

    def test_truncated_parquet_names_the_file(self, tmp_path):
        write(SMALL, tmp_path / "a_good.parquet", "parquet")
        raw = write(SMALL, tmp_path / "b_bad.parquet", "parquet").read_bytes()
        (tmp_path / "b_bad.parquet").write_bytes(raw[: len(raw) // 2])
        with pytest.raises(SourceError, match=r"b_bad\.parquet.*ArrowInvalid"):
            read_files("*.parquet", "parquet", base=tmp_path)

    def test_corrupt_parquet_pages_name_the_file(self, tmp_path):
        raw = write(SMALL, tmp_path / "bad.parquet", "parquet").read_bytes()
        (tmp_path / "bad.parquet").write_bytes(b"PAR1" + b"\x00" * 64 + b"PAR1")
        assert raw[:4] == b"PAR1"
        with pytest.raises(SourceError, match=r"cannot read parquet file .*bad\.parquet"):
            read_files("*.parquet", "parquet", base=tmp_path)

    def test_invalid_utf8_csv_names_the_file(self, tmp_path):
        write(SMALL, tmp_path / "a.csv", "csv")
        (tmp_path / "latin1.csv").write_bytes("city,temp\nMontréal,3\n".encode("latin-1"))
        with pytest.raises(SourceError, match=r"latin1\.csv: UnicodeDecodeError: 'utf-8'"):
            read_files("*.csv", "csv", base=tmp_path)

    def test_empty_csv_file_is_unreadable(self, tmp_path):
        (tmp_path / "empty.csv").write_bytes(b"")
        with pytest.raises(SourceError, match=r"empty\.csv: EmptyDataError"):
            read_files("*.csv", "csv", base=tmp_path)

    def test_unknown_format_raises(self, tmp_path):
        with pytest.raises(ValueError, match="unsupported file format 'json'"):
            read_files("*.json", "json", base=tmp_path)  # type: ignore[arg-type]


class TestSubstituteWatermark:
    @pytest.mark.parametrize(
        ("watermark", "literal"),
        [
            pytest.param(None, "'1970-01-01 00:00:00'", id="first-run-epoch"),
            pytest.param("2013-01-07T23:00:00", "'2013-01-07 23:00:00'", id="naive"),
            pytest.param("2013-01-07 23:00:00", "'2013-01-07 23:00:00'", id="space-separated"),
            pytest.param(
                "2013-01-07T23:00:00.250000", "'2013-01-07 23:00:00.250000'", id="fraction"
            ),
            pytest.param(
                "2013-01-07T23:00:00+00:00", "'2013-01-07 23:00:00+00:00'", id="utc-offset"
            ),
            pytest.param("2013-01-07", "'2013-01-07 00:00:00'", id="date-only"),
        ],
    )
    def test_quoted_literal(self, watermark, literal):
        query = "SELECT * FROM t WHERE ts > {watermark}"
        assert substitute_watermark(query, watermark) == f"SELECT * FROM t WHERE ts > {literal}"

    def test_every_placeholder_and_nothing_else(self):
        query = "SELECT '{}' AS j FROM t WHERE a > {watermark} OR b > {watermark}"
        assert substitute_watermark(query, "2013-02-01T00:00:00") == (
            "SELECT '{}' AS j FROM t WHERE a > '2013-02-01 00:00:00' OR b > '2013-02-01 00:00:00'"
        )
        assert substitute_watermark("SELECT 1", "2013-02-01T00:00:00") == "SELECT 1"

    @pytest.mark.parametrize(
        "watermark",
        [
            pytest.param("'; drop table x; --", id="injection"),
            pytest.param("2013-01-07T23:00:00'; drop table x; --", id="timestamp-then-injection"),
            pytest.param("1 OR 1=1", id="tautology"),
            pytest.param("now", id="word"),
            pytest.param("", id="empty"),
        ],
    )
    def test_rejects_what_is_not_an_iso_timestamp(self, watermark):
        with pytest.raises(ValueError, match="is not an ISO timestamp"):
            substitute_watermark("SELECT * FROM t WHERE ts > {watermark}", watermark)

    def test_rejects_non_strings(self):
        with pytest.raises(ValueError, match="must be an ISO timestamp string"):
            substitute_watermark("{watermark}", 20130107)  # type: ignore[arg-type]


class TestCollect:
    @pytest.fixture
    def two_week_window(self, spec) -> ModelSpec:
        return spec.model_copy(update={"window": Window(training_days=14, holdout_days=7)})

    def test_first_run_keeps_the_training_window(self, two_week_window, storage, flights):
        demo.land_next_weeks(storage, n=4)
        landed = weeks(flights, 0, 1, 2, 3)
        cutoff = landed["time_hour"].max() - pd.Timedelta(days=14)
        expected = landed[landed["time_hour"] > cutoff].reset_index(drop=True)

        batch = collect(two_week_window, storage, "manual__2013-01-29")

        assert batch.rows == len(expected) > 0
        assert batch.start == expected["time_hour"].min().isoformat()
        assert batch.end == landed["time_hour"].max().isoformat() == "2013-01-28T23:00:00"
        assert batch.watermark_before is None
        assert [Path(f).name for f in batch.files] == [f"week_{w:02d}.parquet" for w in range(4)]
        pd.testing.assert_frame_equal(snapshot(batch), expected)

    def test_first_run_with_less_data_than_the_window_keeps_everything(
        self, spec, storage, flights
    ):
        demo.land_next_weeks(storage, n=2)
        batch = collect(spec, storage, "run-1")  # the spec's window is 56 days
        pd.testing.assert_frame_equal(snapshot(batch), weeks(flights, 0, 1))

    def test_collect_does_not_move_the_watermark(self, spec, storage):
        demo.land_next_weeks(storage)
        collect(spec, storage, "run-1")
        assert storage.watermark(spec.name) is None

    def test_second_run_keeps_only_rows_after_the_watermark(self, spec, storage, flights):
        demo.land_next_weeks(storage, n=2)
        first = collect(spec, storage, "run-1")
        storage.set_watermark(spec.name, first.end, "run-1")  # what validation does
        demo.land_next_weeks(storage)

        second = collect(spec, storage, "run-2")

        assert second.watermark_before == first.end
        assert second.start > first.end
        assert len(second.files) == 3  # every landed file is read, old rows filtered out
        pd.testing.assert_frame_equal(snapshot(second), demo.week_frame(flights, 2))

    def test_nothing_new_gives_an_empty_batch(self, spec, storage):
        demo.land_next_weeks(storage)
        first = collect(spec, storage, "run-1")
        storage.set_watermark(spec.name, first.end, "run-1")
        second = collect(spec, storage, "run-2")
        assert (second.rows, second.start, second.end) == (0, None, None)
        assert list(snapshot(second).columns) == list(snapshot(first).columns)

    def test_no_files_gives_an_empty_snapshot(self, spec, storage):
        batch = collect(spec, storage, "run-1")
        assert (batch.rows, batch.start, batch.end, batch.files) == (0, None, None, [])
        assert Path(batch.path).is_file()

    def test_rerun_of_the_same_run_reuses_its_snapshot(self, spec, storage):
        demo.land_next_weeks(storage, n=2)
        first = collect(spec, storage, "scheduled__2013-01-14T00:00:00+00:00")
        shutil.rmtree(storage.landing_dir())  # the source is gone: nothing can be re-read

        again = collect(spec, storage, "scheduled__2013-01-14T00:00:00+00:00")

        assert again == first
        assert collect(spec, storage, "another-run").rows == 0

    def test_sidecar_json_describes_the_batch(self, spec, storage):
        demo.land_next_weeks(storage)
        batch = collect(spec, storage, "run-1")
        meta = json.loads((Path(batch.path).parent / "batch.json").read_text())
        assert meta == batch.to_dict()
        assert Batch.from_dict(meta) == batch
        assert Path(batch.path) == storage.snapshot_dir(spec.name, "run-1") / "batch.parquet"

    def test_missing_timestamp_column_snapshots_everything(self, spec, storage, flights):
        week = demo.week_frame(flights, 0).drop(columns="time_hour")
        write(week, storage.root / "landing" / "flights" / "week_00.parquet", "parquet")
        storage.set_watermark(spec.name, "2013-06-01T00:00:00", "earlier")
        batch = collect(spec, storage, "run-1")
        assert (batch.rows, batch.start, batch.end) == (len(week), None, None)
        pd.testing.assert_frame_equal(snapshot(batch), week)

    def test_unparseable_timestamp_column_snapshots_everything_as_read(
        self, spec, storage, flights
    ):
        week = demo.week_frame(flights, 0).assign(time_hour="soon")
        write(week, storage.root / "landing" / "flights" / "week_00.parquet", "parquet")
        batch = collect(spec, storage, "run-1")
        assert (batch.rows, batch.start, batch.end) == (len(week), None, None)
        assert set(snapshot(batch)["time_hour"]) == {"soon"}

    def test_csv_timestamps_are_parsed_and_bad_ones_kept_for_validation(self, spec, storage):
        csv_spec = with_source(spec, FileSource(kind="files", path="drop/*.csv", format="csv"))
        rows = pd.DataFrame(
            {
                "time_hour": [
                    "2013-03-01 05:00:00",
                    "2013-03-01T06:00:00",
                    "2013-02-01 05:00",
                    "garbage",
                ],
                "flight": [1, 2, 3, 4],
            }
        )
        write(rows, storage.root / "drop" / "a.csv", "csv")
        storage.set_watermark(spec.name, "2013-02-15T00:00:00", "earlier")

        batch = collect(csv_spec, storage, "run-1")

        df = snapshot(batch)
        assert str(df["time_hour"].dtype) == "datetime64[ns]"
        assert df["flight"].tolist() == [1, 2, 4]  # before the watermark: 3 dropped
        assert df["time_hour"].isna().tolist() == [False, False, True]
        assert (batch.start, batch.end) == ("2013-03-01T05:00:00", "2013-03-01T06:00:00")

    def test_unreadable_landing_file_raises_source_error(self, spec, storage):
        bad = storage.root / "landing" / "flights" / "week_00.parquet"
        bad.parent.mkdir(parents=True)
        bad.write_bytes(b"not parquet at all")
        with pytest.raises(SourceError, match=r"week_00\.parquet"):
            collect(spec, storage, "run-1")
        assert not storage.snapshot_dir(spec.name, "run-1").exists()


@pytest.fixture
def sqlite_db(tmp_path, flights) -> Path:
    path = tmp_path / "flights.db"
    with sqlite3.connect(path) as conn:
        weeks(flights, 0, 1).to_sql("flights", conn, index=False)
    return path


@pytest.fixture(scope="module")
def pg_engine():
    engine = sa.create_engine(PG_URL)
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError as exc:
        pytest.skip(f"local PostgreSQL not reachable at {PG_URL}: {exc.orig}")
    yield engine
    engine.dispose()


@pytest.fixture
def pg_table(pg_engine, flights):
    table = f"mk_flights_{uuid.uuid4().hex[:12]}"
    weeks(flights, 0, 1).to_sql(table, pg_engine, index=False)
    try:
        yield table
    finally:
        with pg_engine.begin() as conn:
            conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{table}"')


class TestSqlSource:
    @staticmethod
    def sql_spec(spec: ModelSpec, table: str) -> ModelSpec:
        return with_source(
            spec, SqlSource(kind="sql", conn_id="demo_db", query=SQL_QUERY.format(table=table))
        )

    @staticmethod
    def sqlite_reader(path: Path, seen: list[str]):
        def read_sql(query: str) -> pd.DataFrame:
            seen.append(query)
            with sqlite3.connect(path) as conn:
                return pd.read_sql(query, conn)

        return read_sql

    def test_sqlite_first_then_incremental(self, spec, storage, sqlite_db, flights):
        sql_spec, seen = self.sql_spec(spec, "flights"), []
        read_sql = self.sqlite_reader(sqlite_db, seen)

        first = collect(sql_spec, storage, "run-1", read_sql=read_sql)
        assert "time_hour > '1970-01-01 00:00:00'" in seen[-1]
        assert first.rows == len(weeks(flights, 0, 1)) and first.files == []

        storage.set_watermark(spec.name, "2013-01-07T23:00:00", "run-0")
        second = collect(sql_spec, storage, "run-2", read_sql=read_sql)

        assert "time_hour > '2013-01-07 23:00:00'" in seen[-1]
        assert second.watermark_before == "2013-01-07T23:00:00"
        pd.testing.assert_frame_equal(snapshot(second), demo.week_frame(flights, 1))

    def test_postgres_watermark_query(self, spec, storage, pg_engine, pg_table, flights):
        sql_spec = self.sql_spec(spec, pg_table)

        def read_sql(query: str) -> pd.DataFrame:
            with pg_engine.connect() as conn:
                return pd.read_sql(query, conn)

        storage.set_watermark(spec.name, "2013-01-07T23:00:00", "run-0")
        batch = collect(sql_spec, storage, "run-1", read_sql=read_sql)

        expected = demo.week_frame(flights, 1)
        assert (batch.rows, batch.start, batch.end) == (
            len(expected),
            expected["time_hour"].min().isoformat(),
            expected["time_hour"].max().isoformat(),
        )
        pd.testing.assert_frame_equal(snapshot(batch), expected)

    def test_injected_watermark_is_refused_and_the_table_survives(self, spec, storage, sqlite_db):
        storage.write_json(
            {"watermark": "'; drop table flights; --"}, storage.state_path(spec.name)
        )
        seen: list[str] = []
        with pytest.raises(ValueError, match="is not an ISO timestamp"):
            collect(
                self.sql_spec(spec, "flights"),
                storage,
                "run-1",
                read_sql=self.sqlite_reader(sqlite_db, seen),
            )
        assert seen == []
        with sqlite3.connect(sqlite_db) as conn:
            assert conn.execute("SELECT count(*) FROM flights").fetchone()[0] > 0

    def test_sql_source_needs_read_sql(self, spec, storage):
        with pytest.raises(ValueError, match="has a SQL source: collect needs read_sql"):
            collect(self.sql_spec(spec, "flights"), storage, "run-1")
