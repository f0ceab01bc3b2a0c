"""Promotion governance on a real MLflow store and a real audit database.

Versions here are small real sklearn models registered the way TrainOperator does;
the evaluate step's XCom is written by hand so each path of promote / approve /
rollback / reconcile can be driven directly.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from modelkeeper.contracts import lineage as L
from modelkeeper_airflow.operators import ReconcileOperator, RollbackOperator
from tests.helpers import (
    DEFAULT_PARAMS,
    answer_approval,
    retrain_tasks,
    run_operator,
    run_to_state,
)

MODEL = "flight_delay"


@pytest.fixture
def versions(mlflow_store, audit_db, storage):
    """Three registered versions (1 is champion) with the passed-validation lineage tag."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    y = (X["a"] > 0).astype(int)
    made = []
    for i in range(3):
        run = mlflow_store.ensure_run(MODEL, f"manual__v{i}", {})
        uri = mlflow_store.log_model(run, LogisticRegression(C=1 + i).fit(X, y), X.head(3))
        tags = {"validation": "passed"} if i < 2 else {}
        made.append(mlflow_store.register(MODEL, uri, run, tags).version)
    mlflow_store.move_champion(MODEL, made[0], expected=None)
    return made


@pytest.fixture
def evaluated(mlflow_store):
    """Builds the evaluate step's XCom for a candidate/champion pair (one MLflow run to tag)."""
    run = mlflow_store.ensure_run(MODEL, "manual__eval", {})
    return lambda candidate, champion, promote=True: _evaluated(run, candidate, champion, promote)


def _evaluated(run: str, candidate: str, champion: str | None, promote: bool) -> dict:
    reason = "promoted: roc_auc 0.700 → 0.720"
    score = {
        "metrics": {"roc_auc": 0.72},
        "rows": 900,
        "classes": [0, 1],
        "slices": {},
        "latency_ms_per_1k": 1.0,
    }
    return {
        "decision": {
            "promote": promote,
            "reason": reason if promote else "refused: worse",
            "checks": [],
        },
        "candidate": score,
        "champion": {**score, "metrics": {"roc_auc": 0.70}},
        "candidate_version": candidate,
        "champion_version": champion,
        "mlflow_run_id": run,
    }


class TestPromote:
    def test_auto_promotes_and_audits(self, versions, evaluated, mlflow_store, audit_db):
        xcoms = {("evaluate", "return_value"): evaluated(versions[1], versions[0])}
        out = _promote(xcoms, "manual__a", user="carol")
        assert out["action"] == "promoted"
        assert xcoms[("promote", L.OUTCOME_XCOM)] == "promoted v2: roc_auc 0.700 → 0.720"
        assert mlflow_store.alias(MODEL).version == versions[1]
        assert mlflow_store.alias(MODEL, "previous").version == versions[0]
        [event] = audit_db.events(MODEL)
        assert (event["event"], event["who"], event["version_before"], event["version_after"]) == (
            "promotion",
            "carol",
            versions[0],
            versions[1],
        )
        assert mlflow_store.get_version(MODEL, versions[1]).tags["promoted_by"] == "carol"
        # When, in wall-clock UTC time: a manual run id carries no date at all.
        described = mlflow_store.client.get_model_version(MODEL, versions[1]).description
        assert re.fullmatch(
            r"champion since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC, by carol in Airflow run "
            r"manual__a: promoted: roc_auc 0\.700 → 0\.720",
            described,
        ), described

    def test_not_blessed_keeps_champion(self, versions, evaluated, mlflow_store, audit_db):
        xcoms = {("evaluate", "return_value"): evaluated(versions[1], versions[0], promote=False)}
        # Nothing moved: promote ends SKIPPED (finish still runs), saying why.
        assert _promote(xcoms, "manual__b", expect="skipped")["action"] == "kept"
        assert xcoms[("promote", L.OUTCOME_XCOM)] == "refused v2: roc_auc 0.700 → 0.720 (worse)"
        assert mlflow_store.alias(MODEL).version == versions[0]
        assert [e["event"] for e in audit_db.events(MODEL)] == ["refusal"]

    def test_dry_run_moves_nothing(self, versions, evaluated, mlflow_store, audit_db):
        xcoms = {("evaluate", "return_value"): evaluated(versions[1], versions[0])}
        out = _promote(xcoms, "manual__c", mode="dry_run", expect="skipped")
        assert out["action"] == "dry_run" and "would have promoted" in out["reason"]
        assert xcoms[("promote", L.OUTCOME_XCOM)] == (
            "dry run, nothing moved: would have promoted v2: roc_auc 0.700 → 0.720"
        )
        assert mlflow_store.alias(MODEL).version == versions[0]
        assert audit_db.events(MODEL)[0]["event"] == "dry_run"

    def test_version_without_validation_lineage_refused(
        self, versions, evaluated, mlflow_store, audit_db
    ):
        xcoms = {("evaluate", "return_value"): evaluated(versions[2], versions[0])}
        out = _promote(xcoms, "manual__d", expect="skipped")
        assert (
            out["action"] == "refused"
            and "lacks the validation=passed lineage tag" in out["reason"]
        )
        assert xcoms[("promote", L.OUTCOME_XCOM)] == (
            "refused v3: roc_auc 0.700 → 0.720 (v3 lacks the validation=passed lineage tag)"
        )
        assert mlflow_store.alias(MODEL).version == versions[0]

    def test_two_promotions_from_the_same_evaluation_one_wins(
        self, versions, evaluated, mlflow_store, audit_db
    ):
        from modelkeeper.records.audit import reconcile

        first = _promote(
            {("evaluate", "return_value"): evaluated(versions[1], versions[0])}, "manual__e1"
        )
        # A second run evaluated against v1 too, reaching promote after the first moved the alias.
        mlflow_store.set_version_tags(MODEL, versions[2], {"validation": "passed"})
        second = _promote(
            {("evaluate", "return_value"): evaluated(versions[2], versions[0])},
            "manual__e2",
            expect="skipped",
        )
        assert first["action"] == "promoted"
        assert (
            second["action"] == "refused"
            and "champion changed since evaluation" in second["reason"]
        )
        assert mlflow_store.alias(MODEL).version == versions[1]
        assert reconcile(audit_db, MODEL, mlflow_store.alias(MODEL).version)[0]

    def test_retried_promote_records_once(self, versions, evaluated, mlflow_store, audit_db):
        xcoms = {("evaluate", "return_value"): evaluated(versions[1], versions[0])}
        _promote(xcoms, "manual__f")
        again = _promote(xcoms, "manual__f")  # a retry after the alias already moved
        assert again["action"] == "promoted" and again["champion_before"] == versions[0]
        assert [e["event"] for e in audit_db.events(MODEL)] == ["promotion"]


