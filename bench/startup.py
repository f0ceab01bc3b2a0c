"""Where a run's time goes under `make run`: each task's fixed cost, cold and warm, against
the same stages bare in one process.

Two stacks, one after the other, each scripts/run_embedded.sh as `make run` starts it, on
free ports with its state in a temporary folder (SQLite, LocalExecutor, an MLflow server):

- **cold**: Airflow's defaults (`[scheduler] mp_start_method = fork`, nothing preloaded,
  `scheduler_idle_sleep_time = 1`): every task process imports pandas, scikit-learn, GX,
  Evidently and MLflow itself;
- **warm**: the script's defaults: the executor's workers fork from a forkserver that
  imported modelkeeper_airflow.warm, and an idle scheduler looks for work every 0.25 s.

In each: the scheduled run trains the first champion (not timed); every other DAG is
paused; then one week lands and `retrain_flight_delay` is triggered (a run that trains
nothing when nothing calls for it), one more week lands and it is triggered with
`force_retrain` (trains, evaluates, promotes). Per task, from its log line (written by
ModelkeeperOperator.log_cost): seconds from the task process's start to its work (imports,
DAG parse, talking to the API server) and the work; from the REST API: the wait between
the previous task's end and this task's start (scheduling, queueing, the fork). A warm
LocalExecutor worker's memory is read with psutil.

**Bare**: one fresh process imports the libraries first, then runs the same stage functions
(modelkeeper.stages, as the operators call them) on the same landed weeks against the warm
stack's MLflow server under another registered model name: the first champion (not timed),
then the two runs, each stage with a fresh workspace as a task has.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

import psutil

from bench.common import in_child, table
from bench.embedded import Embedded, ts

MODEL = "flight_delay"
RETRAIN = f"retrain_{MODEL}"
VARIANTS = {
    "cold": {  # Airflow's defaults
        "AIRFLOW__SCHEDULER__MP_START_METHOD": "fork",
        "AIRFLOW__SCHEDULER__MP_FORKSERVER_PRELOAD": "",
        "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "1",
    },
    "warm": {},
}
RUNS = (("trains nothing", {}), ("forced retrain", {"force_retrain": True}))


def measure_stack(name: str, env: dict[str, str]) -> dict:
    with (
        tempfile.TemporaryDirectory(prefix=f"mk-bench-{name}-") as tmp,
        Embedded(Path(tmp), env) as stack,
    ):
        first = stack.wait_run(RETRAIN, _first_run(stack), 3600)
        _idle(stack)  # the first scoring run the promotion started, the daily monitor run
        for dag in stack.api("GET", "/dags?limit=100")["dags"]:
            if dag["dag_id"] != RETRAIN:
                stack.pause(dag["dag_id"])
        out = {"first": first["state"], "runs": {}}
        for label, conf in RUNS:
            _land(stack, 1)
            run_id = stack.trigger(RETRAIN, conf)
            run = stack.wait_run(RETRAIN, run_id)
            out["runs"][label] = _tasks(stack, run)
        out["memory"] = _worker_memory(stack)
        out["idle_cpu"] = _idle_cpu(stack)
        if name == "warm":
            out["bare"] = _bare(stack)
        return out


def _first_run(stack: Embedded) -> str:
    from bench.embedded import wait_for

    runs = wait_for("the first scheduled retrain run", lambda: stack.runs(RETRAIN), 600)
    return runs[-1]["dag_run_id"]


def _idle(stack: Embedded) -> None:
    from bench.embedded import wait_for

    wait_for("every run to end", lambda: not stack.busy(), 1800)


def _land(stack: Embedded, weeks: int) -> None:
    in_child(
        f"""
        from modelkeeper.data.storage import Storage
        from modelkeeper.demo import land_next_weeks
        print(json.dumps([p.name for p in land_next_weeks(Storage({str(stack.state / "storage")!r}), {weeks})]))
        """
    )


def _tasks(stack: Embedded, run: dict) -> dict:
    tis = sorted(
        (t for t in stack.task_instances(RETRAIN, run["dag_run_id"]) if t["start_date"]),
        key=lambda t: ts(t["start_date"]),
    )
    rows, previous_end = [], ts(run["start_date"])
    for ti in tis:
        cost = stack.cost(ti)
        start, end = ts(ti["start_date"]), ts(ti["end_date"])
        rows.append(
            {
                "task": ti["task_id"],
                "state": ti["state"],
                "wait": round(max(start - previous_end, 0.0), 2),
                "task_s": round(end - start, 2),
                "fixed": None if cost is None else cost[0],
                "work": None if cost is None else cost[1],
            }
        )
        previous_end = max(previous_end, end)
    wall = ts(run["end_date"]) - ts(run["start_date"])
    return {"state": run["state"], "wall": round(wall, 1), "tasks": rows}


def _worker_memory(stack: Embedded) -> dict:
    """RSS, shared, unique and proportional memory (MB) of the scheduler, the forkserver
    and the LocalExecutor's workers (processes of the stack, found by their titles)."""
    found: dict[str, list] = {}
    for proc in psutil.Process(stack.proc.pid).children(recursive=True):
        try:
            cmd = " ".join(proc.cmdline())
            kind = (
                "executor worker" if "LocalExecutor" in cmd
                else "forkserver" if "forkserver" in cmd
                else "scheduler" if cmd.endswith("airflow scheduler")
                else None
            )  # fmt: skip
            if kind:
                mem = proc.memory_full_info()
                found.setdefault(kind, []).append(
                    {k: round(getattr(mem, k) / 2**20) for k in ("rss", "shared", "uss", "pss")}
                )
        except psutil.Error:
            continue
    return found


