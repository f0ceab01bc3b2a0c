"""Shared fixtures: a scratch Airflow home, storage root, MLflow store and server.

Airflow reads its configuration when first imported, so the environment is set here,
before any test module imports airflow.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_HOME = Path(tempfile.mkdtemp(prefix="modelkeeper-airflow-"))
os.environ.update(
    {
        "AIRFLOW_HOME": str(_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_HOME / 'airflow.db'}",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "GIT_PYTHON_REFRESH": "quiet",
        "MODELKEEPER_STORAGE": str(_HOME / "storage"),
        "AIRFLOW_CONN_MODELKEEPER_AUDIT": json.dumps(
            {"conn_type": "sqlite", "host": str(_HOME / "audit.db")}
        ),
    }
)
os.environ.pop("MODELKEEPER_SPEC_DIR", None)


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(config, items):  # noqa: ARG001
    """`make test` runs `pytest -n 2 --dist loadgroup`: one group per test module, so a
    module's shared world (a trained champion, a store) is built once, and the whole
    runtime tier in one group, since its modules share one running Airflow. The runtime
    tier is the longest, so under xdist it is queued first."""
    for item in items:
        module = item.nodeid.split("::", 1)[0]
        group = "runtime" if module.startswith("tests/runtime/") else module
        item.add_marker(pytest.mark.xdist_group(group))
    if os.environ.get("PYTEST_XDIST_WORKER"):
        items.sort(key=lambda item: not item.nodeid.startswith("tests/runtime/"))


def pytest_sessionfinish(session, exitstatus):  # noqa: ARG001
    shutil.rmtree(_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def spec():
    from modelkeeper.contracts.spec import get_spec

    return get_spec("flight_delay")


@pytest.fixture
def storage(tmp_path, monkeypatch):
    from modelkeeper.data.storage import Storage

    root = tmp_path / "storage"
    monkeypatch.setenv("MODELKEEPER_STORAGE", str(root))
    return Storage(root)


@pytest.fixture
def audit_db(tmp_path, monkeypatch):
    """A fresh SQLite audit trail, reachable as the `modelkeeper_audit` Connection."""
    from modelkeeper.records.audit import AuditLog

    path = tmp_path / "audit.db"
    monkeypatch.setenv(
        "AIRFLOW_CONN_MODELKEEPER_AUDIT", json.dumps({"conn_type": "sqlite", "host": str(path)})
    )
    return AuditLog.from_url(f"sqlite:///{path}")


@pytest.fixture(scope="session")
def _mlflow_template(tmp_path_factory):
    """An empty, migrated MLflow SQLite DB: copying it skips ~5 s of migrations per test."""
    from modelkeeper.records.registry import Registry

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    Registry(f"sqlite:///{path}").client.search_experiments(max_results=1)
    return path


@pytest.fixture
def mlflow_store(tmp_path, monkeypatch, _mlflow_template):
    """A local MLflow store in tmp_path, reachable as the `mlflow_default` Connection."""
    shutil.copyfile(_mlflow_template, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    conn = {
        "conn_type": "http",
        "host": uri,
        "extra": {"artifact_location": str(tmp_path / "mlartifacts")},
    }
    monkeypatch.setenv("AIRFLOW_CONN_MLFLOW_DEFAULT", json.dumps(conn))
    from modelkeeper.records.registry import Registry

    return Registry(uri, artifact_location=str(tmp_path / "mlartifacts"))


S3_BUCKET = "modelkeeper-test"


@pytest.fixture(scope="session")
def s3_env():
    """An S3 endpoint for the session: moto's server mode on loopback (no S3 or MinIO can
    run on these machines; moto answers the same HTTP API, so s3fs and boto3 talk to it as
    to S3), with a bucket. Yields {"endpoint", "bucket", "env"}; `env` is what a worker
    would have, for a test to set (monkeypatch) so other tests never see it."""
    from moto.server import ThreadedMotoServer

    from modelkeeper.data import objstore

    port = next(p for p in range(5900 + os.getpid() % 50, 6000) if _port_free(p))
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    env = {
        "MODELKEEPER_S3_ENDPOINT_URL": endpoint,
        "MLFLOW_S3_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",  # moto takes any key
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    try:
        with pytest.MonkeyPatch.context() as mp:
            for k, v in env.items():
                mp.setenv(k, v)
            objstore.location(f"s3://{S3_BUCKET}").fs.mkdir(S3_BUCKET)
        yield {"endpoint": endpoint, "bucket": S3_BUCKET, "env": env}
    finally:
        server.stop()


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """A real `mlflow server` process on a free port (SQLite backend, local artifacts)."""
    yield from serve_mlflow(tmp_path_factory.mktemp("mlflow-server"))


def serve_mlflow(base):
    """Run an `mlflow server` on `base` (its DB and artifacts) and yield its URL; for a
    fixture that needs a registry of its own rather than the session's shared one."""
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{base / 'mlflow.db'}",
            "--artifacts-destination",
            str(base / "artifacts"),
            "--workers",
            "1",
        ],
        stdout=open(base / "server.log", "wb"),
        stderr=subprocess.STDOUT,
        # Tracking and registry only: no job runner (three huey consumers polling the store).
        env={
            **os.environ,
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        },
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        try:
            urllib.request.urlopen(f"{url}/health", timeout=2)
            break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                raise RuntimeError(
                    f"mlflow server did not start: {(base / 'server.log').read_text()[-2000:]}"
                ) from None
            time.sleep(0.5)
    yield url
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture(scope="session")
def airflow_db():
    """Airflow's metadata DB (SQLite in the scratch home), migrated once, plus the promotion pool."""
    from airflow.models.pool import Pool
    from airflow.utils.db import initdb

    initdb()
    Pool.create_or_update_pool(
        "modelkeeper_promotion", slots=1, description="test", include_deferred=False
    )
    return True
