"""measure and alarm of `monitor_<model>` through the stage functions, on real stores.

A model is trained, evaluated and promoted by the stages the retrain DAG calls (Great
Expectations, a local MLflow store, SQLite history and audit in tmp_path); weeks of new
rows are then scored by `score` (the scoring stream, the prediction log), labels land
for some of them, and `measure` / `alarm` run as `monitor_<model>` runs them.

The data: y = 2*x1 + 0.3*x2 + noise. A regressor's noise grows with |x1| (and is larger
for c = "b"), so its error depends on where a row lies: a wider x1 (covariate shift, the
same rule) makes it worse, which DLE sees from the features alone. A classifier's rows
with a narrower x1 are harder to rank, which CBPE sees from the probabilities alone.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from modelkeeper.contracts.results import Decision, RetrainDecision
from modelkeeper.contracts.spec import ModelSpec
from modelkeeper.stages.ingest import collect, validate
from modelkeeper.stages.workspace import Run, Workspace, open_run
from tests.core.test_backtest import _spec as synthetic_spec
from tests.core.test_gate_noise import _workspace as stores

T0 = pd.Timestamp("2024-01-01")  # a Monday: the windows are the weeks
ROWS = 700  # a week


def _spec(task: str, **monitoring) -> ModelSpec:
    """The backtest's synthetic spec with a key, scoring, late labels and monitoring."""
    raw = synthetic_spec(task).model_dump(by_alias=True, exclude_unset=True)
    raw["schema"]["columns"].append({"name": "id", "dtype": "int", "nullable": False})
    files = lambda path: {"kind": "files", "path": path}  # noqa: E731
    key = ["id", "ts"]
    raw.update(
        name=f"measured_{task}",
        retrain={"min_new_rows": 50, "shadow": {"enabled": False}},
        scoring={
            "source": files("landing/features/*.parquet"),
            "key": key,
            "destination": files("predictions/out"),
        },
        labels={"source": files("landing/labels/*.parquet"), "key": key, "min_rows": 200},
        monitoring={"window_days": 7, "window_anchor": "2024-01-01", **monitoring},
    )
    return ModelSpec.model_validate(raw)


def _week(task: str, week: int, *, scale: float = 1.0, seed: int = 0) -> pd.DataFrame:
    """A week of rows; `scale` widens (or narrows) x1, the rule unchanged."""
    rng = np.random.default_rng([seed, week])
    days = np.sort(rng.uniform(0, 7, ROWS)) + 7 * week
    x1, x2 = rng.normal(size=ROWS) * scale, rng.normal(size=ROWS)
    c = rng.choice(["a", "b"], ROWS)
    signal = 2.0 * x1 + 0.3 * x2
    if task == "classification":
        y = (signal + rng.normal(scale=0.8, size=ROWS) > 0).astype("int64")
    else:
        noise = (0.3 + 0.7 * np.abs(x1)) * np.where(c == "a", 1.0, 1.5)
        y = signal + rng.normal(size=ROWS) * noise
    ts = T0 + pd.to_timedelta(days, "D")
    ids = week * 100_000 + np.arange(ROWS)
    return pd.DataFrame({"ts": ts, "id": ids, "x1": x1, "x2": x2, "c": c, "y": y})


def _workspace(spec: ModelSpec, tmp_path) -> Workspace:  # noqa: ANN001
    return replace(stores(spec.target.task, tmp_path), spec=spec)


def _blessed(candidate, champion, spec, comparison) -> Decision:  # noqa: ANN001
    """A person's gate: the retrained model serves (whether it beats the champion or not
    is the gate's business, tested elsewhere; here it only has to take over)."""
    return Decision(True, "blessed by a person", candidate_version=candidate.version)


def _retrain(ws: Workspace, rows: pd.DataFrame, run_id: str) -> str:
    """Train on `rows`, evaluate, promote: the champion's version."""
    from modelkeeper.stages.evaluate import evaluate
    from modelkeeper.stages.promote import promote
    from modelkeeper.stages.train import train

    ws.storage.write_parquet(rows, ws.storage.root / "landing" / "x" / f"{run_id}.parquet")
    run = open_run(ws, Run(run_id=run_id, dag_id="retrain_test"))
    accepted = validate(ws, run, collect(ws, run))
    trained = train(ws, run, accepted, RetrainDecision(True, "forced by a person"))
    change = promote(ws, run, evaluate(ws, run, trained, gate=_blessed))
    assert change.action == "promoted", change
    return trained.version