def _idle_cpu(stack: Embedded, seconds: float = 30.0) -> float:
    """Share of one core the idle stack's scheduler uses (its loop's polling)."""
    import time

    sched = next(
        p for p in psutil.Process(stack.proc.pid).children(recursive=True)
        if " ".join(p.cmdline()).endswith("airflow scheduler")
    )  # fmt: skip
    before, t0 = sum(sched.cpu_times()[:2]), time.monotonic()
    time.sleep(seconds)
    return round((sum(sched.cpu_times()[:2]) - before) / (time.monotonic() - t0), 3)


BARE = """
import os, time
os.environ["MODELKEEPER_STORAGE"] = {storage!r}
import pandas, sklearn.ensemble, great_expectations, evidently, mlflow.sklearn  # imports first
from modelkeeper.contracts.results import RetrainDecision
from modelkeeper.contracts.spec import get_spec
from modelkeeper.data.storage import Storage
from modelkeeper.demo import land_next_weeks
from modelkeeper.monitoring.history import History
from modelkeeper.records.audit import AuditLog
from modelkeeper.records.registry import Registry
from modelkeeper.stages import decide, evaluate, ingest, monitor, promote, train, workspace as W

spec, storage = get_spec({model!r}), Storage({storage!r})
registry = Registry({mlflow!r})
audit, history = AuditLog.from_url({db!r}), History.from_url({db!r})

def ws():  # a fresh workspace (and memo) per stage, as each task builds its own
    return W.Workspace(spec=spec, storage=storage, registry=registry, audit=audit,
                       history=history, model_name={name!r})

def one_run(i, force):
    took = {{}}
    def timed(stage, fn):
        t0 = time.perf_counter(); out = fn(); took[stage] = round(time.perf_counter() - t0, 2)
        return out
    run = W.Run(run_id=f"bare_{{i}}", dag_id="bench")
    batch = timed("collect", lambda: ingest.collect(ws(), run))
    accepted = timed("validate", lambda: ingest.validate(ws(), run, batch))
    run = timed("open run", lambda: W.open_run(ws(), run, {{}}, f"bare {{i}}"))
    m = timed("monitor", lambda: monitor.monitor(ws(), run, accepted))
    d = timed("decide", lambda: decide.decide(ws(), run, m, force=force, force_reason="bench"))
    summary = d.reason
    if d.retrain:
        t = timed("train", lambda: train.train(ws(), run, accepted, d))
        if t.version is not None:
            e = timed("evaluate", lambda: evaluate.evaluate(ws(), run, t, m))
            c = timed("promote", lambda: promote.promote(ws(), run, e, mode="auto"))
            summary = c.summary
    timed("finish", lambda: W.finish(ws(), run, summary))
    return {{"stages": took, "total": round(sum(took.values()), 2), "retrained": d.retrain}}

land_next_weeks(storage, 8)
first = one_run(0, True)
out = {{}}
for i, (label, force) in enumerate([("trains nothing", False), ("forced retrain", True)], 1):
    land_next_weeks(storage, 1)
    out[label] = one_run(i, force)
print(json.dumps(out))
"""


