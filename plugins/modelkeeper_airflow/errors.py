"""Retry or fail, decided once for every modelkeeper task.

The core raises its own error classes (modelkeeper/errors.py). Here they meet Airflow:

- permanent errors (a bad spec, unusable data, a configuration or wiring mistake,
  something that does not exist) fail the task at once, without its retries: the same
  inputs would fail the same way, and a person has to act;
- transient errors (MLflow or a database unreachable, the champion moving under a
  rollback) and anything unknown propagate unchanged, so Airflow retries them with the
  task's backoff and finally fails with their message.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from airflow.sdk.exceptions import AirflowFailException

from modelkeeper.contracts.errors import PermanentError


@contextlib.contextmanager
def fail_or_retry() -> Iterator[None]:
    try:
        yield
    except PermanentError as exc:
        raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc
