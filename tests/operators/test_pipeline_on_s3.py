"""The retraining pipeline's operators on an object-store storage root (s3://, moto).

The same tasks as test_pipeline_operators, execute()d in order, with MODELKEEPER_STORAGE
set to an s3:// prefix on the moto endpoint of the `s3_env` fixture (moto stands in for
S3: none can run here); MLflow's artifact_location is on the same bucket. What this shows: every stage reads and writes through the
object store, and what one task hands the next over XCom names objects (s3:// URIs),
never a path on the host that ran it.
"""

from __future__ import annotations

import json
import os
import uuid

import pytest

from modelkeeper.contracts import lineage as L
from tests.helpers import dag_tasks, run_dag_tasks, run_pipeline

MODEL = "flight_delay"


@pytest.fixture(scope="module")
def world(tmp_path_factory, s3_env):
    from modelkeeper.data.storage import Storage
    from modelkeeper.demo import land_next_weeks
    from modelkeeper.records.audit import AuditLog
    from modelkeeper.records.registry import Registry

    base = tmp_path_factory.mktemp("s3world")
    saved = dict(os.environ)
    uri = f"sqlite:///{base / 'mlflow.db'}"
    os.environ.update(s3_env["env"])
    root = f"s3://{s3_env['bucket']}/pipeline-{uuid.uuid4().hex[:8]}"
    os.environ["MODELKEEPER_STORAGE"] = root
    os.environ["AIRFLOW_CONN_MODELKEEPER_AUDIT"] = json.dumps(
        {"conn_type": "sqlite", "host": str(base / "audit.db")}
    )
    artifacts = f"{root}/mlflow"  # MLflow's artifacts on the same store
    os.environ["AIRFLOW_CONN_MLFLOW_DEFAULT"] = json.dumps(
        {"conn_type": "http", "host": uri, "extra": {"artifact_location": artifacts}}
    )
    storage = Storage()
    land_next_weeks(storage, n=9)
    yield {
        "root": root,
        "base": base,
        "storage": storage,
        "registry": Registry(uri, artifact_location=artifacts),
        "audit": AuditLog.from_url(f"sqlite:///{base / 'audit.db'}"),
    }
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="module")
def first_run(world):
    return run_pipeline("manual__s3_first")


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _strings(v)


class TestPipelineOnS3:
    def test_trains_and_promotes_a_champion(self, world, first_run):
        decision = first_run[("evaluate", "return_value")]["decision"]
        assert decision["promote"] is True, decision["reason"]
        assert first_run[("promote", "return_value")]["action"] == "promoted"
        champion = world["registry"].alias(MODEL)
        assert champion.version == first_run[("train", "return_value")]["version"]

    def test_xcom_carries_uris_never_host_paths(self, world, first_run):
        # Extra-link URLs are UI addresses (relative without [api] base_url), not paths.
        links = {L.LINK_MLFLOW_RUN, L.LINK_MODEL_VERSION, L.LINK_DATA_DOCS, L.LINK_DRIFT_REPORT}
        links.add(L.LINK_MODEL_CARD)
        refs = [
            s
            for (_, key), v in first_run.items()
            if key not in links
            for s in _strings(v)
            if "/" in s
        ]
        host = [s for s in refs if s.startswith(("/", str(world["base"])))]
        assert not host, host
        assert first_run[("validate", "return_value")]["path"].startswith(world["root"] + "/")
        trained = first_run[("train", "return_value")]
        assert trained["holdout_path"].startswith(world["root"] + "/")

    def test_the_stages_wrote_to_the_object_store(self, world, first_run):
        storage = world["storage"]
        fs, base = storage.root.fs, storage.root.path
        keys = {k[len(base) + 1 :] for k in fs.find(base)}
        run = "manual__s3_first"
        expected = [
            f"manifest/{MODEL}/{run}.json",
            f"snapshots/{MODEL}/{run}/batch.json",
            f"snapshots/{MODEL}/{run}/train.parquet",
            f"snapshots/{MODEL}/{run}/holdout.parquet",
            f"reports/{MODEL}/{run}/validation.json",
            f"reports/{MODEL}/{run}/data_docs/index.html",
        ]
        missing = [k for k in expected if k not in keys]
        assert not missing, sorted(keys)[:40]
        assert any(k.startswith(f"accepted/{MODEL}/date=") for k in keys)

    def test_mlflow_got_the_reports_from_the_object_store(self, world, first_run):
        # log_artifacts read them from s3:// through a local copy (MLflow wants a file).
        run_id = first_run[("train", "return_value")]["mlflow_run_id"]
        client = world["registry"].client
        logged = {a.path for a in client.list_artifacts(run_id, L.VALIDATION_REPORTS)}
        assert f"{L.VALIDATION_REPORTS}/validation.json" in logged, logged
        docs = {a.path for a in client.list_artifacts(run_id, L.DATA_DOCS)}
        assert L.DATA_DOCS_INDEX in docs, docs

    def test_the_model_and_its_reference_are_in_mlflow_s_s3_store(self, world, first_run):
        storage = world["storage"]
        keys = list(storage.root.fs.find(f"{storage.root.path}/mlflow"))
        assert any(k.endswith("/MLmodel") for k in keys), keys[:20]
        assert any(k.endswith(L.REFERENCE_ARTIFACT) for k in keys), keys[:20]

    def test_the_champion_scores_a_batch_into_the_s3_prediction_log(self, world, first_run):
        from modelkeeper.contracts.spec import get_spec
        from modelkeeper.demo import load_flights, week_frame
        from modelkeeper.serving import scoring

        storage = world["storage"]
        features = week_frame(load_flights(), 9).drop(columns=["delayed"])
        storage.write_parquet(features, storage.landing_dir() / "flights_features" / "w9.parquet")
        xcoms: dict = {}
        steps = ["collect", "validate", "score", "watch"]
        states = run_dag_tasks(dag_tasks("build_score_dag"), steps, "manual__s3_score", xcoms)
        assert states["score"] == states["watch"] == "success", states
        scored = xcoms[("score", "return_value")]
        assert scored["rows"] == len(features)
        assert all(f.startswith(world["root"] + "/") for f in scored["log_files"])
        assert scored["destination"].startswith(world["root"] + "/")
        assert len(scoring.read_log(get_spec(MODEL), storage)) == len(features)
        watched = xcoms[("watch", "return_value")]
        assert watched["drift_share"] is not None
