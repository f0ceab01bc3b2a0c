"""The compose stack refuses to start with missing, malformed or default secrets.

Docker compose cannot run on this machine (no Docker engine, no docker CLI), so nothing
here builds the image or starts a container. Instead: compose's rules are checked on the
file itself (every secret is `${VAR:?...}`, no literal password, start order, executor),
compose's documented interpolation (`${VAR:?err}` errors when VAR is unset or empty) is
applied to the file by a small helper, and scripts/preflight.py, which airflow-init
runs before `airflow db migrate`, is run natively as a subprocess.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
PREFLIGHT = ROOT / "scripts" / "preflight.py"

REQUIRED = {
    "POSTGRES_PASSWORD",
    "REDIS_PASSWORD",
    "AIRFLOW__CORE__FERNET_KEY",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__API__SECRET_KEY",
}
AIRFLOW_SERVICES = {
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|FERNET|KEY|REDISCLI_AUTH")
REQUIRED_REF = re.compile(r"^\$\{\w+:\?[^}]*\}$")  # the whole value is one `${VAR:?...}`
# user:password@ in a URL, where either part may be a `${...}` reference
URL_PASSWORD = re.compile(r"://(?:\$\{[^}]*\}|[^:/@]*):(?P<password>\$\{[^}]*\}|[^@]*)@")


def generated_env() -> dict[str, str]:
    """Fresh values, generated the way deploy/.env.example says."""
    return {
        "POSTGRES_PASSWORD": secrets.token_hex(24),
        "REDIS_PASSWORD": secrets.token_hex(24),
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
        "AIRFLOW__API__SECRET_KEY": secrets.token_hex(32),
    }


def run_preflight(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(PREFLIGHT)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


class InterpolationError(Exception):
    """What `docker compose config` reports for a required variable without a value."""


_REF = re.compile(r"\$(?:\$|\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|(?P<bare>\w+))")


def interpolate(text: str, environ: dict[str, str], missing: list[str]) -> str:
    """Compose's documented substitution in one string, for the forms this project uses.

    `$$` is a literal `$`; `${VAR}` / `$VAR` the value or ""; `${VAR:-x}` x when VAR is
    unset or empty, `${VAR-x}` when unset; `${VAR:?err}` an error when VAR is unset or
    empty, `${VAR?err}` when unset (appended to `missing`).
    """

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("name") or match.group("bare")
        op, arg = match.group("op"), match.group("arg")
        value = environ.get(name)
        unset_or_empty = not value if op and op.startswith(":") else value is None
        if op in (":?", "?"):
            if unset_or_empty:
                missing.append(f"required variable {name} is missing a value: {arg}")
            return value or ""
        if op in (":-", "-"):
            return arg if unset_or_empty else value
        return value or ""

    return _REF.sub(substitute, text)


def resolve(raw: str, environ: dict[str, str]) -> dict[str, Any]:
    """The compose file as compose sees it: YAML parsed (comments gone, `<<: *anchor`
    merges applied, as PyYAML does too), then every string value interpolated.
    Compose stops at the first missing variable; this reports them all."""
    missing: list[str] = []

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {key: walk(value) for key, value in node.items()}
        if isinstance(node, list):
            return [walk(item) for item in node]
        return interpolate(node, environ, missing) if isinstance(node, str) else node

    resolved = walk(yaml.safe_load(raw))
    if missing:
        raise InterpolationError("\n".join(dict.fromkeys(missing)))
    return resolved


@pytest.fixture(scope="module")
def raw() -> str:
    return COMPOSE.read_text()


@pytest.fixture(scope="module")
def services(raw) -> dict[str, dict[str, Any]]:
    return yaml.safe_load(raw)["services"]


class TestPreflight:
    @pytest.mark.parametrize(
        ("variable", "value"),
        [
            pytest.param("AIRFLOW__CORE__FERNET_KEY", "", id="empty-fernet-key"),
            pytest.param("AIRFLOW__API_AUTH__JWT_SECRET", None, id="missing-jwt-secret"),
            pytest.param("AIRFLOW__CORE__FERNET_KEY", "not-a-fernet-key", id="invalid-fernet"),
            pytest.param(
                "AIRFLOW__CORE__FERNET_KEY",
                "46BKJoQYlPPOexq0OhDZnIlNepKFf87WFwLbfzqDDho=",
                id="published-fernet-key",
            ),
            pytest.param("AIRFLOW__API_AUTH__JWT_SECRET", "a" * 31, id="short-jwt-secret"),
            pytest.param("AIRFLOW__API__SECRET_KEY", "s3cr3t-but-short", id="short-api-key"),
            pytest.param("POSTGRES_PASSWORD", "airflow", id="default-postgres-password"),
            pytest.param("POSTGRES_PASSWORD", "AIRFLOW", id="default-any-case"),
            pytest.param("REDIS_PASSWORD", "redis", id="default-redis-password"),
            pytest.param("REDIS_PASSWORD", "please-changeme-later-0000", id="contains-changeme"),
            pytest.param("POSTGRES_PASSWORD", "modelkeeper-owner-0123", id="equals-user-name"),
            pytest.param("POSTGRES_PASSWORD", "a" * 20 + "@b", id="breaks-the-url"),
        ],
    )
    def test_refuses(self, variable, value):
        env = generated_env() | {"POSTGRES_USER": "modelkeeper-owner-0123"}
        if value is None:
            del env[variable]
        else:
            env[variable] = value
        result = run_preflight(env)
        assert result.returncode == 1, result.stdout + result.stderr
        assert variable in result.stderr
        if value:
            assert value not in result.stdout + result.stderr  # secrets are never echoed

    def test_refuses_all_admins(self):
        env = generated_env() | {"AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True"}
        result = run_preflight(env)
        assert result.returncode == 1
        assert "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS" in result.stderr

    def test_refuses_one_secret_for_two_purposes(self):
        env = generated_env()
        env["AIRFLOW__API__SECRET_KEY"] = env["AIRFLOW__API_AUTH__JWT_SECRET"]
        result = run_preflight(env)
        assert result.returncode == 1
        assert "AIRFLOW__API__SECRET_KEY: same value as AIRFLOW__API_AUTH__JWT_SECRET" in (
            result.stderr
        )

    def test_empty_environment_names_every_variable(self):
        result = run_preflight({})
        assert result.returncode == 1
        lines = result.stderr.splitlines()[1:]
        assert {line.split(":")[0].strip() for line in lines} == REQUIRED

    def test_accepts_generated_values(self):
        env = generated_env() | {"POSTGRES_USER": "modelkeeper"}
        result = run_preflight(env)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("preflight ok: ")

    def test_accepts_a_rotation_list_of_fernet_keys(self):
        env = generated_env()
        env["AIRFLOW__CORE__FERNET_KEY"] += "," + Fernet.generate_key().decode()
        assert run_preflight(env).returncode == 0


class TestComposeFile:
    def test_secrets_are_only_required_references(self, raw):
        required_refs = set(re.findall(r"(?<!\$)\$\{(\w+):\?", raw))
        assert required_refs == REQUIRED
        for name in REQUIRED:
            for match in re.finditer(rf"(?<!\$)\$(\{{{name}(?P<rest>[^}}]*)\}}|{name}\b)", raw):
                assert (match.group("rest") or "").startswith(":?"), match.group(0)

    def test_no_literal_password(self, services):
        for service_name, service in services.items():
            for key, value in (service.get("environment") or {}).items():
                value = str(value)
                if SECRET_NAME.search(key) and not key.endswith("_FILE"):  # _FILE: a path
                    assert REQUIRED_REF.match(value), f"{service_name}.{key} = {value!r}"
                for url in URL_PASSWORD.finditer(value):
                    assert REQUIRED_REF.match(url["password"]), f"{service_name}.{key}"
            command = service.get("command")
            if isinstance(command, list) and "--requirepass" in command:
                password = command[command.index("--requirepass") + 1]
                assert REQUIRED_REF.match(password), service_name

    def test_airflow_services_wait_for_init_and_healthy_backends(self, services):
        airflow = {
            name
            for name, svc in services.items()
            if (svc.get("environment") or {}).get("AIRFLOW__CORE__EXECUTOR")
            and name != "airflow-init"
        }
        assert airflow == AIRFLOW_SERVICES
        for name in airflow:
            depends_on = services[name]["depends_on"]
            assert depends_on["airflow-init"] == {"condition": "service_completed_successfully"}
            assert depends_on["postgres"] == {"condition": "service_healthy"}
            assert depends_on["redis"] == {"condition": "service_healthy"}
        assert "healthcheck" in services["postgres"]
        assert "healthcheck" in services["redis"]

    def test_init_runs_preflight_before_migrating(self, services):
        script = "\n".join(services["airflow-init"]["command"])
        assert "set -e" in script
        assert 0 <= script.index("scripts/preflight.py") < script.index("airflow db migrate")
        assert script.index("airflow db migrate") < script.index("scripts/bootstrap_airflow.py")

    @pytest.mark.parametrize(
        ("key", "expected"),
        [
            pytest.param("AIRFLOW__CORE__EXECUTOR", "CeleryExecutor", id="celery"),
            pytest.param("AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "true", id="paused"),
            pytest.param("AIRFLOW__CORE__LOAD_EXAMPLES", "false", id="no-examples"),
            pytest.param("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "false", id="login"),
        ],
    )
    def test_airflow_setting(self, services, key, expected):
        for name in AIRFLOW_SERVICES | {"airflow-init"}:
            assert services[name]["environment"][key] == expected, name

    def test_env_example_lists_every_required_variable_empty(self):
        entries = {}
        for line in (DEPLOY / ".env.example").read_text().splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                name, _, value = line.partition("=")
                entries[name.strip()] = value.strip()
        assert entries == dict.fromkeys(REQUIRED, "")

    def test_image_is_the_locked_airflow(self):
        version = re.search(r'"apache-airflow==([\d.]+)"', (ROOT / "pyproject.toml").read_text())
        dockerfile = (DEPLOY / "Dockerfile").read_text()
        assert f"FROM apache/airflow:{version[1]}-python3.11" in dockerfile


class TestInterpolation:
    def test_empty_environment_fails_naming_every_variable(self, raw):
        with pytest.raises(InterpolationError) as error:
            resolve(raw, {})
        for name in REQUIRED:
            assert f"required variable {name} is missing a value" in str(error.value)

    @pytest.mark.parametrize("name", sorted(REQUIRED))
    def test_an_empty_value_counts_as_missing(self, raw, name):
        with pytest.raises(InterpolationError, match=f"required variable {name} "):
            resolve(raw, generated_env() | {name: ""})

    def test_generated_environment_passes_preflight_in_airflow_init(self, raw):
        env = generated_env()
        services = resolve(raw, env)["services"]
        init_env = {k: str(v) for k, v in services["airflow-init"]["environment"].items()}
        for name, value in env.items():
            assert init_env[name] == value
        result = run_preflight(init_env)
        assert result.returncode == 0, result.stderr
        broker = services["airflow-worker"]["environment"]["AIRFLOW__CELERY__BROKER_URL"]
        assert broker == f"redis://:{env['REDIS_PASSWORD']}@redis:6379/0"

    def test_default_password_in_compose_env_is_refused(self, raw):
        services = resolve(raw, generated_env() | {"POSTGRES_PASSWORD": "airflow"})
        init_env = {
            k: str(v) for k, v in services["services"]["airflow-init"]["environment"].items()
        }
        result = run_preflight(init_env)
        assert result.returncode == 1
        assert "POSTGRES_PASSWORD" in result.stderr
