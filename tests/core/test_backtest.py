"""The retraining-policy backtest on small synthetic data with a shift at a known step.

Real stages end to end: ingestion and Great Expectations validation into a temporary
storage root, Evidently drift, a real MLflow SQLite store in tmp_path, scikit-learn fits.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from modelkeeper.backtest.engine import ALARM_GAIN, run_backtest
from modelkeeper.backtest.summary import report, write_reports
from modelkeeper.contracts.spec import ModelSpec

SHIFT_STEP = 7  # 0-based: the concept flips at the start of this step
STEPS = 12


def _spec(task: str) -> ModelSpec:
    classification = task == "classification"
    return ModelSpec.model_validate(
        {
            "name": f"synthetic_{task}",
            "owner": "tests@example.com",
            "description": "synthetic data with a shift",
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
            "drift": {"share_threshold": 1.0, "sample_rows": 500},
            "window": {"training_days": 14, "holdout_days": 7},
            # decay: a fresh champion scores ~0.9 AUC / ~0.5 RMSE here; a flipped one ~0.1 / ~3
            "retrain": {"performance_floor": 0.7 if classification else 1.5, "min_new_rows": 50},
            "promotion": {"min_improvement": 0.01, "min_eval_rows": 50},
        }
    )


def _data(task: str, seed: int = 0) -> pd.DataFrame:
    """100 rows a day for STEPS weeks; y follows +x1 before SHIFT_STEP and -x1 after."""
    rng = np.random.default_rng(seed)
    n = 100 * 7 * STEPS
    ts = pd.Timestamp("2024-01-01") + pd.to_timedelta(np.sort(rng.uniform(0, 7 * STEPS, n)), "D")
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    sign = np.where((ts - pd.Timestamp("2024-01-01")).days >= 7 * SHIFT_STEP, -1.0, 1.0)
    signal = 2.0 * sign * x1 + 0.3 * x2
    if task == "classification":
        y = (signal + rng.normal(scale=0.8, size=n) > 0).astype("int64")
    else:
        y = signal + rng.normal(scale=0.5, size=n)
    return pd.DataFrame({"ts": ts, "x1": x1, "x2": x2, "c": rng.choice(["a", "b"], n), "y": y})


def _metric(records: list, steps: range) -> float:
    return float(np.mean([r.metric for r in records if r.step in steps]))


@pytest.mark.parametrize(
    "task",
    [
        pytest.param("classification", id="classification"),
        pytest.param("regression", id="regression"),
    ],
)
class TestShiftedReplay:
    def test_policies_react_to_the_shift(self, task, tmp_path):
        spec = _spec(task)
        lines: list[str] = []
        result = run_backtest(spec, _data(task), tmp_path / "work", k=4, progress=lines.append)
        up = task == "classification"
        assert result.steps == STEPS and result.warmup == 2
        assert len([line for line in lines if line.startswith("step")]) == STEPS

        spec_run = result.policies["spec"]
        retrained = [r.step for r in spec_run.records if r.retrain and r.promoted is not None]
        after = [s for s in retrained if s >= SHIFT_STEP]
        assert after and after[0] <= SHIFT_STEP + 1, retrained
        before = range(2, SHIFT_STEP)
        late = range(SHIFT_STEP + 3, STEPS)

        never = result.policies["never"].records
        always = result.policies["always"].records
        sign = 1 if up else -1
        # never decays after the shift; always recovers; spec recovers too
        assert sign * (_metric(never, before) - _metric(never, late)) > 0.3
        assert sign * (_metric(always, before) - _metric(always, late)) < 0.15
        assert sign * (_metric(spec_run.records, late) - _metric(never, late)) > 0.3
        # the spec policy did not retrain every step before the shift (no decay there)
        assert not [s for s in retrained if s < SHIFT_STEP]
        assert all(r.retrain for r in always if r.step >= 2)

        data = report(result, 4)
        assert set(data["policies"]) == {"never", "always", "every_4", "spec"}
        for s in data["policies"].values():
            assert {
                "mean",
                "retrains",
                "promotions",
                "by_quarter",
                "second_half_mean",
                "alarms",
                "alarms_paid_off",
            } <= set(s)
            assert len(s["by_quarter"]) == 4
        assert data["policies"]["never"]["retrains"] == 0
        assert data["policies"]["spec"]["alarms"] >= 1
        for a in data["alarms"]:
            if a["replaced_metric"] is not None and a["retrained_metric"] is not None:
                gain = sign * (a["retrained_metric"] - a["replaced_metric"])
                assert a["paid_off"] == (gain >= ALARM_GAIN - 1e-12)

        json_path, html_path = write_reports(result, tmp_path / "out", 4)
        assert json.loads(json_path.read_text())["model"] == spec.name
        html = html_path.read_text()
        assert (
            "<svg" in html
            and "<script" not in html
            and "http" not in html.replace("http://www.w3.org/2000/svg", "")
        )
        # each policy registered its versions in the replay's own MLflow store
        assert (tmp_path / "work" / "mlflow.db").exists()
        assert result.registry_uri.startswith("sqlite:///" + str(tmp_path))


class TestBadInput:
    def test_too_short_for_the_warm_up(self, tmp_path):
        from modelkeeper.contracts.errors import DataError

        data = _data("classification").head(700)
        with pytest.raises(DataError, match="nothing left to replay"):
            run_backtest(_spec("classification"), data, tmp_path, progress=None)

    def test_missing_timestamp_column(self, tmp_path):
        from modelkeeper.contracts.errors import DataError

        with pytest.raises(DataError, match="no timestamp column 'ts'"):
            run_backtest(
                _spec("classification"), _data("classification").drop(columns="ts"), tmp_path
            )
