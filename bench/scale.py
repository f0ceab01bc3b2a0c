"""The compose topology run natively (tests/scale/topology.py): Postgres, Redis as Celery
broker, moto's server standing in for S3, MLflow, Airflow's services and two Celery workers
(concurrency 2 each) with no shared storage on disk.

Measures: the DAG processor's parse time for a folder of 100 generated specs (its own
"Last Duration" for dags/modelkeeper_retrain.py, from the stats table it logs), one
`retrain_<model>` alone, then 20 at once, each on its own model and data (a small sample
of the demo year per model). Wall times come from the runs' own timestamps: first
`queued_at` to last `end_date`.
"""

from __future__ import annotations

import re
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from bench.common import ROOT, table

N_SPECS = 100
N_CONCURRENT = 20

_STATS_ROW = re.compile(
    r"modelkeeper_retrain\.py\s+(?:\d+\s+[\d.]+s\s+)?(?P<dags>\d+)\s+(?P<errors>\d+)\s+"
    r"(?P<last>[\d.]+)s\s+(?P<at>\S+)"
)


def _ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def parse_durations(log: str) -> dict[str, float]:
    """{last run at: last duration s} of the factory file's parses with 100 DAGs."""
    found = {}
    for m in _STATS_ROW.finditer(log):
        if int(m["dags"]) == N_SPECS and int(m["errors"]) == 0:
            found[m["at"]] = float(m["last"])
    return found


def _runs(topo, models: list[str]) -> dict:
    for m in models:
        topo.set_paused(f"retrain_{m}", False)
    runs = {f"retrain_{m}": topo.trigger(f"retrain_{m}") for m in models}
    finished = topo.wait_runs(runs, 3600)
    states = {r["state"] for r in finished.values()}
    wall = max(_ts(r["end_date"]) for r in finished.values()) - min(
        _ts(r["queued_at"]) for r in finished.values()
    )
    hosts: dict[str, int] = {}
    for dag_id, run_id in runs.items():
        for ti in topo.task_instances(dag_id, run_id).values():
            if ti["state"] == "success":
                hosts[ti["hostname"]] = hosts.get(ti["hostname"], 0) + 1
    return {"wall": wall, "states": states, "hosts": hosts}


def run() -> str:
    sys.path.insert(0, str(ROOT))
    from tests.procs import wait_for
    from tests.scale.topology import WORKER_CONCURRENCY, WORKERS, Topology, model_name

    base = Path(tempfile.mkdtemp(prefix="mk-bench-scale-"))
    topo = Topology(base, n_specs=N_SPECS, n_data=N_CONCURRENT + 1)
    try:
        topo.start()
        wanted = {f"retrain_{model_name(i)}" for i in range(N_SPECS)}
        wait_for("100 DAGs", lambda: wanted <= set(topo.dag_ids()), 900, interval=2)
        wait_for(
            "the first parse of the 100-spec folder in the DAG processor's stats",
            lambda: parse_durations(topo.log_tail("dag-processor", 10**7)),
            900,
            interval=5,
        )
        errors = topo.import_errors()
        one = _runs(topo, [model_name(N_CONCURRENT)])
        started = time.monotonic()
        many = _runs(topo, [model_name(i) for i in range(N_CONCURRENT)])
        many["poll_wall"] = time.monotonic() - started
        # The first parse ran before any task; later ones (every 180 s) beside the runs.
        parses = parse_durations(topo.log_tail("dag-processor", 10**7))
    finally:
        topo.stop()
        shutil.rmtree(base, ignore_errors=True)

    durations = list(parses.values())
    slots = len(WORKERS) * WORKER_CONCURRENCY
    speedup = N_CONCURRENT * one["wall"] / many["wall"]
    rows = [
        ["one retrain alone", 1, f"{one['wall']:.0f}", "1.00x", _hosts(one), _states(one)],
        [
            f"{N_CONCURRENT} retrains at once",
            N_CONCURRENT,
            f"{many['wall']:.0f}",
            f"{many['wall'] / one['wall']:.2f}x",
            _hosts(many),
            _states(many),
        ],
    ]
    return "\n".join(
        [
            "## The compose topology natively: Celery on two workers",
            "",
            f"Postgres, Redis (Celery broker), moto's server standing in for S3 (storage "
            f"root and MLflow artifacts), an MLflow server, Airflow's api-server, scheduler, "
            f"dag-processor, triggerer and {len(WORKERS)} Celery workers of concurrency "
            f"{WORKER_CONCURRENCY} ({slots} task slots) with separate folders "
            "(tests/scale/topology.py). Each model is a generated copy of the demo spec "
            "with its own sample of 4,000 rows and a 20-iteration HistGradientBoosting; "
            "wall time is from the first run queued to the last run ended.",
            "",
            table(["what", "runs", "wall s", "vs one alone", "tasks per worker", "states"], rows),
            "",
            f"{N_CONCURRENT} runs took {many['wall'] / one['wall']:.1f}x the wall time of one: "
            f"{speedup:.1f}x the throughput of running them one after another "
            f"(on {_cores()} cores shared by everything above).",
            "",
            f"DAG processor, dags/modelkeeper_retrain.py with {N_SPECS} specs ({N_SPECS} DAGs, "
            f"{len(errors)} import errors), its own stats table's Last Duration: first "
            f"parse {durations[0]:.2f} s (before any task ran); all parses "
            f"{', '.join(f'{d:.2f}' for d in durations)} s (median "
            f"{statistics.median(durations):.2f} s; the later ones beside the runs). The "
            "parse section above times the same file alone in a quiet process.",
        ]
    )


def _hosts(result: dict) -> str:
    return ", ".join(f"{h}: {n}" for h, n in sorted(result["hosts"].items()))


def _states(result: dict) -> str:
    return ", ".join(sorted(result["states"]))


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0))
