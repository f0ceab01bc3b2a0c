"""Every refusal of the promotion gate, through EvaluateOperator + PromoteOperator.

Slice-gap and latency refusals are covered on the pure function in
tests/core/test_promotion.py.

Real flight-delay models (trained on two weeks, registered like TrainOperator does),
a real MLflow store and audit DB. Each case checks the champion did not move and the
refusal's reason is in the audit trail and on the MLflow run.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from modelkeeper.contracts import lineage as L
from tests.helpers import DEFAULT_PARAMS, answer_approval, retrain_tasks, run_operator, run_to_state

MODEL = "flight_delay"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def data():
    from modelkeeper.demo import load_flights, week_frame

    flights = load_flights()
    return week_frame(flights, 2), week_frame(flights, 3)


@pytest.fixture(scope="module")
def fitted(data, spec):
    from modelkeeper.modeling.training import fit

    train, _ = data
    return fit(spec, train)


def _register(registry, spec, model, run_name: str, tags: dict, features=None):
    from modelkeeper.modeling.training import features_frame

    run = registry.ensure_run(MODEL, run_name, {})
    example = features_frame(_data_head(spec), spec)
    if features is not None:
        example = example[features]
    uri = registry.log_model(run, model, example)
    return run, registry.register(MODEL, uri, run, tags)


def _data_head(spec):
    from modelkeeper.demo import load_flights, week_frame

    return week_frame(load_flights(), 2).head(5)


def _make_world(registry, audit, spec, champion, candidate, names, champion_features=None):
    """Register `champion` (made champion) and `candidate`, both with passed validation."""
    passed = {"validation": "passed"}
    _, champ = _register(registry, spec, champion, names[0], passed, features=champion_features)
    registry.move_champion(MODEL, champ.version, expected=None)
    run, cand = _register(registry, spec, candidate, names[1], passed)
    return {
        "registry": registry,
        "audit": audit,
        "run": run,
        "cand": cand.version,
        "champ": champ.version,
    }


@pytest.fixture
def world(mlflow_store, audit_db, storage, fitted, spec):
    """v1 = champion, v2 = a candidate with passed validation; the holdout on disk."""
    return _make_world(
        mlflow_store, audit_db, spec, fitted, fitted, ("manual__champ", "manual__cand")
    )


def _trained(world, holdout, storage, tmp_path) -> dict:
    path = storage.write_parquet(holdout, tmp_path / "holdout.parquet")
    ts = "2013-03-01T00:00:00"
    return {
        "mlflow_run_id": world["run"],
        "version": world["cand"],
        "model_uri": f"models:/{MODEL}/{world['cand']}",
        "holdout_path": str(path),
        "data_snapshot_hash": "0" * 16,
        "train_rows": 0,
        "holdout_rows": len(holdout),
        **dict.fromkeys(("train_start", "train_end", "holdout_start", "holdout_end"), ts),
    }


def _needs_a_person(world, trained: dict, phrase: str) -> None:
    """No usable champion to compare with: never promoted alone; a person may approve.

    The rule (promotion.unusable_champion: approval, the default): the candidate must clear
    the floor and slice checks, then waits in the approve task; promote without that
    answer fails at once, with it the alias moves and the approver is audited.
    """
    from airflow.sdk.exceptions import AirflowFailException

    tasks, xcoms = retrain_tasks(MODEL), {("train", "return_value"): trained}
    evaluated = run_operator(tasks["evaluate"], "manual__gate", xcoms)
    decision = evaluated["decision"]
    assert decision["needs_approval"] and decision["reason"].startswith("needs approval: ")
    assert phrase in decision["reason"] and "clears floor" in decision["reason"]
    with pytest.raises(AirflowFailException, match="recorded no approval"):
        run_operator(tasks["promote"], "manual__gate", xcoms, params=DEFAULT_PARAMS)
    assert world["registry"].alias(MODEL).version == world["champ"]
    answer_approval(xcoms, "manual__gate", "Approve", "dana")
    promote = retrain_tasks(MODEL)["promote"]  # a fresh task: the first one was rendered
    promoted = run_operator(promote, "manual__gate", xcoms, params=DEFAULT_PARAMS)
    assert promoted["action"] == "promoted" and promoted["who"] == "dana"
    assert world["registry"].alias(MODEL).version == world["cand"]


def _spec_dir(monkeypatch, tmp_path, promotion: dict) -> None:
    """The demo spec with other promotion settings, as MODELKEEPER_SPEC_DIR."""
    raw = yaml.safe_load((ROOT / "include/models/flight_delay.yaml").read_text())
    raw["promotion"].update(promotion)
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "flight_delay.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("MODELKEEPER_SPEC_DIR", str(tmp_path / "specs"))


def _gate(world, trained: dict) -> tuple[dict, dict]:
    xcoms = {("train", "return_value"): trained}
    tasks = retrain_tasks(MODEL)
    evaluated = run_operator(tasks["evaluate"], "manual__gate", xcoms)
    state, promoted = run_to_state(tasks["promote"], "manual__gate", xcoms, params=DEFAULT_PARAMS)
    # Nothing promoted: the task ends SKIPPED (a glance at the grid says so), with its
    # result handed on and the run's one-line outcome.
    assert state == "skipped", (state, promoted)
    outcome = xcoms[("promote", L.OUTCOME_XCOM)]
    assert outcome.startswith(f"refused v{world['cand']}: ") and "\n" not in outcome, outcome
    return evaluated, promoted


def _assert_refused(world, promoted: dict, phrase: str) -> None:
    reg = world["registry"]
    # The gate refused: promote keeps the champion ("refused" is promote's own last check).
    assert promoted["action"] == "kept", promoted
    assert promoted["reason"].startswith("refused: ") and phrase in promoted["reason"], promoted
    assert reg.alias(MODEL).version == world["champ"]
    [event] = world["audit"].events(MODEL)
    assert event["event"] == "refusal" and phrase in event["reason"]
    assert event["version_before"] == event["version_after"] == world["champ"]
    assert phrase in reg.client.get_run(world["run"]).data.tags["promotion_reason"]


class TestRefusals:
    def test_evaluation_frame_too_small(self, world, data, storage, tmp_path):
        _, promoted = _gate(world, _trained(world, data[1].head(300), storage, tmp_path))
        _assert_refused(world, promoted, "evaluation frame too small: 300 rows < 500")

    def test_class_missing(self, world, data, storage, tmp_path):
        holdout = data[1][data[1]["delayed"] == 0]
        _, promoted = _gate(world, _trained(world, holdout, storage, tmp_path))
        _assert_refused(world, promoted, "class missing from evaluation frame")

    def test_champion_unloadable(self, world, data, storage, tmp_path):
        reg = world["registry"]
        champ = reg.get_version(MODEL, world["champ"])
        model_dir = Path(
            reg.client.get_logged_model(
                champ.source.removeprefix("models:/")
            ).artifact_location.removeprefix("file://")
        )
        shutil.rmtree(model_dir)
        _needs_a_person(
            world,
            _trained(world, data[1], storage, tmp_path),
            f"champion v{world['champ']} unloadable",
        )

    def test_champion_input_schema_differs(
        self, mlflow_store, audit_db, storage, data, spec, tmp_path
    ):
        from sklearn.ensemble import HistGradientBoostingClassifier

        from modelkeeper.modeling.training import features_frame

        train = data[0]
        few = ["hour", "distance", "temp"]
        old = HistGradientBoostingClassifier(max_iter=20).fit(
            features_frame(train, spec)[few], train["delayed"]
        )
        from modelkeeper.modeling.training import fit

        world = _make_world(
            mlflow_store,
            audit_db,
            spec,
            old,
            fit(spec, train),
            ("manual__old", "manual__cand"),
            champion_features=few,
        )
        _needs_a_person(
            world,
            _trained(world, data[1], storage, tmp_path),
            "input schema differs (new: ['carrier', 'day_of_week'",
        )

    def test_refuse_rule_keeps_the_old_behaviour(self, world, data, storage, tmp_path, monkeypatch):
        reg = world["registry"]
        champ = reg.get_version(MODEL, world["champ"])
        shutil.rmtree(
            Path(
                reg.client.get_logged_model(
                    champ.source.removeprefix("models:/")
                ).artifact_location.removeprefix("file://")
            )
        )
        _spec_dir(monkeypatch, tmp_path, {"unusable_champion": "refuse"})
        _, promoted = _gate(world, _trained(world, data[1], storage, tmp_path))
        _assert_refused(world, promoted, f"champion v{world['champ']} unloadable")

    def test_no_gain_over_champion(self, world, data, storage, tmp_path):
        # The candidate is the same model as the champion: +0.000 < +0.005.
        xcoms = {("train", "return_value"): _trained(world, data[1], storage, tmp_path)}
        tasks = retrain_tasks(MODEL)
        run_operator(tasks["evaluate"], "manual__gate", xcoms)
        state, promoted = run_to_state(
            tasks["promote"], "manual__gate", xcoms, params=DEFAULT_PARAMS
        )
        assert state == "skipped"
        _assert_refused(world, promoted, "(+0.000 < +0.005 required")
        assert re.fullmatch(
            rf"refused v{world['cand']}: roc_auc (0\.\d{{3}}) → \1 "
            r"\(\+0\.000 < \+0\.005 required, 95% CI \[\+0\.0000, \+0\.0000\]\)",
            xcoms[("promote", L.OUTCOME_XCOM)],
        ), xcoms[("promote", L.OUTCOME_XCOM)]

    def test_candidate_from_an_older_data_window(self, world, data, storage, tmp_path):
        # A cleared old run or a backfill: its model saw data up to an earlier day than
        # the champion's. Same model and metrics; the gate refuses on the window alone.
        reg = world["registry"]
        reg.set_version_tags(MODEL, world["champ"], {"data_end": "2013-03-11T23:00:00"})
        reg.set_version_tags(MODEL, world["cand"], {"data_end": "2013-02-25T23:00:00"})
        _, promoted = _gate(world, _trained(world, data[1], storage, tmp_path))
        _assert_refused(
            world,
            promoted,
            f"stale candidate: its data ends 2013-02-25T23:00:00, champion v{world['champ']}'s "
            "ends 2013-03-11T23:00:00",
        )

    def test_candidate_below_floor(self, world, data, storage, tmp_path, monkeypatch):
        _spec_dir(monkeypatch, tmp_path, {"floor": 0.99})
        _, promoted = _gate(world, _trained(world, data[1], storage, tmp_path))
        _assert_refused(world, promoted, "below floor 0.990")

    def test_guardrail_breached(self, mlflow_store, audit_db, storage, data, spec, tmp_path):
        from sklearn.ensemble import HistGradientBoostingClassifier

        from modelkeeper.modeling.training import build_pipeline, features_frame, fit
        from tests.helpers import OverconfidentClassifier

        train = data[0]
        weak = build_pipeline(spec)
        weak.set_params(
            model=HistGradientBoostingClassifier(max_iter=3, max_depth=2, random_state=0)
        )
        weak.fit(features_frame(train, spec), train["delayed"])
        sharp = OverconfidentClassifier(fit(spec, train))
        world = _make_world(
            mlflow_store, audit_db, spec, weak, sharp, ("manual__weak", "manual__sharp")
        )
        evaluated, promoted = _gate(world, _trained(world, data[1], storage, tmp_path))
        cand_m, champ_m = evaluated["candidate"]["metrics"], evaluated["champion"]["metrics"]
        assert cand_m["roc_auc"] > champ_m["roc_auc"] + 0.005  # better on the primary metric...
        _assert_refused(world, promoted, "guardrail log_loss")  # ...refused on calibration

    def test_no_validation_lineage(self, world, data, storage, tmp_path):
        world["registry"].client.delete_model_version_tag(MODEL, world["cand"], "validation")
        _, promoted = _gate(world, _trained(world, data[1], storage, tmp_path))
        _assert_refused(world, promoted, "no passed-validation lineage tag")
