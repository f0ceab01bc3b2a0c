"""Security of the running REST API: anonymous callers get 401, a read-only user is refused
every write (trigger, clear, approve, unpause, connections, the promotion pool) and nothing
changes; an admin's identical trigger is accepted.
"""

from __future__ import annotations

import pytest
import requests

RETRAIN = "retrain_flight_delay"

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(900)]


def test_rest_api_refuses_anonymous_and_read_only_writes(runtime):
    rt = runtime
    anonymous = requests.get(f"{rt.url}/api/v2/dags", timeout=30)
    assert anonymous.status_code == 401, anonymous.text
    forged = requests.get(
        f"{rt.url}/api/v2/dags",
        headers={"Authorization": "Bearer eyJhbGciOiJIUzUxMiJ9.eyJzdWIiOiJhZG1pbiJ9.x"},
        timeout=30,
    )
    # Airflow answers a token it cannot verify with 403 "Invalid JWT token": refused either way.
    assert forged.status_code in (401, 403) and "Invalid JWT" in forged.text, forged.text
    # The viewer's token is valid: it reads.
    assert rt.api("GET", "/dags", user="viewer").status_code == 200

    was_paused = rt.ok("GET", f"/dags/{RETRAIN}")["is_paused"]
    rt.set_paused(RETRAIN, True)  # the admin's run below must stay queued, then go
    try:
        before = {r["dag_run_id"] for r in rt.ok("GET", f"/dags/{RETRAIN}/dagRuns")["dag_runs"]}
        trigger = {"logical_date": None, "conf": {"force_retrain": True, "reason": "viewer"}}
        refused = rt.api("POST", f"/dags/{RETRAIN}/dagRuns", user="viewer", json=trigger)
        assert refused.status_code == 403, refused.text
        after = {r["dag_run_id"] for r in rt.ok("GET", f"/dags/{RETRAIN}/dagRuns")["dag_runs"]}
        assert after == before

        # The admin's identical trigger works: a real run, queued while the DAG is paused.
        accepted = rt.api("POST", f"/dags/{RETRAIN}/dagRuns", user="admin", json=trigger)
        assert accepted.status_code == 200, accepted.text
        run_id = accepted.json()["dag_run_id"]
        assert accepted.json()["state"] == "queued"
        assert accepted.json()["triggering_user_name"] == "admin"
        try:
            writes = [
                ("PATCH", f"/dags/{RETRAIN}", {"is_paused": False}),
                (
                    "POST",
                    f"/dags/{RETRAIN}/clearTaskInstances",
                    {"dry_run": False, "dag_run_id": run_id, "only_failed": False},
                ),
                (
                    "PATCH",
                    f"/dags/{RETRAIN}/dagRuns/{run_id}/taskInstances/approve/-1/hitlDetails",
                    {"chosen_options": ["Approve"], "params_input": {}},
                ),
                ("PATCH", f"/dags/{RETRAIN}/dagRuns/{run_id}", {"state": "success"}),
                ("DELETE", f"/dags/{RETRAIN}/dagRuns/{run_id}", None),
                (
                    "PATCH",
                    "/pools/modelkeeper_promotion",
                    {"name": "modelkeeper_promotion", "slots": 5},
                ),
                (
                    "PATCH",
                    "/connections/mlflow_default",
                    {"connection_id": "mlflow_default", "conn_type": "http", "host": "http://x"},
                ),
                ("POST", "/connections", {"connection_id": "evil", "conn_type": "http"}),
                ("POST", "/variables", {"key": "evil", "value": "1"}),
            ]
            for method, path, body in writes:
                r = rt.api(method, path, user="viewer", json=body)
                assert r.status_code == 403, f"viewer {method} {path}: {r.status_code} {r.text}"
                r = rt.api(method, path, user=None, json=body)
                assert r.status_code == 401, f"anonymous {method} {path}: {r.status_code}"

            # Nothing changed.
            assert rt.ok("GET", f"/dags/{RETRAIN}")["is_paused"] is True
            run = rt.dag_run(RETRAIN, run_id)
            assert run["state"] == "queued"
            assert rt.ok("GET", "/pools/modelkeeper_promotion")["slots"] == 1
            conn = rt.ok("GET", "/connections/mlflow_default")
            assert conn["host"] == rt.mlflow_url
            assert rt.api("GET", "/connections/evil").status_code == 404
            assert rt.api("GET", "/variables/evil").status_code == 404
            hitl = rt.ok("GET", f"/dags/{RETRAIN}/dagRuns/~/hitlDetails")
            assert hitl["total_entries"] == 0
        finally:
            deleted = rt.api("DELETE", f"/dags/{RETRAIN}/dagRuns/{run_id}", user="admin")
            assert deleted.status_code == 204, deleted.text
    finally:
        rt.set_paused(RETRAIN, was_paused)
