"""Exactly-once ingestion on real files, a real GX run and the local SQLite/PostgreSQL.

Each landed file is taken once whatever its event times (late rows, ties, a corrected
file re-landed later); a corrupt file is quarantined once; a kill -9 between the pool
write and the manifest commit loses and doubles nothing; SQL sources re-read a lookback.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from modelkeeper import demo
from modelkeeper.contracts.spec import ModelSpec, SqlSource, load_spec
from modelkeeper.data.accept import accept
from modelkeeper.data.collect import collect
from modelkeeper.data.manifest import Manifest, previous_tick
from modelkeeper.data.pool import load_pool, load_window
from modelkeeper.data.storage import Storage
from tests.postgres import PG_URL

ROOT = Path(__file__).resolve().parents[2]
SPEC_PATH = ROOT / "include" / "models" / "flight_delay.yaml"
KEY = ["carrier", "flight", "origin", "time_hour"]


@pytest.fixture(scope="module")
def spec() -> ModelSpec:
    return load_spec(SPEC_PATH)


@pytest.fixture(scope="module")
def flights() -> pd.DataFrame:
    return demo.load_flights()


@pytest.fixture
def storage(tmp_path) -> Storage:
    return Storage(tmp_path / "storage")


def land(storage: Storage, name: str, df: pd.DataFrame) -> Path:
    """Write a landing file as a producer would (a new mtime, so a new identity)."""
    path = storage.landing_dir() / "flights" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(path, index=False)
    now = time.time()
    os.utime(path, (now, now + uuid.uuid4().int % 1000 / 1000))  # distinct even within a tick
    return path


def run(spec: ModelSpec, storage: Storage, run_id: str, **kw):
    batch = collect(spec, storage, run_id, **kw)
    return batch, accept(batch, spec, storage, run_id)


def pool(spec: ModelSpec, storage: Storage) -> pd.DataFrame:
    return load_pool(spec, storage)


class TestFiles:
    def test_first_run_takes_every_landed_file(self, spec, storage, flights):
        for w in (0, 1):
            land(storage, f"week_{w:02d}.parquet", demo.week_frame(flights, w))
        batch, accepted = run(spec, storage, "run-1")
        assert len(batch.files) == 2 and accepted.success, accepted.summary
        assert len(pool(spec, storage)) == len(demo.week_frame(flights, 0)) + len(
            demo.week_frame(flights, 1)
        )
        # Partitioned by event date; the record lists exactly those partitions.
        parts = Manifest(storage, spec.name).partitions()
        assert {p["date"] for p in parts} == {f"2013-01-{d:02d}" for d in range(1, 15)}
        assert all((storage.root / p["path"]).is_file() for p in parts)

    def test_a_run_opens_only_new_files(self, spec, storage, flights, monkeypatch):
        land(storage, "week_00.parquet", demo.week_frame(flights, 0))
        run(spec, storage, "run-1")
        land(storage, "week_01.parquet", demo.week_frame(flights, 1))
        import modelkeeper.data.collect as collecting

        opened: list[str] = []
        real = collecting.read_file
        monkeypatch.setattr(
            collecting, "read_file", lambda f, fmt: opened.append(f.path) or real(f, fmt)
        )
        batch, _ = run(spec, storage, "run-2")
        assert [Path(p).name for p in opened] == ["week_01.parquet"]
        assert batch.rows == len(demo.week_frame(flights, 1))

    def test_nothing_new_gives_an_empty_batch(self, spec, storage, flights):
        land(storage, "week_00.parquet", demo.week_frame(flights, 0))
        run(spec, storage, "run-1")
        batch, accepted = run(spec, storage, "run-2")
        assert batch.files == [] and batch.rows == 0 and batch.since is not None
        assert accepted.success and accepted.rows == 0

    def test_late_rows_and_ties_are_taken(self, spec, storage, flights):
        week0, week1 = demo.week_frame(flights, 0), demo.week_frame(flights, 1)
        held_back = week0.sample(n=300, random_state=1)  # landed a week late
        land(storage, "week_00.parquet", week0.drop(held_back.index))
        land(storage, "week_01.parquet", week1)
        run(spec, storage, "run-1")
        last = week1["time_hour"].max()
        tie = week1[week1["time_hour"] == last].head(1).assign(flight=9999, carrier="UA")
        late = pd.concat([held_back, tie], ignore_index=True)
        land(storage, "late_2013-01-15.parquet", late)
        batch, accepted = run(spec, storage, "run-2")
        assert batch.rows == len(late) and accepted.success, accepted.summary
        got = pool(spec, storage)
        assert len(got) == len(week0) + len(week1) + 1  # every row exactly once
        assert not got.duplicated(subset=KEY).any()
        # Training sees the late rows too (they are older than what came before them).
        window = load_window(spec, storage, days=56)
        assert len(window) == len(got)

    def test_a_corrected_file_replaces_the_rows_it_corrects(self, spec, storage, flights):
        week0 = demo.week_frame(flights, 0)
        land(storage, "week_00.parquet", week0.assign(temp=week0["temp"] + 5))
        run(spec, storage, "run-1")
        land(storage, "week_00.parquet", week0)  # the producer re-lands it, fixed
        batch, accepted = run(spec, storage, "run-2")
        assert batch.files[0].relanded and accepted.success, accepted.summary
        got = pool(spec, storage)
        assert len(got) == len(week0)
        merged = got.merge(week0, on=KEY, suffixes=("", "_expected"))
        assert (merged["temp"].fillna(-1) == merged["temp_expected"].fillna(-1)).all()

    def test_without_a_unique_key_a_re_landed_file_is_a_conflict(self, spec, storage, flights):
        nokey = spec.model_copy(
            update={"data_schema": spec.data_schema.model_copy(update={"unique_key": None})}
        )
        week0 = demo.week_frame(flights, 0)
        land(storage, "week_00.parquet", week0)
        run(nokey, storage, "run-1")
        land(storage, "week_00.parquet", week0.head(1000))
        _, accepted = run(nokey, storage, "run-2")
        assert not accepted.success
        assert (
            "re-landed with other content" in accepted.summary and "unique_key" in accepted.summary
        )
        assert len(pool(nokey, storage)) == len(week0)  # the first version stands

    def test_a_corrupt_file_is_quarantined_once_then_skipped(self, spec, storage, flights):
        land(storage, "week_00.parquet", demo.week_frame(flights, 0))
        bad = storage.landing_dir() / "flights" / "week_01.parquet"
        bad.write_bytes(b"PAR1 not really")
        batch, accepted = run(spec, storage, "run-1")
        assert not accepted.success and "week_01.parquet" in accepted.summary
        assert accepted.rows == len(demo.week_frame(flights, 0))  # the good file is kept
        copied = storage.quarantine_dir(spec.name, "run-1") / "week_01.parquet"
        assert (copied / "week_01.parquet").read_bytes() == b"PAR1 not really"
        land(storage, "week_02.parquet", demo.week_frame(flights, 2))
        batch, accepted = run(spec, storage, "run-2")
        assert accepted.success, accepted.summary  # later runs go on
        assert [Path(f.source).name for f in batch.files] == ["week_02.parquet"]
        assert any("week_01.parquet: unreadable" in s for s in batch.skipped)
        assert not storage.quarantine_dir(spec.name, "run-2").exists()

    def test_a_renamed_column_is_missing_in_the_file_that_lacks_it(self, spec, storage, flights):
        land(storage, "week_00.parquet", demo.week_frame(flights, 0))
        renamed = demo.week_frame(flights, 1).rename(columns={"distance": "distance_mi"})
        land(storage, "week_01.parquet", renamed)
        _, accepted = run(spec, storage, "run-1")
        assert not accepted.success
        [bad] = [o for o in accepted.files if o.outcome == "quarantined"]
        assert bad.source.endswith("week_01.parquet")
        assert "week_01.parquet" in bad.reason and "column=distance" in bad.reason
        assert "null" not in bad.reason  # not misreported as a 100% null column
        assert [Path(o.source).name for o in accepted.files if o.outcome == "accepted"] == [
            "week_00.parquet"
        ]

    def test_a_rerun_of_the_same_run_commits_once(self, spec, storage, flights):
        land(storage, "week_00.parquet", demo.week_frame(flights, 0))
        batch, first = run(spec, storage, "run-1")
        again = accept(batch, spec, storage, "run-1")
        assert again == first
        assert len(Manifest(storage, spec.name).records()) == 1


class TestUnmatchedFiles:
    """Files in the landing folder that the source's pattern does not match are named in
    a warning and the summary, once per identity (the run's record keeps them)."""

    def test_named_once_then_again_when_they_change(self, spec, storage, flights):
        land(storage, "week_00.parquet", demo.week_frame(flights, 0))
        folder = storage.landing_dir() / "flights"
        demo.week_frame(flights, 1).to_csv(folder / "week_01.csv", index=False)
        (folder / "week_02.parquet.tmp").write_bytes(b"PAR1 an upload in progress")
        (folder / ".week_02.parquet.x7f3.tmp").write_bytes(b"PAR1 a hidden temporary")
        (folder / "notes.txt").write_text("landed by hand\n")
        land(storage, "2013/week_03.parquet", demo.week_frame(flights, 3))  # a sub-folder
        batch, accepted = run(spec, storage, "run-1")
        assert [Path(f.source).name for f in batch.files] == ["week_00.parquet"]
        assert accepted.success, accepted.summary
        [warning] = [w for w in accepted.warnings if "not taken" in w]
        names = [
            ".week_02.parquet.x7f3.tmp",
            "2013/week_03.parquet",
            "notes.txt",
            "week_01.csv",
            "week_02.parquet.tmp",
        ]
        assert "5 file(s)" in warning and "landing/flights/*.parquet" in warning
        assert all(name in warning for name in names), warning
        assert warning in accepted.summary
        assert sorted(u.name for u in batch.unmatched) == names

        _, again = run(spec, storage, "run-2")  # the same files: not named again
        assert not [w for w in again.warnings if "not taken" in w]
        assert "not taken" not in again.summary

        (folder / "notes.txt").write_text("landed by hand, then edited\n")  # a new identity
        _, third = run(spec, storage, "run-3")
        [warning] = [w for w in third.warnings if "not taken" in w]
        assert "1 file(s)" in warning and "notes.txt" in warning and "week_01.csv" not in warning
        assert "no new data" in third.summary and "notes.txt" in third.summary

    def test_a_long_list_is_cut_short(self, spec, storage, flights):
        land(storage, "week_00.parquet", demo.week_frame(flights, 0))
        folder = storage.landing_dir() / "flights"
        for i in range(25):
            (folder / f"part_{i:02d}.csv").write_text("x\n1\n")
        batch, accepted = run(spec, storage, "run-1")
        [warning] = [w for w in accepted.warnings if "not taken" in w]
        assert "25 file(s)" in warning and "part_00.csv" in warning and "and 15 more" in warning
        assert "part_24.csv" not in warning and len(batch.unmatched) == 25


def disk_bytes(root: Path, *, skip: tuple[str, ...] = ()) -> int:
    """Bytes of the files under `root`, leaving out its top-level folders `skip`."""
    return sum(
        p.stat().st_size
        for p in root.rglob("*")
        if p.is_file() and p.relative_to(root).parts[0] not in skip
    )


class TestQuarantineOnce:
    """A rejected file's bytes sit once under the storage root: in quarantine (the snapshot
    collect took moves there), not in the snapshot and quarantine both."""

    @staticmethod
    def land_bad(storage: Storage, flights: pd.DataFrame, kind: str) -> Path:
        path = storage.landing_dir() / "flights" / "week_01.parquet"
        if kind == "unreadable":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"PAR1" + os.urandom(1_500_000))
            return path
        week = demo.week_frame(flights, 1)
        rng = np.random.default_rng(0)
        # hour out of range fails validation; an extra column of random text (extra_columns:
        # warn) makes the file large, so a second copy shows against the reports' size.
        notes = [rng.bytes(96).hex() for _ in range(len(week))]
        return land(storage, "week_01.parquet", week.assign(hour=99, note=notes))

    @pytest.mark.parametrize(
        "kind",
        [pytest.param("invalid", id="fails-validation"), pytest.param("unreadable", id="corrupt")],
    )
    def test_a_large_bad_file_lands_once(self, spec, storage, flights, kind):
        size = self.land_bad(storage, flights, kind).stat().st_size
        before = disk_bytes(storage.root)
        _, accepted = run(spec, storage, "run-1")
        assert not accepted.success and "week_01.parquet" in accepted.summary
        # Everything the run wrote but GX's reports and Data Docs (the same whatever the
        # file's size): the file once, and a few small JSON and text files.
        grown = disk_bytes(storage.root, skip=("reports",)) - before
        assert size < grown < 1.3 * size, (grown, size)
        root = storage.root
        copies = [
            p.relative_to(root).as_posix()
            for p in root.rglob("*")
            if p.is_file()
            and p.parts[len(root.parts)] not in ("landing", "reports")
            and p.stat().st_size > size / 2
        ]
        folder = f"quarantine/{spec.name}/run-1/week_01.parquet"
        kept = "batch.parquet" if kind == "invalid" else "week_01.parquet"
        assert copies == [f"{folder}/{kept}"]
        if kind == "invalid":
            assert len(pd.read_parquet(root / folder / kept)) == len(demo.week_frame(flights, 1))

    def test_a_kill_after_the_commit_is_finished_by_the_retry(
        self, spec, storage, flights, monkeypatch
    ):
        self.land_bad(storage, flights, "invalid")
        batch = collect(spec, storage, "run-1")
        [snapshot] = [Path(f.snapshot) for f in batch.files]

        def killed(self, src, dst):
            raise KeyboardInterrupt("killed after the commit, before the move")

        with monkeypatch.context() as m:
            m.setattr(Storage, "move_into", killed)
            with pytest.raises(KeyboardInterrupt):
                accept(batch, spec, storage, "run-1")
        assert Manifest(storage, spec.name).record("run-1") is not None and snapshot.exists()
        again = accept(batch, spec, storage, "run-1")  # the retry returns the record
        assert not again.success and not snapshot.exists()
        [outcome] = again.files
        assert (Path(outcome.quarantine) / "batch.parquet").is_file()