def _bare(stack: Embedded) -> dict:
    base = stack.state.parent / "bare"
    base.mkdir()
    code = BARE.format(
        storage=str(base / "storage"),
        model=MODEL,
        mlflow=stack.mlflow_url,
        db=f"sqlite:///{base / 'audit.db'}",
        name=f"{MODEL}_bare",
    )
    return in_child(code, timeout=3600)


#: Which bare stages a task's work corresponds to (monitor also opens the MLflow run).
STAGES_OF = {"monitor": ("open run", "monitor")}


def run() -> str:
    results = {name: measure_stack(name, env) for name, env in VARIANTS.items()}
    return report(results)


def fixed_costs(results: dict) -> dict:
    """{variant: {run: [(task, fixed s)]}}: a task's time through Airflow minus the same
    stage's time bare (its imports, parse, API calls, process start and end)."""
    bare = results["warm"]["bare"]
    out: dict = {}
    for name, res in results.items():
        for label, _ in RUNS:
            stages = bare[label]["stages"]
            rows = []
            for t in res["runs"][label]["tasks"]:
                if t["state"] != "success":
                    continue
                own = sum(stages.get(s, 0.0) for s in STAGES_OF.get(t["task"], (t["task"],)))
                rows.append((t["task"], round(t["task_s"] - own, 2)))
            out.setdefault(name, {})[label] = rows
    return out


def report(results: dict) -> str:
    bare = results["warm"]["bare"]
    fixed = fixed_costs(results)
    lines = ["## Task start-up under `make run`, cold and warm", ""]
    lines += [__doc__.split("\n\n", 1)[1].strip(), ""]
    head = ["", "fixed cost per task s (median)", "max"]
    head += [f"{label}: wall s" for label, _ in RUNS] + [
        f"{label}: slowest task s" for label, _ in RUNS
    ]
    rows = []
    for name, res in results.items():
        costs = [c for label, _ in RUNS for _, c in fixed[name][label]]
        rows.append(
            [name, f"{statistics.median(costs):.2f}", f"{max(costs):.2f}"]
            + [f"{res['runs'][label]['wall']:.1f}" for label, _ in RUNS]
            + [f"{max(t['task_s'] for t in res['runs'][label]['tasks']):.1f}" for label, _ in RUNS]
        )
    rows.append(
        ["bare, one process", "", ""]
        + [f"{bare[label]['total']:.1f}" for label, _ in RUNS]
        + ["", ""]
    )
    lines += [table(head, rows), ""]
    warm_forced = results["warm"]["runs"]["forced retrain"]["wall"]
    lines += [
        f"Forced retrain through Airflow (warm) / bare: "
        f"{warm_forced / bare['forced retrain']['total']:.2f}x. Fixed cost = the task's "
        "start-to-end time minus the same stage's bare time; the wait is the gap since the "
        "previous task ended (scheduling, queueing, the fork).",
        "",
    ]
    for name, res in results.items():
        for label, _ in RUNS:
            r = res["runs"][label]
            stages = bare[label]["stages"]
            lines += [f"**{name}, {label}** ({r['state']}, {r['wall']} s wall):", ""]
            body = []
            for t in r["tasks"]:
                own = sum(stages.get(s, 0.0) for s in STAGES_OF.get(t["task"], (t["task"],)))
                body.append(
                    [
                        t["task"],
                        t["state"],
                        t["wait"],
                        t["task_s"],
                        t["fixed"],
                        t["work"],
                        round(own, 2),
                    ]
                )
            lines += [
                table(
                    ["task", "state", "wait s", "task s", "before work s", "work s", "bare s"], body
                ),
                "",
            ]
        mem = res["memory"]
        lines += [
            f"Memory of the {name} stack's scheduler, forkserver and executor workers (MB): "
            f"{mem}. Idle scheduler: {res['idle_cpu']:.1%} of a core.",
            "",
        ]
    return "\n".join(lines)
