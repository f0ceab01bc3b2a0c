"""The MLflow adapter on a real SQLite MLflow store in tmp_path, and on a real `mlflow server`.

`mlflow_store` is a fresh store per test. The session's `mlflow_server` is shared, so
every test against it works under its own experiment and model name.
"""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
import pytest

from modelkeeper.demo import load_flights, week_frame
from modelkeeper.modeling.training import features_frame, fit
from modelkeeper.records.registry import CHAMPION, PREVIOUS, RUN_TAG, Registry, VersionInfo

MODEL = "flight_delay"
EXPERIMENT = "modelkeeper/flight_delay"


@pytest.fixture(scope="module")
def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    flights = load_flights()
    return week_frame(flights, 0), week_frame(flights, 1)


@pytest.fixture(scope="module")
def model(spec, frames):
    return fit(spec, frames[0])


def registered(
    registry: Registry, name: str, n: int, experiment: str = EXPERIMENT
) -> list[VersionInfo]:
    """`n` versions of `name`, one per MLflow run (sources need no artifacts to register)."""
    versions = []
    for i in range(n):
        run_id = registry.ensure_run(experiment, f"manual__2013-01-0{i + 1}T00:00:00+00:00", {})
        versions.append(registry.register(name, f"runs:/{run_id}/model", run_id, {"i": str(i)}))
    return versions


def runs_tagged(registry: Registry, experiment: str, airflow_run_id: str) -> list:
    exp = registry.client.get_experiment_by_name(experiment)
    return [
        r
        for r in registry.client.search_runs([exp.experiment_id])
        if r.data.tags.get(RUN_TAG) == airflow_run_id
    ]


def aliases(registry: Registry, name: str) -> dict[str, str]:
    return {
        alias: str(v) for alias, v in registry.client.get_registered_model(name).aliases.items()
    }


class TestEnsureRun:
    def test_idempotent_by_airflow_run_id(self, mlflow_store):
        rid = "scheduled__2013-01-08T00:00:00+00:00"
        first = mlflow_store.ensure_run(EXPERIMENT, rid, {"spec_fingerprint": "aaa"})
        again = mlflow_store.ensure_run(EXPERIMENT, rid, {"spec_fingerprint": "bbb"})
        assert again == first
        assert len(runs_tagged(mlflow_store, EXPERIMENT, rid)) == 1
        run = mlflow_store.client.get_run(first)
        assert run.info.run_name == rid
        assert run.data.tags[RUN_TAG] == rid
        assert run.data.tags["spec_fingerprint"] == "bbb"  # a retry refreshes the tags

        other = mlflow_store.ensure_run(EXPERIMENT, "manual__b", {})
        assert other != first
        assert mlflow_store.find_run(EXPERIMENT, "manual__b") == other
        assert mlflow_store.find_run(EXPERIMENT, "manual__c") is None

    def test_experiment_artifacts_under_artifact_location(self, mlflow_store, tmp_path):
        exp_id = mlflow_store.experiment_id(EXPERIMENT)
        assert mlflow_store.experiment_id(EXPERIMENT) == exp_id
        location = mlflow_store.client.get_experiment(exp_id).artifact_location
        assert location == (tmp_path / "mlartifacts" / EXPERIMENT).resolve().as_uri()


class TestRegister:
    def test_idempotent_per_mlflow_run(self, mlflow_store):
        run_id = mlflow_store.ensure_run(EXPERIMENT, "manual__a", {})
        assert mlflow_store.version_for_run(MODEL, run_id) is None  # no registered model yet
        first = mlflow_store.register(
            MODEL, f"runs:/{run_id}/model", run_id, {"validation": "passed"}
        )
        retry = mlflow_store.register(
            MODEL, f"runs:/{run_id}/model", run_id, {"validation": "passed"}
        )
        assert retry == first
        assert first.version == "1" and first.run_id == run_id
        assert first.tags == {"validation": "passed"}
        assert first.uri == f"models:/{MODEL}/1"
        assert len(mlflow_store.client.search_model_versions(f"name = '{MODEL}'")) == 1
        assert mlflow_store.version_for_run(MODEL, run_id) == first
        assert mlflow_store.get_version(MODEL, "1") == first

        other = mlflow_store.ensure_run(EXPERIMENT, "manual__b", {})
        second = mlflow_store.register(MODEL, f"runs:/{other}/model", other, {})
        assert second.version == "2" and second.run_id == other
        assert mlflow_store.version_for_run(MODEL, run_id) == first