class TestApproval:
    def test_skips_when_not_in_approval_mode(self, versions, evaluated, mlflow_store):
        xcoms = {("evaluate", "return_value"): evaluated(versions[1], versions[0])}
        with pytest.raises(AirflowSkipException, match="no approval needed"):
            _approve(xcoms, "manual__g", mode="auto")
        # Handed on all the same, so promote knows nobody was asked.
        assert xcoms[("approve", "return_value")]["asked"] is False

    def test_skips_when_gate_refused(self, versions, evaluated, mlflow_store):
        xcoms = {("evaluate", "return_value"): evaluated(versions[1], versions[0], promote=False)}
        with pytest.raises(AirflowSkipException, match="nothing to approve"):
            _approve(xcoms, "manual__h", mode="approval")

    @pytest.mark.parametrize("option", ["Approve", "Reject"])
    def test_answer_recorded_before_the_parent_skips(
        self, versions, evaluated, mlflow_store, audit_db, option
    ):
        # Airflow's ApprovalOperator skips promote on Reject by raising, so its return value
        # never reaches XCom (seen on a real run): the answer must be handed on first.
        xcoms = {("evaluate", "return_value"): evaluated(versions[1], versions[0])}
        answer_approval(xcoms, "manual__answer", option, "erin")
        answer = xcoms[("approve", "return_value")]
        assert (answer["asked"], answer["approved"], answer["by"]) == (
            True,
            option == "Approve",
            "erin",
        )
        assert answer["note"].startswith("rejected by erin") == (option == "Reject")

    def test_approved_promotes_as_the_approver(self, versions, evaluated, mlflow_store, audit_db):
        xcoms = {
            ("evaluate", "return_value"): evaluated(versions[1], versions[0]),
            ("approve", "return_value"): {"asked": True, "approved": True, "by": "alice"},
        }
        out = _promote(xcoms, "manual__i", mode="approval", user="admin")
        assert out["action"] == "promoted" and out["reason"].startswith(
            "approved by alice; promoted"
        )
        assert mlflow_store.alias(MODEL).version == versions[1]
        [event] = audit_db.events(MODEL)
        assert event["who"] == "alice" and event["mode"] == "approval"

    def test_approval_mode_without_an_answer_refuses_to_move(
        self, versions, evaluated, mlflow_store, audit_db
    ):
        xcoms = {("evaluate", "return_value"): evaluated(versions[1], versions[0])}
        with pytest.raises(AirflowFailException, match="no approval"):
            _promote(xcoms, "manual__j", mode="approval")
        assert mlflow_store.alias(MODEL).version == versions[0]

    def test_rejection_audited_where_the_answer_arrives(
        self, versions, evaluated, mlflow_store, audit_db
    ):
        xcoms = {
            ("evaluate", "return_value"): evaluated(versions[1], versions[0]),
            ("decide", "return_value"): {"retrain": True, "reason": "forced"},
        }
        answer_approval(xcoms, "manual__k", "Reject", "bob")
        assert mlflow_store.alias(MODEL).version == versions[0]
        [event] = audit_db.events(MODEL)
        assert (event["event"], event["who"], event["version_after"]) == (
            "rejection",
            "bob",
            versions[0],
        )
        assert event["reason"].startswith("rejected by bob; gate said: promoted")
        assert xcoms[("approve", L.OUTCOME_XCOM)] == "rejected v2 (by bob): roc_auc 0.700 → 0.720"
        assert mlflow_store.get_version(MODEL, versions[1]).tags["rejected_by"] == "bob"
        # promote was skipped by the rejection; finish states it.
        out = run_operator(retrain_tasks(MODEL)["finish"], "manual__k", xcoms)
        assert out["summary"].startswith("rejected: rejected by bob")


