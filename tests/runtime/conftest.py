"""The REAL Airflow runtime for fault and security tests: api-server, scheduler, dag-processor.

One session-wide runtime on the local PostgreSQL (a fresh database, dropped at the end),
LocalExecutor, SimpleAuthManager users `admin` and `viewer`, the repo's DAG files plus two
probe DAGs (`mk_hang`, `mk_secret_probe`) in a scratch DAGs folder, a real `mlflow server`
of its own behind the `mlflow_default` Connection (the session's `mlflow_server` fixture is
shared with tests/e2e, which move its champion) and the audit trail in Postgres behind
`modelkeeper_audit`. Everything is driven through the REST API, as a person or a
client would; the components run as subprocesses in their own process groups and are
killed (with every task process they forked) at teardown.

`first_runs` is the session's first three runs of `retrain_flight_delay`: the scheduled
run that unpausing starts, which trains the first champion while the fixture SIGKILLs its
`train` task process (mid-training) and then its `promote` task process (right after the
alias moved), and two manual runs POSTed back to back behind it (max_active_runs=1).
Several tests assert on them.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests

from tests.postgres import PG
from tests.procs import free_port, stop_group, wait_for

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
MODEL = "flight_delay"
RETRAIN = "retrain_flight_delay"
RUN_DONE = {"success", "failed"}
COMPONENTS = ("api-server", "scheduler", "dag-processor")
RETRY_DELAY = 5  # seconds, the first retry's wait (doubles after)

# Probe DAGs, written next to copies of the repo's DAG files. Not product code.
PROBE_DAGS = '''\
"""Runtime-test probes: a hung task and a task that logs a connection password."""

import logging
import time
from datetime import datetime, timedelta

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, BaseHook


def _hang():
    print("mk_hang: sleeping 600 s")
    time.sleep(600)


def _log_password():
    conn = BaseHook.get_connection("mlflow_default")
    logging.getLogger("airflow.task").info("mk_secret_probe: logged password=%s", conn.password)
    print(f"mk_secret_probe: printed password={conn.password}")
    return {"host": conn.host}


with DAG("mk_hang", schedule=None, start_date=datetime(2026, 1, 1), catchup=False,
         tags=["mk-runtime-test"]):
    PythonOperator(task_id="hang", python_callable=_hang,
                   execution_timeout=timedelta(seconds=10), retries=0)

with DAG("mk_secret_probe", schedule=None, start_date=datetime(2026, 1, 1), catchup=False,
         tags=["mk-runtime-test"]):
    PythonOperator(task_id="log_password", python_callable=_log_password, retries=0)
'''


def ts(value: str) -> datetime:
    """A timestamp of the REST API ('...Z') as an aware datetime."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def mlflow_runs(registry: Any, airflow_run_id: str) -> list:
    """The MLflow runs tagged with this DAG run (there should be exactly one)."""
    return registry.client.search_runs(
        [registry.experiment_id(MODEL)], f"tags.airflow_run_id = '{airflow_run_id}'"
    )


def pg_admin(sql: str) -> None:
    import psycopg2

    conn = psycopg2.connect(dbname="postgres", **PG)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


