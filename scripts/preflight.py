"""Refuse to start the compose stack with missing, malformed or well-known secrets.

`airflow-init` runs this before `airflow db migrate`; every other Airflow service waits for
`airflow-init` to succeed, so one bad value stops the whole stack with a line naming it.
Compose's own `${VAR:?...}` already refuses unset or empty values; this adds what compose
cannot see: a Fernet key that is not one, short JWT/API secrets, default or reused
passwords. Values are never printed, only variable names.

Plain Python (stdlib + cryptography, no airflow import) so it runs in a second.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping

from cryptography.fernet import Fernet

FERNET_KEY = "AIRFLOW__CORE__FERNET_KEY"
JWT_SECRET = "AIRFLOW__API_AUTH__JWT_SECRET"
API_SECRET_KEY = "AIRFLOW__API__SECRET_KEY"
ALL_ADMINS = "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"
# Each password variable and the variable naming its user (None: the service has no user).
PASSWORDS: dict[str, str | None] = {
    "POSTGRES_PASSWORD": "POSTGRES_USER",
    "REDIS_PASSWORD": None,
    "MINIO_ROOT_PASSWORD": "MINIO_ROOT_USER",  # the object store's secret key
}
SIGNING_SECRETS = (JWT_SECRET, API_SECRET_KEY)
#: The object store's access key id: not secret alone, but required and never a default.
ACCESS_KEYS = ("MINIO_ROOT_USER",)
REQUIRED = (FERNET_KEY, *SIGNING_SECRETS, *PASSWORDS, *ACCESS_KEYS)

MIN_SECRET_LENGTH = 32
MIN_PASSWORD_LENGTH = 16
WELL_KNOWN = frozenset(
    {
        "airflow", "admin", "postgres", "password", "changeme", "secret", "mlflow", "redis",
        "example", "test", "123456", "12345678", "root", "default", "letmein", "qwerty",
        "passw0rd", "modelkeeper", "minioadmin",
    }
)  # fmt: skip
# A Fernet key copied into countless tutorials and compose files (puckel/docker-airflow).
PUBLISHED_FERNET_KEYS = frozenset({"46BKJoQYlPPOexq0OhDZnIlNepKFf87WFwLbfzqDDho="})
# Passwords are placed verbatim in postgresql:// and redis:// URLs, so no URL syntax.
URL_SAFE = re.compile(r"[A-Za-z0-9._~-]+")
TRUE = {"1", "true", "yes", "on"}


def _is_default(value: str) -> bool:
    lowered = value.strip().lower()
    return lowered in WELL_KNOWN or "changeme" in lowered


def _fernet_problems(value: str) -> list[str]:
    # Airflow accepts a comma-separated list (newest first) to rotate keys: check each.
    problems = []
    for key in (part.strip() for part in value.split(",")):
        if key in PUBLISHED_FERNET_KEYS:
            problems.append(f"{FERNET_KEY}: a Fernet key published on the internet")
            continue
        try:
            Fernet(key)
        except (ValueError, TypeError):
            problems.append(
                f"{FERNET_KEY}: not a valid Fernet key (32 url-safe base64-encoded bytes)"
            )
    return problems


def problems(environ: Mapping[str, str]) -> list[str]:
    """Every problem found in `environ`, one line each, naming the variable."""
    found: list[str] = []
    present: dict[str, str] = {}
    for name in REQUIRED:
        value = environ.get(name, "")
        if value.strip():
            present[name] = value
        else:
            found.append(f"{name}: missing or empty")

    if FERNET_KEY in present:
        found += _fernet_problems(present[FERNET_KEY])
    for name in SIGNING_SECRETS:
        if name in present and len(present[name]) < MIN_SECRET_LENGTH:
            found.append(f"{name}: shorter than {MIN_SECRET_LENGTH} characters")
    for name, user_var in PASSWORDS.items():
        if name not in present:
            continue
        value = present[name]
        if len(value) < MIN_PASSWORD_LENGTH:
            found.append(f"{name}: shorter than {MIN_PASSWORD_LENGTH} characters")
        if not URL_SAFE.fullmatch(value):
            found.append(f"{name}: use only letters, digits and . _ ~ - (it goes into URLs)")
        user = environ.get(user_var, "") if user_var else ""
        if user and value.strip().lower() == user.strip().lower():
            found.append(f"{name}: equal to the user name in {user_var}")

    for name, value in present.items():
        if _is_default(value):
            found.append(f"{name}: a well-known default value")
    seen: dict[str, str] = {}
    for name, value in present.items():
        if value in seen:
            found.append(f"{name}: same value as {seen[value]}; use one secret per purpose")
        seen.setdefault(value, name)

    if environ.get(ALL_ADMINS, "").strip().lower() in TRUE:
        found.append(f"{ALL_ADMINS}: makes every visitor an admin (no login)")
    return found


def main(environ: Mapping[str, str]) -> int:
    found = problems(environ)
    if found:
        print("preflight refused to start the stack:", file=sys.stderr)
        for line in found:
            print(f"  {line}", file=sys.stderr)
        return 1
    print(f"preflight ok: {', '.join(REQUIRED)} set, well-formed and not defaults")
    return 0


if __name__ == "__main__":
    sys.exit(main(os.environ))
