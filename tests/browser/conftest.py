"""Headless-browser tests against a real Airflow UI.

Fixtures (all but `page` are session-wide):

- `chromium`: the path of Debian's Chromium, installed with apt-get when missing (a
  clean CI machine has none; Playwright's own browser download cannot work here).
- `browser`: a Playwright Chromium driving that binary, headless.
- `airflow_ui`: a real `airflow api-server` (REST API + the React UI) on a free loopback
  port, with a scratch AIRFLOW_HOME, a migrated SQLite metadata DB, SimpleAuthManager
  with a known `admin` password, and a scratch DAGs folder holding copies of the repo's
  dags/*.py plus the probe DAGs of tests/browser/probes.py, serialized into the DB with
  `airflow dags reserialize` before the test starts. `AirflowUI.start_component(
  "scheduler")` (or "dag-processor", "triggerer") starts more components on the same home
  when a later test needs them; `AirflowUI.api()`/`ok()` call the REST API as admin. Every component runs in a process group of its own, killed at the end.
- `admin_state`: the browser storage state (the `_token` cookie) of a session logged in
  through the simple auth manager's real login page, `/auth/login`, once per session.
- `page`: a fresh browser context and page with that state; a failing test leaves a
  full-page screenshot of it in the artifacts folder.
- `artifacts`: where screenshots go: tests/browser/artifacts/ (git-ignored by
  tests/browser/.gitignore), or $MODELKEEPER_BROWSER_ARTIFACTS.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.browser.probes import probe_dag_file
from tests.procs import free_port, stop_group, wait_for

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium keeps dialling Google on this closed
# network (machines/python-svc.md).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Tall enough for a whole trigger dialog: an element screenshot is cut at the viewport.
VIEWPORT = {"width": 1280, "height": 1800}
ADMIN = "admin"
ADMIN_PASSWORD = f"mk-browser-{secrets.token_hex(6)}"
ARTIFACTS = Path(
    os.environ.get("MODELKEEPER_BROWSER_ARTIFACTS", Path(__file__).parent / "artifacts")
)


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:120]


# -- Chromium ----------------------------------------------------------------------------
def ensure_chromium() -> Path:
    """Debian's Chromium, installed with apt-get when it is missing."""
    if CHROMIUM.exists():
        return CHROMIUM
    apt = shutil.which("apt-get")
    if apt is None:
        pytest.fail(f"{CHROMIUM} is missing and there is no apt-get to install Debian's chromium")
    log: list[str] = []

    def apt_get(*args: str) -> bool:
        # Wait for another apt/dpkg (a second xdist worker, unattended upgrades) to finish.
        cmd = [apt, "-q", "-y", "-o", "DPkg::Lock::Timeout=300", *args]
        result = subprocess.run(
            cmd,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            capture_output=True,
            text=True,
            timeout=900,
        )
        log.append(f"$ {' '.join(cmd)}  -> exit {result.returncode}\n{result.stderr[-1500:]}")
        return result.returncode == 0

    # A clean machine may have no package lists yet: update once, then try again.
    if not apt_get("install", "chromium") and apt_get("update"):
        apt_get("install", "chromium")
    if not CHROMIUM.exists():
        pytest.fail(
            f"could not install Debian's chromium with apt-get (the browser tests need "
            f"{CHROMIUM}; apt-get must run as root):\n" + "\n".join(log),
            pytrace=False,
        )
    return CHROMIUM


@pytest.fixture(scope="session")
def chromium() -> Path:
    return ensure_chromium()


@pytest.fixture(scope="session")
def browser(chromium: Path) -> Iterator[Any]:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=15_000)  # the UI's first render on a busy 2-core machine
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


