"""An estimate from a few rows never stands for a window (issue 23 item 6).

A champion is trained, promoted and put to work by the stages the DAGs call (real GX,
a local MLflow store, a SQLite history; test_measure's synthetic classifier). It scores a
whole week, then the first 3 rows of the next; monitor_<model> measures after each. The
health page's windows (plugins' ui.health, shaped from the real history) must show the
week's estimate, from all its rows: an estimate carries its row count, a minimum sample
(`labels.min_rows`) applies, and a smaller sample never replaces a larger one.
The same world shows the labels' deadline (issue 23 item 12): predictions still unlabelled
`labels.expected_delay_days` after scoring are overdue (tests/operators/test_deadlines.py
has the owner's e-mail).
"""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from tests.core.test_measure import ROWS, _monitor, _retrain, _serve, _spec, _start, _week
from tests.core.test_measure import _workspace as workspace


@pytest.fixture(scope="module")
def served(tmp_path_factory, _mlflow_template):
    spec = _spec("classification")
    base = tmp_path_factory.mktemp("estimates")
    shutil.copyfile(_mlflow_template, base / "mlflow.db")  # migrated already: ~5 s saved
    ws = workspace(spec, base)
    weeks = {w: _week("classification", w) for w in range(4)}
    version = _retrain(ws, pd.concat([weeks[0], weeks[1]]), "first")
    _serve(ws, weeks[2], "score_2")
    whole, _ = _monitor(ws, "monitor_2")
    _serve(ws, weeks[3].head(3), "score_3")
    few, _ = _monitor(ws, "monitor_3")
    return {"ws": ws, "version": version, "whole": whole, "few": few}


def _estimates(ws) -> list[dict]:  # noqa: ANN001
    primary = ws.spec.metrics.primary
    return [
        r
        for r in ws.history.series(ws.spec.name, kind="estimated", metric=primary)
        if r["slice_column"] is None
    ]


class TestEstimateSample:
    def test_an_estimate_carries_its_rows_and_needs_the_minimum_sample(self, served):
        ws = served["ws"]
        minimum = ws.spec.labels.min_rows
        recorded = _estimates(ws)
        assert recorded, "the whole week was estimated"
        assert all(r["rows"] >= minimum for r in recorded), [
            (r["window_start"][:10], r["rows"], r["value"]) for r in recorded
        ]
        assert {r["window_start"] for r in recorded} == {_start(2)}
        # the 3-row week is measured by nobody: no estimate, so no alarm can read one
        few = [m for m in served["few"].measurements if m["kind"] == "estimated"]
        assert all(m["rows"] >= minimum for m in few)

    def test_the_health_page_shows_the_estimate_of_the_most_rows(self, served):
        """The week's estimate from 700 rows stays the number for that week, and the newest
        week shown, even after a later version estimated 3 rows of the same week."""
        from modelkeeper.contracts.results import Measurement
        from modelkeeper_airflow.ui.health import windows

        ws = served["ws"]
        primary = ws.spec.metrics.primary
        week = [r for r in _estimates(ws) if r["window_start"] == _start(2)]
        assert {r["rows"] for r in week} == {ROWS}  # measured whole by both monitor runs
        whole = week[-1]
        late = Measurement(
            ws.spec.name,
            "estimated",
            primary,
            0.5,
            version="2",
            window_start=whole["window_start"],
            window_end=whole["window_end"],
            rows=3,
            run_id="monitor_late",
            dag_id="monitor_test",
        )
        ws.history.record([late])
        shown = windows(ws.history.series(ws.spec.name), primary)
        estimated = [w for w in shown if w.estimated is not None]
        assert estimated[-1].start == _start(2)
        assert estimated[-1].estimated == pytest.approx(whole["value"])
        assert estimated[-1].version == served["version"]


class TestLabelsDeadline:
    def test_predictions_unlabelled_past_the_expected_delay_are_overdue(self, served):
        """Nothing is overdue before labels.expected_delay_days have passed since scoring;
        after, every prediction still without its label is, until its label lands."""
        from datetime import UTC, datetime, timedelta

        from modelkeeper.stages.measure import measure
        from modelkeeper.stages.workspace import Run
        from tests.core.test_measure import _labels

        ws = served["ws"]
        delay = timedelta(days=ws.spec.labels.expected_delay_days)
        now = datetime.now(UTC)
        run = Run(run_id="monitor_deadline", dag_id="monitor_test")
        assert measure(ws, run, now=now).overdue == 0
        late = measure(ws, run, now=now + delay + timedelta(hours=1))
        assert late.overdue == ROWS + 3 and late.overdue_since is not None
        _labels(ws, _week("classification", 2), "labels_2")
        after = measure(ws, Run(run_id="monitor_after", dag_id="monitor_test"), now=now + 2 * delay)
        assert after.overdue == 3  # week 3's first rows: their labels are still to come
        recorded = ws.history.series(ws.spec.name, kind="deadline", metric="labels_overdue")
        assert [r["value"] for r in recorded][-1] == 3
