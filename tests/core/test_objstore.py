"""The real core on an object-store storage root (`s3://bucket/prefix`).

moto's server mode stands in for S3: no S3 or MinIO can run on these machines, and moto
answers the same HTTP API on loopback (a port in 5900-5999), so s3fs/botocore talk to it
exactly as they would to S3. Nothing here is mocked above the HTTP layer: ingest, GX
validation with Data Docs, the pool, training's reader, Evidently's reports and the
prediction log all run through `Storage` on the s3:// root.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pandas as pd
import pytest

from modelkeeper import demo
from modelkeeper.contracts.spec import ModelSpec, load_spec
from modelkeeper.data import objstore
from modelkeeper.data.accept import accept
from modelkeeper.data.collect import collect
from modelkeeper.data.manifest import Manifest
from modelkeeper.data.pool import load_pool
from modelkeeper.data.storage import Storage
from modelkeeper.modeling.training import load_accepted
from modelkeeper.serving import scoring

ROOT = Path(__file__).resolve().parents[2]
SPEC_PATH = ROOT / "include" / "models" / "flight_delay.yaml"
BUCKET = "modelkeeper-test"  # made by the s3_env fixture (tests/conftest.py)


@pytest.fixture
def s3_storage(s3_env, monkeypatch) -> Storage:
    """A fresh prefix per test, set as MODELKEEPER_STORAGE like a deployment would."""
    for k, v in s3_env["env"].items():
        monkeypatch.setenv(k, v)
    assert s3_env["bucket"] == BUCKET
    monkeypatch.setenv("MODELKEEPER_STORAGE", f"s3://{BUCKET}/{uuid.uuid4().hex[:8]}/")
    return Storage()


@pytest.fixture(scope="module")
def spec() -> ModelSpec:
    return load_spec(SPEC_PATH)


@pytest.fixture(scope="module")
def flights() -> pd.DataFrame:
    return demo.load_flights()


def keys_under(storage: Storage, prefix: str) -> list[str]:
    """Every object key under the root's `prefix`, relative to the root."""
    fs = storage.root.fs
    base = storage.root.path.rstrip("/")
    return sorted(k[len(base) + 1 :] for k in fs.find(f"{base}/{prefix}"))


class TestLocations:
    def test_an_s3_root_gives_uri_locations(self, s3_storage):
        assert s3_storage.remote
        snap = s3_storage.snapshot_dir("m", "manual__2026-01-01T00:00:00+00:00")
        assert str(snap).startswith(f"s3://{BUCKET}/") and "/snapshots/m/manual__2026" in str(snap)

    def test_a_local_root_stays_a_path(self, tmp_path):
        storage = Storage(tmp_path)
        assert not storage.remote
        assert type(storage.report_dir("m", "r")) is type(tmp_path)

    def test_a_file_uri_root_is_a_local_folder(self, tmp_path):
        assert Storage(f"file://{tmp_path}/").root == tmp_path.resolve()

    def test_writes_and_reads_round_trip(self, s3_storage):
        target = s3_storage.report_dir("m", "r") / "x.json"
        written = s3_storage.write_json({"a": 1}, target)
        assert str(written) == str(target)
        assert s3_storage.read_json(str(target)) == {"a": 1}  # by the URI XCom carries
        assert s3_storage.read_json(str(target) + ".missing", default="none") == "none"
        df = pd.DataFrame({"x": [1, 2, 3]})
        path = s3_storage.write_parquet(df, s3_storage.root / "t" / "df.parquet")
        pd.testing.assert_frame_equal(s3_storage.read_parquet(str(path)), df)


