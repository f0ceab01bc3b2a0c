"""Act and audit on a real MLflow store and audit database: every path of `act`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modelkeeper.contracts.errors import ContentionError
from modelkeeper.records.governance import ChangeRequest, act

MODEL = "flight_delay"


@pytest.fixture
def world(mlflow_store, audit_db):
    """v1 champion (audited), v2 validated, v3 without the validation lineage tag."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=50)})
    y = (X["a"] > 0).astype(int)
    versions = []
    for i in range(3):
        run = mlflow_store.ensure_run(MODEL, f"manual__g{i}", {})
        uri = mlflow_store.log_model(run, LogisticRegression().fit(X, y), X.head(2))
        tags = {"validation": "passed"} if i < 2 else {}
        versions.append(mlflow_store.register(MODEL, uri, run, tags).version)
    act(mlflow_store, audit_db, _req("promote", versions[0], None, run_id="manual__g0"))
    return versions


def _req(request, version, expected, **kw) -> ChangeRequest:
    base = {"reason": "because", "who": "carol", "mode": "auto", "dag_id": "d", "run_id": "r"}
    return ChangeRequest(
        model=MODEL, request=request, version=version, expected=expected, **{**base, **kw}
    )


class TestAct:
    def test_promote_moves_tags_and_audits(self, world, mlflow_store, audit_db):
        change = act(mlflow_store, audit_db, _req("promote", world[1], world[0]))
        assert (change.action, change.champion_before, change.champion_after) == (
            "promoted",
            world[0],
            world[1],
        )
        assert mlflow_store.alias(MODEL).version == world[1]
        assert mlflow_store.alias(MODEL, "previous").version == world[0]
        tags = mlflow_store.get_version(MODEL, world[1]).tags
        assert tags["promoted_by"] == "carol" and tags["promoted_in"] == "r"
        assert audit_db.events(MODEL)[-1]["event"] == "promotion"

    @pytest.mark.parametrize(
        ("request_", "action", "phrase"),
        [
            pytest.param("keep", "kept", "because", id="keep"),
            pytest.param("dry_run", "dry_run", "would have because", id="dry-run"),
            pytest.param("reject", "rejected", "because", id="reject"),
        ],
    )
    def test_no_move_is_still_audited(
        self, world, mlflow_store, audit_db, request_, action, phrase
    ):
        change = act(mlflow_store, audit_db, _req(request_, world[1], world[0], run_id=request_))
        assert change.action == action and phrase in change.reason
        assert mlflow_store.alias(MODEL).version == world[0]
        event = audit_db.events(MODEL)[-1]
        assert event["run_id"] == request_ and event["version_after"] == world[0]

    def test_unvalidated_lineage_is_refused(self, world, mlflow_store, audit_db):
        change = act(mlflow_store, audit_db, _req("promote", world[2], world[0]))
        assert change.action == "refused" and "lacks the validation=passed" in change.reason
        assert mlflow_store.alias(MODEL).version == world[0]

    def test_champion_moved_since_evaluation_is_refused(self, world, mlflow_store, audit_db):
        act(mlflow_store, audit_db, _req("promote", world[1], world[0], run_id="first"))
        late = act(mlflow_store, audit_db, _req("promote", world[1], world[0], run_id="late"))
        assert late.action == "promoted"  # the same move: a retry that finds it done
        mlflow_store.set_version_tags(MODEL, world[2], {"validation": "passed"})
        other = act(mlflow_store, audit_db, _req("promote", world[2], world[0], run_id="other"))
        assert other.action == "refused" and "champion changed since evaluation" in other.reason

    def test_rollback_and_its_repeat(self, world, mlflow_store, audit_db):
        act(mlflow_store, audit_db, _req("promote", world[1], world[0], run_id="p"))
        back = act(mlflow_store, audit_db, _req("rollback", world[0], world[1], run_id="rb1"))
        again = act(mlflow_store, audit_db, _req("rollback", world[0], world[0], run_id="rb2"))
        assert back.action == "rolled_back" and back.reason.startswith(f"rollback v{world[1]} →")
        assert again.action == "noop"
        assert [e["event"] for e in audit_db.events(MODEL)].count("rollback") == 1
        assert mlflow_store.get_version(MODEL, world[1]).tags["rolled_back_from"] == "true"

    def test_rollback_retried_after_the_move_still_audits_it(self, world, mlflow_store, audit_db):
        act(mlflow_store, audit_db, _req("promote", world[1], world[0], run_id="p"))
        # The first attempt moved the alias and died before writing the audit row.
        mlflow_store.move_champion(MODEL, world[0], world[1], keep_previous=True)
        retry = act(mlflow_store, audit_db, _req("rollback", world[0], world[0], run_id="rb"))
        assert (retry.action, retry.champion_before) == ("rolled_back", world[1])
        assert audit_db.expected_champion(MODEL) == world[0]

    def test_rollback_racing_a_promotion_is_retried(self, world, mlflow_store, audit_db):
        act(mlflow_store, audit_db, _req("promote", world[1], world[0], run_id="p"))
        with pytest.raises(ContentionError, match="champion changed during rollback"):
            act(mlflow_store, audit_db, _req("rollback", world[0], world[2], run_id="rb"))
        assert mlflow_store.alias(MODEL).version == world[1]
