"""Retraining stages (validate, drift, train, evaluate) in one bare process and through Airflow.

For N = 10k, 100k and 1M rows of the demo schema, each stage is made to handle about N
rows: the history is N rows spread over 2013 weeks 1-7 (seven weekly Parquet files), the
new batch is N more rows in week 8 (one file). The spec's 56-day window then holds weeks
1-8, so after the new batch the training split is weeks 1-7 (N rows) and the 7-day holdout
is week 8 (N rows): validate and monitor see the batch, train the training split and
evaluate the holdout, all N. The demo spec is used as it is (no spec variant needed).

- **Through Airflow** (first): a fresh process with its own AIRFLOW_HOME (SQLite,
  `initdb`, the promotion pool, a SQLite MLflow store) loads dags/modelkeeper_retrain.py
  with DagBag and runs `dag.test(logical_date=None, run_conf={"force_retrain": True,
  ...})` twice: run 1 on the history makes the champion, then the new week lands and run
  2 is timed from the task instances' start/end. dag.test runs the tasks in that process,
  so wrapping the core calls, the MLflow calls and the Parquet I/O there splits each
  task's time (wall and CPU).
- **Bare**: one fresh process imports every library first (pandas, scikit-learn, Great
  Expectations, Evidently), builds the same pool with `commit_accepted`, loads run 1's
  champion from its model file (or fits it, if the Airflow run did not get that far),
  warms each stage on a small slice, then times each stage's core calls: exactly what the
  task computes, without Airflow, MLflow and the task's own file I/O.

Both processes get the same rows and models: digests of batch, training split, holdout and
drift reference, and the holdout scores of candidate and champion, are compared. Both run
with one OpenMP thread (OMP_ENV, see measure_omp).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, in_child, table

SIZES = (10_000, 100_000, 1_000_000)
MODEL = "flight_delay"
HISTORY_WEEKS = tuple(range(1, 8))  # 2013 weeks 1-7: Jan 8 .. Feb 25
NEW_WEEK = 8  # Feb 26 .. Mar 4
STAGES = ("validate", "monitor", "train", "evaluate")
#: The Airflow child (DB init + two DAG runs) is given up after this long.
AIRFLOW_TIMEOUT_S = 20 * 60
CATEGORIES = ("core", "mlflow", "io")
#: Set in both measuring processes before anything loads OpenMP. With libgomp's defaults
#: (one thread per core, spin before sleeping), HistGradientBoosting's threads spin while
#: the one they wait for has no core: on a busy shared 2-core machine fit and predict run
#: several times slower and erratically (see measure_omp), which would drown the Airflow
#: overhead in noise. One thread per process is the steadiest measure.
OMP_ENV = {"OMP_NUM_THREADS": "1"}

# -- data ------------------------------------------------------------------------------


def week_rows(rows: int, week: int, *, seed: int):
    """``rows`` rows of the demo schema whose time_hour falls in 2013 week ``week``.

    Rows are drawn with replacement from the whole year and moved into the week by whole
    weeks (weekday and hour kept, so `hour` and `day_of_week` stay true); each (carrier,
    origin, time_hour) group then numbers its flights 1, 2, ... so the spec's unique_key
    [carrier, flight, origin, time_hour] is unique by construction.
    """
    import numpy as np
    import pandas as pd

    from modelkeeper.demo import YEAR_START, load_flights

    flights = load_flights()
    rng = np.random.default_rng(seed)
    df = flights.iloc[rng.integers(0, len(flights), size=rows)].reset_index(drop=True)
    within = (df["time_hour"] - YEAR_START) % pd.Timedelta(weeks=1)
    df["time_hour"] = (YEAR_START + pd.Timedelta(weeks=week) + within).astype("datetime64[ns]")
    df["flight"] = (df.groupby(["carrier", "origin", "time_hour"]).cumcount() + 1).astype("int64")
    if df["flight"].max() > 9999:
        raise ValueError(f"too many rows for one week: flight {df['flight'].max()} > 9999")
    return df.sort_values("time_hour", kind="stable").reset_index(drop=True)


def make_data(work: str, rows: int) -> None:
    """History files under <work>/landing/flights/, the new week under <work>/incoming/."""
    work_path = Path(work)
    landing = work_path / "storage" / "landing" / "flights"
    incoming = work_path / "incoming"
    landing.mkdir(parents=True)
    incoming.mkdir()
    per_week = [rows // len(HISTORY_WEEKS)] * len(HISTORY_WEEKS)
    per_week[-1] += rows - sum(per_week)
    for week, n in zip(HISTORY_WEEKS, per_week, strict=True):
        week_rows(n, week, seed=week).to_parquet(landing / f"week_{week:02d}.parquet", index=False)
    week_rows(rows, NEW_WEEK, seed=NEW_WEEK).to_parquet(
        incoming / f"week_{NEW_WEEK:02d}.parquet", index=False
    )


def digest(df) -> str:  # noqa: ANN001
    """Content digest of a frame's spec columns (row order matters)."""
    import pandas as pd

    from modelkeeper.demo import COLUMNS

    return f"{len(df)}:{int(pd.util.hash_pandas_object(df[COLUMNS], index=False).sum()):x}"


