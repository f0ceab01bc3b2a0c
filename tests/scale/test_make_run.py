"""`make run` as a new user runs it: a fresh clone, ports of its own, stopped with TERM.

Issue 23, items 9-11, through the real thing: the repository this test belongs to is
cloned (its committed HEAD, as CI sees it) into a scratch folder, and `make run` starts
there with AIRFLOW_PORT and MLFLOW_PORT on free non-default ports (its `make install`
builds the clone's own .venv from the uv cache). The first start waits for

- a green task instance (the demo feed's `land`): tasks reached the execution API on
  AIRFLOW_PORT (item 9: on :8080 they fail),
- the first champion's `promote` task, whose notification lines say the message was
  kept in the outbox and none says FAILED (item 11), the outbox file, and the Outbox
  page of the real api-server listing it;

then every start (STARTS of them, 10 unless MODELKEEPER_MAKE_RUN_STARTS says otherwise;
the later ones reuse the state and stop once both ports answer) ends with TERM sent to
make's process group, and must print "stopped", free both ports and leave no process of
the clone (item 10). Two more starts stop the other ways a signal arrives: INT to the
group (Ctrl-C) and TERM to make alone.

In the scale tier (`make test-scale`, which CI runs after `make test`): it takes many
minutes of real Airflow starts and stops, which `make test` has no room for, and, like
the scale tier, it runs whole processes rather than code. Whatever happens, the finally
kills make's group and every process left from the clone.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import requests

from tests.procs import free_port, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.scale, pytest.mark.timeout(5400)]

ROOT = Path(__file__).resolve().parents[2]
STARTS = int(os.environ.get("MODELKEEPER_MAKE_RUN_STARTS", "10"))
FIRST_UP_S = 1200  # make install in the clone, migrations, the first DAG parse
UP_S = 600
PROMOTED_S = 2400  # the first champion: retrain_flight_delay end to end on a busy machine
STOP_S = 120  # the script waits 30 s for its sessions, then KILLs
NOTIFY_TASK = ("retrain_flight_delay", "promote")


def _port_free(port: int) -> bool:
    """Nothing listens on `port` (what the next `make run` checks): the connections the
    server closed may still sit in TIME_WAIT, which SO_REUSEADDR lets a server bind past."""
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            return False
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=5).status_code == 200
    except requests.RequestException:
        return False


def _of_clone(clone: Path) -> list[psutil.Process]:
    """Every live process started from the clone: its cwd, command line or AIRFLOW_HOME."""
    mine, where = [], str(clone)
    for proc in psutil.process_iter():
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
            if (
                where in " ".join(proc.cmdline())
                or proc.cwd().startswith(where)
                or proc.environ().get("AIRFLOW_HOME", "").startswith(where)
            ):
                mine.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return mine


def _default_signals() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)


class MakeRun:
    """`make run` in a clone, in a session of its own (so make leads its process group)."""

    def __init__(self, clone: Path) -> None:
        self.clone = clone
        self.airflow_port, self.mlflow_port = free_port(), free_port()
        assert 8080 not in (self.airflow_port, self.mlflow_port)
        self.airflow = f"http://127.0.0.1:{self.airflow_port}"
        self.mlflow = f"http://127.0.0.1:{self.mlflow_port}"
        self.proc: subprocess.Popen | None = None
        self.log_path: Path | None = None
        self.starts = 0
        self.http = requests.Session()

    def environment(self) -> dict[str, str]:
        # Nothing of the test session's configuration (tests/conftest.py) may leak in.
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AIRFLOW", "MODELKEEPER_", "MLFLOW_", "PYTEST", "VIRTUAL_ENV"))
        }
        venv_bin = str(ROOT / ".venv" / "bin")
        env["PATH"] = os.pathsep.join(
            p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin
        )
        env.update(AIRFLOW_PORT=str(self.airflow_port), MLFLOW_PORT=str(self.mlflow_port))
        return env

    def start(self) -> None:
        self.starts += 1
        self.log_path = self.clone.parent / f"make-run-{self.starts:02d}.log"
        with self.log_path.open("wb") as out:
            self.proc = subprocess.Popen(
                ["make", "run"],
                cwd=self.clone,
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                # A signal ignored when bash starts cannot be trapped: a pytest started in
                # the background of a script ignores INT, and its children would too.
                preexec_fn=_default_signals,
            )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def wait_up(self, timeout: float) -> None:
        def up() -> bool:
            if self.proc.poll() is not None:
                pytest.fail(f"make run exited ({self.proc.returncode}):\n{self.output()[-4000:]}")
            return _answers(f"{self.mlflow}/health") and _answers(
                f"{self.airflow}/api/v2/monitor/health"
            )

        wait_for(f"start {self.starts}: both ports answering", up, timeout, interval=2)

    def stop(self, how: str = "TERM to the group") -> float:
        """Send the signal; returns the seconds make took to exit."""
        t0 = time.monotonic()
        if how == "TERM to the group":
            os.killpg(self.proc.pid, signal.SIGTERM)
        elif how == "INT to the group":
            os.killpg(self.proc.pid, signal.SIGINT)
        else:  # TERM to make alone
            os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=STOP_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"start {self.starts}: make run still running {STOP_S} s after {how}")
        return time.monotonic() - t0

    def kill_everything(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
        for proc in _of_clone(self.clone):
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()

    # -- the REST API, as admin with the generated password ------------------------------
    def login(self) -> None:
        passwords = self.clone / ".modelkeeper/airflow/simple_auth_manager_passwords.json.generated"
        password = json.loads(passwords.read_text())["admin"]
        r = self.http.post(
            f"{self.airflow}/auth/token",
            json={"username": "admin", "password": password},
            timeout=30,
        )
        r.raise_for_status()
        self.http.headers["Authorization"] = f"Bearer {r.json()['access_token']}"

    def api(self, path: str) -> dict:
        r = self.http.get(f"{self.airflow}/api/v2{path}", timeout=60)
        r.raise_for_status()
        return r.json()

    def task_instances(self, dag_id: str) -> list[dict]:
        return self.api(f"/dags/{dag_id}/dagRuns/~/taskInstances?limit=200")["task_instances"]

    def log_of(self, ti: dict) -> str:
        run = requests.utils.quote(ti["dag_run_id"], safe="")
        path = (
            f"/dags/{ti['dag_id']}/dagRuns/{run}/taskInstances/{ti['task_id']}"
            f"/logs/{ti['try_number']}?full_content=true"
        )
        return json.dumps(self.api(path))


@pytest.fixture(scope="module")
def clone(request) -> Iterator[Path]:
    """The committed HEAD of this checkout, cloned as CI would get it.

    In a folder of its own, not pytest's tmp_path: pytest removes all but the newest
    three base folders of the user, and other pytest sessions on the machine would delete
    this one under the running Airflow. Removed after a pass, kept (path printed) after a
    failure.
    """
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    base = Path(tempfile.mkdtemp(prefix="modelkeeper-make-run-"))
    dest = base / "modelkeeper"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(dest)], check=True)
    subprocess.run(["git", "-C", str(dest), "checkout", "--quiet", "--detach", head], check=True)
    failed_before = request.session.testsfailed
    yield dest
    if request.session.testsfailed == failed_before:
        shutil.rmtree(base, ignore_errors=True)
    else:
        print(f"make run's clone and logs kept in {base}")


def _first_start_checks(run: MakeRun) -> None:
    """Items 9 and 11, on the fresh state of the first start."""
    run.login()

    def green_feed() -> list[dict]:
        tis = run.task_instances("modelkeeper_demo_feed")
        if failed := [ti for ti in tis if ti["state"] == "failed"]:
            pytest.fail(f"a demo feed task failed (execution API on the wrong port?): {failed}")
        return [ti for ti in tis if ti["state"] == "success"]

    wait_for("a successful modelkeeper_demo_feed task", green_feed, UP_S, interval=5)

    dag_id, task_id = NOTIFY_TASK

    def promote_done() -> list[dict]:
        tis = run.task_instances(dag_id)
        if failed := [ti for ti in tis if ti["state"] in ("failed", "upstream_failed")]:
            pytest.fail(f"{dag_id} failed: {[(t['task_id'], t['state']) for t in failed]}")
        return [t for t in tis if t["task_id"] == task_id and t["state"] in ("success", "skipped")]

    (promote, *_) = wait_for(f"{dag_id}.{task_id} to finish", promote_done, PROMOTED_S, 10)
    log = run.log_of(promote)
    assert "notification: outbox: kept in " in log, log[-3000:]
    assert "FAILED" not in log, log[-3000:]
    kept = list((run.clone / ".modelkeeper/storage/outbox/flight_delay").glob("*.json"))
    assert kept, "no outbox file"
    subjects = {json.loads(p.read_text())["payload"]["subject"] for p in kept}
    page = run.http.get(f"{run.airflow}/modelkeeper/outbox", timeout=60)
    assert page.status_code == 200, page.text[:2000]
    assert any(s.replace("<", "&lt;") in page.text for s in subjects), page.text[:3000]


def _assert_stopped(run: MakeRun, how: str) -> None:
    out = run.output()
    assert "modelkeeper: stopping..." in out, f"{how}:\n{out[-3000:]}"
    assert "modelkeeper: stopped" in out, f"start {run.starts}, {how}:\n{out[-3000:]}"
    for port in (run.airflow_port, run.mlflow_port):
        assert _port_free(port), f"start {run.starts}, {how}: port {port} still taken"
    left = [(p.pid, " ".join(p.cmdline())[:120]) for p in _of_clone(run.clone)]
    assert not left, f"start {run.starts}, {how}: left running: {left}"


def test_make_run_on_other_ports_notifies_locally_and_stops_every_time(clone):
    run = MakeRun(clone)
    timings: list[str] = []
    stops = ["TERM to the group"] * STARTS + ["INT to the group", "TERM to make alone"]
    try:
        for i, how in enumerate(stops):
            t0 = time.monotonic()
            run.start()
            run.wait_up(FIRST_UP_S if i == 0 else UP_S)
            up = time.monotonic() - t0
            if i == 0:
                _first_start_checks(run)
            took = run.stop(how)
            _assert_stopped(run, how)
            timings.append(
                f"start {run.starts}: up in {up:.0f} s, ran {time.monotonic() - t0 - took:.0f} s, "
                f"{how}: stopped in {took:.0f} s"
            )
            print(timings[-1], flush=True)
    finally:
        run.kill_everything()
        print("\n".join(timings))
