"""The core's error classes, by what retrying can do about them.

The Airflow layer maps them once (modelkeeper_airflow/errors.py): the permanent kinds
fail a task at once, the transient kinds retry with backoff. Anything not listed here
is treated as transient by Airflow's default, which is the safe side for an unknown.
"""

from __future__ import annotations


class ModelkeeperError(Exception):
    """Base of every error the core raises on purpose."""


# -- permanent: the same inputs give the same failure ---------------------------------------


class PermanentError(ModelkeeperError):
    """Retrying with the same inputs cannot help; a person has to change something."""


class SpecError(PermanentError, ValueError):
    """A model spec file is missing, unreadable or invalid."""


class DataError(PermanentError, ValueError):
    """The data itself is unusable: unreadable files, a rejected batch, too little to train."""


class TrainingDataError(DataError):
    """The accepted data cannot make a training set (too little, one class, ...)."""


class ConfigError(PermanentError, ValueError):
    """Settings, connections or run parameters that cannot work (a bad mode, a missing answer)."""


class HandoffError(ConfigError):
    """A stage's input from its upstream stage is missing or malformed (a wiring error)."""


class NotFoundError(PermanentError, LookupError):
    """The thing asked for does not exist (a model version, an alias, a run)."""


# -- transient: the same call may well succeed a little later ---------------------------------


class TransientError(ModelkeeperError):
    """Worth retrying: something outside was unreachable or moved under us."""


class UnavailableError(TransientError, ConnectionError):
    """A service (MLflow, a database) could not be reached or answered with a server error."""


class ContentionError(TransientError):
    """Someone else changed shared state mid-operation (the champion moved during a rollback)."""