# -- Airflow -----------------------------------------------------------------------------
class AirflowUI:
    """A real Airflow (api-server, and whatever else a test spawns) on scratch state."""

    def __init__(
        self,
        base: Path,
        extra_dags: dict[str, str] | None = None,
        *,
        dags_source: Path = ROOT / "dags",
        plugins: Path = ROOT / "plugins",
    ) -> None:
        self.base = base
        self.dags_source = dags_source
        self.plugins = plugins
        self.home = base / "airflow"
        self.dags = base / "dags"
        self.storage_root = base / "storage"
        self.logs = base / "logs"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.username = ADMIN
        self.password = ADMIN_PASSWORD
        # file name -> source, written beside the copies of the repo's DAG files
        self.extra_dags = extra_dags or {}
        self.procs: dict[str, subprocess.Popen] = {}
        self.http = requests.Session()
        self.token: str | None = None
        self.timings: dict[str, float] = {}
        self._log_files: list[Any] = []

    def environment(self) -> dict[str, str]:
        from cryptography.fernet import Fernet

        # Nothing of the unit-test configuration (tests/conftest.py) may leak in.
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AIRFLOW", "MODELKEEPER_", "MLFLOW_", "PYTEST"))
        }
        passwords = self.home / "passwords.json"
        env.update(
            {
                "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                # Warm task processes, as under make run (scripts/run_embedded.sh).
                "AIRFLOW__SCHEDULER__MP_START_METHOD": "forkserver",
                "AIRFLOW__SCHEDULER__MP_FORKSERVER_PRELOAD": "modelkeeper_airflow.warm",
                "PYTHONPATH": str(self.plugins),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(self.plugins),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
                "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
                "AIRFLOW__CORE__AUTH_MANAGER": (
                    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
                ),
                # "user:role" pairs; the password comes from the passwords file below (the
                # manager only generates one for a user missing from it).
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN}:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
                "AIRFLOW__API__BASE_URL": self.url,
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.logs / "tasks"),
                "MODELKEEPER_STORAGE": str(self.storage_root),
                "AIRFLOW_CONN_MODELKEEPER_AUDIT": json.dumps(
                    {"conn_type": "sqlite", "host": str(self.base / "audit.db")}
                ),
                "MLFLOW_DISABLE_TELEMETRY": "true",
                "GIT_PYTHON_REFRESH": "quiet",
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        self._t0 = t0 = time.monotonic()
        for folder in (self.home, self.dags, self.storage_root, self.logs):
            folder.mkdir(parents=True, exist_ok=True)
        for dag_file in sorted(self.dags_source.glob("*.py")):
            shutil.copy(dag_file, self.dags / dag_file.name)
        for name, source in self.extra_dags.items():
            (self.dags / name).write_text(source)
        (self.home / "passwords.json").write_text(json.dumps({ADMIN: ADMIN_PASSWORD}))
        self.env = self.environment()

        self.run("db", "migrate", timeout=300)
        self.timings["db migrate"] = time.monotonic() - t0
        # Serialize the DAGs while the api-server boots (the UI shows only serialized DAGs).
        self.spawn("reserialize", ["dags", "reserialize"])
        self.spawn("api-server", ["api-server", "--port", str(self.port), "--host", "127.0.0.1"])
        wait_for("the api-server", self._api_up, 180, interval=0.5)
        self.timings["api-server up"] = time.monotonic() - t0
        rc = self.procs["reserialize"].wait(timeout=300)
        assert rc == 0, f"airflow dags reserialize failed:\n{self.log_tail('reserialize')}"
        self.timings["dags serialized"] = time.monotonic() - t0

        r = self.http.post(
            f"{self.url}/auth/token",
            json={"username": self.username, "password": self.password},
            timeout=30,
        )
        assert r.status_code in (200, 201), f"POST /auth/token: {r.status_code} {r.text}"
        self.token = r.json()["access_token"]

    def run(self, *args: str, timeout: float = 300) -> str:
        """One `airflow ...` CLI command, to completion; its output is logged and returned."""
        result = subprocess.run(
            [str(VENV_BIN / "airflow"), *args],
            env=self.env,
            cwd=self.base,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        out = result.stdout + result.stderr
        with open(self.logs / f"{slug('-'.join(args))}.log", "a") as log:
            log.write(out)
        assert result.returncode == 0, f"airflow {' '.join(args)} failed:\n{out[-4000:]}"
        return out

    def spawn(self, name: str, args: list[str] | None = None) -> subprocess.Popen:
        """Start one long-running `airflow <args>` (default: `airflow <name>`, e.g.
        "scheduler", "dag-processor", "triggerer") in its own process group."""
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 (closed in stop())
        self._log_files.append(log)
        self.procs[name] = subprocess.Popen(
            [str(VENV_BIN / "airflow"), *(args or [name])],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=self.base,
            start_new_session=True,
        )
        return self.procs[name]

    def start_component(self, name: str, timeout: float = 180) -> None:
        """Start "scheduler", "dag-processor" or "triggerer" and wait until the health
        endpoint calls it healthy. The api-server is also the tasks' execution API
        (LocalExecutor), so a scheduler alone runs DAGs; DAG files changed after the
        start need a "dag-processor" (or `self.run("dags", "reserialize")`)."""
        self.spawn(name)
        part = name.replace("-", "_")

        def healthy() -> bool:
            if self.procs[name].poll() is not None:
                raise RuntimeError(f"{name} exited: {self.log_tail(name)}")
            health = self.http.get(f"{self.url}/api/v2/monitor/health", timeout=5).json()
            return (health.get(part) or {}).get("status") == "healthy"

        wait_for(f"a healthy {name}", healthy, timeout, interval=1)
        self.timings[f"{name} healthy"] = time.monotonic() - self._t0

    def _api_up(self) -> bool:
        proc = self.procs["api-server"]
        if proc.poll() is not None:
            raise RuntimeError(f"api-server exited: {self.log_tail('api-server')}")
        try:
            health = self.http.get(f"{self.url}/api/v2/monitor/health", timeout=5).json()
        except (requests.RequestException, ValueError):
            return False
        return (health.get("metadatabase") or {}).get("status") == "healthy"

    def stop(self) -> None:
        print(f"\nairflow_ui timings (s since start): {self.timings}; logs in {self.logs}")
        for proc in self.procs.values():
            if proc.poll() is None:
                stop_group(proc)
        for log in self._log_files:
            log.close()

    def log_tail(self, name: str, n: int = 4000) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-n:] if path.exists() else ""

    # -- REST --------------------------------------------------------------------------
    def api(self, method: str, path: str, **kw: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kw.pop("headers", {})}
        return self.http.request(
            method, f"{self.url}/api/v2{path}", headers=headers, timeout=60, **kw
        )

    def ok(self, method: str, path: str, **kw: Any) -> Any:
        r = self.api(method, path, **kw)
        assert r.status_code < 300, f"{method} {path}: {r.status_code} {r.text[:2000]}"
        return r.json() if r.content else None

    def dag_ids(self, tag: str | None = None) -> list[str]:
        params: dict[str, Any] = {"limit": 1000, "order_by": "dag_id"}
        if tag:
            params["tags"] = [tag]
        return [d["dag_id"] for d in self.ok("GET", "/dags", params=params)["dags"]]

    def import_errors(self) -> list[dict]:
        return self.ok("GET", "/importErrors")["import_errors"]