class MlflowServer:
    """An `mlflow server` this test suite starts and stops itself (for outage drills)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self, wait: bool = True) -> None:
        """Spawn the server (same port and store every time); wait until it answers."""
        with open(self.base / "server.log", "ab") as log:
            self.proc = subprocess.Popen(
                [
                    str(VENV_BIN / "mlflow"),
                    "server",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--backend-store-uri",
                    f"sqlite:///{self.base / 'mlflow.db'}",
                    "--artifacts-destination",
                    str(self.base / "artifacts"),
                    "--workers",
                    "1",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                # Tracking and registry only: no job runner (huey consumers).
                env={
                    **os.environ,
                    "MLFLOW_DISABLE_TELEMETRY": "true",
                    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
                },
                start_new_session=True,
            )
        if wait:
            self.wait_up()

    def wait_up(self) -> None:
        def up() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server died: {self.log_tail()}")
            try:
                urllib.request.urlopen(f"{self.url}/health", timeout=2)
                return True
            except OSError:
                return False

        wait_for("mlflow server", up, 120)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            stop_group(self.proc, grace=10)
        self.proc = None

    def crash(self) -> None:
        """SIGKILL the whole server at once: an outage, not a shutdown."""
        assert self.proc is not None
        stop_group(self.proc, crash=True)
        self.proc = None

    def log_tail(self) -> str:
        return (self.base / "server.log").read_text(errors="replace")[-3000:]


class Runtime:
    """The running Airflow, its REST API, and the stores the tasks write to."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.home = base / "airflow"
        self.dags = base / "dags"
        self.storage_root = base / "storage"
        self.logs = base / "logs"
        self.db = f"mk_rt_{secrets.token_hex(4)}"
        self.db_url = f"postgresql+psycopg2://{PG['user']}@{PG['host']}:{PG['port']}/{self.db}"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.secret = f"mk-s3cr3t-{secrets.token_hex(6)}"
        self.procs: dict[str, subprocess.Popen] = {}
        self.tokens: dict[str, str] = {}
        self.http = requests.Session()
        self.db_created = False
        self.timings: dict[str, float] = {}
        self.log_files: list[Any] = []
        # The runtime's own registry: the session's `mlflow_server` is shared with
        # tests/e2e, which register flight_delay versions and move its champion.
        (base / "mlflow").mkdir()
        self.mlflow = MlflowServer(base / "mlflow")
        self.mlflow_url = self.mlflow.url
        (base / "outage-mlflow").mkdir()
        self.spare_mlflow = MlflowServer(base / "outage-mlflow")

    wait_for = staticmethod(wait_for)

    # -- lifecycle -------------------------------------------------------------------
    def environment(self) -> dict[str, str]:
        from cryptography.fernet import Fernet

        # Nothing of the unit-test configuration (tests/conftest.py) may leak in.
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AIRFLOW", "MODELKEEPER_", "MLFLOW_", "PYTEST"))
        }
        env.update(
            {
                "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.db_url,
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": "4",
                # Warm task processes, as under make run (scripts/run_embedded.sh).
                "AIRFLOW__SCHEDULER__MP_START_METHOD": "forkserver",
                "AIRFLOW__SCHEDULER__MP_FORKSERVER_PRELOAD": "modelkeeper_airflow.warm",
                "PYTHONPATH": str(ROOT / "plugins"),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
                "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,viewer:viewer",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
                "AIRFLOW__API__BASE_URL": self.url,
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
                "AIRFLOW__WORKERS__EXECUTION_API_RETRIES": "10",
                "AIRFLOW__WORKERS__EXECUTION_API_RETRY_WAIT_MIN": "2",
                "AIRFLOW__WORKERS__EXECUTION_API_RETRY_WAIT_MAX": "20",
                # A task whose supervisor vanished is failed (and retried) after 90 s, not 5 min.
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "90",
                "MODELKEEPER_STORAGE": str(self.storage_root),
                # The owner's mail server is down (a closed port): the notification target
                # that is down (test_work.py). Without this Connection the e-mail would
                # not be tried at all (the outbox keeps it, as under make run).
                "AIRFLOW_CONN_SMTP_DEFAULT": json.dumps(
                    {
                        "conn_type": "smtp",
                        "host": "127.0.0.1",
                        "port": free_port(),
                        "extra": {"disable_tls": True, "disable_ssl": True, "retry_limit": 0},
                    }
                ),
                # Retries wait 5 s, 10 s instead of 20 s, 40 s: the drills below kill tasks
                # and MLflow on purpose, and the waits are not what they test.
                "MODELKEEPER_RETRY_DELAY_SECONDS": str(RETRY_DELAY),
                "MLFLOW_DISABLE_TELEMETRY": "true",
                # MLflow's client retries a refused connection 7 times with backoff factor 2
                # (~4 min per call) before Airflow's own retries even start; an outage drill
                # would take a quarter of an hour. Deployment config, not product code.
                "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
                "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                "GIT_PYTHON_REFRESH": "quiet",
                "PYTHONUNBUFFERED": "1",  # component logs complete when a test reads them
            }
        )
        return env

    def start(self) -> None:
        t0 = time.monotonic()
        for folder in (self.home, self.dags, self.storage_root, self.logs):
            folder.mkdir(parents=True, exist_ok=True)
        for dag_file in sorted((ROOT / "dags").glob("*.py")):
            shutil.copy(dag_file, self.dags / dag_file.name)
        (self.dags / "mk_runtime_probes.py").write_text(PROBE_DAGS)
        self.env = self.environment()
        self.mlflow.start(wait=False)

        pg_admin(f'CREATE DATABASE "{self.db}"')
        self.db_created = True
        # The project's own bootstrap: `airflow db migrate` (upgradedb), Connections, pool.
        boot = subprocess.run(
            [str(VENV_BIN / "python"), str(ROOT / "scripts" / "bootstrap_airflow.py")],
            env={
                **self.env,
                "MODELKEEPER_MLFLOW_URI": self.mlflow_url,
                # The audit trail in Postgres (the scaled-out setup), the same test database.
                "MODELKEEPER_AUDIT_URI": f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{self.db}",
            },
            capture_output=True,
            text=True,
            timeout=400,
        )
        (self.logs / "bootstrap.log").write_text(boot.stdout + boot.stderr)
        assert boot.returncode == 0, f"bootstrap failed:\n{(boot.stdout + boot.stderr)[-4000:]}"
        self.timings["migrate+bootstrap"] = time.monotonic() - t0

        from modelkeeper.data.storage import Storage
        from modelkeeper.demo import land_next_weeks

        land_next_weeks(Storage(self.storage_root), 4)  # 3 weeks train, 1 holdout
        self.mlflow.wait_up()

        for name in COMPONENTS:
            self.spawn(name)
        # The outage drill's own MLflow server boots while Airflow does.
        self.spare_mlflow.start(wait=False)
        wait_for("a healthy Airflow", self._healthy, 240, interval=1)
        self.timings["components healthy"] = time.monotonic() - t0

        passwords = json.loads(
            (self.home / "simple_auth_manager_passwords.json.generated").read_text()
        )
        for user in ("admin", "viewer"):
            r = self.http.post(
                f"{self.url}/auth/token",
                json={"username": user, "password": passwords[user]},
                timeout=30,
            )
            assert r.status_code in (200, 201), r.text
            self.tokens[user] = r.json()["access_token"]

        audit = self.ok("GET", "/connections/modelkeeper_audit")
        assert (audit["conn_type"], audit["schema"]) == ("postgres", self.db), audit
        # A password the MLflow hook ignores: the secrets test looks for it everywhere.
        self.patch_connection("mlflow_default", password=self.secret)

        for dag_id in (RETRAIN, "mk_hang", "mk_secret_probe"):
            wait_for(
                f"DAG {dag_id} parsed",
                lambda d=dag_id: self.api("GET", f"/dags/{d}").status_code == 200,
                240,
                interval=2,
            )
        errors = self.api("GET", "/importErrors").json()
        assert errors["total_entries"] == 0, errors
        self.timings["dags parsed"] = time.monotonic() - t0

    def spawn(self, name: str) -> None:
        """Start one Airflow component (again), appending to its log."""
        args = {"api-server": ["api-server", "--port", str(self.port), "--host", "127.0.0.1"]}
        self.log_files.append(open(self.logs / f"{name}.log", "ab"))  # noqa: SIM115
        self.procs[name] = subprocess.Popen(
            [str(VENV_BIN / "airflow"), *args.get(name, [name])],
            stdout=self.log_files[-1],
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=self.base,
            start_new_session=True,
        )

    def restart(self, name: str, timeout: float = 180) -> float:
        """SIGTERM the component's main process, as a service manager would, wait for
        it to exit (a scheduler first lets its running tasks finish), start it again and
        wait until the runtime is healthy. Returns the seconds it was down."""
        proc = self.procs[name]
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop_group(proc, grace=1, crash=True)
        self.spawn(name)
        wait_for("a healthy Airflow", self._healthy, 240, interval=1)
        return time.monotonic() - t0

    def revive(self) -> list[str]:
        """Start again every component that exited (a service manager's restart policy)."""
        dead = [name for name, proc in self.procs.items() if proc.poll() is not None]
        for name in dead:
            self.spawn(name)
        return dead

    def supervise(self, what: str, check: Callable[[], Any], timeout: float) -> tuple[Any, list]:
        """wait_for(check) while restarting any component that exits, as compose's
        `restart: always` or systemd would; returns check's value and what was restarted."""
        restarted: list[str] = []

        def step() -> Any:
            restarted.extend(self.revive())
            try:
                return check()
            except (requests.RequestException, AssertionError, ValueError, RuntimeError):
                return None  # the API answers 500 while its database is away

        return wait_for(what, step, timeout, interval=1), restarted

    def block_database(self, seconds: float) -> None:
        """The metadata database goes away: Postgres refuses new connections to it and
        terminates the open ones, for `seconds`."""
        pg_admin(f'ALTER DATABASE "{self.db}" WITH ALLOW_CONNECTIONS false')
        try:
            pg_admin(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                f"WHERE datname = '{self.db}' AND pid <> pg_backend_pid()"
            )
            time.sleep(seconds)
        finally:
            pg_admin(f'ALTER DATABASE "{self.db}" WITH ALLOW_CONNECTIONS true')

    def _healthy(self) -> bool:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited: {self.log_tail(name)}")
        try:
            health = self.http.get(f"{self.url}/api/v2/monitor/health", timeout=5).json()
        except (requests.RequestException, ValueError):
            return False
        return all(
            (health.get(part) or {}).get("status") == "healthy"
            for part in ("metadatabase", "scheduler", "dag_processor")
        )

    def log_tail(self, name: str, n: int = 3000) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-n:] if path.exists() else ""

    def ti_ids(self) -> set[str]:
        """Ids of every task instance of this runtime (task processes carry them)."""
        try:
            body = self.ok("GET", "/dags/~/dagRuns/~/taskInstances", params={"limit": 1000})
        except (requests.RequestException, AssertionError, KeyError):
            return set()
        return {ti["id"] for ti in body["task_instances"]}

    def mine(self, ti_ids: set[str] | None = None) -> list[psutil.Process]:
        """Every live process of this runtime: the components, what they forked, and task
        processes (which rename themselves "airflow worker -- <ti id>", clobbering their
        /proc environ, and sit in process groups of their own)."""
        ti_ids = self.ti_ids() if ti_ids is None else ti_ids
        found: dict[int, psutil.Process] = {}
        for popen in self.procs.values():
            try:
                root = psutil.Process(popen.pid)
                for proc in [root, *root.children(recursive=True)]:
                    found[proc.pid] = proc
            except psutil.NoSuchProcess:
                continue
        for proc in psutil.process_iter():
            try:
                title = " ".join(proc.cmdline())
                if proc.environ().get("AIRFLOW_HOME") == str(self.home) or any(
                    i in title for i in ti_ids
                ):
                    found[proc.pid] = proc
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        alive = []
        for proc in found.values():
            try:
                if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                    alive.append(proc)
            except psutil.NoSuchProcess:
                continue
        return alive

    def stop(self) -> None:
        print(f"\nruntime timings: {self.timings}")
        ti_ids = self.ti_ids()
        before = self.mine(ti_ids)
        for proc in self.procs.values():
            stop_group(proc)
        for proc in before:
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(before, timeout=10)
        survivors = self.mine(ti_ids)
        for proc in survivors:
            proc.kill()
        self.mlflow.stop()
        self.spare_mlflow.stop()
        for handle in self.log_files:
            handle.close()
        if self.db_created:
            pg_admin(f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)')
        assert not survivors, f"processes survived the runtime's teardown: {survivors}"

    # -- REST ----------------------------------------------------------------------------
    def api(
        self, method: str, path: str, user: str | None = "admin", **kw: Any
    ) -> requests.Response:
        headers = kw.pop("headers", {})
        if user is not None:
            headers["Authorization"] = f"Bearer {self.tokens[user]}"
        return self.http.request(
            method, f"{self.url}/api/v2{path}", headers=headers, timeout=60, **kw
        )

    def ok(self, method: str, path: str, **kw: Any) -> Any:
        r = self.api(method, path, **kw)
        assert r.status_code < 300, f"{method} {path}: {r.status_code} {r.text[:2000]}"
        return r.json() if r.content else None

    def patch_connection(self, conn_id: str, **fields: Any) -> None:
        current = self.ok("GET", f"/connections/{conn_id}")
        body = {"connection_id": conn_id, "conn_type": current["conn_type"], **fields}
        self.ok("PATCH", f"/connections/{conn_id}", json=body, params={"update_mask": list(fields)})

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.ok("PATCH", f"/dags/{dag_id}", json={"is_paused": paused})

    def trigger(self, dag_id: str, conf: dict | None = None, user: str = "admin") -> str:
        run = self.ok(
            "POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf or {}}
        )
        return run["dag_run_id"]

    def dag_run(self, dag_id: str, run_id: str) -> dict:
        return self.ok("GET", f"/dags/{dag_id}/dagRuns/{run_id}")

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, dict]:
        body = self.ok("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        return {ti["task_id"]: ti for ti in body["task_instances"]}

    def tries(self, dag_id: str, run_id: str, task_id: str) -> list[dict]:
        body = self.ok("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/tries")
        return sorted(body["task_instances"], key=lambda t: t["try_number"])

    def xcom(self, run_id: str, task_id: str, key: str = "return_value", dag_id: str = RETRAIN):
        return self.ok(
            "GET",
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}",
            params={"deserialize": "true"},
        )["value"]

    def wait_run(self, dag_id: str, run_id: str, timeout: float) -> dict:
        return wait_for(
            f"{dag_id} {run_id} to finish",
            lambda: (r := self.dag_run(dag_id, run_id))["state"] in RUN_DONE and r,
            timeout,
            interval=1,
        )

    def log(self, dag_id: str, run_id: str, task_id: str, try_number: int, user="admin") -> str:
        body = self.ok(
            "GET",
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
            params={"full_content": "true"},
            headers={"Accept": "application/json"},
            user=user,
        )
        return json.dumps(body.get("content"))

    # -- task processes ------------------------------------------------------------------
    def task_process(self, ti: dict) -> psutil.Process:
        """The OS process running this task instance (its pid, checked by its proctitle)."""
        proc = psutil.Process(ti["pid"])
        # The task runner renames itself "airflow worker -- <ti id>" right after the fork.
        wait_for(
            f"pid {ti['pid']} to show TI {ti['id']}",
            lambda: ti["id"] in " ".join(proc.cmdline()),
            10,
            interval=0.05,
        )
        return proc

    # -- stores --------------------------------------------------------------------------
    def audit(self):
        from modelkeeper.records.audit import AuditLog

        return AuditLog.from_url(self.db_url)

    def storage(self):
        from modelkeeper.data.storage import Storage

        return Storage(self.storage_root)