KILLED = """
import os, signal, sys
from modelkeeper.contracts.spec import load_spec
from modelkeeper.data.accept import accept
from modelkeeper.data.collect import collect
from modelkeeper.data.manifest import Manifest
from modelkeeper.data.storage import Storage

spec, storage = load_spec(sys.argv[1]), Storage(sys.argv[2])
Manifest.commit = lambda self, record: os.kill(os.getpid(), signal.SIGKILL)
batch = collect(spec, storage, sys.argv[3])
accept(batch, spec, storage, sys.argv[3])
"""


def _keep_last(spec: ModelSpec) -> ModelSpec:
    schema = spec.data_schema.model_copy(update={"duplicates": "keep_last"})
    return spec.model_copy(update={"data_schema": schema})


def _land_with_repeats(storage: Storage, week: pd.DataFrame, repeated: pd.DataFrame, files: str):
    """`week` and rows repeating some of its keys: in one file, or the repeats in a second."""
    if files == "one file":
        land(storage, "week_00.parquet", pd.concat([week, repeated], ignore_index=True))
    else:
        land(storage, "week_00.parquet", week)
        land(storage, "week_00_fix.parquet", repeated)


class TestDuplicates:
    """One rule for rows that repeat the unique key in a batch, whether they came in one
    file or in two (issue 23 item 2: two files in one run used to lose them silently)."""

    SHARED = "6 rows share their unique_key value with another row"

    @pytest.mark.parametrize("files", ["one file", "two files"])
    def test_refused_with_their_count_however_they_arrive(self, spec, storage, flights, files):
        week0 = demo.week_frame(flights, 0)
        repeated = week0.head(3).assign(temp=week0["temp"].head(3) + 1)
        _land_with_repeats(storage, week0, repeated, files)
        batch, accepted = run(spec, storage, "run-1")
        assert not accepted.success and accepted.rows == 0
        assert self.SHARED in accepted.summary and "schema.duplicates: refuse" in accepted.summary
        # nothing lost: every file is kept aside whole
        for f in batch.files:
            kept = storage.quarantine_dir(spec.name, "run-1") / f.name / "batch.parquet"
            assert len(pd.read_parquet(kept)) == f.rows
        assert pool(spec, storage).empty

    def test_a_clean_file_beside_one_with_repeats_is_accepted(self, spec, storage, flights):
        week0, week1 = demo.week_frame(flights, 0), demo.week_frame(flights, 1)
        land(storage, "week_00.parquet", pd.concat([week0, week0.head(3)], ignore_index=True))
        land(storage, "week_01.parquet", week1)
        _, accepted = run(spec, storage, "run-1")
        assert accepted.rows == len(week1), accepted.summary
        assert "week_00.parquet" in accepted.summary and self.SHARED in accepted.summary

    @pytest.mark.parametrize("files", ["one file", "two files"])
    def test_keep_last_keeps_the_last_and_says_how_many(self, spec, storage, flights, files):
        spec = _keep_last(spec)
        week0 = demo.week_frame(flights, 0)
        repeated = week0.head(3).assign(temp=100.0)  # the rows' last word
        _land_with_repeats(storage, week0, repeated, files)
        _, accepted = run(spec, storage, "run-1")
        assert accepted.success and accepted.rows == len(week0), accepted.summary
        assert "3 rows that repeated a unique_key dropped" in accepted.summary
        got = pool(spec, storage).merge(repeated[KEY], on=KEY)
        assert len(got) == 3 and (got["temp"] == 100.0).all()


