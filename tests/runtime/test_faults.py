"""Faults against the real runtime (scheduler + LocalExecutor + api-server on Postgres).

Each test asserts the Airflow run and task states, the registry's `champion` alias, the
audit trail and the stored data. The first three read the session's `first_runs`: the
scheduled run that unpausing starts (it trains the first champion; its `train` and then
its `promote` task processes are SIGKILLed on the way) and two manual runs POSTed back to
back behind it.
"""

from __future__ import annotations

import time

import pytest

from modelkeeper.contracts.lineage import ALIAS_MOVES
from modelkeeper.records.audit import reconcile
from tests.helpers import accepted_rows
from tests.runtime.conftest import RETRY_DELAY, mlflow_runs, ts

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(1200)]

MODEL = "flight_delay"
RETRAIN = "retrain_flight_delay"


def _versions(registry, mlflow_run_id: str):
    return registry.client.search_model_versions(f"name = '{MODEL}' and run_id = '{mlflow_run_id}'")


def _states(tries: list[dict]) -> list[tuple[int, str]]:
    return [(t["try_number"], t["state"]) for t in tries]


def test_kill_during_training_is_retried_without_duplicates(runtime, registry, first_runs):
    """SIGKILL of `train` mid-fit: the retry resumes the same MLflow run, registers one
    version, and the run promotes it (the first model)."""
    rt, run_id = runtime, first_runs["first"]
    kill = first_runs["kills"].get("train")
    assert kill is not None and kill["hit"], f"never caught `train` mid-training: {kill}"
    print(f"\ntrain SIGKILLed (reference sample already logged: {kill['reference_logged']})")
    assert kill["pid"] not in {p.pid for p in rt.mine()}

    run = rt.dag_run(RETRAIN, run_id)
    tis = rt.task_instances(RETRAIN, run_id)
    assert run["state"] == "success", {t: ti["state"] for t, ti in tis.items()}
    assert _states(rt.tries(RETRAIN, run_id, "train")) == [(1, "failed"), (2, "success")]

    # One MLflow run for the DAG run, closed; one version for it, and it is the champion.
    runs = mlflow_runs(registry, run_id)
    assert len(runs) == 1, [r.info.run_id for r in runs]
    mlflow_run = runs[0]
    assert mlflow_run.info.status == "FINISHED"
    versions = _versions(registry, mlflow_run.info.run_id)
    assert len(versions) == 1, [v.version for v in versions]
    version = versions[0]
    assert version.tags["airflow_run_id"] == run_id
    assert version.tags["validation"] == "passed"
    assert rt.xcom(run_id, "train")["version"] == version.version
    champion = registry.alias(MODEL)
    assert champion is not None and champion.version == version.version
    assert champion.run_id == mlflow_run.info.run_id
    assert registry.input_columns(champion.uri)  # the model and its signature are there
    all_versions = registry.client.search_model_versions(f"name = '{MODEL}'")
    assert len(all_versions) == 1, "the killed attempt left a second version behind"

    audit = rt.audit()
    # One decision row (why it trained) and one promotion row, however many tries ran.
    rows = [e for e in audit.events(MODEL) if e["run_id"] == run_id]
    assert [(e["event"], e["version_after"]) for e in rows] == [
        ("decision", None),
        ("promotion", version.version),
    ]
    ok, message = reconcile(audit, MODEL, champion.version)
    assert ok, message

    storage = rt.storage()
    snap = storage.snapshot_dir(MODEL, run_id)
    for name in ("accepted.parquet", "train.parquet", "holdout.parquet", "reference.parquet"):
        assert (snap / name).is_file(), name
    assert accepted_rows(storage, MODEL, run_id) > 0


