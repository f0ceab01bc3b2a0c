"""MLflow's errors as the core's, translated once for every call the registry adapter makes.

"Does not exist" becomes RegistryNotFound (only when MLflow says so); an unreachable or
failing server becomes RegistryUnavailable (worth a retry); anything else stays MLflow's
own error. `TranslatingClient` wraps an MlflowClient, `translated` the module-level calls.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any

from modelkeeper.contracts.errors import ModelkeeperError, NotFoundError, UnavailableError

NOT_FOUND = "RESOURCE_DOES_NOT_EXIST"
_UNAVAILABLE_CODES = frozenset({"TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED"})
# Transport errors of requests/urllib3 by name: neither library is imported here.
_TRANSPORT_NAMES = frozenset(
    {
        "ConnectionError",
        "Timeout",
        "ReadTimeout",
        "ConnectTimeout",
        "MaxRetryError",
        "NewConnectionError",
        "ProtocolError",
    }
)


class RegistryError(ModelkeeperError):
    """The registry is in a state the pipeline cannot act on."""


class RegistryNotFound(RegistryError, NotFoundError):
    """MLflow answered that the resource does not exist."""


class RegistryUnavailable(RegistryError, UnavailableError):
    """MLflow could not be reached, or answered with a server error."""


def error_code(exc: Exception) -> str:
    """MLflow's error code (RESOURCE_DOES_NOT_EXIST, ...) of an exception, or ''."""
    return str(getattr(exc, "error_code", ""))


def _transport_failure(exc: BaseException | None) -> bool:
    """A connection refused, reset or timed out anywhere in the exception's chain."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if (
            isinstance(exc, ConnectionError | TimeoutError)
            or type(exc).__name__ in _TRANSPORT_NAMES
        ):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def translate(exc: Exception, where: str, what: str) -> Exception:
    """MLflow's exception as the core's: not found, unavailable, or unchanged."""
    if isinstance(exc, RegistryError):
        return exc
    code = error_code(exc)
    if code == NOT_FOUND:
        error: RegistryError = RegistryNotFound(f"{what}: {exc}")
    elif code in _UNAVAILABLE_CODES or _transport_failure(exc) or " error code 5" in str(exc):
        error = RegistryUnavailable(f"MLflow at {where} is unavailable ({what}): {exc}")
    else:
        return exc
    error.error_code = code  # type: ignore[attr-defined]
    return error


@contextlib.contextmanager
def translated(where: str, what: str) -> Iterator[None]:
    """Raise what `translate` makes of an error inside the block (`where`: the tracking URI)."""
    try:
        yield
    except Exception as exc:
        error = translate(exc, where, what)
        if error is exc:
            raise
        raise error from exc


class TranslatingClient:
    """An MlflowClient whose every call raises the core's errors (see translate)."""

    def __init__(self, client: Any, where: str) -> None:
        self._client, self._where = client, where

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        @functools.wraps(attr)
        def call(*args: Any, **kwargs: Any) -> Any:
            with translated(self._where, name):
                return attr(*args, **kwargs)

        return call