class TestIngestOnS3:
    def test_a_landed_batch_is_taken_exactly_once_and_trains(self, spec, s3_storage, flights):
        landed = demo.land_next_weeks(s3_storage, 2)
        assert [str(p).startswith("s3://") for p in landed] == [True, True]
        assert demo.landed_weeks(s3_storage) == [0, 1]

        batch = collect(spec, s3_storage, "run-1")
        assert len(batch.files) == 2
        assert batch.folder.startswith("s3://") and all(
            f.source.startswith("s3://") and f.snapshot.startswith("s3://") for f in batch.files
        )
        accepted = accept(batch, spec, s3_storage, "run-1")
        assert accepted.success, accepted.summary
        expected = len(demo.week_frame(flights, 0)) + len(demo.week_frame(flights, 1))
        assert accepted.rows == expected
        # The hand-off names objects, never a host path.
        for ref in (accepted.path, accepted.report, accepted.data_docs):
            assert ref and ref.startswith(f"s3://{BUCKET}/"), ref
        assert s3_storage.read_json(accepted.report)["files"]
        assert "<html" in objstore.read_text(accepted.data_docs).lower()
        assert "manifest/flight_delay/run-1.json" in keys_under(s3_storage, "manifest")

        # The next run finds nothing new: each landed object is taken once.
        batch2 = collect(spec, s3_storage, "run-2")
        assert batch2.files == []
        accept(batch2, spec, s3_storage, "run-2")
        assert len(load_pool(spec, s3_storage)) == expected

        # A new week is taken by the next run, and only it.
        demo.land_next_weeks(s3_storage, 1)
        batch3 = collect(spec, s3_storage, "run-3")
        assert [f.source.rsplit("/", 1)[-1] for f in batch3.files] == ["week_02.parquet"]
        accept(batch3, spec, s3_storage, "run-3")
        window = load_accepted(spec, s3_storage)
        assert len(window) == expected + len(demo.week_frame(flights, 2))

    def test_a_kill_before_the_manifest_commit_loses_and_doubles_nothing(
        self, spec, s3_storage, flights
    ):
        demo.land_next_weeks(s3_storage, 1)
        out = subprocess.run(
            [sys.executable, "-c", KILLED_BEFORE_COMMIT, str(SPEC_PATH), str(s3_storage.root)],
            capture_output=True,
            text=True,
            timeout=300,
            env=os.environ.copy(),
        )
        assert out.returncode == -signal.SIGKILL, out.stderr[-2000:]
        assert any(k.endswith("/run-1.parquet") for k in keys_under(s3_storage, "accepted"))
        assert keys_under(s3_storage, "manifest") == []
        assert load_pool(spec, s3_storage).empty  # partitions no record lists
        batch = collect(spec, s3_storage, "run-2")
        accepted = accept(batch, spec, s3_storage, "run-2")
        week0 = len(demo.week_frame(flights, 0))
        assert accepted.success and accepted.rows == week0
        assert len(load_pool(spec, s3_storage)) == week0

    def test_uncommitted_pool_partitions_are_never_read(self, spec, s3_storage, flights):
        demo.land_next_weeks(s3_storage, 1)
        batch = collect(spec, s3_storage, "run-1")
        # A writer that died after the pool partitions and before the manifest commit:
        orphan = s3_storage.accepted_dir(spec.name) / "date=2013-01-01" / "run-0.parquet"
        s3_storage.write_parquet(demo.week_frame(flights, 0), orphan)
        assert load_pool(spec, s3_storage).empty
        accept(batch, spec, s3_storage, "run-1")
        assert len(load_pool(spec, s3_storage)) == len(demo.week_frame(flights, 0))

    def test_a_corrupt_object_is_quarantined_with_a_copy(self, spec, s3_storage):
        bad = s3_storage.landing_dir() / "flights" / "week_00.parquet"
        objstore.put_bytes(bad, b"not parquet")
        batch = collect(spec, s3_storage, "run-1")
        accepted = accept(batch, spec, s3_storage, "run-1")
        [outcome] = accepted.files
        assert outcome.outcome == "unreadable"
        copied = keys_under(s3_storage, "quarantine")
        assert "quarantine/flight_delay/run-1/week_00.parquet/week_00.parquet" in copied
        assert Manifest(s3_storage, spec.name).record("run-1")["files"][0]["outcome"] == (
            "unreadable"
        )

    def test_unmatched_objects_are_named_and_a_rejected_file_kept_once(
        self, spec, s3_storage, flights
    ):
        folder = s3_storage.landing_dir() / "flights"
        week = demo.week_frame(flights, 0)
        s3_storage.write_parquet(week.assign(hour=99), folder / "week_00.parquet")  # fails GX
        objstore.put_bytes(folder / "week_01.csv", b"time_hour,carrier\n")
        objstore.put_bytes(folder / "2013" / "week_02.parquet", b"PAR1")
        batch = collect(spec, s3_storage, "run-1")
        accepted = accept(batch, spec, s3_storage, "run-1")
        assert not accepted.success
        [warning] = [w for w in accepted.warnings if "not taken" in w]
        assert "2 file(s)" in warning and "2013/week_02.parquet, week_01.csv" in warning
        parquet = [
            k for k in keys_under(s3_storage, "") if k.endswith(".parquet") and "landing/" not in k
        ]
        assert parquet == ["quarantine/flight_delay/run-1/week_00.parquet/batch.parquet"]
        again = accept(collect(spec, s3_storage, "run-2"), spec, s3_storage, "run-2")
        assert "not taken" not in again.summary and not again.warnings


KILLED_BEFORE_COMMIT = """
import os, signal, sys
from modelkeeper.contracts.spec import load_spec
from modelkeeper.data.accept import accept
from modelkeeper.data.collect import collect
from modelkeeper.data.manifest import Manifest
from modelkeeper.data.storage import Storage

spec, storage = load_spec(sys.argv[1]), Storage(sys.argv[2])
Manifest.commit = lambda self, record: os.kill(os.getpid(), signal.SIGKILL)
accept(collect(spec, storage, "run-1"), spec, storage, "run-1")
"""