def _serve(ws: Workspace, week: pd.DataFrame, run_id: str) -> None:
    """The week's features land and score_<model> scores them with the champion."""
    from modelkeeper.stages.serve import score

    path = ws.storage.root / "landing" / "features" / f"{run_id}.parquet"
    ws.storage.write_parquet(week.drop(columns=["y"]), path)
    run = Run(run_id=run_id, dag_id="score_test")
    accepted = validate(ws, run, collect(ws, run, stream="scoring"), stream="scoring")
    assert score(ws, run, accepted).rows == len(week)


def _labels(ws: Workspace, week: pd.DataFrame, run_id: str) -> None:
    path = ws.storage.root / "landing" / "labels" / f"{run_id}.parquet"
    ws.storage.write_parquet(week[["id", "ts", "y"]], path)
    run = Run(run_id=run_id, dag_id="monitor_test")
    validate(ws, run, collect(ws, run, stream="labels"), stream="labels")


def _monitor(ws: Workspace, run_id: str):  # noqa: ANN202
    from modelkeeper.stages.measure import alarm, measure

    run = Run(run_id=run_id, dag_id="monitor_test")
    measured = measure(ws, run)
    return measured, alarm(ws, run, measured=measured)


SHIFT = 10  # the first week of the harder rows
WEEKS = 12  # weeks 2..11 are scored by v1
#: Harder rows, the same rule: a regressor's x1 twice as wide (its noise grows with |x1|),
#: a classifier's x1 a third as wide (closer to the boundary: harder to rank).
SCALE = {"regression": 2.0, "classification": 0.3}
#: The spec's fixed floor (kept beside the detector): crossed only by the harder weeks.
FLOOR = {"regression": 1.5, "classification": 0.9}


@pytest.fixture(scope="module", params=["classification", "regression"])
def story(request, tmp_path_factory):
    """v1 trained on weeks 0-1 serves weeks 2-11, their labels a week late; the rows turn
    harder from week SHIFT; then v2 (trained on the harder weeks) takes over, and
    monitoring runs once more before it has served a row. What each monitor run saw."""
    task = request.param
    ws = _workspace(_spec(task, metric_floor=FLOOR[task]), tmp_path_factory.mktemp(task))
    weeks = {w: _week(task, w, scale=SCALE[task] if w >= SHIFT else 1.0) for w in range(WEEKS)}
    v1 = _retrain(ws, pd.concat([weeks[0], weeks[1]]), "first")
    runs = {}
    for w in range(2, WEEKS):
        _serve(ws, weeks[w], f"score_{w}")
        if w > 2:
            _labels(ws, weeks[w - 1], f"labels_{w - 1}")
        runs[w] = _monitor(ws, f"monitor_{w}")
    v2 = _retrain(ws, pd.concat([weeks[SHIFT], weeks[SHIFT + 1]]), "second")
    _labels(ws, weeks[WEEKS - 1], f"labels_{WEEKS - 1}")
    after = _monitor(ws, "monitor_after")
    return {
        "task": task,
        "ws": ws,
        "weeks": weeks,
        "v1": v1,
        "v2": v2,
        "runs": runs,
        "after": after,
    }


def _start(week: int) -> str:
    return (T0 + pd.Timedelta(days=7 * week)).isoformat()


def _primary(story) -> str:
    return story["ws"].spec.metrics.primary


