"""The compose stack refuses to start with missing, malformed or default secrets.

Docker compose cannot run on this machine (no Docker engine, no compose v2), so nothing
here builds the image or starts a container. Instead: compose's rules are checked on the
file itself (every secret is `${VAR:?...}`, no literal password, start order, executor),
compose's documented interpolation (`${VAR:?err}` errors when VAR is unset or empty) is
applied to the file by a small helper, and scripts/preflight.py, which airflow-init
runs before `airflow db migrate`, is run natively as a subprocess.

The mounts are checked for meaning, not only YAML syntax: a `- ` line indented one level
too deep is folded into the entry above as plain text (`a:/x - b:/y`), which
`yaml.safe_load` and even `docker-compose config` accept. So every volume entry is parsed
the way compose reads it, and each piece of state (storage root, logs, the passwords file,
MLflow artifacts, database files) must sit on one named volume shared by every service
that uses it, at the path the service's own environment or command names.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
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
    "MINIO_ROOT_USER",
    "MINIO_ROOT_PASSWORD",
}
AIRFLOW_SERVICES = {
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
}
ALL_SERVICES = AIRFLOW_SERVICES | {"postgres", "redis", "minio", "mlflow", "airflow-init"}
DECLARED_VOLUMES = {
    "postgres-data",
    "redis-data",
    "minio-data",
    "airflow-logs",
    "airflow-auth",
}
S3_ENDPOINT = "http://minio:9000"
SIMPLE_AUTH_MANAGER = (
    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
)
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
        "MINIO_ROOT_USER": secrets.token_hex(10),
        "MINIO_ROOT_PASSWORD": secrets.token_hex(24),
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


# What the images define when the compose file leaves it unset.
AIRFLOW_HOME = "/opt/airflow"  # apache/airflow
PGDATA = "/var/lib/postgresql/data"  # postgres
REDIS_DIR = "/data"  # redis: the working directory, where redis-server writes its dumps
MINIO_DATA = "/data"  # minio: `server /data`

VOLUME_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")  # what compose accepts
ACCESS_MODES = {"ro", "rw"}
LONG_SYNTAX_KEYS = {
    "type",
    "source",
    "target",
    "read_only",
    "consistency",
    "bind",
    "volume",
    "tmpfs",
}


@dataclass(frozen=True)
class Mount:
    type: str  # "volume" (named), "bind" or "tmpfs"
    source: str | None
    target: str
    read_only: bool = False


def _check_target(target: Any) -> str:
    if not isinstance(target, str) or not target.startswith("/"):
        raise ValueError(f"target {target!r} is not an absolute container path")
    if re.search(r"\s", target):
        raise ValueError(f"target {target!r} contains whitespace")
    return target


def parse_volume(entry: Any) -> Mount:
    """One `volumes:` entry of a service, read as compose reads it, or ValueError.

    Short syntax: `source:target` or `source:target:ro|rw`; a source starting with `.`,
    `/` or `~` is a host path (bind mount), anything else names a volume. Long syntax: a
    mapping with `type`, `source` (not for tmpfs) and `target`.
    """
    if isinstance(entry, str):
        if re.search(r"\s", entry):
            raise ValueError(f"{entry!r} contains whitespace (a folded line?)")
        parts = entry.split(":")
        if len(parts) not in (2, 3):
            raise ValueError(f"{entry!r} is not source:target[:ro|rw] ({len(parts) - 1} colons)")
        source, target, *mode = parts
        if mode and mode[0] not in ACCESS_MODES:
            raise ValueError(f"{entry!r}: access mode {mode[0]!r} is not ro or rw")
        kind = "bind" if source.startswith((".", "/", "~")) else "volume"
        if kind == "volume" and not VOLUME_NAME.match(source):
            raise ValueError(f"{entry!r}: {source!r} is neither a host path nor a volume name")
        return Mount(kind, source, _check_target(target), mode == ["ro"])
    if isinstance(entry, dict):
        if unknown := set(entry) - LONG_SYNTAX_KEYS:
            raise ValueError(f"{entry!r}: unknown keys {sorted(unknown)}")
        kind = entry.get("type")
        if kind not in {"volume", "bind", "tmpfs"}:
            raise ValueError(f"{entry!r}: type {kind!r} is not volume, bind or tmpfs")
        source = entry.get("source")
        if kind == "tmpfs":
            if source is not None:
                raise ValueError(f"{entry!r}: a tmpfs has no source")
        elif not isinstance(source, str) or re.search(r"\s", source) or not source:
            raise ValueError(f"{entry!r}: source {source!r} is not a path or volume name")
        elif kind == "volume" and not VOLUME_NAME.match(source):
            raise ValueError(f"{entry!r}: {source!r} is not a volume name")
        read_only = entry.get("read_only", False)
        if not isinstance(read_only, bool):
            raise ValueError(f"{entry!r}: read_only {read_only!r} is not a boolean")
        return Mount(kind, source, _check_target(entry.get("target")), read_only)
    raise ValueError(f"{entry!r} is neither a string nor a mapping")


def mounts(service: dict[str, Any]) -> list[Mount]:
    """The service's mounts; an entry compose would misread is left out (and fails
    TestMounts.test_volume_entries_are_well_formed)."""
    parsed = []
    for entry in service.get("volumes") or []:
        try:
            parsed.append(parse_volume(entry))
        except ValueError:
            continue
    return parsed


def mount_holding(service: dict[str, Any], path: str) -> Mount | None:
    """The mount `path` lives on in the container (the deepest target above it)."""
    holding = [m for m in mounts(service) if PurePosixPath(path).is_relative_to(m.target)]
    return max(holding, key=lambda m: len(PurePosixPath(m.target).parts), default=None)


def env(service: dict[str, Any]) -> dict[str, Any]:
    return service.get("environment") or {}


def storage_users(services: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Every service told where the storage root is (MODELKEEPER_STORAGE)."""
    return {
        n: env(s)["MODELKEEPER_STORAGE"]
        for n, s in services.items()
        if "MODELKEEPER_STORAGE" in env(s)
    }


