"""The one place that reads modelkeeper's environment variables.

Secrets and endpoints live in Airflow Connections; these are the few process-level knobs
(where data and specs are, how long to wait before a retry). Read on each call, so a test
or a process that changes the environment sees the change.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from modelkeeper.contracts.errors import ConfigError

CHECKOUT = Path(__file__).resolve().parents[3]
#: The checkout's git-ignored state folder (the package is installed editable from it).
DEFAULT_STORAGE = CHECKOUT / ".modelkeeper" / "storage"
DEFAULT_SPEC_DIR = Path(__file__).resolve().parents[2] / "models"


@dataclass(frozen=True)
class Settings:
    storage_root: Path | str  # a local folder, or an object-store URI (s3://bucket/prefix)
    spec_dir: Path
    retry_delay_seconds: float
    mlflow_uri: str  # what bootstrap registers as the `mlflow_default` Connection
    audit_uri: str | None  # scaled out: a SQLAlchemy URI for the `modelkeeper_audit` Connection
    audit_db: Path | None  # embedded: the SQLite file of the audit trail
    demo_feed_schedule: str  # how often the demo lands the next week (make run: minutes)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        raw_delay = env.get("MODELKEEPER_RETRY_DELAY_SECONDS", "20")
        try:
            delay = float(raw_delay)
        except ValueError:
            delay = -1.0
        if delay <= 0:
            raise ConfigError(
                f"MODELKEEPER_RETRY_DELAY_SECONDS must be a positive number, got {raw_delay!r}"
            )
        audit_db = env.get("MODELKEEPER_AUDIT_DB")
        storage = env.get("MODELKEEPER_STORAGE") or ""
        storage_root = storage.rstrip("/") if "://" in storage else Path(storage or DEFAULT_STORAGE)
        return cls(
            storage_root=storage_root,
            spec_dir=Path(env.get("MODELKEEPER_SPEC_DIR") or DEFAULT_SPEC_DIR),
            retry_delay_seconds=delay,
            mlflow_uri=env.get("MODELKEEPER_MLFLOW_URI", "http://127.0.0.1:5000"),
            audit_uri=env.get("MODELKEEPER_AUDIT_URI") or None,
            audit_db=Path(audit_db) if audit_db else None,
            demo_feed_schedule=env.get("MODELKEEPER_DEMO_FEED_SCHEDULE") or "@daily",
        )


def settings() -> Settings:
    return Settings.from_env()