# -- memory ----------------------------------------------------------------------------


def _status_mb(key: str) -> float:
    import re

    text = Path("/proc/self/status").read_text()
    return int(re.search(key + r":\s+(\d+)", text).group(1)) / 1024


def _settle() -> None:
    import ctypes
    import gc

    gc.collect()
    try:
        import pyarrow

        pyarrow.default_memory_pool().release_unused()
    except ImportError:
        pass
    ctypes.CDLL("libc.so.6").malloc_trim(0)


def _reset_peak() -> float:
    """The peak RSS so far (MB); then the kernel's peak mark is set to the current RSS."""
    peak = _status_mb("VmHWM")
    Path("/proc/self/clear_refs").write_text("5")
    return peak


def _emit(result: dict) -> None:
    """Print the result as the last stdout line and leave at once (no atexit chatter)."""
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    print(json.dumps(result), flush=True)
    os._exit(0)


# -- bare ------------------------------------------------------------------------------


def bare_child(work: str, champion_model: str | None = None) -> None:
    """Time the stages' core calls; ``champion_model`` is the Airflow run 1 champion's
    model.pkl (the same fit on the same rows), else the champion is fitted here."""
    os.environ.update(OMP_ENV)
    load = os.getloadavg()[0]
    started = time.perf_counter()
    import numpy  # noqa: F401
    import pandas as pd
    import pyarrow  # noqa: F401
    import sklearn.ensemble  # noqa: F401
    import sklearn.inspection  # noqa: F401

    from modelkeeper.contracts.spec import get_spec
    from modelkeeper.data.pool import commit_accepted
    from modelkeeper.data.storage import Storage
    from modelkeeper.modeling import evaluation, training
    from modelkeeper.monitoring import drift
    from modelkeeper.quality import validation

    validation._import_gx()
    import evidently  # noqa: F401
    import evidently.presets  # noqa: F401

    try:  # evaluate's scoring reference (newer operators only)
        from modelkeeper.monitoring.cbpe import fit_calibrator
    except ImportError:
        fit_calibrator = None
    import_s = time.perf_counter() - started

    work_path = Path(work)
    spec = get_spec(MODEL)
    ts = spec.data_schema.timestamp_column
    storage = Storage(work_path / "bare")
    landing = work_path / "storage" / "landing" / "flights"
    history = pd.concat(
        [pd.read_parquet(landing / f"week_{w:02d}.parquet") for w in HISTORY_WEEKS],
        ignore_index=True,
    )
    batch = pd.read_parquet(work_path / "incoming" / f"week_{NEW_WEEK:02d}.parquet")
    # The pool as validate builds it; run 1's split, champion and drift reference.
    commit_accepted(spec, storage, "run1", history)
    del history
    split1 = training.time_split(training.load_accepted(spec, storage), spec)
    if champion_model:
        import cloudpickle

        with open(champion_model, "rb") as f:
            champion = cloudpickle.load(f)
    else:
        champion = training.fit(spec, split1.train)
    reference = split1.train.sample(
        n=min(spec.drift.sample_rows, len(split1.train)), random_state=0
    )
    del split1
    commit_accepted(spec, storage, "run2", batch)
    until = batch[ts].max().isoformat()
    window = training.load_accepted(spec, storage, until=until)
    split = training.time_split(window, spec)
    del window
    task = spec.target.task
    docs = Path(tempfile.mkdtemp(dir=work_path))

    def monitor(ref: pd.DataFrame, cur: pd.DataFrame, times: dict) -> None:
        ref, cur = ref.copy(), cur.copy()
        t = time.perf_counter()
        for frame in (ref, cur):  # what MonitorOperator does with the champion
            y_pred, proba = evaluation.predict(champion, training.features_frame(frame, spec), task)
            frame["prediction"] = proba if proba is not None else y_pred
        times["predict"] = time.perf_counter() - t
        t = time.perf_counter()
        drift.compute_drift(
            ref,
            cur,
            spec,
            extra_numeric=["prediction"],
            html_path=docs / "drift.html",
            json_path=docs / "drift.json",
        )
        times["compute_drift"] = time.perf_counter() - t
        t = time.perf_counter()
        if len(cur) >= spec.retrain.min_new_rows:
            evaluation.score_model(champion, cur, spec)
        times["champion_score"] = time.perf_counter() - t

    def evaluate(model, holdout: pd.DataFrame, times: dict) -> dict:  # noqa: ANN001
        t = time.perf_counter()
        candidate = evaluation.score_model(model, holdout, spec)
        times["candidate_score"] = time.perf_counter() - t
        t = time.perf_counter()
        champion_score = evaluation.score_model(champion, holdout, spec)
        times["champion_score"] = time.perf_counter() - t
        t = time.perf_counter()
        evaluation.feature_importance(model, holdout, spec)
        times["feature_importance"] = time.perf_counter() - t
        if fit_calibrator is not None:
            # The task's scoring reference: the candidate's own holdout probabilities and
            # a calibrator fitted on them (for CBPE estimates once it serves).
            t = time.perf_counter()
            _, proba = evaluation.predict(model, training.features_frame(holdout, spec), task)
            if proba is not None:
                fit_calibrator(proba, holdout[spec.target.column].to_numpy())
            times["scoring_reference"] = time.perf_counter() - t
        return {"candidate": candidate.metrics, "champion": champion_score.metrics}

    # Warm-up: each stage once on a small slice (first-call costs, lazy imports inside).
    warm_started = time.perf_counter()
    small = batch.head(1000)
    validation.validate_frame(small, spec, docs_dir=docs / "warm")
    monitor(reference.head(1000), small, {})
    small_model = training.fit(spec, split.train.head(3000))
    evaluate(small_model, split.holdout.head(1000), {})
    warm_s = time.perf_counter() - warm_started

    _settle()
    setup_peak = _reset_peak()
    baseline = _status_mb("VmRSS")
    times: dict[str, dict[str, float]] = {s: {} for s in STAGES}
    cpu: dict[str, float] = {}
    c, t = time.process_time(), time.perf_counter()
    outcome = validation.validate_frame(batch, spec, docs_dir=docs / "validate")
    times["validate"]["validate_frame + Data Docs"] = time.perf_counter() - t
    cpu["validate"] = time.process_time() - c
    if not outcome.success:
        raise RuntimeError(f"the bench batch does not validate: {outcome.summary}")
    t = time.perf_counter()
    validation.validate_frame(batch, spec)
    no_docs_s = time.perf_counter() - t
    c = time.process_time()
    monitor(reference, batch, times["monitor"])
    cpu["monitor"] = time.process_time() - c
    t = time.perf_counter()
    training.time_split(training.load_accepted(spec, storage, until=until), spec)
    read_window_s = time.perf_counter() - t
    c, t = time.process_time(), time.perf_counter()
    candidate = training.fit(spec, split.train)
    times["train"]["fit"] = time.perf_counter() - t
    cpu["train"] = time.process_time() - c
    c = time.process_time()
    scores = evaluate(candidate, split.holdout, times["evaluate"])
    cpu["evaluate"] = time.process_time() - c
    stages_peak = _status_mb("VmHWM")
    _emit(
        {
            "import_s": import_s,
            "warm_s": warm_s,
            "times": times,
            "core_s": {s: sum(parts.values()) for s, parts in times.items()},
            "cpu_s": cpu,
            "validate_no_docs_s": no_docs_s,
            "champion_loaded": bool(champion_model),
            "scores": scores,
            "read_window_s": read_window_s,
            "rows": {
                "batch": len(batch),
                "reference": len(reference),
                "train": len(split.train),
                "holdout": len(split.holdout),
            },
            "digests": {
                "batch": digest(batch),
                "reference": digest(reference),
                "train": digest(split.train),
                "holdout": digest(split.holdout),
            },
            "load": [load, os.getloadavg()[0]],
            "baseline_mb": baseline,
            "setup_peak_mb": setup_peak,
            "stages_peak_mb": stages_peak,
        }
    )