@pytest.fixture(scope="session")
def runtime(tmp_path_factory):
    rt = Runtime(tmp_path_factory.mktemp("runtime"))
    try:
        rt.start()
        yield rt
    finally:
        rt.stop()


@pytest.fixture(scope="session")
def registry(runtime):
    """The runtime's MLflow registry, as the tests read it."""
    from modelkeeper.records.registry import Registry

    return Registry(runtime.mlflow_url)


def _kill_when(rt: Runtime, ti: dict, ready: Callable[[], bool], timeout: float) -> dict:
    """SIGKILL the task process of `ti` as soon as `ready()`; report what was hit."""
    proc = rt.task_process(ti)
    deadline = time.monotonic() + timeout
    while True:
        if ready():
            proc.send_signal(signal.SIGKILL)
            return {"pid": proc.pid, "at": time.time(), "hit": True}
        if not proc.is_running() or time.monotonic() > deadline:
            return {"pid": proc.pid, "at": time.time(), "hit": False}
        time.sleep(0.02)


@pytest.fixture(scope="session")
def first_runs(runtime, registry):
    """The deployment's first run, killed twice on its way, and two manual triggers.

    Unpausing `retrain_flight_delay` (catchup off) makes the scheduler start the latest
    @weekly interval at once: that scheduled run trains the first champion. Right after
    it appears, two manual runs are POSTed back to back (logical_date null); with
    max_active_runs=1 they must queue behind it and behind each other.

    Kill 1: `train` try 1 of the first run, SIGKILLed mid-training (its train/holdout
    split is written; the reference sample, logged after the fit, usually is not).
    Kill 2: `promote` try 1, SIGKILLed the moment the registry's `champion` alias appears
    (the alias moved; the tags, description and audit row after it may not be written).
    """
    rt = runtime
    t0 = time.monotonic()
    rt.set_paused(RETRAIN, False)

    def scheduled_run() -> str | None:
        runs = rt.ok("GET", f"/dags/{RETRAIN}/dagRuns")["dag_runs"]
        return next((r["dag_run_id"] for r in runs if r["run_type"] == "scheduled"), None)

    first = wait_for("the scheduled run started by unpausing", scheduled_run, 120)
    manual = [rt.trigger(RETRAIN), rt.trigger(RETRAIN)]
    everything = [first, *manual]
    snap = rt.storage().snapshot_dir(MODEL, first)
    samples: list[dict[str, str]] = []
    kills: dict[str, dict] = {}
    deadline = time.monotonic() + 900
    while True:
        states = {rid: rt.dag_run(RETRAIN, rid)["state"] for rid in everything}
        samples.append(states)
        if set(states.values()) <= RUN_DONE:
            break
        assert time.monotonic() < deadline, f"runs did not finish: {states}"
        tis = rt.task_instances(RETRAIN, first)
        train, promote = tis.get("train", {}), tis.get("promote", {})
        if "train" not in kills and train.get("state") == "running" and train.get("pid"):
            if train["try_number"] == 1 and (snap / "holdout.parquet").exists():
                time.sleep(0.5)  # into the fit
                kills["train"] = _kill_when(rt, train, lambda: True, 1)
                kills["train"]["reference_logged"] = (snap / "reference.parquet").exists()
        if "promote" not in kills and promote.get("state") == "running" and promote.get("pid"):
            if promote["try_number"] == 1:
                kills["promote"] = _kill_when(
                    rt, promote, lambda: registry.alias(MODEL) is not None, 180
                )
                kills["promote"]["audit_rows_at_kill"] = [
                    e for e in rt.audit().events(MODEL) if e["run_id"] == first
                ]
        time.sleep(0.5)
    return {
        "first": first,
        "manual": manual,
        "kills": kills,
        "samples": samples,
        "seconds": time.monotonic() - t0,
    }


@pytest.fixture
def outage_mlflow(runtime):
    """A second `mlflow server` of the test's own (spawned with the runtime), to crash."""
    server = runtime.spare_mlflow
    if server.proc is None:
        server.start()
    server.wait_up()
    try:
        yield server
    finally:
        server.stop()
