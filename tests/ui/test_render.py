"""The health pages' data shaping and HTML, from rows like the core returns (no Airflow)."""

from __future__ import annotations

import dataclasses
import math
import re

import pytest

from modelkeeper_airflow.ui import health as H
from modelkeeper_airflow.ui import render


def _row(kind, metric, value, start, run="r1", version="2", **kw):
    return {
        "kind": kind,
        "metric": metric,
        "value": value,
        "window_start": start,
        "window_end": None,
        "version": version,
        "run_id": run,
        "slice_column": None,
        **kw,
    }


EVENTS = [
    {"at": "2026-01-01T00:00:00", "event": "promotion", "version_before": None,
     "version_after": "1", "who": "scheduler", "reason": "first champion", "run_id": "a"},
    {"at": "2026-02-01T00:00:00", "event": "refusal", "version_before": "1",
     "version_after": "1", "who": "scheduler", "reason": "roc_auc <0.70> & worse",
     "run_id": "b"},
    {"at": "2026-03-01T00:00:00", "event": "promotion", "version_before": "1",
     "version_after": "2", "who": "ann", "reason": "beats v1 by 0.02", "run_id": "c"},
]  # fmt: skip
SERIES = [
    _row("realized", "roc_auc", 0.71, "2026-03-01"),
    _row("estimated", "roc_auc", 0.70, "2026-03-01"),
    _row("realized", "roc_auc", 0.99, "2026-03-01", slice_column="carrier"),  # a slice: not shown
    _row("estimated", "roc_auc", 0.69, "2026-03-08"),
    _row("realized", "roc_auc", 0.72, "2026-03-08", run="r2"),  # re-measured later: wins
    _row("estimated", "roc_auc", 0.68, "2026-03-15"),  # labels not in yet
    _row("drift", "drift_share", 0.1, "2026-03-01"),
    _row("drift", "drift_share", 0.4, "2026-03-08", run="r2"),
    _row("scoring", "rows", 1200, "2026-03-01"),
    _row("scoring", "failed_rows", 0, "2026-03-01"),
    _row("scoring", "rows", 900, "2026-03-08", run="r2"),
]


XSS = "<script>alert('x')</script>"
ESCAPED = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"


@pytest.fixture
def health(spec):
    return H.model_health(spec, "2", EVENTS, SERIES)


def _points(html, series):
    return re.findall(rf"<circle class='point'[^>]*data-series='{series}'[^>]*>", html)


class TestHealth:
    def test_champion_since_the_last_alias_move(self, health):
        assert (health.champion, health.champion_since, health.trail_agrees) == (
            "2",
            "2026-03-01T00:00:00",
            True,
        )

    def test_an_alias_moved_outside_the_trail_has_no_since(self, spec):
        h = H.model_health(spec, "7", EVENTS, [])
        assert (h.champion_since, h.trail_agrees) == (None, False)

    def test_one_window_per_start_and_the_latest_measurement_wins(self, health):
        assert [(w.start, w.realized, w.estimated) for w in health.windows] == [
            ("2026-03-01", 0.71, 0.70),
            ("2026-03-08", 0.72, 0.69),
            ("2026-03-15", None, 0.68),
        ]
        assert (health.latest("realized"), health.latest("estimated"), health.latest_drift) == (
            0.72,
            0.68,
            0.4,
        )

    def test_scoring_numbers_per_run(self, health):
        assert [(s.run_id, s.numbers) for s in health.scoring] == [
            ("r1", {"rows": 1200, "failed_rows": 0}),
            ("r2", {"rows": 900}),
        ]


class TestModelPage:
    def test_champion_timeline_and_charts(self, health):
        html = render.model_page(health, base="/modelkeeper")
        assert "v2 since 2026-03-01T00:00:00" in html
        assert "roc_auc &lt;0.70&gt; &amp; worse" in html  # the reason, escaped
        assert "<0.70>" not in html
        assert html.count("<svg") == 3  # metric, drift, scored rows (no latency measured)
        assert len(_points(html, "rows")) == 2
        assert len(_points(html, "realized")) == 2  # one per window that has labels
        assert len(_points(html, "estimated")) == 3  # one per window
        assert len(_points(html, "drift share")) == 2
        assert html.index("beats v1") < html.index("first champion")  # newest first
        assert "none → v1" in html and "v1 → v2" in html
        assert "1200" in html and "900" in html

    def test_empty_history_says_so(self, spec):
        html = render.model_page(H.model_health(spec, None, [], []), base="/modelkeeper")
        assert render.EMPTY in html
        assert "<svg" not in html
        assert "no audit events yet" in html

    def test_an_unknown_champion_says_why(self, spec):
        h = H.model_health(spec, None, EVENTS, [], notice="champion unknown: <down>")
        html = render.model_page(h, base="/modelkeeper")
        assert "champion unknown: &lt;down&gt;" in html
        assert "alias moved outside" not in html

    @pytest.mark.parametrize(
        "text",
        [
            pytest.param("<script>alert(1)</script>", id="tag"),
            pytest.param("' onmouseover='x", id="attribute-quote"),
        ],
    )
    def test_every_text_is_escaped(self, spec, text):
        event = {**EVENTS[0], "reason": text, "who": text, "run_id": text}
        h = H.model_health(spec, "1", [event], [_row("drift", "drift_share", 0.2, text)])
        html = render.model_page(h, base="/modelkeeper")
        assert text not in html

    def test_the_models_own_texts_are_escaped(self, health):
        h = dataclasses.replace(health, name=XSS, description=XSS, owner=XSS, primary=XSS)
        html = render.model_page(h, base="/modelkeeper")
        assert "<script" not in html.split("</head>")[1]  # only the page's own script
        assert f"<h1>{ESCAPED}</h1>" in html and f"<title>{ESCAPED}: model health" in html

    def test_a_nan_measurement_is_a_gap_not_a_crash(self, spec):
        series = [*SERIES, _row("realized", "roc_auc", math.nan, "2026-03-15", run="r3")]
        html = render.model_page(H.model_health(spec, "2", EVENTS, series), base="/modelkeeper")
        assert len(_points(html, "realized")) == 2 and "nan" not in html.lower()


class TestModelsPage:
    def test_lists_models_with_a_link_trend_and_latest_numbers(self, health):
        html = render.models_page([health], base="/modelkeeper")
        assert "href='/modelkeeper/models/flight_delay'" in html
        assert "ml-platform@example.com" in html
        assert "v2 since 2026-03-01" in html
        assert "0.720" in html and "0.680" in html and "0.40" in html
        assert "class='spark'" in html

    def test_every_text_is_escaped(self, health):
        h = dataclasses.replace(
            health, name=XSS, description=XSS, notice=XSS, primary=XSS, owner=XSS
        )
        html = render.models_page([h], base="/modelkeeper")
        assert "<script" not in html.split("</head>")[1]
        assert "href='/modelkeeper/models/%3Cscript%3E" in html  # the link's path is quoted
        assert html.count(ESCAPED) == 6  # row, link, description, owner, champion, primary

    def test_nothing_readable(self):
        assert "No models you may read." in render.models_page([], base="/modelkeeper")


class TestNotAModelPage:
    def test_the_dag_id_is_escaped(self):
        html = render.not_a_model_page(XSS, base="/modelkeeper")
        assert "<script" not in html.split("</head>")[1]
        assert f"DAG {ESCAPED} belongs to no model you may read." in html
