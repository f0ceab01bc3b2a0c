"""Scale checks on the compose topology run natively (tests/scale/topology.py): Postgres,
Redis as Celery broker, moto's server standing in for S3 (storage root and MLflow
artifacts), an MLflow server, Airflow's api-server, scheduler, dag-processor and
triggerer, and two Celery workers with separate working folders and no storage on disk.

The tests run in file order on one topology: 100 specs load, 20 retrains at once, then a
worker is killed under a retrain.
"""

from __future__ import annotations

import time

import pytest

from tests.procs import stop_group, wait_for
from tests.scale.topology import WORKERS, Topology, model_name, summary, ts

pytestmark = [pytest.mark.slow, pytest.mark.scale, pytest.mark.timeout(3000)]

N_SPECS = 100
N_CONCURRENT = 20
KILLED_MODEL = model_name(N_CONCURRENT)  # the 21st model: data of its own, never run before
RAN = {"success"}
OK_STATES = {"success", "skipped"}


def _all_tis(topo: Topology, runs: dict[str, str]) -> dict[str, dict[str, dict]]:
    return {dag_id: topo.task_instances(dag_id, run_id) for dag_id, run_id in runs.items()}


def _versions(topo: Topology, model: str) -> list:
    return topo.registry().client.search_model_versions(f"name = '{model}'")


class TestHundredSpecs:
    def test_100_specs_load_as_100_dags_without_import_errors(self, topology: Topology):
        wanted = {f"retrain_{m}" for m in topology.models}
        assert len(wanted) == N_SPECS

        def loaded() -> set[str]:
            got = set(topology.dag_ids()) & wanted
            return got if got == wanted else set()

        wait_for(f"{N_SPECS} retrain DAGs in the API", loaded, 600, interval=2)
        topology.timings["100 DAGs loaded"] = time.monotonic() - topology._t0
        errors = topology.import_errors()
        assert errors == [], (
            f"import errors: {[(e['filename'], e['stack_trace'][:500]) for e in errors]}"
        )


class TestConcurrentRetrains:
    @pytest.fixture(scope="class")
    def concurrent(self, topology: Topology) -> dict:
        dag_ids = [f"retrain_{m}" for m in topology.models[:N_CONCURRENT]]
        for dag_id in dag_ids:
            wait_for(
                f"{dag_id} parsed",
                lambda d=dag_id: topology.api("GET", f"/dags/{d}").status_code == 200,
                600,
                interval=2,
            )
            topology.set_paused(dag_id, False)
        t0 = time.monotonic()
        runs = {dag_id: topology.trigger(dag_id) for dag_id in dag_ids}
        finished = topology.wait_runs(runs, 2400)
        seconds = time.monotonic() - t0
        topology.timings[f"{N_CONCURRENT} concurrent retrains (s)"] = seconds
        return {"runs": runs, "finished": finished, "tis": _all_tis(topology, runs), "s": seconds}

    def test_all_runs_succeed_with_no_failed_or_retried_task(self, concurrent):
        states = {d: r["state"] for d, r in concurrent["finished"].items()}
        assert set(states.values()) == {"success"}, f"run states: {states}"
        bad = [
            summary(ti)
            for tis in concurrent["tis"].values()
            for ti in tis.values()
            if ti["state"] not in OK_STATES or ti["try_number"] != 1
        ]
        # A task that needed a shared disk (a local path written on one worker, read on the
        # other) fails or retries here: the storage root is the bucket, folders are apart.
        assert not bad, f"tasks that failed or were retried: {bad}"

    def test_tasks_spread_over_both_workers(self, concurrent):
        ran_on: dict[str, int] = {}
        for tis in concurrent["tis"].values():
            for ti in tis.values():
                if ti["state"] in RAN:
                    ran_on[ti["hostname"]] = ran_on.get(ti["hostname"], 0) + 1
        assert set(ran_on) == set(WORKERS), f"tasks per worker hostname: {ran_on}"
        print(f"tasks per worker: {ran_on}")

    def test_each_model_has_its_own_champion(self, topology: Topology, concurrent):
        registry = topology.registry()
        wrong = {}
        for dag_id, run_id in concurrent["runs"].items():
            model = dag_id.removeprefix("retrain_")
            champion = registry.alias(model)
            versions = _versions(topology, model)
            if (
                champion is None
                or champion.tags.get("airflow_dag_id") != dag_id
                or champion.tags.get("airflow_run_id") != run_id
                or len(versions) != 1
            ):
                wrong[model] = (champion and champion.tags, [v.version for v in versions])
        assert not wrong, f"models without their own single champion: {wrong}"

    def test_one_promotion_audit_row_per_model(self, topology: Topology, concurrent):
        audit = topology.audit()
        rows = {
            d.removeprefix("retrain_"): [
                e for e in audit.events(d.removeprefix("retrain_")) if e["event"] == "promotion"
            ]
            for d in concurrent["runs"]
        }
        wrong = {m: r for m, r in rows.items() if len(r) != 1 or r[0]["version_after"] != "1"}
        assert not wrong, f"promotion audit rows: {wrong}"

    def test_the_promotion_pool_serialises_promotions(self, concurrent):
        promotes = sorted(
            (ts(tis["promote"]["start_date"]), ts(tis["promote"]["end_date"]), dag_id)
            for dag_id, tis in concurrent["tis"].items()
        )
        assert len(promotes) == N_CONCURRENT
        assert all(p[0] < p[1] for p in promotes)
        overlaps = [
            (a[2], b[2]) for a, b in zip(promotes, promotes[1:], strict=False) if b[0] < a[1]
        ]
        assert not overlaps, f"promote tasks that overlapped in the one-slot pool: {overlaps}"
        pools = {tis["promote"]["pool"] for tis in concurrent["tis"].values()}
        assert pools == {"modelkeeper_promotion"}, pools


