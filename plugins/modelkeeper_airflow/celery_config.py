"""Celery config for modelkeeper's workers: Airflow's default plus warm task processes.

Set `[celery] celery_config_options = modelkeeper_airflow.celery_config.CELERY_CONFIG`.
Celery imports the modules in `imports` in the worker's main process before it forks its
pool, so every pool process, and every task process Airflow forks from one, starts with
modelkeeper_airflow.warm's libraries loaded. The scheduler reads this config too, but only
workers import `imports`.
"""

from __future__ import annotations

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG

CELERY_CONFIG = {
    **DEFAULT_CELERY_CONFIG,
    "imports": (*DEFAULT_CELERY_CONFIG.get("imports", ()), "modelkeeper_airflow.warm"),
}