class TestMoveChampion:
    def test_compare_and_set(self, mlflow_store):
        registered(mlflow_store, MODEL, 3)
        # The first champion: expected None.
        assert mlflow_store.move_champion(MODEL, "1", None) == (True, None)
        assert mlflow_store.alias(MODEL).version == "1"
        assert mlflow_store.alias(MODEL, PREVIOUS) is None
        assert aliases(mlflow_store, MODEL) == {CHAMPION: "1"}

        # Evaluated while there was no champion, but v1 got promoted meanwhile: refuse.
        assert mlflow_store.move_champion(MODEL, "2", None) == (False, "1")
        assert mlflow_store.move_champion(MODEL, "2", "3") == (False, "1")
        assert aliases(mlflow_store, MODEL) == {CHAMPION: "1"}

        assert mlflow_store.move_champion(MODEL, "2", "1") == (True, "1")
        assert mlflow_store.alias(MODEL, CHAMPION).version == "2"
        assert mlflow_store.alias(MODEL, PREVIOUS).version == "1"

        assert mlflow_store.move_champion(MODEL, "3", "2") == (True, "2")
        assert aliases(mlflow_store, MODEL) == {CHAMPION: "3", PREVIOUS: "2"}

    def test_moving_to_current_champion_is_a_noop(self, mlflow_store):
        registered(mlflow_store, MODEL, 2)
        mlflow_store.move_champion(MODEL, "1", None)
        mlflow_store.move_champion(MODEL, "2", "1")
        assert mlflow_store.move_champion(MODEL, "2", "2") == (True, "2")
        # previous still points at the real previous champion, not at v2 itself
        assert aliases(mlflow_store, MODEL) == {CHAMPION: "2", PREVIOUS: "1"}


class TestAlias:
    def test_missing_is_none(self, mlflow_store):
        assert mlflow_store.alias("no_such_model") is None
        registered(mlflow_store, MODEL, 1)
        assert mlflow_store.alias(MODEL) is None
        assert mlflow_store.alias(MODEL, PREVIOUS) is None
        mlflow_store.move_champion(MODEL, "1", None)
        champion = mlflow_store.alias(MODEL)
        assert (
            isinstance(champion, VersionInfo)
            and champion.version == "1"
            and champion.tags == {"i": "0"}
        )


class TestLogModel:
    def test_datasets_signature_and_round_trip(self, mlflow_store, spec, model, frames):
        train, holdout = frames
        run_id = mlflow_store.ensure_run(EXPERIMENT, "manual__train", {})
        example = features_frame(holdout.head(5), spec)
        uri = mlflow_store.log_model(
            run_id,
            model,
            example,
            datasets=[
                (train, "train", "accepted/flight_delay/train.parquet", "training"),
                (holdout, "holdout", "accepted/flight_delay/holdout.parquet", "evaluation"),
            ],
        )
        run = mlflow_store.client.get_run(run_id)
        inputs = {
            d.dataset.name: {t.key: t.value for t in d.tags} for d in run.inputs.dataset_inputs
        }
        assert set(inputs) == {"train", "holdout"}
        assert inputs["train"]["mlflow.data.context"] == "training"
        assert inputs["holdout"]["mlflow.data.context"] == "evaluation"
        assert run.info.status == "RUNNING"  # stays open until the DAG run closes it

        assert mlflow_store.input_columns(uri) == spec.features.all

        version = mlflow_store.register(MODEL, uri, run_id, {})
        X = features_frame(holdout, spec)
        for loaded in (mlflow_store.load_model(uri), mlflow_store.load_model(version.uri)):
            np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
        assert mlflow_store.input_columns(version.uri) == spec.features.all

        mlflow_store.close_run(run_id)
        assert mlflow_store.client.get_run(run_id).info.status == "FINISHED"

    def test_independent_of_other_registries(
        self, mlflow_store, mlflow_server, spec, model, frames
    ):
        run_id = mlflow_store.ensure_run(EXPERIMENT, "manual__train", {})
        Registry(mlflow_server)  # another registry in the same process, e.g. a second connection
        uri = mlflow_store.log_model(run_id, model, features_frame(frames[1].head(5), spec))
        assert mlflow_store.input_columns(uri) == spec.features.all


