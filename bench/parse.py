"""Parsing the factory file with 1 and 100 specs: in the DAG processor and in a task.

The DAG processor builds every spec's DAG; a task process only needs its own, which
Airflow's parsing context names (`_AIRFLOW_PARSING_CONTEXT_DAG_ID`, set by the task
runner). Each measurement is a fresh process that imports airflow.sdk first (every DAG
file pays that), then times running dags/modelkeeper_retrain.py; the fastest of 7 (the machine is
shared: the minimum is the least disturbed measure of a cost that does not vary).
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
from pathlib import Path

from bench.common import ROOT, in_child, table

COUNTS = (1, 100)
REPEAT = 7
TARGET_TASK_RATIO = 1.2

_CHILD = """
import json, os, runpy, sys, time
os.environ["MODELKEEPER_SPEC_DIR"] = {specs!r}
if {dag_id!r}:
    os.environ["_AIRFLOW_PARSING_CONTEXT_DAG_ID"] = {dag_id!r}
import airflow.sdk  # noqa: F401  (every DAG file pays this; not the factory's cost)
started = time.perf_counter()
built = runpy.run_path({path!r})
took = time.perf_counter() - started
print(json.dumps({{"s": took, "dags": sum(k.startswith("retrain_") for k in built)}}))
"""


def _specs(n: int) -> Path:
    import yaml

    folder = Path(tempfile.mkdtemp(prefix=f"mk-bench-specs-{n}-"))
    raw = yaml.safe_load((ROOT / "include" / "models" / "flight_delay.yaml").read_text())
    for i in range(n):
        name = f"model_{i:03d}"
        (folder / f"{name}.yaml").write_text(yaml.safe_dump({**raw, "name": name}))
    return folder


def measure(n: int, *, task: bool) -> dict:
    folder = _specs(n)
    try:
        code = _CHILD.format(
            specs=str(folder),
            dag_id="retrain_model_000" if task else "",
            path=str(ROOT / "dags" / "modelkeeper_retrain.py"),
        )
        runs = [in_child(code) for _ in range(REPEAT)]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {
        "s": min(r["s"] for r in runs),
        "median": statistics.median(r["s"] for r in runs),
        "dags": runs[0]["dags"],
    }


def run() -> str:
    results = {(n, task): measure(n, task=task) for task in (False, True) for n in COUNTS}
    rows = []
    for task in (False, True):
        one = results[(COUNTS[0], task)]["s"]
        for n in COUNTS:
            r = results[(n, task)]
            where = "task process (parsing context)" if task else "DAG processor"
            rows.append(
                [where, n, r["dags"], f"{r['s']:.3f}", f"{r['median']:.3f}", f"{r['s'] / one:.2f}x"]
            )
    ratio = results[(100, True)]["s"] / results[(1, True)]["s"]
    verdict = "Met" if ratio <= TARGET_TASK_RATIO else "NOT met"
    return "\n".join(
        [
            "## Parsing the factory file",
            "",
            "Time to run dags/modelkeeper_retrain.py after `import airflow.sdk` (fastest and "
            f"median of {REPEAT} fresh processes). The DAG processor builds one DAG per spec; a task "
            "process builds only the DAG its parsing context names.",
            "",
            f"**Target: a task process with 100 specs within {TARGET_TASK_RATIO}x of one "
            f"spec. {verdict}: {ratio:.2f}x.**",
            "",
            table(["where", "specs", "DAGs built", "parse s (min)", "median s", "vs 1 spec"], rows),
        ]
    )