class TestRollbackAndReconcile:
    def test_rollback_restores_previous_and_is_idempotent(
        self, versions, evaluated, mlflow_store, audit_db
    ):
        from modelkeeper.records.audit import reconcile

        _promote({("evaluate", "return_value"): evaluated(versions[1], versions[0])}, "manual__l")
        op = RollbackOperator(
            task_id="rollback", model=MODEL, target_version="previous", reason="bad canary"
        )
        first = run_operator(op, "manual__rb1", {}, user="dave")
        second = run_operator(op, "manual__rb2", {}, user="dave")
        assert first["action"] == "rolled_back" and first["champion_after"] == versions[0]
        assert (second["action"], second["champion_after"]) == ("noop", versions[0])
        assert mlflow_store.alias(MODEL).version == versions[0]
        rollbacks = [e for e in audit_db.events(MODEL) if e["event"] == "rollback"]
        assert (
            len(rollbacks) == 1
            and rollbacks[0]["who"] == "dave"
            and "bad canary" in rollbacks[0]["reason"]
        )
        assert reconcile(audit_db, MODEL, versions[0])[0]

    def test_rollback_to_a_version_number(self, versions, evaluated, mlflow_store, audit_db):
        op = RollbackOperator(
            task_id="rollback", model=MODEL, target_version=versions[1], reason="pin v2"
        )
        assert run_operator(op, "manual__rb3", {})["champion_after"] == versions[1]
        assert mlflow_store.alias(MODEL).version == versions[1]

    @pytest.mark.parametrize(
        ("target", "match"),
        [
            pytest.param("previous", "no `previous` version", id="no-previous"),
            pytest.param("99", "no version '99'", id="unknown"),
        ],
    )
    def test_rollback_refuses_missing_target(
        self, versions, evaluated, mlflow_store, audit_db, target, match
    ):
        op = RollbackOperator(task_id="rollback", model=MODEL, target_version=target, reason="x")
        with pytest.raises(AirflowFailException, match=match):
            run_operator(op, "manual__rb4", {})
        assert mlflow_store.alias(MODEL).version == versions[0]

    def test_reconcile_flags_an_alias_moved_outside(
        self, versions, evaluated, mlflow_store, audit_db
    ):
        _promote({("evaluate", "return_value"): evaluated(versions[1], versions[0])}, "manual__m")
        op = ReconcileOperator(task_id="reconcile", model=MODEL)
        assert run_operator(op, "scheduled__1", {})["ok"] is True
        mlflow_store.client.set_registered_model_alias(
            MODEL, "champion", versions[2]
        )  # behind our back
        with pytest.raises(
            AirflowFailException,
            match=f"registry champion is {versions[2]}, audit trail says {versions[1]}",
        ):
            run_operator(op, "scheduled__2", {})


def _params(mode: str) -> dict:
    return {**DEFAULT_PARAMS, "promotion_mode": mode or "spec"}


def _promote(
    xcoms: dict, run_id: str, mode: str = "", user: str | None = None, expect: str = "success"
):
    """Run promote; it ends `expect` ("skipped" when it moves nothing). Its result."""
    op = retrain_tasks(MODEL)["promote"]
    state, out = run_to_state(op, run_id, xcoms, user=user, params=_params(mode))
    assert state == expect, (state, out)
    return out


def _approve(xcoms: dict, run_id: str, mode: str):
    return run_operator(retrain_tasks(MODEL)["approve"], run_id, xcoms, params=_params(mode))