class TestRegistryOnServer:
    """The same contract through MLflow's REST API, where errors arrive as RestException."""

    @pytest.fixture
    def server(self, mlflow_server) -> Registry:
        return Registry(mlflow_server)

    @pytest.fixture
    def name(self) -> str:
        return f"test_model_{uuid.uuid4().hex[:12]}"

    def test_ensure_run_idempotent(self, server, name):
        rid = "scheduled__2013-01-08T00:00:00+00:00"
        first = server.ensure_run(name, rid, {"a": "1"})
        assert server.ensure_run(name, rid, {"a": "2"}) == first
        assert len(runs_tagged(server, name, rid)) == 1
        assert server.client.get_run(first).data.tags["a"] == "2"

    def test_register_idempotent(self, server, name):
        run_id = server.ensure_run(name, "manual__a", {})
        assert server.version_for_run(name, run_id) is None
        first = server.register(name, f"runs:/{run_id}/model", run_id, {"k": "v"})
        assert server.register(name, f"runs:/{run_id}/model", run_id, {"k": "v"}) == first
        assert first.version == "1"
        assert len(server.client.search_model_versions(f"name = '{name}'")) == 1

    def test_alias_missing(self, server, name):
        assert server.alias(name) is None
        registered(server, name, 1, experiment=name)
        assert server.alias(name) is None

    def test_move_champion(self, server, name):
        registered(server, name, 2, experiment=name)
        assert server.move_champion(name, "1", None) == (True, None)
        assert server.move_champion(name, "2", None) == (False, "1")
        assert server.move_champion(name, "2", "1") == (True, "1")
        assert server.move_champion(name, "2", "2") == (True, "2")
        assert server.alias(name).version == "2"
        assert server.alias(name, PREVIOUS).version == "1"

    def test_idempotent_with_quote_in_run_id(self, server, name):
        rid = "manual__it's-a-rerun"
        first = server.ensure_run(name, rid, {})
        assert server.ensure_run(name, rid, {}) == first


class TestErrors:
    """MLflow's errors become the core's: not found only when MLflow says so."""

    def test_missing_version_is_not_found(self, mlflow_store):
        from modelkeeper.contracts.errors import NotFoundError

        registered(mlflow_store, MODEL, 1)
        with pytest.raises(NotFoundError, match="get_model_version"):
            mlflow_store.get_version(MODEL, "99")

    def test_unreachable_server_is_unavailable_not_missing(self, monkeypatch):
        import socket

        from modelkeeper.contracts.errors import NotFoundError, UnavailableError

        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        with socket.socket() as s:  # a port nobody listens on
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        down = Registry(f"http://127.0.0.1:{port}")
        with pytest.raises(UnavailableError, match=f"MLflow at http://127.0.0.1:{port}") as err:
            down.get_version(MODEL, "1")
        assert not isinstance(err.value, NotFoundError)
        with pytest.raises(UnavailableError):
            down.alias(MODEL)  # not "no champion": nobody could say
        with pytest.raises(UnavailableError):
            down.ping()

    def test_long_tags_are_cut_once_here(self, mlflow_store):
        from modelkeeper.records.registry import MAX_TAG_CHARS

        run = mlflow_store.ensure_run(EXPERIMENT, "manual__long", {})
        mlflow_store.set_run_tags(run, {"decision_reason": "x" * 20_000})
        assert len(mlflow_store.client.get_run(run).data.tags["decision_reason"]) == MAX_TAG_CHARS


class TestQuietLogs:
    def test_loading_a_model_prints_no_progress_bar(
        self, mlflow_server, spec, model, frames, capfd
    ):
        """Airflow files a task's stderr as ERROR lines: MLflow's tqdm bars must not go there."""
        registry = Registry(mlflow_server)
        run_id = registry.ensure_run(EXPERIMENT, "manual__quiet", {})
        uri = registry.log_model(run_id, model, features_frame(frames[1].head(5), spec))
        capfd.readouterr()
        registry.load_model(uri)
        err = capfd.readouterr().err
        assert "Downloading artifacts" not in err, err