def test_kill_during_promotion_is_retried_and_audited_once(runtime, registry, first_runs):
    """SIGKILL of `promote` right after the alias moved, before its bookkeeping: the retry
    finds the move done, finishes tags and audit, and writes exactly one audit row."""
    rt, run_id = runtime, first_runs["first"]
    kill = first_runs["kills"].get("promote")
    assert kill is not None and kill["hit"], f"never caught `promote` as the alias moved: {kill}"
    at_kill = kill["audit_rows_at_kill"]
    print(f"\npromote SIGKILLed after the alias moved; audit rows for the run then: {at_kill}")

    assert rt.dag_run(RETRAIN, run_id)["state"] == "success"
    assert _states(rt.tries(RETRAIN, run_id, "promote")) == [(1, "failed"), (2, "success")]
    outcome = rt.xcom(run_id, "promote")
    assert outcome["action"] == "promoted", outcome

    champion = registry.alias(MODEL)
    candidate = rt.xcom(run_id, "evaluate")["candidate_version"]
    assert champion.version == candidate == outcome["champion_after"]
    assert registry.alias(MODEL, "previous") is None  # first model: nothing before it
    # The retry finished the bookkeeping the kill interrupted.
    assert champion.tags["promoted_in"] == run_id
    mlflow_run = registry.client.get_run(champion.run_id)
    assert mlflow_run.data.tags["promotion"] == "promoted"
    assert mlflow_run.data.tags["outcome"].startswith("promoted: first model")

    audit = rt.audit()
    rows = [e for e in audit.events(MODEL) if e["run_id"] == run_id and e["event"] in ALIAS_MOVES]
    assert len(rows) == 1, rows
    assert rows[0]["event"] == "promotion"
    assert rows[0]["version_before"] is None and rows[0]["version_after"] == champion.version
    assert rows[0]["who"] == "scheduler"  # a scheduled run, nobody triggered it
    ok, message = reconcile(audit, MODEL, champion.version)
    assert ok, message


def test_two_manual_triggers_never_overlap(runtime, registry, first_runs):
    """Two manual triggers POSTed back to back while the first run works: with
    max_active_runs=1 no two runs are ever running together, each waits queued."""
    rt, samples = runtime, first_runs["samples"]
    first, manual = first_runs["first"], first_runs["manual"]
    overlapping = [s for s in samples if list(s.values()).count("running") > 1]
    assert not overlapping, overlapping
    for run_id in manual:
        assert any(s[run_id] == "queued" and "running" in s.values() for s in samples), (
            f"{run_id} never waited behind a running run"
        )

    runs = sorted((rt.dag_run(RETRAIN, r) for r in [first, *manual]), key=lambda r: r["start_date"])
    assert all(r["state"] in ("success", "failed") for r in runs), runs
    for earlier, later in zip(runs, runs[1:], strict=False):
        assert ts(later["start_date"]) >= ts(earlier["end_date"]), (earlier, later)
    assert [r["run_type"] for r in runs] == ["scheduled", "manual", "manual"]
    assert all(r["logical_date"] is None for r in runs[1:])
    print(
        f"\nfirst_runs took {first_runs['seconds']:.0f}s (three runs, two kills): "
        + ", ".join(f"{r['dag_run_id']} {r['state']} {r['duration']:.0f}s" for r in runs)
    )

    # Nothing new had landed: neither manual run trained, promoted or moved the champion.
    champion = registry.alias(MODEL)
    for run_id in manual:
        for mlflow_run in mlflow_runs(registry, run_id):
            assert mlflow_run.info.status != "RUNNING"
            assert not _versions(registry, mlflow_run.info.run_id)
        assert not [e for e in rt.audit().events(MODEL) if e["run_id"] == run_id]
    assert champion.run_id == mlflow_runs(registry, first)[0].info.run_id
    ok, message = reconcile(rt.audit(), MODEL, champion.version)
    assert ok, message


def test_hung_task_is_stopped_by_execution_timeout(runtime):
    """The product's timeouts are 15-30 min; a probe DAG (`mk_hang`: sleeps 600 s with
    execution_timeout=10 s, retries=0) shows the runtime enforces execution_timeout."""
    rt = runtime
    rt.set_paused("mk_hang", False)
    t0 = time.monotonic()
    run_id = rt.trigger("mk_hang")
    run = rt.wait_run("mk_hang", run_id, timeout=240)
    ti = rt.task_instances("mk_hang", run_id)["hang"]
    assert run["state"] == "failed"
    assert ti["state"] == "failed" and ti["try_number"] == 1, ti
    ran = (ts(ti["end_date"]) - ts(ti["start_date"])).total_seconds()
    assert 10 <= ran <= 60, f"the task ran {ran:.1f}s with execution_timeout=10s"
    log = rt.log("mk_hang", run_id, "hang", 1)
    assert "sleeping 600 s" in log
    assert "AirflowTaskTimeout" in log or "Timeout" in log, log[-3000:]
    assert ti["pid"] not in {p.pid for p in rt.mine()}, "the hung task process is still alive"
    print(
        f"\nmk_hang: task ran {ran:.1f}s, run finished {time.monotonic() - t0:.0f}s after trigger"
    )