class TestMeasure:
    def test_each_version_s_windows_realized_where_labelled_estimated_everywhere(self, story):
        measured, _ = story["runs"][WEEKS - 1]
        overall = [m for m in measured.measurements if m["slice_column"] is None]
        assert {m["version"] for m in overall} == {story["v1"]}
        # Measured whole: the oldest window that can still change, never a part of one.
        assert {m["rows"] for m in overall if m["kind"] == "estimated"} == {ROWS}
        newest = max(m["window_start"] for m in overall)
        realized = {m["window_start"] for m in overall if m["kind"] == "realized"}
        assert newest == _start(WEEKS - 1) and newest not in realized  # its labels are late
        assert len(realized) >= 3

    def test_realized_metrics_are_evaluation_s_and_the_estimate_is_near(self, story):
        """Realized per window: sklearn's on the joined labels and the logged predictions
        (a regressor's rmse, mae and r2; a classifier's roc_auc and log_loss); the estimate
        (DLE's rmse and mae; CBPE's roc_auc) close to it."""
        from sklearn import metrics as skm

        from modelkeeper.serving import scoring

        ws = story["ws"]
        log = scoring.read_log(ws.spec, ws.storage)
        regression = story["task"] == "regression"
        column = scoring.PREDICTION if regression else scoring.PROBABILITY
        week = story["weeks"][5].merge(log[["id", column]], on="id")
        y, pred = week["y"], week[column]
        if regression:
            want = {
                "rmse": np.sqrt(skm.mean_squared_error(y, pred)),
                "mae": skm.mean_absolute_error(y, pred),
                "r2": skm.r2_score(y, pred),
            }
            near = {"rmse": 0.1 * want["rmse"], "mae": 0.1 * want["mae"]}
        else:
            want = {"roc_auc": skm.roc_auc_score(y, pred), "log_loss": skm.log_loss(y, pred)}
            near = {"roc_auc": 0.03}
        got = {}
        for kind in ("realized", "estimated"):
            for r in ws.history.series(ws.spec.name, kind=kind):
                if r["window_start"] == _start(5) and r["slice_column"] is None:
                    assert r["version"] == story["v1"] and r["rows"] == ROWS
                    got[(kind, r["metric"])] = r["value"]
        assert {m: got[("realized", m)] for m in want} == pytest.approx(want, rel=1e-9)
        assert ("estimated", "r2") not in got
        for metric, tolerance in near.items():
            assert got[("estimated", metric)] == pytest.approx(want[metric], abs=tolerance)


class TestDetectorAlarm:
    def test_no_alarm_while_the_rows_stay_alike(self, story):
        quiet = {w: story["runs"][w][1] for w in range(2, SHIFT)}
        assert {a.status for a in quiet.values()} == {"none"}, [a.reason for a in quiet.values()]
        last = quiet[SHIFT - 1].detector
        assert last is not None and not last.alarm and last.batches == SHIFT - 2
        assert last.z is not None  # past its warm-up: the detector was judging

    def test_the_estimate_s_decay_fires_the_detector_before_any_label(self, story):
        alarm = story["runs"][SHIFT][1]
        assert alarm.status == "fired" and alarm.version == story["v1"]
        assert alarm.detector.alarm and alarm.detector.statistic > alarm.detector.threshold
        metric = _primary(story)
        assert f"detector: estimated {metric}" in alarm.reason
        assert f"window from {_start(SHIFT)[:10]}" in alarm.reason  # no label of it yet
        assert {"detector", "estimated_decay"} <= set(alarm.kinds)  # the fixed floor too
        recorded = story["ws"].history.series(story["ws"].spec.name, kind="alarm")
        detail = recorded[0]["detail"]
        assert detail["status"] == "fired" and detail["detector"]["alarm"] is True

    def test_within_the_cooldown_the_next_is_suppressed(self, story):
        alarm = story["runs"][SHIFT + 1][1]
        assert alarm.status == "suppressed" and alarm.detector.alarm

    def test_a_superseded_version_s_windows_raise_nothing(self, story):
        """v1's harder weeks are still measured (their labels came in), its detector still
        alarms and they cross the floor; but v2 serves now: nothing is asked of v2 for v1's
        weeks, and nothing is recorded."""
        from modelkeeper.stages.measure import _detectors

        measured, alarm = story["after"]
        ws, v1, v2 = story["ws"], story["v1"], story["v2"]
        assert v2 != v1 and ws.registry.alias(ws.name).version == v2
        mine = [m for m in measured.measurements if m["slice_column"] is None]
        assert {m["version"] for m in mine} == {v1}  # v2 has served no row yet
        assert _detectors(ws, {v1: mine})[v1][0].alarm  # v1 would still alarm
        assert alarm.status == "none" and alarm.version == v2 and alarm.detector is None
        recorded = ws.history.series(ws.spec.name, kind="alarm")
        assert {r["version"] for r in recorded} == {v1} and len(recorded) == 2
