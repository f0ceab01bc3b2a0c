"""The health page's verdict (issue 23 item 13): healthy / degraded / failing from the
spec's thresholds, the monitoring history, the audit trail and the latest runs; and the
unmatched-labels count (item 4) and the Airflow run links (item 16) on the page.

The real flight_delay spec (metric_floor 0.62, drift_share 0.7, cooldown 72 h), rows shaped
as the core's stores return them; pure, no Airflow.
"""

from __future__ import annotations

import pytest

from modelkeeper.contracts.spec import get_spec
from modelkeeper_airflow.ui import health as H
from modelkeeper_airflow.ui import render
from modelkeeper_airflow.ui.verdict import LastRun

PROMOTED = {
    "at": "2026-03-01T00:00:00", "event": "promotion", "version_before": None,
    "version_after": "1", "who": "scheduler", "reason": "first champion",
    "dag_id": "retrain_flight_delay", "run_id": "manual__r1",
}  # fmt: skip


def _row(kind, metric, value, start=None, **kw):
    return {
        "kind": kind, "metric": metric, "value": value, "window_start": start,
        "window_end": None, "version": "1", "run_id": "m1", "dag_id": "monitor_flight_delay",
        "slice_column": None, "recorded_at": "2026-03-20T06:00:00+00:00", **kw,
    }  # fmt: skip


def _alarm(at, status, reason="detector: roc_auc fell"):
    return _row(
        "alarm", "detector", 1.0, recorded_at=at, detail={"status": status, "reason": reason}
    )


WEEKS = ["2026-03-02", "2026-03-09", "2026-03-16"]


def _health(series, events=(PROMOTED,), last_runs=(), champion="1"):
    return H.model_health(
        get_spec("flight_delay"), champion, list(events), series, last_runs=list(last_runs)
    )


def _realized(values, kind="realized"):
    return [_row(kind, "roc_auc", v, w) for w, v in zip(WEEKS, values, strict=True)]


class TestVerdict:
    @pytest.mark.parametrize(
        ("series", "last_runs", "level", "since", "words"),
        [
            pytest.param(_realized([0.70, 0.69, 0.68]), [], "healthy", "2026-03-01T00:00:00", "", id="healthy"),
            pytest.param(
                _realized([0.70, 0.60, 0.58]), [], "failing", "2026-03-09",
                "realized roc_auc 0.580 below the floor 0.62 (windows from 2026-03-09 on)",
                id="realized-below-floor",
            ),
            pytest.param(
                _realized([0.60, 0.70, 0.69]), [], "healthy", "2026-03-01T00:00:00", "",
                id="recovered",
            ),
            pytest.param(
                _realized([0.70, 0.70, 0.61], kind="estimated"), [], "degraded", "2026-03-16",
                "estimated roc_auc 0.610 below the floor 0.62", id="estimate-below-floor",
            ),
            pytest.param(
                [_alarm("2026-03-10T06:00:00+00:00", "fired")], [], "degraded",
                "2026-03-10T06:00:00+00:00", "1 open alarm(s), not yet answered by a retrain",
                id="open-alarm",
            ),
            pytest.param(
                [_alarm("2026-02-10T06:00:00+00:00", "fired"),
                 _alarm("2026-03-10T06:00:00+00:00", "suppressed")], [], "degraded",
                "2026-03-10T06:00:00+00:00", "1 alarm(s) suppressed by the cooldown (72 h)",
                id="suppressed-after-an-answered-alarm",
            ),
            pytest.param(
                [*_realized([0.7] * 3), _alarm("2026-02-10T06:00:00+00:00", "fired")], [], "healthy",
                "2026-03-01T00:00:00", "", id="alarm-answered-by-the-promotion",
            ),
            pytest.param(
                [_row("drift", "drift_share", 0.8, "2026-03-16")], [], "degraded", "2026-03-16",
                "drift share 80% ≥ 70% in the latest scored batch", id="drift",
            ),
            pytest.param(
                _realized([0.70, 0.70, 0.70]),
                [LastRun("score_flight_delay", "manual__s9", "failed", "2026-03-21T08:00:00",
                         "http://af:9/dags/score_flight_delay/runs/manual__s9"),
                 LastRun("monitor_flight_delay", "manual__m9", "success", "2026-03-21T09:00:00")],
                "failing", "2026-03-21T08:00:00", "the latest run of score_flight_delay failed",
                id="failed-last-run",
            ),
        ],
    )  # fmt: skip
    def test_cases(self, series, last_runs, level, since, words):
        v = _health(series, last_runs=last_runs).verdict
        assert (v.level, v.since) == (level, since), v.conditions
        assert words in " / ".join(c.text for c in v.conditions)
        if level == "healthy":
            assert v.conditions == []

    def test_no_champion_is_degraded_but_an_unknown_one_decides_nothing(self):
        assert _health([], events=(), champion=None).verdict.level == "degraded"
        spec = get_spec("flight_delay")
        unknown = H.model_health(spec, None, [], _realized([0.7] * 3), notice="registry down")
        assert unknown.verdict.level == "healthy"

    def test_nothing_measured_yet_is_no_verdict(self):
        """A new model with a champion but no measurement is not called healthy."""
        v = _health([]).verdict
        assert (v.level, v.conditions, v.color) == ("unknown", [], "#777")

    def test_the_rule_names_the_spec_s_thresholds(self):
        rule = " ".join(_health([]).verdict.rule)
        for words in ("below the floor 0.62 (monitoring.metric_floor)", "at least 70%", "72 h"):
            assert words in rule


class TestPage:
    def test_verdict_unmatched_labels_and_run_links(self):
        series = [
            *_realized([0.70, 0.60, 0.58]),
            _alarm("2026-03-10T06:00:00+00:00", "fired"),
            _row("labels", "unmatched", 7.0, WEEKS[0], rows=120, run_id="manual__m9"),
            _row("scoring", "rows", 900.0, WEEKS[2], run_id="manual__s9", dag_id="score_flight_delay"),
        ]  # fmt: skip
        h = _health(series)
        assert h.unmatched == H.Unmatched(
            7, 120, "2026-03-20T06:00:00+00:00", "manual__m9", "monitor_flight_delay"
        )

        def run_url(dag_id, run_id):
            return f"http://af:9/dags/{dag_id}/runs/{run_id}"

        page = render.model_page(h, base="/modelkeeper", run_url=run_url)
        assert "data-verdict='failing'" in page and "since 2026-03-09" in page
        assert "7 of 120 labels match no prediction" in page
        assert "<tr data-alarm='open'>" in page
        for dag_id, run_id in (
            ("retrain_flight_delay", "manual__r1"),  # audit timeline and v1's row
            ("score_flight_delay", "manual__s9"),  # scoring table
            ("monitor_flight_delay", "manual__m9"),  # the unmatched count's run
        ):
            assert f"href='http://af:9/dags/{dag_id}/runs/{run_id}'" in page, dag_id
        listing = render.models_page([h], base="/modelkeeper", run_url=run_url)
        assert "data-verdict='failing'" in listing and "7 labels match no prediction" in listing