class TestKilledWorker:
    def test_a_task_of_a_killed_worker_is_retried_on_the_other(self, topology: Topology):
        dag_id = f"retrain_{KILLED_MODEL}"
        wait_for(
            f"{dag_id} parsed",
            lambda: topology.api("GET", f"/dags/{dag_id}").status_code == 200,
            600,
            interval=2,
        )
        topology.set_paused(dag_id, False)
        run_id = topology.trigger(dag_id)

        def train_running() -> dict | None:
            ti = topology.task_instances(dag_id, run_id).get("train") or {}
            state = topology.dag_run(dag_id, run_id)["state"]
            assert state not in {"success", "failed"}, f"run ended before train ran: {state}"
            return ti if ti.get("state") == "running" and ti.get("hostname") in WORKERS else None

        train = wait_for("train running on a worker", train_running, 900, interval=0.3)
        victim = train["hostname"]
        survivor = next(w for w in WORKERS if w != victim)
        # The whole worker at once, as a host that dies: its Celery pool, the task's
        # supervisor and the task process (every descendant, whatever its process group).
        stop_group(topology.procs[victim], crash=True)
        killed_at = time.monotonic()

        finished = topology.wait_runs({dag_id: run_id}, 900)[dag_id]
        recovered_in = time.monotonic() - killed_at
        topology.timings["killed worker: kill -> run end (s)"] = recovered_in
        tis = topology.task_instances(dag_id, run_id)
        assert finished["state"] == "success", (
            f"run {finished['state']}: {[summary(t) for t in tis.values()]}"
        )
        tries = topology.tries(dag_id, run_id, "train")
        assert tries[0]["hostname"] == victim and tries[0]["state"] == "failed", [
            summary(t) for t in tries
        ]
        assert tries[-1]["state"] == "success" and tries[-1]["hostname"] == survivor, [
            summary(t) for t in tries
        ]
        # The retry waited for the heartbeat timeout, not for a person.
        assert len(tries) == 2, [summary(t) for t in tries]
        others = [summary(t) for k, t in tis.items() if k != "train" and t["try_number"] != 1]
        assert not others, f"other tasks retried: {others}"

        versions = _versions(topology, KILLED_MODEL)
        assert [v.version for v in versions] == ["1"], f"versions: {versions}"
        assert topology.registry().alias(KILLED_MODEL).tags["airflow_run_id"] == run_id
        rows = [
            e
            for e in topology.audit().events(KILLED_MODEL)
            if e["event"] == "promotion" and e["run_id"] == run_id
        ]
        assert len(rows) == 1, f"promotion audit rows: {rows}"
        topology.start_worker(victim)  # the topology whole again for whatever follows
