"""`make run`'s stack for a benchmark: scripts/run_embedded.sh on free ports, its state in a
folder of its own, driven through the REST API as a person or a client would."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from datetime import datetime
from pathlib import Path

import requests

from bench.common import ROOT

#: The line ModelkeeperOperator.log_cost writes in every task's log.
COST = re.compile(r"task process up ([\d.]+) s before the work, work ([\d.]+) s")
#: The demo feed must not land data while a benchmark measures (first of January only).
NO_FEED = "0 0 1 1 *"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ts(value: str | None) -> float | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() if value else None


def wait_for(what: str, check, timeout: float, interval: float = 2.0):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


class Embedded:
    """One `make run` stack (Airflow standalone + MLflow) with `env` on top of the script's."""

    def __init__(self, base: Path, env: dict[str, str]) -> None:
        self.state = base / "state"
        self.port, self.mlflow_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.mlflow_url = f"http://127.0.0.1:{self.mlflow_port}"
        self.extra = env
        self.log = base / "run.log"
        self.proc: subprocess.Popen | None = None
        self.http = requests.Session()

    def environment(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AIRFLOW", "MODELKEEPER_", "MLFLOW_", "PYTEST"))
        }
        env.update(
            AIRFLOW_PORT=str(self.port),
            MLFLOW_PORT=str(self.mlflow_port),
            MODELKEEPER_STATE=str(self.state),
            MODELKEEPER_DEMO_FEED_SCHEDULE=NO_FEED,
            **self.extra,
        )
        return env

    def __enter__(self) -> Embedded:
        self.state.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                ["bash", str(ROOT / "scripts" / "run_embedded.sh")],
                cwd=ROOT,
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for("make run's stack to answer", self._up, 900)
        self.login()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"run_embedded.sh exited: {self.log.read_text()[-3000:]}")
        try:
            for url in (f"{self.mlflow_url}/health", f"{self.url}/api/v2/monitor/health"):
                urllib.request.urlopen(url, timeout=5)
        except OSError:
            return False
        return "modelkeeper is up" in self.log.read_text(errors="replace")

    # -- the REST API, as admin ----------------------------------------------------------
    def login(self) -> None:
        home = self.state / "airflow"
        password = json.loads((home / "simple_auth_manager_passwords.json.generated").read_text())
        r = self.http.post(
            f"{self.url}/auth/token",
            json={"username": "admin", "password": password["admin"]},
            timeout=30,
        )
        r.raise_for_status()
        self.http.headers["Authorization"] = f"Bearer {r.json()['access_token']}"

    def api(self, method: str, path: str, **kw) -> dict:  # noqa: ANN003
        r = self.http.request(method, f"{self.url}/api/v2{path}", timeout=60, **kw)
        r.raise_for_status()
        return r.json()

    def runs(self, dag_id: str) -> list[dict]:
        """The DAG's runs, newest first; none while the DAG is not parsed yet."""
        path = f"{self.url}/api/v2/dags/{dag_id}/dagRuns?order_by=-run_after&limit=50"
        r = self.http.get(path, timeout=60)
        if r.status_code == 404:
            return []
        r.raise_for_status()
        return r.json()["dag_runs"]

    def busy(self) -> bool:
        got = self.api("GET", "/dags/~/dagRuns?state=running&state=queued&limit=1")
        return got["total_entries"] > 0

    def pause(self, dag_id: str, paused: bool = True) -> None:
        self.api("PATCH", f"/dags/{dag_id}", json={"is_paused": paused})

    def trigger(self, dag_id: str, conf: dict | None = None) -> str:
        body = {"logical_date": None, "conf": conf or {}}
        return self.api("POST", f"/dags/{dag_id}/dagRuns", json=body)["dag_run_id"]

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 1800) -> dict:
        path = f"/dags/{dag_id}/dagRuns/{requests.utils.quote(run_id, safe='')}"

        def done() -> dict | None:
            run = self.api("GET", path)
            return run if run["state"] in ("success", "failed") else None

        return wait_for(f"{dag_id} {run_id}", done, timeout)

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        quoted = requests.utils.quote(run_id, safe="")
        got = self.api("GET", f"/dags/{dag_id}/dagRuns/{quoted}/taskInstances?limit=100")
        return got["task_instances"]

    def cost(self, ti: dict) -> tuple[float, float] | None:
        """(seconds before the work, work) from the task's log, if it ran an operator of ours."""
        folder = (
            self.state / "airflow" / "logs" / f"dag_id={ti['dag_id']}"
            / f"run_id={ti['dag_run_id']}" / f"task_id={ti['task_id']}"
        )  # fmt: skip
        with contextlib.suppress(OSError):
            text = (folder / f"attempt={ti['try_number']}.log").read_text(errors="replace")
            found = COST.search(text)
            if found:
                return float(found[1]), float(found[2])
        return None
