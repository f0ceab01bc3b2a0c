"""Imports a task needs, loaded once by the worker so that every task process starts warm.

Airflow 3 runs each task in a process forked (os.fork) from the worker process that took
it: a LocalExecutor worker, or a Celery pool process. What that worker has imported, the
task has for free, shared copy-on-write; what it has not, every task pays for again (about
20 s for pandas, scikit-learn, Great Expectations, Evidently and MLflow on a busy 2-core
machine). Two documented settings make the workers import this module first, without
weighing down the scheduler, API server or DAG processor:

- LocalExecutor (`make run`): `[scheduler] mp_start_method = forkserver` and
  `[scheduler] mp_forkserver_preload = modelkeeper_airflow.warm`. The executor's workers
  are forked from a forkserver that imported this module; the scheduler stays lean.
- Celery workers (deploy/compose.yaml): `[celery] celery_config_options =
  modelkeeper_airflow.celery_config.CELERY_CONFIG`, Airflow's default Celery config plus
  this module in Celery's `imports`, which a worker loads before it forks its pool (the
  scheduler reads that config too, but never imports `imports`).

Only imports: no connections, files or threads are opened here (a fork copies none of them
safely). tests/operators/test_warm.py checks that every library module the code imports
lazily is in MODULES.
"""

from __future__ import annotations

import gc
import importlib
import logging
import time

log = logging.getLogger(__name__)

#: The heavy libraries as the code imports them inside functions (adapters and stages),
#: then the code itself: its modules are light, but they are many.
MODULES = (
    "numpy",
    "pandas",
    "pyarrow",
    "pyarrow.parquet",
    "scipy.stats",
    "sqlalchemy",
    "sqlalchemy.engine",
    "sqlalchemy.orm",
    "jinja2",
    "fsspec.core",
    "sklearn.compose",
    "sklearn.ensemble",
    "sklearn.impute",
    "sklearn.inspection",
    "sklearn.isotonic",
    "sklearn.linear_model",
    "sklearn.metrics",
    "sklearn.pipeline",
    "sklearn.preprocessing",
    "sklearn.utils",
    "great_expectations",
    "great_expectations.expectations",
    "great_expectations.data_context.types.base",
    "evidently",
    "evidently.metrics",
    "evidently.presets",
    "evidently.legacy.core",
    "evidently.legacy.calculations.stattests.registry",
    "mlflow",
    "mlflow.models",
    "mlflow.pyfunc",
    "mlflow.sklearn",
    "mlflow.types.schema",
    # Imported by the libraries themselves on first use (measured: a task after the list
    # above still imported these): MLflow's logging of a model, the model card's Markdown,
    # pyarrow's dataset reader.
    "pyarrow.dataset",
    "git",
    "mlflow.tracing",
    "opentelemetry.sdk.trace",
    "narwhals",
    "markdown_it",
    "linkify_it",
    "plotly.graph_objs",
    "plotly.subplots",
    "modelkeeper.stages.decide",
    "modelkeeper.stages.evaluate",
    "modelkeeper.stages.ingest",
    "modelkeeper.stages.measure",
    "modelkeeper.stages.monitor",
    "modelkeeper.stages.promote",
    "modelkeeper.stages.serve",
    "modelkeeper.stages.shadow",
    "modelkeeper.stages.train",
    "modelkeeper.monitoring.drift",
    "modelkeeper.quality.validation",
    "modelkeeper.records.registry",
    "modelkeeper_airflow.operators",
    "modelkeeper_airflow.factory",
    "modelkeeper_airflow.listener",
    # What a task process needs before its work: the supervisor, and the DagBag that parses
    # its DAG file (a LocalExecutor worker forked from the scheduler had them, one forked
    # from the forkserver would import them in every task: 0.7 s).
    "airflow.sdk.execution_time.supervisor",
    "airflow.sdk.execution_time.task_runner",
    "airflow.dag_processing.bundles.manager",
    "airflow.dag_processing.dagbag",
)


def warm(modules: tuple[str, ...] = MODULES) -> dict[str, float]:
    """Import `modules`; seconds per module. A module that fails to import is logged and
    skipped: a warm worker is an optimisation, the task imports what it needs anyway."""
    took: dict[str, float] = {}
    for name in modules:
        started = time.perf_counter()
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - the task will import it and fail with the real error
            log.warning("modelkeeper warm-up: could not import %s", name, exc_info=True)
            continue
        took[name] = time.perf_counter() - started
    _draw_a_drift_report()
    # Everything imported so far lives as long as the process: keep the garbage collector
    # of every forked child off these objects (a full collection would touch, and so copy,
    # every page of them). Python's advice for a process that forks without exec.
    gc.freeze()
    return took


def _draw_a_drift_report() -> None:
    """Evidently draws its plots with plotly, whose ~200 validator modules load one by one
    as a figure's properties are set (1.2 s of every monitor task): draw one tiny drift
    report in memory to load them. Plain computation: no file, thread or connection."""
    try:
        import numpy as np
        import pandas as pd
        from evidently import DataDefinition, Dataset, Report
        from evidently.presets import DataDriftPreset

        rng = np.random.default_rng(0)
        frames = [
            pd.DataFrame({"x": rng.normal(size=60), "c": rng.choice(["a", "b"], 60)})
            for _ in range(2)
        ]
        definition = DataDefinition(numerical_columns=["x"], categorical_columns=["c"])
        datasets = [Dataset.from_pandas(f, data_definition=definition) for f in frames]
        Report([DataDriftPreset()], include_tests=True).run(*datasets).get_html_str(False)
    except Exception:  # noqa: BLE001 - a warm-up, never a reason for a worker not to start
        log.warning("modelkeeper warm-up: the drift report could not be drawn", exc_info=True)


warm()