def test_mlflow_down_during_logging_retries_then_fails_cleanly(
    runtime, registry, first_runs, outage_mlflow
):
    """MLflow crashes while `train` logs (params written, model not yet); the retries back
    off, then the run fails with the connection error; once MLflow is back it holds no
    version without its artifacts, and nothing else moved."""
    from modelkeeper.records.registry import Registry

    rt, server = runtime, outage_mlflow
    champion_before = registry.alias(MODEL).version
    moves_before = [e for e in rt.audit().events(MODEL) if e["event"] in ALIAS_MOVES]
    rt.patch_connection("mlflow_default", host=server.url)
    t0 = time.monotonic()
    try:
        run_id = rt.trigger(RETRAIN, {"force_retrain": True, "reason": "MLflow outage drill"})
        outage_registry = Registry(server.url)

        def train_logging() -> bool:
            """`train` has fitted and started logging to MLflow (its params appear)."""
            ti = rt.task_instances(RETRAIN, run_id).get("train", {})
            assert ti.get("state") not in ("success", "failed", "upstream_failed"), ti
            if ti.get("state") != "running":
                return False
            mlflow_run = outage_registry.find_run(MODEL, run_id)
            params = outage_registry.client.get_run(mlflow_run).data.params if mlflow_run else {}
            return "estimator" in params

        rt.wait_for("train to log to MLflow", train_logging, 360, interval=0.1)
        server.crash()
        stopped = time.monotonic()
        run = rt.wait_run(RETRAIN, run_id, timeout=600)
    finally:
        rt.patch_connection("mlflow_default", host=rt.mlflow_url)
    print(
        f"\nMLflow crashed {stopped - t0:.0f}s after trigger, as train logged; run "
        f"{run['state']} {time.monotonic() - stopped:.0f}s later"
    )

    tis = {t: ti["state"] for t, ti in rt.task_instances(RETRAIN, run_id).items()}
    assert run["state"] == "failed", tis
    assert tis["monitor"] == "success" and tis["train"] == "failed", tis
    assert {tis[t] for t in ("evaluate", "promote", "finish")} == {"upstream_failed"}, tis
    tries = rt.tries(RETRAIN, run_id, "train")
    assert _states(tries) == [(1, "failed"), (2, "failed"), (3, "failed")]
    # Backoff: RETRY_DELAY base, doubling (factory default_args).
    gaps = [
        (ts(nxt["start_date"]) - ts(prev["end_date"])).total_seconds()
        for prev, nxt in zip(tries, tries[1:], strict=False)
    ]
    assert gaps[0] >= RETRY_DELAY and gaps[1] >= 2 * RETRY_DELAY, gaps
    last_log = rt.log(RETRAIN, run_id, "train", 3)
    assert "Connection refused" in last_log or "Max retries exceeded" in last_log, last_log[-3000:]

    # MLflow back: no version registered for the failed run, and every version has its model.
    server.start()
    runs = mlflow_runs(outage_registry, run_id)
    assert len(runs) == 1, "one MLflow run for the DAG run, created by monitor before the outage"
    print(f"outage run's MLflow run left {runs[0].info.status}")
    try:
        versions = outage_registry.client.search_model_versions(f"name = '{MODEL}'")
    except Exception as exc:  # never registered at all
        assert "RESOURCE_DOES_NOT_EXIST" in str(getattr(exc, "error_code", exc)), exc
        versions = []
    for version in versions:
        assert outage_registry.input_columns(f"models:/{MODEL}/{version.version}")
    assert not [v for v in versions if v.run_id == runs[0].info.run_id], versions
    assert outage_registry.alias(MODEL) is None

    # Nothing else moved: the session registry's champion, the audit trail, the data.
    assert registry.alias(MODEL).version == champion_before
    # (the forced run's "decision" row is written before `train`: the decision was taken)
    assert [e for e in rt.audit().events(MODEL) if e["event"] in ALIAS_MOVES] == moves_before
    storage = rt.storage()
    assert not storage.quarantine_dir(MODEL, run_id).exists()
    assert accepted_rows(storage, MODEL, run_id) == 0
