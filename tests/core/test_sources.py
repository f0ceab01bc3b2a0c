"""Reading what producers land: file listings with identities, file contents, SQL literals."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import fsspec
import pandas as pd
import pytest

from modelkeeper.data.sources import SourceError, list_files, read_file, substitute_watermark

SMALL = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})


def write(df: pd.DataFrame, path: Path, fmt: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        df.to_csv(path, index=False)
    else:
        df.to_parquet(path, index=False)
    return path


FORMATS = [pytest.param("parquet", id="parquet"), pytest.param("csv", id="csv")]


class TestListFiles:
    def test_relative_glob_in_name_order_with_identities(self, tmp_path):
        write(SMALL, tmp_path / "in" / "2.parquet", "parquet")
        write(SMALL, tmp_path / "in" / "1.parquet", "parquet")
        write(SMALL, tmp_path / "other" / "3.parquet", "parquet")  # not matched
        files = list_files("in/*.parquet", base=tmp_path)
        assert [Path(f.path).name for f in files] == ["1.parquet", "2.parquet"]
        assert all(f.size > 0 and f.mtime for f in files)
        assert files[0].key != files[1].key

    def test_other_content_at_the_same_path_is_another_identity(self, tmp_path):
        path = write(SMALL, tmp_path / "x.parquet", "parquet")
        before = list_files("*.parquet", base=tmp_path)[0]
        time.sleep(0.01)
        write(SMALL.assign(a=[7, 8, 9]), path, "parquet")
        os.utime(path, None)
        after = list_files("*.parquet", base=tmp_path)[0]
        assert before.path == after.path and before.key != after.key

    def test_absolute_pattern_ignores_base(self, tmp_path):
        path = write(SMALL, tmp_path / "abs" / "x.parquet", "parquet")
        files = list_files(str(tmp_path / "abs" / "*.parquet"), base=Path("/nonexistent"))
        assert [f.path for f in files] == [str(path)]

    def test_recursive_glob(self, tmp_path):
        write(SMALL, tmp_path / "y=2013" / "m=01" / "x.parquet", "parquet")
        write(SMALL, tmp_path / "y=2013" / "m=02" / "x.parquet", "parquet")
        assert len(list_files("**/*.parquet", base=tmp_path)) == 2

    def test_memory_uri_through_fsspec(self, tmp_path):
        root = f"memory://mk-{uuid.uuid4().hex}"
        fs = fsspec.filesystem("memory")
        for name in ("b.parquet", "a.parquet"):
            with fs.open(f"{root}/{name}", "wb") as fh:
                SMALL.to_parquet(fh, index=False)
        try:
            files = list_files(f"{root}/*.parquet", base=tmp_path)
            frames = [read_file(f, "parquet") for f in files]
        finally:
            fs.rm(root, recursive=True)
        assert [f.path.rsplit("/", 1)[-1] for f in files] == ["a.parquet", "b.parquet"]
        assert all(f.path.startswith("memory://") and f.size > 0 for f in files)
        assert sum(len(f) for f in frames) == 6

    def test_file_uri(self, tmp_path):
        write(SMALL, tmp_path / "u" / "x.csv", "csv")
        [f] = list_files(f"file://{tmp_path}/u/*.csv", base=Path("/nonexistent"))
        assert f.path.endswith("/u/x.csv") and len(read_file(f, "csv")) == 3

    def test_no_match_gives_nothing(self, tmp_path):
        assert list_files("landing/*.parquet", base=tmp_path) == []


class TestReadFile:
    @pytest.mark.parametrize("fmt", FORMATS)
    def test_round_trip(self, tmp_path, fmt):
        path = write(SMALL, tmp_path / f"part.{fmt}", fmt)
        pd.testing.assert_frame_equal(read_file(str(path), fmt), SMALL)

    def test_truncated_parquet_names_the_file(self, tmp_path):
        raw = write(SMALL, tmp_path / "b_bad.parquet", "parquet").read_bytes()
        (tmp_path / "b_bad.parquet").write_bytes(raw[: len(raw) // 2])
        with pytest.raises(SourceError, match=r"b_bad\.parquet.*ArrowInvalid") as err:
            read_file(str(tmp_path / "b_bad.parquet"), "parquet")
        assert err.value.path == str(tmp_path / "b_bad.parquet")

    def test_corrupt_parquet_pages_name_the_file(self, tmp_path):
        write(SMALL, tmp_path / "bad.parquet", "parquet")
        (tmp_path / "bad.parquet").write_bytes(b"PAR1" + b"\x00" * 64 + b"PAR1")
        with pytest.raises(SourceError, match=r"cannot read parquet file .*bad\.parquet"):
            read_file(str(tmp_path / "bad.parquet"), "parquet")

    def test_invalid_utf8_csv_names_the_file(self, tmp_path):
        (tmp_path / "latin1.csv").write_bytes("city,temp\nMontréal,3\n".encode("latin-1"))
        with pytest.raises(SourceError, match=r"latin1\.csv: UnicodeDecodeError: 'utf-8'"):
            read_file(str(tmp_path / "latin1.csv"), "csv")

    def test_empty_csv_file_is_unreadable(self, tmp_path):
        (tmp_path / "empty.csv").write_bytes(b"")
        with pytest.raises(SourceError, match=r"empty\.csv: EmptyDataError"):
            read_file(str(tmp_path / "empty.csv"), "csv")

    def test_unknown_format_raises(self, tmp_path):
        with pytest.raises(ValueError, match="unsupported file format 'json'"):
            read_file(str(tmp_path / "x.json"), "json")  # type: ignore[arg-type]


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

    def test_lookback_moves_the_literal_back(self):
        from datetime import timedelta

        out = substitute_watermark("ts > {watermark}", "2013-01-07T23:00:00", timedelta(hours=2))
        assert out == "ts > '2013-01-07 21:00:00'"

    def test_rejects_non_strings(self):
        with pytest.raises(ValueError, match="must be an ISO timestamp string"):
            substitute_watermark("{watermark}", 20130107)  # type: ignore[arg-type]