class TestKilledBetweenPoolAndManifest:
    """A real SIGKILL right after the pool partitions are written, before the commit."""

    def _kill(self, storage: Storage, run_id: str) -> None:
        out = subprocess.run(
            [sys.executable, "-c", KILLED, str(SPEC_PATH), str(storage.root), run_id],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert out.returncode == -signal.SIGKILL, out.stderr[-2000:]

    def test_the_next_run_takes_the_files_once(self, spec, storage, flights):
        week0 = demo.week_frame(flights, 0)
        land(storage, "week_00.parquet", week0)
        self._kill(storage, "run-1")
        orphans = list(storage.accepted_dir(spec.name).rglob("run-1.parquet"))
        assert orphans, "the killed run wrote its partitions first"
        assert Manifest(storage, spec.name).records() == []
        assert pool(spec, storage).empty  # uncommitted partitions are never read
        _, accepted = run(spec, storage, "run-2")
        assert accepted.success and accepted.rows == len(week0)
        assert len(pool(spec, storage)) == len(week0)  # not lost, not doubled

    def test_a_retry_of_the_killed_run_commits_once(self, spec, storage, flights):
        week0 = demo.week_frame(flights, 0)
        land(storage, "week_00.parquet", week0)
        self._kill(storage, "run-1")
        _, accepted = run(spec, storage, "run-1")  # the task's retry: same snapshot, names
        assert accepted.success and len(pool(spec, storage)) == len(week0)


@pytest.fixture
def sqlite_db(tmp_path, flights) -> Path:
    path = tmp_path / "flights.db"
    with sqlite3.connect(path) as conn:
        demo.week_frame(flights, 0).to_sql("flights", conn, index=False)
    return path


def sqlite_reader(path: Path, seen: list[str]):
    def read_sql(query: str) -> pd.DataFrame:
        seen.append(query)
        with sqlite3.connect(path) as conn:
            return pd.read_sql(query, conn, parse_dates=["time_hour"])

    return read_sql


def sql_spec(spec: ModelSpec, table: str, lookback: float = 120) -> ModelSpec:
    query = f'SELECT * FROM "{table}" WHERE time_hour > {{watermark}} ORDER BY time_hour'
    source = SqlSource(kind="sql", conn_id="demo_db", query=query, lookback_minutes=lookback)
    return spec.model_copy(update={"source": source})


def sqlite_insert(path: Path, df: pd.DataFrame) -> None:
    with sqlite3.connect(path) as conn:
        df.to_sql("flights", conn, index=False, if_exists="append")


class TestSql:
    def test_first_run_then_incremental(self, spec, storage, sqlite_db, flights):
        model, seen = sql_spec(spec, "flights"), []
        read_sql = sqlite_reader(sqlite_db, seen)
        _, first = run(model, storage, "run-1", read_sql=read_sql)
        assert "time_hour > '1970-01-01 00:00:00'" in seen[-1]
        assert first.rows == len(demo.week_frame(flights, 0))
        sqlite_insert(sqlite_db, demo.week_frame(flights, 1))
        _, second = run(model, storage, "run-2", read_sql=read_sql)
        # The watermark minus two hours of lookback, and only the new week's rows.
        watermark = pd.Timestamp(first.end) - pd.Timedelta(hours=2)
        assert f"time_hour > '{watermark.isoformat(sep=' ')}'" in seen[-1]
        assert second.rows == len(demo.week_frame(flights, 1))

    def test_late_rows_inside_the_lookback_and_ties_are_taken_once(
        self, spec, storage, sqlite_db, flights
    ):
        model = sql_spec(spec, "flights", lookback=180)
        read_sql = sqlite_reader(sqlite_db, [])
        _, first = run(model, storage, "run-1", read_sql=read_sql)
        end = pd.Timestamp(first.end)
        week0 = demo.week_frame(flights, 0)
        # Committed late: one row an hour behind the watermark, one tying it.
        late = week0[week0["time_hour"] == end - pd.Timedelta(hours=1)].head(1).assign(flight=9998)
        tie = week0[week0["time_hour"] == end].head(1).assign(flight=9997)
        sqlite_insert(sqlite_db, pd.concat([late, tie]))
        _, second = run(model, storage, "run-2", read_sql=read_sql)
        assert second.rows == 2, second.summary
        _, third = run(model, storage, "run-3", read_sql=read_sql)
        assert third.rows == 0  # re-read, recognised, not taken again
        got = pool(model, storage)
        assert len(got) == len(week0) + 2 and not got.duplicated(subset=KEY).any()

    def test_rows_committed_later_than_the_lookback_are_missed(
        self, spec, storage, sqlite_db, flights
    ):
        """The documented limit of any watermark query."""
        model = sql_spec(spec, "flights", lookback=60)
        read_sql = sqlite_reader(sqlite_db, [])
        _, first = run(model, storage, "run-1", read_sql=read_sql)
        week0 = demo.week_frame(flights, 0)
        old = week0.head(1).assign(flight=9996)  # days behind the watermark
        sqlite_insert(sqlite_db, old)
        _, second = run(model, storage, "run-2", read_sql=read_sql)
        assert second.rows == 0

    @pytest.mark.postgres
    def test_postgres(self, spec, storage, flights):
        engine = sa.create_engine(PG_URL)
        table = f"mk_flights_{uuid.uuid4().hex[:12]}"
        week0 = demo.week_frame(flights, 0)
        week0.to_sql(table, engine, index=False)
        try:

            def read_sql(query: str) -> pd.DataFrame:
                with engine.connect() as conn:
                    return pd.read_sql(query, conn)

            model = sql_spec(spec, table)
            _, first = run(model, storage, "run-1", read_sql=read_sql)
            tie = week0[week0["time_hour"] == pd.Timestamp(first.end)].head(1).assign(flight=9995)
            tie.to_sql(table, engine, index=False, if_exists="append")
            _, second = run(model, storage, "run-2", read_sql=read_sql)
            assert (first.rows, second.rows) == (len(week0), 1)
        finally:
            with engine.begin() as conn:
                conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{table}"')
            engine.dispose()

    def test_an_injected_watermark_is_refused_and_the_table_survives(
        self, spec, storage, sqlite_db
    ):
        manifest = Manifest(storage, spec.name)
        manifest.commit(
            {
                "run_id": "run-0",
                "committed_at": "2026-01-01T00:00:00+00:00",
                "files": [],
                "pool": [],
                "watermark": "'; drop table flights; --",
                "result": {},
            }
        )
        seen: list[str] = []
        with pytest.raises(ValueError, match="is not an ISO timestamp"):
            collect(
                sql_spec(spec, "flights"), storage, "run-1", read_sql=sqlite_reader(sqlite_db, seen)
            )
        assert seen == []
        with sqlite3.connect(sqlite_db) as conn:
            assert conn.execute("SELECT count(*) FROM flights").fetchone()[0] > 0

    def test_needs_read_sql(self, spec, storage):
        from modelkeeper.contracts.errors import ConfigError

        with pytest.raises(ConfigError, match="has a SQL source: collect needs read_sql"):
            collect(sql_spec(spec, "flights"), storage, "run-1")


class TestReadsFollowTheWork:
    def test_training_reads_only_the_window_partitions(self, spec, storage, flights, monkeypatch):
        for w in range(12):
            land(storage, f"week_{w:02d}.parquet", demo.week_frame(flights, w))
        run(spec, storage, "run-1")
        read: list[str] = []
        real = pd.read_parquet
        monkeypatch.setattr(
            pd, "read_parquet", lambda p, **kw: read.append(str(p)) or real(p, **kw)
        )
        window = load_window(spec, storage, days=14)
        days = sorted({Path(p).parent.name for p in read})
        assert days[0] >= "date=2013-03-09" and len(days) <= 16, days
        assert window["time_hour"].min() > window["time_hour"].max() - pd.Timedelta(days=14)


class TestPreviousTick:
    @pytest.mark.parametrize(
        ("schedule", "at", "tick"),
        [
            pytest.param(
                "@weekly", "2026-12-01T05:00:00+00:00", "2026-11-29T00:00:00+00:00", id="weekly"
            ),
            pytest.param(
                "0 6 * * *", "2026-12-01T06:00:00+00:00", "2026-11-30T06:00:00+00:00", id="on-tick"
            ),
            pytest.param(None, "2026-12-01T06:00:00+00:00", None, id="no-schedule"),
        ],
    )
    def test_previous_tick(self, schedule, at, tick):
        assert previous_tick(schedule, at) == tick


def test_records_are_plain_json(spec, storage, flights):
    land(storage, "week_00.parquet", demo.week_frame(flights, 0))
    run(spec, storage, "run-1")
    [path] = (storage.root / "manifest" / spec.name).glob("*.json")
    record = json.loads(path.read_text())
    assert record["run_id"] == "run-1" and record["files"][0]["outcome"] == "accepted"


class TestExtraColumnsNote:
    """Columns the spec does not declare are allowed under `extra_columns: warn`: the
    validate stage says so once, at info, and never warns. A stream (labels) checks only
    its share of the model's columns; the model's other declared columns are not extra."""

    @staticmethod
    def validate_logs(spec, storage, caplog, stream, run_id):
        from modelkeeper.stages import ingest
        from modelkeeper.stages.workspace import Run, Workspace

        ws = Workspace(spec=spec, storage=storage, registry=None, reports=False)
        run = Run(run_id=run_id, dag_id="test")
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="modelkeeper"):
            accepted = ingest.validate(
                ws, run, ingest.collect(ws, run, stream=stream), stream=stream
            )
        assert accepted.success, accepted.summary
        return [r for r in caplog.records if "does not declare" in r.getMessage()], caplog.records

    @pytest.mark.parametrize(
        "stream", [pytest.param(None, id="training"), pytest.param("labels", id="labels")]
    )
    def test_an_undeclared_column_is_noted_once_at_info(
        self, spec, storage, flights, caplog, stream
    ):
        land(storage, "week_01.parquet", demo.week_frame(flights, 1).assign(tailnum="N1"))
        notes, records = self.validate_logs(spec, storage, caplog, stream, "run-1")
        assert [(r.levelno, r.getMessage()) for r in notes] == [
            (
                logging.INFO,
                "1 column(s) the spec does not declare, not validated and not used by the "
                "model (schema.extra_columns: warn allows them): ['tailnum']",
            )
        ]
        assert not [r for r in records if r.levelno >= logging.WARNING], records

    def test_a_label_file_with_the_models_features_has_nothing_to_note(
        self, spec, storage, flights, caplog
    ):
        # The labels source is the training files: features the spec declares, not extra.
        land(storage, "week_01.parquet", demo.week_frame(flights, 1))
        notes, records = self.validate_logs(spec, storage, caplog, "labels", "run-1")
        assert notes == [] and not [r for r in records if r.levelno >= logging.WARNING]
