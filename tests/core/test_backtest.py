"""The decisions on synthetic streams with a known story, replayed through the stages.

Real stages end to end (modelkeeper.backtest replays through modelkeeper.stages):
ingestion and Great Expectations validation into a temporary storage root, Evidently
drift, a real MLflow SQLite store and audit trail in tmp_path, scikit-learn fits. The
spec uses the decision defaults (no thresholds): what a spec without the new keys gets.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from modelkeeper.backtest.engine import run_backtest
from modelkeeper.backtest.summary import report, write_reports
from modelkeeper.contracts.spec import ModelSpec

CHANGE = 8  # 0-based step at which the story changes (by default)
STATIONARY = 40  # steps replayed on an unchanging stream before a change
TASKS = [
    pytest.param("classification", id="classification"),
    pytest.param("regression", id="regression"),
]


def _spec(task: str) -> ModelSpec:
    classification = task == "classification"
    return ModelSpec.model_validate(
        {
            "name": f"synthetic_{task}",
            "owner": "tests@example.com",
            "description": "synthetic data with a known story",
            "source": {"kind": "files", "path": "landing/x/*.parquet"},
            "schema": {
                "timestamp_column": "ts",
                "min_rows": 50,
                "columns": [
                    {"name": "ts", "dtype": "datetime", "nullable": False},
                    {"name": "x1", "dtype": "float"},
                    {"name": "x2", "dtype": "float"},
                    {"name": "c", "dtype": "category", "allowed": ["a", "b"]},
                    {"name": "y", "dtype": "int" if classification else "float"},
                ],
            },
            "features": {"numeric": ["x1", "x2"], "categorical": ["c"]},
            "target": {"column": "y", "task": task},
            "estimator": {
                "class_path": "sklearn.linear_model.LogisticRegression"
                if classification
                else "sklearn.linear_model.Ridge"
            },
            "metrics": {"primary": "roc_auc" if classification else "rmse"},
            "drift": {"sample_rows": 500},
            "window": {"training_days": 14, "holdout_days": 7},
            "retrain": {"min_new_rows": 50},
            "promotion": {"min_eval_rows": 50},
            "backtest": {"warmup_steps": 2},
        }
    )


def _data(
    task: str, steps: int, story: str, *, change: int = CHANGE, seed: int = 0
) -> pd.DataFrame:
    """100 rows a day for `steps` weeks. `story` from step `change` on: "stationary" (none),
    "concept" (y follows -x1 instead of +x1), "covariate" (x1's variance doubles, the
    labelling rule unchanged)."""
    rng = np.random.default_rng(seed)
    n = 100 * 7 * steps
    days = np.sort(rng.uniform(0, 7 * steps, n))
    ts = pd.Timestamp("2024-01-01") + pd.to_timedelta(days, "D")
    after = days >= 7 * change
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    if story == "covariate":
        x1 = np.where(after, x1 * np.sqrt(2.0), x1)
    sign = np.where(after & (story == "concept"), -1.0, 1.0)
    signal = 2.0 * sign * x1 + 0.3 * x2
    if task == "classification":
        y = (signal + rng.normal(scale=0.8, size=n) > 0).astype("int64")
    else:
        y = signal + rng.normal(scale=0.5, size=n)
    return pd.DataFrame({"ts": ts, "x1": x1, "x2": x2, "c": rng.choice(["a", "b"], n), "y": y})


def _retrains(run) -> list[int]:  # noqa: ANN001
    return [r.step for r in run.records if r.retrain and r.promoted is not None]


@pytest.mark.parametrize("task", TASKS)
class TestDecisions:
    def test_stationary_for_40_steps_then_an_abrupt_concept_change(self, task, tmp_path):
        """At most 2 retrains in 40 stationary steps; the change at step STATIONARY + 2 is
        retrained and promoted within two steps, with the evidence on the record."""
        change = STATIONARY + 2
        data = _data(task, change + 3, "concept", change=change)
        result = run_backtest(_spec(task), data, tmp_path / "w", progress=None, policies=["spec"])
        records = {r.step: r for r in result.policies["spec"].records}
        before = [s for s in _retrains(result.policies["spec"]) if s < change]
        assert len([s for s in records if s < change]) == STATIONARY
        assert len(before) <= 2, [records[s].retrain_reason for s in before]
        promoted = [s for s in (change, change + 1) if records[s].promoted]
        assert promoted, [(s, records[s].retrain_reason, records[s].gate_reason) for s in records]
        # the evidence is on the record: the shadow's advantage with its interval, the
        # detector's statistic and threshold, the gate's paired interval
        first = records[promoted[0]]
        assert "shadow" in first.retrain_reason and "detector" in first.retrain_reason
        assert "] (needs " in first.retrain_reason and "CI [" in first.gate_reason

    def test_a_covariate_shift_under_the_same_rule_does_not_retrain(self, task, tmp_path):
        data = _data(task, CHANGE + 4, "covariate")
        result = run_backtest(_spec(task), data, tmp_path / "w", progress=None, policies=["spec"])
        spec_run = result.policies["spec"]
        assert not _retrains(spec_run), [r.retrain_reason for r in spec_run.records]
        late = [r for r in spec_run.records if r.step >= CHANGE + 1]
        # drift is seen and said (x1 moved), but it is evidence, not a trigger
        assert any(r.drift_share and r.drift_share > 0 for r in late)
        assert all("evidence only" in r.retrain_reason for r in late)


class TestReport:
    def test_every_policy_and_the_report(self, tmp_path):
        data = _data("classification", CHANGE + 4, "concept")
        result = run_backtest(_spec("classification"), data, tmp_path / "work", progress=None)
        assert result.warmup == 2 and result.steps == CHANGE + 4
        never, always = result.policies["never"], result.policies["always"]
        assert _retrains(never) == []
        assert _retrains(always) == list(range(2, CHANGE + 4))  # every step after the first
        late = range(CHANGE + 2, CHANGE + 4)
        # never decays after the change, always recovers
        assert np.mean([r.metric for r in never.records if r.step in late]) < 0.3
        assert np.mean([r.metric for r in always.records if r.step in late]) > 0.8

        data = report(result, 4)
        spec = data["policies"]["spec"]
        assert {"training_seconds", "shadow_seconds", "by_quarter", "alarms"} <= set(spec)
        assert spec["shadow_seconds"] > 0  # the shadow's fits are counted as training
        assert len(spec["by_quarter"]) == 4 and None not in spec["by_quarter"]
        assert "held out" in data["training_window"]
        assert {t["target"].split(" (")[0] for t in data["targets"]} >= {
            "at least half of the alarms paid off",
            "as good as never in every quarter after the warm-up",
        }
        json_path, html_path = write_reports(result, tmp_path / "out", 4)
        assert json.loads(json_path.read_text())["model"] == "synthetic_classification"
        html = html_path.read_text()
        assert "<svg" in html and "<script" not in html
        assert (tmp_path / "work" / "mlflow.db").exists()


class TestBadInput:
    def test_too_short_for_the_warm_up(self, tmp_path):
        from modelkeeper.contracts.errors import DataError

        data = _data("classification", 2, "stationary")
        with pytest.raises(DataError, match="nothing left to replay"):
            run_backtest(_spec("classification"), data, tmp_path, progress=None)

    def test_missing_timestamp_column(self, tmp_path):
        from modelkeeper.contracts.errors import DataError

        data = _data("classification", 4, "stationary").drop(columns="ts")
        with pytest.raises(DataError, match="no timestamp column 'ts'"):
            run_backtest(_spec("classification"), data, tmp_path)