@pytest.fixture(scope="session")
def airflow_ui(tmp_path_factory) -> Iterator[AirflowUI]:
    ui = AirflowUI(
        tmp_path_factory.mktemp("airflow-ui"),
        extra_dags={"mk_browser_probes.py": probe_dag_file()},
    )
    try:
        ui.start()
        yield ui
    finally:
        ui.stop()


# -- pages -------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def admin_state(browser, airflow_ui: AirflowUI, artifacts: Path) -> dict:
    """Log in once through the simple auth manager's own login page (a small React
    form at /auth/login; the UI sends an anonymous visitor there). On success it
    sets the `_token` cookie (the JWT the UI sends with its API calls) and goes back to
    `next`. Returns the context's storage state for every later page."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    try:
        page.goto(f"{airflow_ui.url}/", wait_until="domcontentloaded")
        page.wait_for_url(re.compile(r"/auth/login"), timeout=30_000)
        page.get_by_label(re.compile("username", re.I)).fill(airflow_ui.username)
        page.get_by_label(re.compile("password", re.I)).fill(airflow_ui.password)
        page.get_by_role("button", name=re.compile(r"^\s*(sign in|log ?in)\s*$", re.I)).click()
        page.wait_for_url(lambda url: "/auth/" not in url, timeout=30_000)
        cookies = {c["name"] for c in context.cookies()}
        assert "_token" in cookies, f"no _token cookie after logging in: {cookies}"
        return context.storage_state()
    except Exception:
        page.screenshot(path=str(artifacts / "login-failure.png"), full_page=True)
        raise
    finally:
        context.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):  # noqa: ARG001
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def page(browser, admin_state: dict, airflow_ui: AirflowUI, artifacts: Path, request):
    """A page of a fresh browser context, logged in as admin; base URL = the UI."""
    context = browser.new_context(
        storage_state=admin_state,
        base_url=airflow_ui.url,
        viewport=VIEWPORT,
    )
    context.set_default_timeout(20_000)
    page = context.new_page()
    yield page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed and not page.is_closed():
        path = artifacts / f"{slug(request.node.name)}-failure.png"
        page.screenshot(path=str(path), full_page=True)
        print(f"failure screenshot: {path}")
    context.close()