def log_users(services: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Every Airflow component (executor configured) writes or serves logs there."""
    return {
        name: env(svc).get(
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER",
            f"{env(svc).get('AIRFLOW_HOME', AIRFLOW_HOME)}/logs",
        )
        for name, svc in services.items()
        if "AIRFLOW__CORE__EXECUTOR" in env(svc)
    }


def passwords_file_users(services: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Where SimpleAuthManager keeps the generated passwords, per service that writes or
    reads them: the API server (it generates them on first start: SimpleAuthManager.init)
    and any service that configures the file. Airflow's default is $AIRFLOW_HOME."""
    users = {}
    for name, svc in services.items():
        environment = env(svc)
        configured = "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE" in environment
        serves_api = svc.get("command") == "api-server"
        if environment.get("AIRFLOW__CORE__AUTH_MANAGER") == SIMPLE_AUTH_MANAGER and (
            serves_api or configured
        ):
            users[name] = environment.get(
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE",
                f"{environment.get('AIRFLOW_HOME', AIRFLOW_HOME)}"
                "/simple_auth_manager_passwords.json.generated",
            )
    return users


def _flag(command: Any, flag: str) -> str | None:
    for arg in command if isinstance(command, list) else []:
        if isinstance(arg, str) and arg.startswith(f"{flag}="):
            return arg.partition("=")[2]
    return None


def mlflow_artifact_users(services: dict[str, dict[str, Any]]) -> dict[str, str]:
    """An MLflow server serving artifacts stores them at --artifacts-destination."""
    return {
        name: _flag(svc.get("command"), "--artifacts-destination")
        for name, svc in services.items()
        if _flag(svc.get("command"), "--artifacts-destination")
    }


def minio_data_users(services: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {
        name: svc["command"][1]
        for name, svc in services.items()
        if isinstance(svc.get("command"), list) and svc["command"][:1] == ["server"]
    }


def postgres_data_users(services: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {
        name: env(svc).get("PGDATA", PGDATA)
        for name, svc in services.items()
        if str(svc.get("image", "")).startswith("postgres:")
    }


def redis_data_users(services: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {
        name: _flag(svc["command"], "--dir") or REDIS_DIR
        for name, svc in services.items()
        if isinstance(svc.get("command"), list) and svc["command"][:1] == ["redis-server"]
    }


@pytest.fixture(scope="module")
def raw() -> str:
    return COMPOSE.read_text()


@pytest.fixture(scope="module")
def compose(raw) -> dict[str, Any]:
    return yaml.safe_load(raw)


@pytest.fixture(scope="module")
def services(compose) -> dict[str, dict[str, Any]]:
    return compose["services"]


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
            assert depends_on["minio"] == {"condition": "service_healthy"}
        assert services["mlflow"]["depends_on"]["minio"] == {"condition": "service_healthy"}
        for name in ("postgres", "redis", "minio"):
            assert "healthcheck" in services[name], name

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
            # absolute links in MLflow runs and notifications (issue 23 item 16)
            pytest.param(
                "AIRFLOW__API__BASE_URL",
                "${AIRFLOW__API__BASE_URL:-http://localhost:8080}",
                id="base-url",
            ),
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


class TestMounts:
    def test_services_are_the_known_ones(self, services):
        # the parametrized checks below cover every service only while this holds
        assert set(services) == ALL_SERVICES

    @pytest.mark.parametrize(
        ("entry", "expected"),
        [
            pytest.param("data:/var/lib/x", Mount("volume", "data", "/var/lib/x"), id="named"),
            pytest.param(
                "./init:/docker-entrypoint-initdb.d:ro",
                Mount("bind", "./init", "/docker-entrypoint-initdb.d", read_only=True),
                id="bind-ro",
            ),
            pytest.param("data:/x:rw", Mount("volume", "data", "/x"), id="rw"),
            pytest.param(
                {"type": "volume", "source": "data", "target": "/x", "read_only": True},
                Mount("volume", "data", "/x", read_only=True),
                id="long-syntax",
            ),
            pytest.param(
                {"type": "tmpfs", "target": "/tmp"}, Mount("tmpfs", None, "/tmp"), id="tmpfs"
            ),
        ],
    )
    def test_parser_accepts(self, entry, expected):
        assert parse_volume(entry) == expected

    @pytest.mark.parametrize(
        "entry",
        [
            pytest.param("storage:/var/lib/storage - auth:/var/lib/auth", id="folded-line"),
            pytest.param("storage:/a\n- auth:/b", id="folded-newline"),
            pytest.param("storage", id="no-target"),
            pytest.param("storage:/a:ro:extra", id="three-colons"),
            pytest.param("storage:/a:rx", id="bad-mode"),
            pytest.param("storage:relative", id="relative-target"),
            pytest.param(":/a", id="empty-source"),
            pytest.param(["storage:/a"], id="nested-list"),
            pytest.param({"type": "volume", "target": "/a"}, id="long-without-source"),
            pytest.param({"type": "volume", "source": "s", "target": "a"}, id="long-relative"),
            pytest.param({"source": "s", "target": "/a"}, id="long-without-type"),
            pytest.param({"type": "volume", "source": "s", "taget": "/a"}, id="long-typo"),
        ],
    )
    def test_parser_refuses(self, entry):
        with pytest.raises(ValueError):
            parse_volume(entry)

    @pytest.mark.parametrize("name", [pytest.param(n, id=n) for n in sorted(ALL_SERVICES)])
    def test_volume_entries_are_well_formed(self, services, name):
        volumes = services[name].get("volumes") or []
        assert isinstance(volumes, list), f"{name}.volumes is {type(volumes).__name__}"
        targets = []
        for entry in volumes:
            try:
                targets.append(parse_volume(entry).target)
            except ValueError as error:
                pytest.fail(f"{name}.volumes: {error}")
        assert len(targets) == len(set(targets)), f"{name}: two mounts at one target {targets}"

    @pytest.mark.parametrize("name", [pytest.param(n, id=n) for n in sorted(ALL_SERVICES)])
    def test_environment_is_a_flat_mapping_of_strings(self, services, name):
        environment = services[name].get("environment") or {}
        assert isinstance(environment, dict), f"{name}.environment is not a mapping"
        for key, value in environment.items():
            assert isinstance(key, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key), (
                f"{name}.environment: {key!r} is not a variable name"
            )
            assert isinstance(value, str), f"{name}.{key} is {type(value).__name__}: {value!r}"
            assert "\n" not in value, f"{name}.{key} spans lines (a folded entry?)"

    @pytest.mark.parametrize("name", [pytest.param(n, id=n) for n in sorted(ALL_SERVICES)])
    def test_ports_are_well_formed(self, services, name):
        for port in services[name].get("ports") or []:
            assert isinstance(port, str), f"{name}.ports: {port!r} (quote it)"
            assert re.fullmatch(r"(?:\d{1,3}(?:\.\d{1,3}){3}:)?\d+:\d+", port), f"{name}: {port!r}"

    def test_declared_volumes_are_the_known_ones(self, compose):
        assert set(compose.get("volumes") or {}) == DECLARED_VOLUMES

    @pytest.mark.parametrize("volume", [pytest.param(v, id=v) for v in sorted(DECLARED_VOLUMES)])
    def test_every_declared_volume_is_mounted(self, services, volume):
        users = [
            name
            for name, svc in services.items()
            if any(m.type == "volume" and m.source == volume for m in mounts(svc))
        ]
        assert users, f"volume {volume} is declared but no service mounts it"

    def test_every_mounted_volume_is_declared(self, compose):
        declared = set(compose.get("volumes") or {})
        for name, svc in compose["services"].items():
            for mount in mounts(svc):
                if mount.type == "volume":
                    assert mount.source in declared, f"{name} mounts undeclared {mount.source}"


class TestSharedState:
    """Each piece of state lives on one named volume, mounted by every service that uses
    it, at the path that service's own environment or command names."""

    @pytest.mark.parametrize(
        ("users_of", "expected_users"),
        [
            pytest.param(log_users, AIRFLOW_SERVICES | {"airflow-init"}, id="airflow-logs"),
            pytest.param(passwords_file_users, {"airflow-apiserver"}, id="auth-passwords-file"),
            pytest.param(minio_data_users, {"minio"}, id="minio-data"),
            pytest.param(postgres_data_users, {"postgres"}, id="postgres-data"),
            pytest.param(redis_data_users, {"redis"}, id="redis-data"),
        ],
    )
    def test_on_one_named_volume_for_every_user(
        self,
        services,
        users_of: Callable[[dict[str, dict[str, Any]]], dict[str, str]],
        expected_users: set[str],
    ):
        users = users_of(services)
        assert expected_users <= set(users), f"not configured in {expected_users - set(users)}"
        places = {}
        for name, path in users.items():
            mount = mount_holding(services[name], path)
            assert mount is not None and mount.type == "volume", (
                f"{name}: {path} is on no named volume (mounts: {mounts(services[name])})"
            )
            assert not mount.read_only, f"{name}: {path} is on a read-only mount"
            # the same file for everyone: same volume, same place inside it
            places[name] = (mount.source, PurePosixPath(path).relative_to(mount.target))
        assert len(set(places.values())) == 1, f"different volumes or places: {places}"

    def test_docs_show_the_configured_passwords_file(self, services):
        (path,) = set(passwords_file_users(services).values())
        docs = (ROOT / "docs" / "deploy.md").read_text()
        assert f"cat {path}" in docs


class TestObjectStore:
    """The storage root and MLflow's artifacts live in the S3-compatible service (MinIO),
    on no volume: a second worker host needs no shared disk."""

    def test_storage_root_is_one_bucket_prefix_for_every_service(self, services):
        roots = set(storage_users(services).values())
        assert roots == {"s3://${MODELKEEPER_BUCKET:-modelkeeper}/storage"}, roots
        assert "airflow-worker" in storage_users(services)

    def test_mlflow_artifacts_go_to_the_same_bucket(self, services):
        assert mlflow_artifact_users(services) == {
            "mlflow": "s3://${MODELKEEPER_BUCKET:-modelkeeper}/mlflow"
        }
        assert "--serve-artifacts" in services["mlflow"]["command"]

    @pytest.mark.parametrize("name", sorted(AIRFLOW_SERVICES | {"airflow-init", "mlflow"}))
    def test_s3_endpoint_and_credentials_are_the_minio_ones(self, services, name):
        environment = env(services[name])
        minio = env(services["minio"])
        assert environment["MLFLOW_S3_ENDPOINT_URL"] == S3_ENDPOINT
        if name != "mlflow":
            assert environment["MODELKEEPER_S3_ENDPOINT_URL"] == S3_ENDPOINT
        assert environment["AWS_ACCESS_KEY_ID"] == minio["MINIO_ROOT_USER"]
        assert environment["AWS_SECRET_ACCESS_KEY"] == minio["MINIO_ROOT_PASSWORD"]

    def test_no_service_keeps_modelkeeper_data_on_a_volume(self, services):
        for name, svc in services.items():
            for mount in mounts(svc):
                assert "storage" not in mount.target and "artifacts" not in mount.target, (
                    f"{name} mounts {mount}"
                )

    def test_init_creates_the_buckets_after_bootstrap(self, services):
        script = "\n".join(services["airflow-init"]["command"])
        line = next(x for x in script.splitlines() if "scripts/ensure_buckets.py" in x)
        assert "MODELKEEPER_STORAGE" in line and "/mlflow" in line, line
        assert script.index("scripts/bootstrap_airflow.py") < script.index(line)

    def test_ensure_buckets_refuses_a_local_path(self):
        result = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "ensure_buckets.py"), "/var/lib/storage"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode != 0
        assert "not an s3://bucket/... URI" in result.stderr


class TestNativeTopologyInStep:
    """tests/scale runs this compose topology natively: its services and the environment
    its processes get are the ones this file declares (moto's server standing in for
    MinIO, the local Postgres and Redis for theirs)."""

    @pytest.fixture(scope="class")
    def native(self, tmp_path_factory):
        from tests.scale.topology import Topology

        topo = Topology(tmp_path_factory.mktemp("native"), n_specs=1, n_data=0)
        return {"topology": topo, "env": topo.environment()}

    @pytest.mark.parametrize(
        "key",
        [
            "AIRFLOW__CORE__EXECUTOR",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
            "AIRFLOW__CELERY__BROKER_URL",
            "AIRFLOW__CELERY__RESULT_BACKEND",
            "MODELKEEPER_STORAGE",
            "MODELKEEPER_S3_ENDPOINT_URL",
            "MLFLOW_S3_ENDPOINT_URL",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_DEFAULT_REGION",
            "MODELKEEPER_MLFLOW_URI",
            "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS",
            "OMP_NUM_THREADS",
        ],
    )
    def test_same_setting_same_kind_of_value(self, raw, native, key):
        services = resolve(raw, generated_env())["services"]  # as compose would pass it
        ours = env(services["airflow-worker"])[key]
        theirs = native["env"][key]
        assert theirs and ours, key
        scheme = re.compile(r"^[\w+]+://")  # URLs: the same scheme (s3, redis, postgresql...)
        if scheme.match(str(ours)) or key.startswith("AIRFLOW__CORE__"):
            assert (scheme.match(theirs) or [theirs])[0] == (scheme.match(str(ours)) or [ours])[
                0
            ], (
                key,
                theirs,
                ours,
            )

    def test_audit_trail_on_postgres_in_both(self, services, native):
        assert env(services["airflow-worker"])["MODELKEEPER_AUDIT_URI"].startswith("postgresql://")
        assert native["topology"].audit_uri.startswith("postgresql://")

    def test_mlflow_server_the_same_way(self, services, native):
        theirs = native["topology"].mlflow_command()
        ours = services["mlflow"]["command"]
        assert "--serve-artifacts" in theirs
        assert _flag(theirs, "--artifacts-destination").startswith("s3://")
        assert _flag(ours, "--artifacts-destination").startswith("s3://")
        assert _flag(theirs, "--backend-store-uri").startswith("postgresql://")
        assert env(services["mlflow"])["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql://")

    def test_one_process_per_compose_service(self, services, native):
        from tests.scale.topology import COMPOSE_SERVICES

        assert set(COMPOSE_SERVICES) == set(services)