class TestReportsAndPredictionLog:
    def test_drift_reports_land_on_s3(self, spec, s3_storage, flights):
        from modelkeeper.monitoring.drift import compute_drift

        ref = demo.week_frame(flights, 0).head(2000)
        cur = demo.drifted_frame(demo.week_frame(flights, 1).head(2000))
        reports = s3_storage.report_dir(spec.name, "run-1")
        compute_drift(
            ref, cur, spec, html_path=reports / "drift.html", json_path=reports / "drift.json"
        )
        assert keys_under(s3_storage, "reports") == [
            "reports/flight_delay/run-1/drift.html",
            "reports/flight_delay/run-1/drift.json",
        ]
        assert s3_storage.read_json(reports / "drift.json")["drifted_columns"]

    def test_the_prediction_log_is_written_and_read_back(self, spec, s3_storage, flights):
        batch = demo.week_frame(flights, 3).head(300)
        predicted = pd.DataFrame({scoring.PREDICTION: [0.0] * len(batch)})
        preds = scoring.predictions_frame(batch, predicted, spec, "1", "run-1")
        files = scoring.write_log(spec, s3_storage, "run-1", preds)
        assert files and all(f.startswith(f"s3://{BUCKET}/") for f in files)
        assert len(scoring.read_log(spec, s3_storage, version="1")) == len(preds)
        # Another run of the same version predicts none of these keys again.
        fresh, known = scoring.drop_known(preds, spec, s3_storage, "run-2")
        assert fresh.empty and known == len(preds)
        dest = scoring.write_files_destination(spec, s3_storage, "run-1", preds)
        assert dest.startswith(f"s3://{BUCKET}/") and dest.endswith("/run-1.parquet")
        assert len(s3_storage.read_parquet(dest)) == len(preds)


KILLED_WRITER = """
import os, signal, sys
from modelkeeper.data.objstore import atomic_write

def write(tmp):
    with open(tmp, "wb") as fh:
        fh.write(b"half of the rows")
        fh.flush()
        os.kill(os.getpid(), signal.SIGKILL)  # killed mid-write

atomic_write(sys.argv[1], write)
"""


class TestAtomicWrites:
    def test_a_killed_writer_leaves_no_object(self, s3_storage):
        target = s3_storage.report_dir("m", "r") / "big.bin"
        out = subprocess.run(
            [sys.executable, "-c", KILLED_WRITER, str(target)],
            capture_output=True,
            text=True,
            timeout=120,
            env=os.environ.copy(),
        )
        assert out.returncode == -signal.SIGKILL, out.stderr[-2000:]
        assert not objstore.exists(target)
        assert keys_under(s3_storage, "reports") == []

    def test_a_failed_writer_leaves_no_object_and_keeps_the_old_one(self, s3_storage):
        target = s3_storage.report_dir("m", "r") / "report.json"
        s3_storage.write_json({"v": 1}, target)

        def fail(tmp: Path) -> None:
            tmp.write_text('{"v": 2, "trunc', encoding="utf-8")
            raise OSError("disk full")

        with pytest.raises(OSError, match="disk full"):
            objstore.atomic_write(target, fail)
        assert s3_storage.read_json(target) == {"v": 1}
        assert keys_under(s3_storage, "reports") == ["reports/m/r/report.json"]

    def test_data_docs_are_committed_by_their_index_last(self, s3_storage, tmp_path):
        site = tmp_path / "site"
        (site / "validations").mkdir(parents=True)
        (site / "index.html").write_text("<html>index</html>")
        (site / "validations" / "a.html").write_text("<html>a</html>")
        (site / "z.css").write_text("body{}")
        order: list[str] = []
        real_put = objstore.put_bytes

        def spy(path, data):
            order.append(str(path).rsplit("/docs/", 1)[-1])
            return real_put(path, data)

        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(objstore, "put_bytes", spy)
            objstore.upload_tree(site, s3_storage.root / "docs", last="index.html")
        assert order[-1] == "index.html" and sorted(order) == [
            "index.html",
            "validations/a.html",
            "z.css",
        ]


class TestMlflowArtifactsOnS3:
    """MLflow's artifact store on the same bucket (Connection extra artifact_location)."""

    def test_runs_and_models_keep_their_artifacts_on_s3(self, s3_storage, tmp_path):
        from sklearn.linear_model import LogisticRegression

        from modelkeeper.records.registry import Registry

        artifacts = f"{s3_storage.root}/mlflow"
        registry = Registry(f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_location=artifacts)
        run_id = registry.ensure_run("s3-exp", "manual__1", {})
        info = registry.client.get_run(run_id).info
        assert info.artifact_uri.startswith(f"{artifacts}/s3-exp/")

        report = s3_storage.write_json({"ok": True}, s3_storage.root / "reports" / "r.json")
        registry.log_artifacts(run_id, str(report), "reports")  # s3 -> MLflow's s3 store
        X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0]})
        model = LogisticRegression().fit(X, [0, 0, 1, 1])
        uri = registry.log_model(run_id, model, X)
        keys = keys_under(s3_storage, "mlflow")
        assert any(k.endswith("/artifacts/reports/r.json") for k in keys), keys
        assert any(k.endswith("MLmodel") for k in keys), keys

        got = registry.download(run_id, "reports/r.json", tmp_path / "dl")
        assert json.loads(got.read_text()) == {"ok": True}
        assert list(registry.load_model(uri).predict(X)) == [0, 0, 1, 1]