# -- through Airflow -------------------------------------------------------------------


def _instrument(state: dict, totals: dict) -> None:
    """Time, per task, the calls a task's duration is made of (outermost calls only).

    dag.test runs every task in this process, so wrapping the module attributes the
    operators look up at call time is enough: core calls (the bare process's), MLflow
    (every Registry method) and Parquet I/O (reads, atomic writes, the window read).
    ModelkeeperOperator.execute is wrapped too: duration - execute = the task runner.
    """
    import functools

    import pandas as pd

    from modelkeeper.data import pool
    from modelkeeper.data.storage import Storage
    from modelkeeper.modeling import evaluation, training
    from modelkeeper.monitoring import drift
    from modelkeeper.quality import validation
    from modelkeeper.records.registry import Registry
    from modelkeeper_airflow.operators.base import ModelkeeperOperator

    def add(key: str, seconds: float) -> None:
        where = totals.setdefault(f"{state['run']}:{state['task']}", {})
        where[key] = where.get(key, 0.0) + seconds

    def wrap(owner: object, name: str, category: str) -> None:
        original = getattr(owner, name)

        @functools.wraps(original)
        def timed(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            if state["depth"] or state["task"] is None:
                return original(*args, **kwargs)
            state["depth"] += 1
            cpu, started = time.process_time(), time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                state["depth"] -= 1
                took = time.perf_counter() - started
                add(category, took)
                add(f"{category}:{name}", took)
                if category == "core":
                    add("core_cpu", time.process_time() - cpu)

        setattr(owner, name, timed)

    for module, name in (
        (validation, "validate_frame"),
        (drift, "compute_drift"),
        (training, "fit"),
        (evaluation, "predict"),
        (evaluation, "score_model"),
        (evaluation, "feature_importance"),
    ):
        wrap(module, name, "core")
    try:
        from modelkeeper.monitoring import performance

        wrap(performance, "fit_calibrator", "core")
    except (ImportError, AttributeError):
        pass
    for name, value in vars(Registry).items():
        if callable(value) and (name == "__init__" or not name.startswith("__")):
            wrap(Registry, name, "mlflow")
    wrap(pd, "read_parquet", "io")
    wrap(Storage, "write_parquet", "io")
    wrap(training, "load_accepted", "io")
    wrap(pool, "load_window", "io")

    execute = ModelkeeperOperator.execute

    @functools.wraps(execute)
    def timed_execute(self, context):  # noqa: ANN001, ANN202
        state["task"], started = self.task_id, time.perf_counter()
        try:
            result = execute(self, context)
            state.setdefault("results", {})[f"{state['run']}:{self.task_id}"] = result
            return result
        except BaseException:  # dag.test logs it to stdout only: keep it for the report
            import traceback

            key = f"{state['run']}:{self.task_id}"
            state.setdefault("errors", {})[key] = traceback.format_exc()[-2500:]
            raise
        finally:
            add("execute", time.perf_counter() - started)
            state["task"] = None

    ModelkeeperOperator.execute = timed_execute

    # The whole in-process task run (dag.test imports it from the module on each call).
    from airflow.sdk.execution_time import supervisor

    run_task = supervisor.run_task_in_process

    @functools.wraps(run_task)
    def timed_run_task(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        ti = kwargs.get("ti", args[0] if args else None)
        cpu = time.process_time()
        try:
            return run_task(*args, **kwargs)
        finally:
            where = totals.setdefault(f"{state['run']}:{ti.task_id}", {})
            where["cpu"] = where.get("cpu", 0.0) + time.process_time() - cpu

    supervisor.run_task_in_process = timed_run_task


def airflow_child(work: str) -> None:
    work_path = Path(work)
    home = work_path / "airflow"
    home.mkdir()
    storage_root = work_path / "storage"
    os.environ.pop("MODELKEEPER_SPEC_DIR", None)
    load = os.getloadavg()[0]
    os.environ.update(
        {
            **OMP_ENV,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "GIT_PYTHON_REFRESH": "quiet",
            "MODELKEEPER_STORAGE": str(storage_root),
            "AIRFLOW_CONN_MLFLOW_DEFAULT": json.dumps(
                {
                    "conn_type": "http",
                    "host": f"sqlite:///{work_path / 'mlflow.db'}",
                    "extra": {"artifact_location": str(work_path / "mlartifacts")},
                }
            ),
            "AIRFLOW_CONN_MODELKEEPER_AUDIT": json.dumps(
                {"conn_type": "sqlite", "host": str(work_path / "audit.db")}
            ),
        }
    )
    started = time.perf_counter()
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.pool import Pool
    from airflow.utils.db import initdb

    initdb()
    Pool.create_or_update_pool(
        "modelkeeper_promotion", slots=1, description="bench", include_deferred=False
    )
    bag = DagBag(dag_folder=str(ROOT / "dags" / "modelkeeper_retrain.py"))
    if bag.import_errors:
        raise RuntimeError(f"DAG import errors: {bag.import_errors}")
    dag = bag.dags[f"retrain_{MODEL}"]
    init_s = time.perf_counter() - started

    state: dict = {"run": 0, "task": None, "depth": 0}
    totals: dict[str, dict[str, float]] = {}
    _instrument(state, totals)

    def run(n: int) -> dict:
        state["run"] = n
        t = time.perf_counter()
        dr = dag.test(logical_date=None, run_conf={"force_retrain": True, "reason": "bench"})
        wall = time.perf_counter() - t
        tis = {ti.task_id: ti for ti in dr.get_task_instances()}
        states = {k: str(getattr(ti.state, "value", ti.state)) for k, ti in tis.items()}
        if dr.state != "success" or states["train"] != "success":
            errors = [f"{k}: {v}" for k, v in state.get("errors", {}).items()]
            raise RuntimeError(f"run {n} ended {dr.state}: {states}\n" + "\n".join(errors))
        tasks = {}
        for task_id, ti in tis.items():
            if ti.start_date is None or ti.end_date is None:
                continue
            tasks[task_id] = {
                "duration_s": (ti.end_date - ti.start_date).total_seconds(),
                **totals.get(f"{n}:{task_id}", {}),
            }
        return {"run_id": dr.run_id, "wall_s": wall, "states": states, "tasks": tasks}

    first = run(1)
    # Run 1 warmed everything but Evidently (monitor stops early: no champion yet); the
    # bare process imports it first too.
    import evidently  # noqa: F401
    import evidently.presets  # noqa: F401

    _settle()
    run1_peak = _reset_peak()
    new = work_path / "incoming" / f"week_{NEW_WEEK:02d}.parquet"
    shutil.copy2(new, storage_root / "landing" / "flights" / new.name)
    second = run(2)
    run2_peak = _status_mb("VmHWM")

    import resource

    import pandas as pd

    from modelkeeper.contracts import lineage as L
    from modelkeeper.data.storage import Storage

    storage = Storage(storage_root)
    accepted = state["results"]["2:validate"]
    trained = state["results"]["2:train"]
    holdout_path = Path(trained["holdout_path"])
    reference = storage.snapshot_dir(MODEL, first["run_id"]) / L.REFERENCE_FILE
    frames = {
        "batch": accepted["path"],
        "reference": reference,
        "train": holdout_path.with_name("train.parquet"),
        "holdout": holdout_path,
    }
    digests = {name: digest(pd.read_parquet(path)) for name, path in frames.items()}
    evaluated = state["results"]["2:evaluate"]
    # The champion's model file, for the bare process (loading it there needs no MLflow).
    from modelkeeper_airflow.hooks.mlflow import MlflowHook

    registry = MlflowHook(mlflow_conn_id="mlflow_default").get_conn()
    champion = registry.get_version(MODEL, evaluated["champion_version"])
    folder = registry._fluent().artifacts.download_artifacts(
        artifact_uri=champion.source, dst_path=str(work_path / "champion")
    )
    _emit(
        {
            "init_s": init_s,
            "runs": [first, second],
            "outcome": evaluated["decision"],
            "scores": {
                "candidate": evaluated["candidate"]["metrics"],
                "champion": (evaluated["champion"] or {}).get("metrics"),
            },
            "champion_model": str(Path(folder) / "model.pkl"),
            "digests": digests,
            "load": [load, os.getloadavg()[0]],
            "run1_peak_mb": run1_peak,
            "run2_peak_mb": run2_peak,
            "children_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        }
    )


# -- what a real executor adds per task -------------------------------------------------

#: What each stage's task imports on top of Airflow (the operators import lazily).
STAGE_IMPORTS = {
    "validate": "import pandas, pyarrow; import modelkeeper.data.accept; "
    "from modelkeeper.quality.validation import _import_gx; _import_gx()",
    "monitor": "import pandas, pyarrow; import mlflow, mlflow.sklearn, mlflow.models; "
    "import sklearn.ensemble; import modelkeeper.records.registry, modelkeeper.monitoring.drift, "
    "modelkeeper.modeling.evaluation, modelkeeper.modeling.training; import evidently, evidently.presets",
    "train": "import pandas, pyarrow; import mlflow, mlflow.sklearn, mlflow.models, mlflow.data; "
    "import modelkeeper.records.registry, modelkeeper.modeling.training; from modelkeeper.contracts.spec import get_spec; "
    "modelkeeper.modeling.training.build_pipeline(get_spec('flight_delay'))",
    "evaluate": "import pandas, pyarrow; import mlflow, mlflow.sklearn, mlflow.models; "
    "import sklearn.ensemble, sklearn.inspection; import modelkeeper.records.registry, "
    "modelkeeper.modeling.evaluation, modelkeeper.decisions.promotion, modelkeeper.modeling.modelcard",
}

_IMPORTS_CHILD = """
import json, os, runpy, time
os.environ["_AIRFLOW_PARSING_CONTEXT_DAG_ID"] = "retrain_{model}"
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
import airflow.sdk  # noqa: F401  (a LocalExecutor worker has it; its forked task process too)
t = time.perf_counter()
runpy.run_path({dag!r})
parse_s = time.perf_counter() - t
t = time.perf_counter()
{imports}
import_s = time.perf_counter() - t
print(json.dumps({{"parse_s": parse_s, "import_s": import_s}}))
"""


def measure_imports() -> dict[str, dict]:
    dag = str(ROOT / "dags" / "modelkeeper_retrain.py")
    return {
        stage: in_child(_IMPORTS_CHILD.format(model=MODEL, dag=dag, imports=imports))
        for stage, imports in STAGE_IMPORTS.items()
    }


# -- OpenMP on a busy machine ------------------------------------------------------------

OMP_SETTINGS = {
    "libgomp default": {},
    "OMP_WAIT_POLICY=PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"},
    "OMP_NUM_THREADS=1": {"OMP_NUM_THREADS": "1"},
}
OMP_ROWS = 100_000

_OMP_CHILD = """
import os
for name in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS"):
    os.environ.pop(name, None)
os.environ.update({env!r})
import statistics
from bench.stages import week_rows
from modelkeeper.modeling.evaluation import predict
from modelkeeper.contracts.spec import get_spec
from modelkeeper.modeling.training import features_frame, fit
import time
spec = get_spec({model!r})
df = week_rows({rows}, 3, seed=1)
t = time.perf_counter()
model = fit(spec, df)
fit_s = time.perf_counter() - t
X = features_frame(df, spec)
times = []
for _ in range(5):
    t = time.perf_counter()
    predict(model, X, "classification")
    times.append(time.perf_counter() - t)
print(json.dumps({{
    "fit_s": fit_s, "predict_s": statistics.median(times), "worst_s": max(times),
    "load": os.getloadavg()[0],
}}))
"""


def measure_omp() -> dict[str, dict]:
    """fit and predict (median and worst of 5) at OMP_ROWS rows under each OpenMP setting."""
    return {
        name: in_child(_OMP_CHILD.format(env=env, model=MODEL, rows=OMP_ROWS))
        for name, env in OMP_SETTINGS.items()
    }


# -- the section -----------------------------------------------------------------------

_CALL = """
from bench.stages import {func}
{func}(*{args!r})
"""


def measure(rows: int) -> dict:
    work = tempfile.mkdtemp(prefix=f"mk-bench-stages-{rows}-")
    try:
        in_child(f"from bench.stages import make_data\nmake_data({work!r}, {rows})\nprint('{{}}')")
        started = time.perf_counter()
        try:
            airflow = in_child(
                _CALL.format(func="airflow_child", args=(work,)), timeout=AIRFLOW_TIMEOUT_S
            )
        except subprocess.TimeoutExpired:
            airflow = {"timeout_s": time.perf_counter() - started}
        except RuntimeError as exc:  # reported, so the bare numbers are kept
            airflow = {"error": str(exc)[-4000:], "after_s": time.perf_counter() - started}
        args = (work, airflow.get("champion_model"))
        bare = in_child(_CALL.format(func="bare_child", args=args))
        return {"rows": rows, "bare": bare, "airflow": airflow}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _s(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _stage_rows(bare: dict, stage: str) -> int:
    rows = bare["rows"]
    return {
        "validate": rows["batch"],
        "monitor": rows["batch"],
        "train": rows["train"],
        "evaluate": rows["holdout"],
    }[stage]


def _cold(task: dict | None) -> str:
    if task is None:
        return "-"
    parts = [f"{k} {task[k]:.1f}" for k in ("core", "mlflow") if task.get(k, 0) >= 0.05]
    return f"{task['duration_s']:.1f}" + (f" ({', '.join(parts)})" if parts else "")


def render(results: list[dict], imports: dict[str, dict], omp: dict[str, dict]) -> str:
    main_rows, split_rows, bare_rows, memory_rows, cold_rows, problems = [], [], [], [], [], []
    for r in results:
        n, bare, airflow = r["rows"], r["bare"], r["airflow"]
        ran = "runs" in airflow
        if "timeout_s" in airflow:
            problems.append(
                f"{n:,} rows: the Airflow child was stopped after {airflow['timeout_s']:.0f} s "
                f"(limit {AIRFLOW_TIMEOUT_S} s for DB init and both DAG runs): not run."
            )
        elif not ran:
            problems.append(
                f"{n:,} rows: the Airflow child failed after {airflow['after_s']:.0f} s:\n\n"
                + "\n".join(f"      {line}" for line in airflow["error"].splitlines())
            )
        else:
            mismatched = [k for k, v in bare["digests"].items() if airflow["digests"][k] != v]
            if mismatched:
                problems.append(f"{n:,} rows: bare and Airflow data differ in {mismatched}")
            for who in ("candidate", "champion"):
                theirs, ours = airflow["scores"][who] or {}, bare["scores"][who]
                if any(abs(theirs.get(k, float("nan")) - v) > 1e-9 for k, v in ours.items()):
                    problems.append(
                        f"{n:,} rows: the {who} scores differently on the holdout in the two "
                        f"processes ({ours} vs {theirs}): not the same model"
                    )
        if not bare["champion_loaded"]:
            problems.append(
                f"{n:,} rows: no Airflow champion to load; the bare process fitted its own "
                "on the same rows"
            )
        second = airflow["runs"][1] if ran else None
        for stage in STAGES:
            core = bare["core_s"][stage]
            task = second["tasks"][stage] if ran else None
            if task is None:
                main_rows.append(
                    [f"{n:,}", stage, f"{_stage_rows(bare, stage):,}", _s(core), "not run"]
                    + ["-"] * 4
                )
                continue
            duration, in_core = task["duration_s"], task.get("core", 0.0)
            bare_cpu, task_cpu = bare["cpu_s"][stage], task.get("cpu", 0.0)
            main_rows.append(
                [
                    f"{n:,}",
                    stage,
                    f"{_stage_rows(bare, stage):,}",
                    _s(core),
                    _s(duration),
                    f"**{duration / core:.2f}x**",
                    _s(duration - core),
                    _s(duration - in_core),
                    f"{task_cpu / bare_cpu:.2f}x",
                ]
            )
            cats = {c: task.get(c, 0.0) for c in CATEGORIES}
            execute = task.get("execute", 0.0)
            calls = sorted(
                ((k.split(":", 1)[1], v) for k, v in task.items() if k.startswith("mlflow:")),
                key=lambda kv: -kv[1],
            )
            split_rows.append(
                [
                    f"{n:,}",
                    stage,
                    _s(duration),
                    _s(core),
                    _s(cats["core"]),
                    _s(cats["mlflow"]),
                    _s(cats["io"]),
                    _s(execute - sum(cats.values())),
                    _s(duration - execute),
                    _s(bare_cpu, 1),
                    _s(task.get("core_cpu"), 1),
                    _s(task_cpu, 1),
                    ", ".join(f"`{k}` {v:.2f}" for k, v in calls[:3] if v >= 0.01) or "-",
                ]
            )
        t = bare["times"]
        bare_rows.append(
            [
                f"{n:,}",
                _s(bare["validate_no_docs_s"]),
                _s(t["validate"]["validate_frame + Data Docs"]),
                _s(t["monitor"]["predict"]),
                _s(t["monitor"]["compute_drift"]),
                _s(t["monitor"]["champion_score"]),
                _s(bare["read_window_s"]),
                _s(t["train"]["fit"]),
                _s(t["evaluate"]["candidate_score"]),
                _s(t["evaluate"]["champion_score"]),
                _s(t["evaluate"]["feature_importance"]),
                _s(t["evaluate"].get("scoring_reference")),
                _s(bare["import_s"], 1),
            ]
        )
        bare_mem = [
            f"{n:,}",
            f"{max(bare['setup_peak_mb'], bare['stages_peak_mb']):.0f}",
            f"{bare['stages_peak_mb']:.0f}",
        ]
        loads = bare["load"] + (airflow["load"] if ran else [])
        load = f"{min(loads):.1f}-{max(loads):.1f}"
        if ran:
            tasks_sum = sum(v["duration_s"] for v in second["tasks"].values())
            other = sum(v["duration_s"] for k, v in second["tasks"].items() if k not in STAGES)
            memory_rows.append(
                [
                    *bare_mem,
                    f"{max(airflow['run1_peak_mb'], airflow['run2_peak_mb']):.0f}",
                    f"{airflow['run2_peak_mb']:.0f}",
                    _s(airflow["init_s"], 1),
                    _s(airflow["runs"][0]["wall_s"], 1),
                    _s(second["wall_s"], 1),
                    _s(tasks_sum, 1),
                    _s(other, 1),
                    _s(second["wall_s"] - tasks_sum, 1),
                    load,
                ]
            )
            first = airflow["runs"][0]["tasks"]
            cold_rows.append(
                [f"{n:,}"] + [_cold(first.get(k)) for k in ("collect", *STAGES, "promote")]
            )
        else:
            memory_rows.append([*bare_mem, *["not run"] * 8, load])
    import_rows = [
        [stage, _s(m["parse_s"]), _s(m["import_s"], 1), _s(m["parse_s"] + m["import_s"], 1)]
        for stage, m in imports.items()
    ]
    omp_rows = [
        [name, _s(m["fit_s"]), _s(m["predict_s"]), _s(m["worst_s"]), f"{m['load']:.1f}"]
        for name, m in omp.items()
    ]
    outcomes = sorted(
        {
            (r["airflow"].get("outcome") or {}).get("verdict", "?")
            for r in results
            if "runs" in r["airflow"]
        }
    )
    same = (
        "identical at every size run through Airflow, and candidate and champion score the "
        "same on the holdout"
        if not any("differ" in p for p in problems)
        else "NOT the same (see below)"
    )
    omp_env = " ".join(f"{k}={v}" for k, v in OMP_ENV.items())
    lines = [
        "## Retraining stages: bare process vs through Airflow",
        "",
        "Each stage at about N rows: the history is N rows over 2013 weeks 1-7 (seven weekly "
        "Parquet files), the new batch N rows in week 8 (one file), the demo year resampled "
        "with replacement and moved by whole weeks, keys made unique per (carrier, origin, "
        "time_hour). With the demo spec as it is (56-day window, 7-day holdout) validate and "
        "monitor see the batch, train the training split (weeks 1-7) and evaluate the holdout "
        "(week 8). **Bare**: one fresh process, every library imported first, the pool built "
        "with `commit_accepted`, the Airflow run 1 champion loaded from its model file "
        "(untimed), each stage "
        "warmed on a small slice, then timed: exactly the core work the task does "
        "(validate: `validate_frame` with Data Docs, as `accept` calls it; monitor: the "
        "champion's predictions on reference and batch, `compute_drift` with "
        '`extra_numeric=["prediction"]`, the champion scored on the batch; train: `fit` on '
        "the training split; evaluate: `score_model` for candidate and champion on the "
        "holdout, `feature_importance`, and the scoring reference: the candidate's "
        "predictions on the holdout and `fit_calibrator` on them). **Airflow**: the real DAG file through DagBag "
        "and `dag.test(logical_date=None, run_conf={force_retrain: true})` in a fresh "
        "process with its own SQLite AIRFLOW_HOME (`initdb`, the promotion pool) and a "
        "SQLite MLflow store; run 1 trains the champion on the history, then the new week "
        "lands and run 2 (forced, drift against the champion) is the one measured, from "
        "each task instance's start and end. Run 1 warms that process (imports, first "
        "calls) except Evidently, which is imported before run 2 like the bare process "
        f"imports it. Both processes run with `{omp_env}` (below: why). Data of both "
        f"processes (batch, training split, holdout, drift reference): {same}; run 2's gate "
        f"said {', '.join(outcomes) or '-'}.",
        "",
        "Ratio = Airflow task / bare (wall clock); overhead = their difference. The machine "
        "is shared and the two processes run minutes apart, so the core work itself can "
        "take longer or shorter in one of them. In-task overhead = task duration - the same "
        "core calls timed inside the task: out of that noise's reach. CPU ratio = CPU "
        "seconds of the whole task run (all threads of the process) / CPU seconds of the "
        "bare stage: it leaves out waiting for a core, not sharing caches and cores with "
        "other processes (compare the bare and in-task core CPU below).",
        "",
        table(
            [
                "N",
                "stage",
                "rows it handles",
                "bare s",
                "Airflow task s",
                "ratio",
                "overhead s",
                "in-task overhead s",
                "CPU ratio",
            ],
            main_rows,
        ),
        "",
        "Where a task's time goes (run 2; measured inside the Airflow process by wrapping "
        "the calls: *core in task* = the same core calls as the bare column, *MLflow* = every "
        "`Registry` call (client, load and log models, datasets, artifacts, metrics, tags, "
        "registry), *Parquet I/O* = Parquet reads and atomic writes and the training-window "
        "read, *rest of execute* = everything else the operator does (hashing snapshots, "
        "sampling the reference, the model card, building the hand-off), *task runner* = "
        "task duration - `execute()` (the in-process task runner: state changes, template "
        "rendering, XCom push); CPU s = bare stage, core calls in the task, whole task run; "
        "the largest MLflow calls by `Registry` method, s:",
        "",
        table(
            [
                "N",
                "task",
                "duration s",
                "bare core s",
                "core in task s",
                "MLflow s",
                "Parquet I/O s",
                "rest of execute s",
                "task runner s",
                "bare CPU s",
                "core CPU in task s",
                "task CPU s",
                "largest MLflow calls",
            ],
            split_rows,
        ),
        "",
        "The bare process's parts (seconds; *read window* = `load_accepted` + `time_split`, "
        "which the train task does and the bare train column leaves out; imports = pandas, "
        "scikit-learn, GX and Evidently in the fresh process, paid once, not in any stage):",
        "",
        table(
            [
                "N",
                "validate_frame",
                "+ Data Docs",
                "monitor: predictions",
                "compute_drift",
                "champion on batch",
                "read window",
                "fit",
                "candidate score",
                "champion score",
                "feature_importance",
                "scoring reference",
                "imports",
            ],
            bare_rows,
        ),
        "",
        "Memory and whole runs: peak RSS of the bare process (all of it, and while timing the "
        "stages: the kernel's peak mark reset after setup) and of the Airflow process (all "
        "of it, and during run 2: mark reset before it); DB init = `initdb` + pool + DagBag; "
        "wall = `dag.test()` end to end; *other tasks* = collect, decide, approve, promote, "
        "finish; *between tasks* = wall - all task durations (dag.test's scheduling loop, "
        "its re-sync of the DAG folder into the DB, state queries); load = the machine's "
        "1-minute load average when the two processes started and ended:",
        "",
        table(
            [
                "N",
                "bare peak MB",
                "bare stages peak MB",
                "Airflow peak MB",
                "Airflow run 2 peak MB",
                "DB init s",
                "run 1 wall s",
                "run 2 wall s",
                "run 2 tasks s",
                "other tasks s",
                "between tasks s",
                "load",
            ],
            memory_rows,
        ),
        "",
        "Run 1, the cold process (for comparison only: N rows in seven files, training on "
        "weeks 1-6, holdout week 7; duration s, with core and MLflow s inside): its first "
        "task pays the task runner's start, validate the GX import and first validation, "
        "monitor the first MLflow store access (a fresh SQLite store runs its migrations), "
        "train the first model logged.",
        "",
        table(["N", "collect", *STAGES, "promote"], cold_rows),
        "",
        "Not in these numbers: `dag.test` runs every task in its one process, one after "
        "another, with libraries imported once. A real executor runs each task in a process "
        "of its own (LocalExecutor: forked from a worker that has Airflow imported), which "
        "parses the DAG file again and imports the stage's libraries again, every task. "
        "Measured once per stage in a fresh process after `import airflow.sdk` (seconds):",
        "",
        table(["task", "parse DAG file", "stage's imports", "per task"], import_rows),
        "",
        f"Why `{omp_env}`: HistGradientBoosting runs on OpenMP threads (libgomp: one per "
        "core, 2 here), and a thread that reaches a barrier spins before it sleeps. When the "
        "machine is busy, the thread it waits for has no core, and the spinning keeps it "
        "from getting one: fit and predict slow down several times, by how busy the machine "
        "is at that moment. With one thread a process's speed depends on its own share of a "
        f"core only. `fit` and `predict` (median and worst of 5) on {OMP_ROWS:,} rows, one "
        "fresh process per setting, s:",
        "",
        table(["OpenMP", "fit", "predict (median)", "predict (worst)", "load"], omp_rows),
    ]
    if problems:
        lines += ["", "**Problems:**", "", *(f"- {p}" for p in problems)]
    return "\n".join(lines)


def run(sizes: tuple[int, ...] = SIZES) -> str:
    results = [measure(n) for n in sizes]
    return render(results, measure_imports(), measure_omp())
