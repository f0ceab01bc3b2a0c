"""deploy/compose.yaml's topology, run natively: no Docker engine on these machines.

| compose service          | here                                                          |
|--------------------------|---------------------------------------------------------------|
| postgres                 | the local PostgreSQL: three fresh databases (Airflow metadata  |
|                          | and Celery results, MLflow's backend store, the audit and      |
|                          | monitoring tables), dropped at the end                         |
| redis                    | the local Redis, one database number (flushed at start and end)|
| minio (S3)               | `moto_server` on loopback, a process of its own. It STANDS IN  |
|                          | FOR S3 / MinIO: it answers the same HTTP API, so s3fs, boto3   |
|                          | and MLflow's S3 artifact store talk to it as to S3             |
| mlflow                   | `mlflow server`, Postgres backend, artifacts in the bucket     |
| airflow-init             | scripts/bootstrap_airflow.py (db migrate, Connections, pool)   |
| airflow-apiserver,       | `airflow api-server`, `scheduler`, `dag-processor`,            |
| -scheduler, -dag-processor, `triggerer`, CeleryExecutor                                  |
| -triggerer               |                                                               |
| airflow-worker (x2)      | two `airflow celery worker`s, each with its own AIRFLOW_HOME,  |
|                          | working folder, HOME, TMPDIR, log folder and its own copy of   |
|                          | the DAG files and specs (as an image would carry them). The    |
|                          | storage root is `s3://<bucket>/storage`: no folder on disk is  |
|                          | shared by the workers, so a task that needs one fails here     |

Every process runs in a process group of its own and is killed at teardown, with every
descendant. The model specs are generated copies of include/models/flight_delay.yaml
(`generate_specs`), each with its own name, landing folder and a small sample of the
demo year (`land_data`), so a retrain takes seconds of CPU, not minutes.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
import requests
import yaml

from tests.browser.conftest import AirflowUI
from tests.procs import free_port, stop_group, wait_for

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
REDIS_DB = 7
BUCKET = "modelkeeper-scale"
WORKERS = ("mk-w1", "mk-w2")
#: deploy/compose.yaml's services -> what stands in for each here (tests/deploy checks
#: this covers every service of the file).
COMPOSE_SERVICES = {
    "postgres": "the local PostgreSQL, databases <tag>_airflow, _mlflow, _audit",
    "redis": "the local Redis, one db number (REDIS_DB)",
    "minio": "moto_server on loopback (an S3 stand-in)",
    "mlflow": "mlflow server (Postgres backend, artifacts in the bucket)",
    "airflow-init": "scripts/bootstrap_airflow.py + scripts/ensure_buckets.py",
    "airflow-apiserver": "airflow api-server",
    "airflow-scheduler": "airflow scheduler",
    "airflow-dag-processor": "airflow dag-processor",
    "airflow-triggerer": "airflow triggerer",
    "airflow-worker": "two airflow celery workers (mk-w1, mk-w2), folders apart",
}
WORKER_CONCURRENCY = 2
#: Sampled rows per model and week of the demo year; four weeks each (three to train,
#: the last as holdout: ~1,000 rows >= the spec's min_eval_rows 500).
ROWS_PER_WEEK = 1000
WEEKS = 4
RUN_DONE = {"success", "failed"}
RETRY_DELAY = 5
HEARTBEAT_TIMEOUT = 45


def model_name(i: int) -> str:
    return f"scale_{i:03d}"


def pg_admin(sql: str) -> None:
    import psycopg2

    conn = psycopg2.connect(dbname="postgres", **PG)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


def pg_url(db: str, driver: str = "postgresql") -> str:
    return f"{driver}://{PG['user']}@{PG['host']}:{PG['port']}/{db}"


def generate_specs(folder: Path, n: int) -> list[str]:
    """`n` copies of the demo spec, each a model of its own: its name, its landing folder,
    a small estimator (HistGradientBoosting, 20 iterations) and no schedule (runs are
    triggered). Scoring, labels and monitoring are left out: each spec makes one DAG,
    `retrain_<name>`, so 100 specs are 100 DAGs. Returns the model names."""
    raw = yaml.safe_load((ROOT / "include" / "models" / "flight_delay.yaml").read_text())
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(n):
        name = model_name(i)
        spec = {k: v for k, v in raw.items() if k not in ("scoring", "labels", "monitoring")}
        spec.update(
            name=name,
            description=f"Scale-test copy {i} of the flight_delay demo, on its own sample.",
            schedule=None,
            trigger_asset=None,
            source={**raw["source"], "path": f"landing/{name}/*.parquet"},
            estimator={
                "class_path": raw["estimator"]["class_path"],
                "params": {"max_iter": 20, "max_leaf_nodes": 15, "random_state": i},
            },
            promotion={**raw["promotion"], "slices": ["origin"]},
        )
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
        names.append(name)
    return names


class Topology(AirflowUI):
    """Postgres, Redis, an S3 endpoint, MLflow, Airflow's four services and two Celery
    workers. `start()` brings it all up, `stop()` takes it all down."""

    def __init__(self, base: Path, n_specs: int = 100, n_data: int = 20) -> None:
        super().__init__(base)
        tag = f"mk_scale_{os.getpid()}_{secrets.token_hex(3)}"
        self.db = {part: f"{tag}_{part}" for part in ("airflow", "mlflow", "audit")}
        self.dbs_created: list[str] = []
        self.n_specs = n_specs
        self.n_data = n_data
        self.specs = base / "specs"
        self.s3_port = free_port()
        self.s3_endpoint = f"http://127.0.0.1:{self.s3_port}"
        self.storage_uri = f"s3://{BUCKET}/storage"
        self.mlflow_artifacts = f"s3://{BUCKET}/mlflow"
        self.mlflow_port = free_port()
        self.mlflow_url = f"http://127.0.0.1:{self.mlflow_port}"
        self.broker = f"redis://127.0.0.1:6379/{REDIS_DB}"
        self.models: list[str] = []
        self.audit_uri = pg_url(self.db["audit"])

    # -- configuration -------------------------------------------------------------------
    def s3_env(self) -> dict[str, str]:
        return {
            "MODELKEEPER_S3_ENDPOINT_URL": self.s3_endpoint,
            "MLFLOW_S3_ENDPOINT_URL": self.s3_endpoint,
            "AWS_ACCESS_KEY_ID": "scale-test",  # moto accepts any key
            "AWS_SECRET_ACCESS_KEY": "scale-test",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def environment(self) -> dict[str, str]:
        env = super().environment()
        # The audit trail is the bootstrap's Postgres Connection, not the SQLite default.
        env.pop("AIRFLOW_CONN_MODELKEEPER_AUDIT", None)
        env.update(self.s3_env())
        env.update(
            {
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": pg_url(
                    self.db["airflow"], "postgresql+psycopg2"
                ),
                "AIRFLOW__CELERY__BROKER_URL": self.broker,
                "AIRFLOW__CELERY__RESULT_BACKEND": pg_url(self.db["airflow"], "db+postgresql"),
                # Warm task processes, as in deploy/compose.yaml.
                "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS": (
                    "modelkeeper_airflow.celery_config.CELERY_CONFIG"
                ),
                "OMP_NUM_THREADS": "1",  # as in deploy/compose.yaml
                "AIRFLOW__CORE__PARALLELISM": "16",
                "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "16",
                "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "false",
                # A worker that vanished: its task is failed (then retried) after 45 s.
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT),
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
                # Re-parsing 100 specs every 30 s (the default) costs a third of a core here.
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "180",
                "AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT": "120",
                "AIRFLOW__WORKERS__EXECUTION_API_RETRIES": "10",
                "AIRFLOW__WORKERS__EXECUTION_API_RETRY_WAIT_MIN": "2",
                "AIRFLOW__WORKERS__EXECUTION_API_RETRY_WAIT_MAX": "20",
                "MODELKEEPER_STORAGE": self.storage_uri,
                "MODELKEEPER_SPEC_DIR": str(self.specs),
                "MODELKEEPER_MLFLOW_URI": self.mlflow_url,
                "MODELKEEPER_RETRY_DELAY_SECONDS": str(RETRY_DELAY),
                "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
                "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
            }
        )
        return env

    def mlflow_command(self) -> list[str]:
        """compose's `mlflow` service: Postgres backend store, artifacts in the bucket,
        served through the server."""
        return [
            str(VENV_BIN / "mlflow"),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.mlflow_port),
            "--workers",
            "2",
            "--serve-artifacts",
            f"--backend-store-uri={pg_url(self.db['mlflow'])}",
            f"--artifacts-destination={self.mlflow_artifacts}",
        ]

    def mlflow_env(self) -> dict[str, str]:
        return {**self.env, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}

    def worker_env(self, name: str) -> dict[str, str]:
        """A worker's own folders for everything that is on disk."""
        own = self.base / name
        env = dict(self.env)
        env.update(
            {
                "AIRFLOW_HOME": str(own / "airflow"),
                "AIRFLOW__CORE__DAGS_FOLDER": str(own / "dags"),
                "MODELKEEPER_SPEC_DIR": str(own / "specs"),
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(own / "logs"),
                "HOME": str(own / "home"),
                "TMPDIR": str(own / "tmp"),
                "MK_SCALE_WORKER": name,
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": "workername.hostname",
                "PYTHONPATH": str(Path(__file__).parent),
            }
        )
        return env

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        self._t0 = t0 = time.monotonic()
        for folder in (self.home, self.dags, self.logs):
            folder.mkdir(parents=True, exist_ok=True)
        for dag_file in sorted(self.dags_source.glob("*.py")):
            shutil.copy(dag_file, self.dags / dag_file.name)
        self.models = generate_specs(self.specs, self.n_specs)
        (self.home / "passwords.json").write_text(f'{{"{self.username}": "{self.password}"}}')
        self.env = self.environment()

        for db in self.db.values():
            pg_admin(f'CREATE DATABASE "{db}"')
            self.dbs_created.append(db)
        self._flush_redis()

        self.spawn_raw(
            "s3", [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(self.s3_port)]
        )
        wait_for("moto_server (the S3 stand-in)", self._s3_up, 60)
        # What compose's airflow-init runs to make the buckets.
        buckets = subprocess.run(
            [str(VENV_BIN / "python"), str(ROOT / "scripts" / "ensure_buckets.py"),
             self.storage_uri, self.mlflow_artifacts],
            env=self.env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert buckets.returncode == 0, f"ensure_buckets failed: {buckets.stderr[-3000:]}"
        self.spawn_raw("mlflow", self.mlflow_command(), env=self.mlflow_env())
        boot = subprocess.run(
            [str(VENV_BIN / "python"), str(ROOT / "scripts" / "bootstrap_airflow.py")],
            env={**self.env, "MODELKEEPER_AUDIT_URI": self.audit_uri},
            cwd=self.base,
            capture_output=True,
            text=True,
            timeout=400,
        )
        (self.logs / "bootstrap.log").write_text(boot.stdout + boot.stderr)
        assert boot.returncode == 0, f"bootstrap failed:\n{(boot.stdout + boot.stderr)[-4000:]}"
        self.timings["migrate+bootstrap"] = time.monotonic() - t0

        self.spawn("api-server", ["api-server", "--port", str(self.port), "--host", "127.0.0.1"])
        self.land_data(self.models[: self.n_data])
        wait_for("the api-server", self._api_up, 180, interval=0.5)
        r = self.http.post(
            f"{self.url}/auth/token",
            json={"username": self.username, "password": self.password},
            timeout=30,
        )
        assert r.status_code in (200, 201), f"POST /auth/token: {r.status_code} {r.text}"
        self.token = r.json()["access_token"]
        self.timings["api-server up"] = time.monotonic() - t0

        self.dag_processor_started = time.monotonic()
        for name in ("scheduler", "dag-processor", "triggerer"):
            self.start_component(name)
        wait_for("the MLflow server", self._mlflow_up, 120)
        for name in WORKERS:
            self.start_worker(name)
        self.timings["workers ready"] = time.monotonic() - t0

    def spawn_raw(self, name: str, cmd: list[str], env: dict[str, str] | None = None) -> None:
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 (closed in stop())
        self._log_files.append(log)
        self.procs[name] = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env or self.env,
            cwd=self.base,
            start_new_session=True,
        )

    def start_worker(self, name: str) -> None:
        own = self.base / name
        for sub in ("airflow", "logs", "home", "tmp", "dags", "specs"):
            (own / sub).mkdir(parents=True, exist_ok=True)
        for dag_file in sorted(self.dags.glob("*.py")):
            shutil.copy(dag_file, own / "dags" / dag_file.name)
        for spec in sorted(self.specs.glob("*.yaml")):
            shutil.copy(spec, own / "specs" / spec.name)
        log_path = self.logs / f"{name}.log"
        offset = log_path.stat().st_size if log_path.exists() else 0  # a restart appends
        log = open(log_path, "ab")  # noqa: SIM115 (closed in stop())
        self._log_files.append(log)
        self.procs[name] = subprocess.Popen(
            [
                str(VENV_BIN / "airflow"),
                "celery",
                "worker",
                "--concurrency",
                str(WORKER_CONCURRENCY),
                "--celery-hostname",
                f"{name}@%h",
                "--skip-serve-logs",  # two on one host would fight over the log port
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.worker_env(name),
            cwd=own,
            start_new_session=True,
        )

        def ready() -> bool:
            if self.procs[name].poll() is not None:
                raise RuntimeError(f"worker {name} exited: {self.log_tail(name)}")
            with open(log_path, "rb") as f:
                f.seek(offset)
                return b" ready." in f.read()

        wait_for(f"Celery worker {name}", ready, 180, interval=1)

    def _flush_redis(self) -> None:
        import redis

        redis.Redis.from_url(self.broker).flushdb()

    def _s3_up(self) -> bool:
        if self.procs["s3"].poll() is not None:
            raise RuntimeError(f"moto_server exited: {self.log_tail('s3')}")
        try:
            return requests.get(self.s3_endpoint, timeout=2).status_code < 500
        except requests.RequestException:
            return False

    def _mlflow_up(self) -> bool:
        if self.procs["mlflow"].poll() is not None:
            raise RuntimeError(f"mlflow server exited: {self.log_tail('mlflow')}")
        try:
            return requests.get(f"{self.mlflow_url}/health", timeout=2).ok
        except requests.RequestException:
            return False

    @contextmanager
    def client_env(self) -> Iterator[None]:
        """This (test) process as a client of the bucket, for the duration."""
        import pytest

        with pytest.MonkeyPatch.context() as mp:
            for k, v in self.s3_env().items():
                mp.setenv(k, v)
            yield

    def land_data(self, models: list[str]) -> None:
        """Each model's own data, in the bucket: WEEKS week files of ROWS_PER_WEEK rows
        sampled from the demo year with the model's own seed."""
        import numpy as np

        from modelkeeper.data.storage import Storage
        from modelkeeper.demo import load_flights, week_frame

        flights = load_flights()
        weeks = [week_frame(flights, w) for w in range(WEEKS)]
        with self.client_env():
            storage = Storage(self.storage_uri)
            for i, name in enumerate(models):
                rng = np.random.default_rng(1000 + i)
                for w, frame in enumerate(weeks):
                    rows = np.sort(rng.choice(len(frame), size=ROWS_PER_WEEK, replace=False))
                    storage.write_parquet(
                        frame.iloc[rows].reset_index(drop=True),
                        storage.landing_dir() / name / f"week_{w:02d}.parquet",
                    )

    def stop(self) -> None:
        print(f"\nscale topology timings (s since start): {self.timings}; logs in {self.logs}")
        family: list[psutil.Process] = []
        for proc in self.procs.values():
            try:
                family += psutil.Process(proc.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                pass
        for proc in self.procs.values():
            if proc.poll() is None:
                stop_group(proc, grace=15)
        for proc in family:
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        for log in self._log_files:
            log.close()
        try:
            self._flush_redis()
        except Exception as exc:  # noqa: BLE001 (teardown goes on)
            print(f"could not flush redis db {REDIS_DB}: {exc}")
        for db in self.dbs_created:
            pg_admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')

    # -- REST and stores -----------------------------------------------------------------
    def dag_ids(self, tag: str | None = None) -> list[str]:
        """Every DAG id, page by page (the API returns at most 100 per call)."""
        ids: list[str] = []
        while True:
            params: dict[str, Any] = {"limit": 100, "offset": len(ids), "order_by": "dag_id"}
            if tag:
                params["tags"] = [tag]
            page = self.ok("GET", "/dags", params=params)
            ids += [d["dag_id"] for d in page["dags"]]
            if not page["dags"] or len(ids) >= page["total_entries"]:
                return ids

    def trigger(self, dag_id: str, conf: dict | None = None) -> str:
        body = {"logical_date": None, "conf": conf or {}}
        return self.ok("POST", f"/dags/{dag_id}/dagRuns", json=body)["dag_run_id"]

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.ok("PATCH", f"/dags/{dag_id}", json={"is_paused": paused})

    def dag_run(self, dag_id: str, run_id: str) -> dict:
        return self.ok("GET", f"/dags/{dag_id}/dagRuns/{run_id}")

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, dict]:
        body = self.ok("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        return {ti["task_id"]: ti for ti in body["task_instances"]}

    def tries(self, dag_id: str, run_id: str, task_id: str) -> list[dict]:
        body = self.ok("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/tries")
        return sorted(body["task_instances"], key=lambda t: t["try_number"])

    def wait_runs(self, runs: dict[str, str], timeout: float) -> dict[str, dict]:
        """{dag_id: run_id} -> {dag_id: finished run}, once all have finished."""

        def done() -> dict[str, dict] | None:
            got = {d: self.dag_run(d, r) for d, r in runs.items()}
            return got if all(r["state"] in RUN_DONE for r in got.values()) else None

        return wait_for(f"{len(runs)} runs to finish", done, timeout, interval=3)

    def registry(self):
        from modelkeeper.records.registry import Registry

        return Registry(self.mlflow_url)

    def audit(self):
        from modelkeeper.records.audit import AuditLog

        return AuditLog.from_url(pg_url(self.db["audit"]))

    def worker_processes(self, name: str) -> list[psutil.Process]:
        root = psutil.Process(self.procs[name].pid)
        return [root, *root.children(recursive=True)]


def ts(value: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def summary(ti: dict[str, Any]) -> str:
    return f"{ti['task_id']}[{ti['state']}, try {ti['try_number']}, {ti.get('hostname')}]"
