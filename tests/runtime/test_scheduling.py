"""Scheduling, reruns and infrastructure faults against the real runtime.

Runs after tests/runtime/test_faults.py in the same session: `retrain_flight_delay` is
unpaused, its first (scheduled) run trained and promoted the champion, later manual runs
found no new data. Each test asserts the Airflow run and task states, the registry's
`champion` alias, the audit trail and the stored data.
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime, timedelta

import pytest

from modelkeeper.records.audit import reconcile
from tests.helpers import accepted_rows
from tests.runtime.conftest import mlflow_runs, ts

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(1200)]

MODEL = "flight_delay"
RETRAIN = "retrain_flight_delay"


def _runs(rt, run_type: str | None = None) -> list[dict]:
    runs = rt.ok("GET", f"/dags/{RETRAIN}/dagRuns", params={"limit": 100})["dag_runs"]
    return [r for r in runs if run_type is None or r["run_type"] == run_type]


def _all_versions(registry) -> list:
    return registry.client.search_model_versions(f"name = '{MODEL}'")


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _assert_registry_and_audit_agree(rt, registry) -> None:
    ok, message = reconcile(rt.audit(), MODEL, registry.alias(MODEL).version)
    assert ok, message
    for version in _all_versions(registry):  # no version without its model
        assert registry.input_columns(f"models:/{MODEL}/{version.version}"), version.version


def _wait_task_running(rt, run_id: str, task_id: str, timeout: float) -> dict:
    def running():
        ti = rt.task_instances(RETRAIN, run_id).get(task_id, {})
        assert ti.get("state") not in ("failed", "upstream_failed"), ti
        return ti if ti.get("state") == "running" and ti.get("pid") else None

    return rt.wait_for(f"{task_id} of {run_id} running", running, timeout, interval=0.2)


def test_catchup_off_unpausing_runs_only_the_latest_interval(runtime, first_runs):
    """The DAG starts 2026-01-01 on @weekly with catchup off and was paused since it was
    created: unpausing made exactly one scheduled run, for the latest tick. Pausing and
    unpausing again adds none (no tick passed)."""
    rt = runtime
    details = rt.ok("GET", f"/dags/{RETRAIN}/details")
    assert details["catchup"] is False
    now = datetime.now(UTC)
    latest_tick = (now - timedelta(days=(now.weekday() + 1) % 7)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    missed = (latest_tick - ts(details["start_date"])).days // 7
    [scheduled] = _runs(rt, "scheduled")
    assert scheduled["dag_run_id"] == first_runs["first"]
    assert ts(scheduled["logical_date"]) == latest_tick, (scheduled, latest_tick)
    print(f"\nunpause after {missed} missed @weekly ticks: one run, for {latest_tick}")
    assert missed > 5

    rt.set_paused(RETRAIN, True)
    time.sleep(3)
    rt.set_paused(RETRAIN, False)
    time.sleep(15)  # several scheduler loops
    assert [r["dag_run_id"] for r in _runs(rt, "scheduled")] == [first_runs["first"]]
    assert not rt.ok("GET", f"/dags/{RETRAIN}")["is_paused"]


def test_clearing_a_finished_run_reruns_it_the_same_way_across_a_scheduler_restart(
    runtime, registry, first_runs
):
    """Clear the first run (it trained and promoted the champion) through the REST API,
    and restart the scheduler while the rerun validates: the rerun reuses its snapshot
    and its version, gives the same metrics and decision, adds no version, no MLflow run
    and no audit row."""
    rt, run_id = runtime, first_runs["first"]
    storage = rt.storage()
    snap = storage.snapshot_dir(MODEL, run_id)
    before = {
        "batch": _sha(snap / "accepted.parquet"),
        "collect": rt.xcom(run_id, "collect"),
        "train": rt.xcom(run_id, "train"),
        "evaluate": rt.xcom(run_id, "evaluate"),
        "tries": rt.task_instances(RETRAIN, run_id)["train"]["try_number"],
        "versions": sorted(v.version for v in _all_versions(registry)),
        "champion": registry.alias(MODEL).version,
        "audit": rt.audit().events(MODEL),
    }
    assert before["champion"] == before["train"]["version"]

    rt.ok(
        "POST",
        f"/dags/{RETRAIN}/clearTaskInstances",
        json={"dag_run_id": run_id, "dry_run": False, "only_failed": False},
    )
    _wait_task_running(rt, run_id, "validate", 300)
    down = rt.restart("scheduler")
    run = rt.wait_run(RETRAIN, run_id, timeout=600)
    tis = rt.task_instances(RETRAIN, run_id)
    print(
        f"\nrerun of {run_id}: scheduler restarted mid-run (down {down:.0f}s), "
        f"run {run['state']}: " + ", ".join(f"{t}={ti['state']}" for t, ti in tis.items())
    )
    assert run["state"] == "success", {t: ti["state"] for t, ti in tis.items()}
    assert tis["train"]["try_number"] > before["tries"], "train did not run again"
    assert {tis[t]["state"] for t in ("train", "evaluate", "promote", "finish")} == {"success"}

    # Same snapshot, same version, same metrics, same decision.
    assert _sha(snap / "accepted.parquet") == before["batch"]
    assert rt.xcom(run_id, "collect") == before["collect"]
    retrain = rt.xcom(run_id, "decide")
    assert retrain["reason"] == f"rerun: this run already trained v{before['champion']}; " + (
        "finishing it"
    )
    train = rt.xcom(run_id, "train")
    assert train["version"] == before["train"]["version"]
    assert train["mlflow_run_id"] == before["train"]["mlflow_run_id"]
    assert train["data_snapshot_hash"] == before["train"]["data_snapshot_hash"]
    evaluate = rt.xcom(run_id, "evaluate")
    assert evaluate["candidate"]["metrics"] == before["evaluate"]["candidate"]["metrics"]
    assert evaluate["decision"] == before["evaluate"]["decision"]
    assert rt.xcom(run_id, "promote")["action"] == "promoted"  # found the move done

    # Nothing was added: versions, MLflow runs, audit rows; the champion stayed.
    assert sorted(v.version for v in _all_versions(registry)) == before["versions"]
    [mlflow_run] = mlflow_runs(registry, run_id)
    assert mlflow_run.info.status == "FINISHED"
    assert registry.alias(MODEL).version == before["champion"]
    assert rt.audit().events(MODEL) == before["audit"]
    _assert_registry_and_audit_agree(rt, registry)


def test_backfill_across_a_metadata_db_outage_promotes_nothing(runtime, registry, first_runs):
    """Backfill two past @weekly intervals through the REST API; while the first
    backfilled run's `monitor` works, Postgres refuses the Airflow database for 20 s (new
    connections refused, open ones terminated). Components that exit are started again,
    as compose's `restart: always` would.

    Collect takes files no run has taken, whatever the Airflow interval: those intervals' rows
    were taken by the run that saw them land, so each backfilled run finds nothing new,
    ends green saying so, and trains, registers, promotes and quarantines nothing."""
    rt = runtime
    versions = sorted(v.version for v in _all_versions(registry))
    champion = registry.alias(MODEL).version
    audit_rows = len(rt.audit().events(MODEL))
    latest = ts(_runs(rt, "scheduled")[0]["logical_date"])
    backfill = rt.ok(
        "POST",
        "/backfills",
        json={
            "dag_id": RETRAIN,
            "from_date": (latest - timedelta(days=21)).isoformat(),
            "to_date": (latest - timedelta(days=14)).isoformat(),
            "max_active_runs": 1,
        },
    )
    first = f"backfill__{(latest - timedelta(days=21)).isoformat()}"
    monitor = rt.wait_for(
        "the first backfilled run's monitor",
        lambda: (ti := rt.task_instances(RETRAIN, first).get("monitor", {})).get("pid") and ti,
        300,
        interval=0.2,
    )
    t0 = time.monotonic()
    rt.block_database(20)
    done, restarted = rt.supervise(
        "the backfill to complete",
        lambda: (b := rt.ok("GET", f"/backfills/{backfill['id']}"))["completed_at"] and b,
        600,
    )
    _, more = rt.supervise("a healthy Airflow", rt._healthy, 240)
    runs = _runs(rt, "backfill")
    print(
        f"\nmetadata DB refused for 20 s during {first} monitor (try {monitor['try_number']}); "
        f"restarted after it: {restarted + more}; backfill complete "
        f"{time.monotonic() - t0:.0f}s after the outage began: "
        + ", ".join(
            f"{r['dag_run_id']} {r['state']} "
            + str(
                [
                    (t["try_number"], t["state"])
                    for t in rt.tries(RETRAIN, r["dag_run_id"], "monitor")
                ]
            )
            for r in runs
        )
    )
    assert sorted(ts(r["logical_date"]) for r in runs) == [
        latest - timedelta(days=21),
        latest - timedelta(days=14),
    ]
    storage = rt.storage()
    for r in runs:
        tis = {t: ti["state"] for t, ti in rt.task_instances(RETRAIN, r["dag_run_id"]).items()}
        assert r["state"] == "success", tis
        assert {tis[t] for t in ("train", "evaluate", "promote")} == {"skipped"}, tis
        retrain = rt.xcom(r["dag_run_id"], "decide")
        assert retrain["reason"] == f"no retrain: no new data; champion v{champion} holds"
        assert not storage.quarantine_dir(MODEL, r["dag_run_id"]).exists()
        assert accepted_rows(storage, MODEL, r["dag_run_id"]) == 0
        for mlflow_run in mlflow_runs(registry, r["dag_run_id"]):
            assert mlflow_run.info.status == "FINISHED"
    assert sorted(v.version for v in _all_versions(registry)) == versions
    assert registry.alias(MODEL).version == champion
    assert len(rt.audit().events(MODEL)) == audit_rows
    _assert_registry_and_audit_agree(rt, registry)
