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


def _batch(i, statistic, advantage, share, *, run=None, alarm=False, version="2"):
    """The three rows monitor records for one labelled batch (no window: recorded_at)."""
    base = {
        "window_start": None,
        "version": version,
        "run_id": run or f"w{i}",
        "recorded_at": f"2026-03-0{i}T06:00:00+00:00",
    }
    detector = {
        "value": 0.70,
        "statistic": statistic,
        "threshold": 2.3,
        "alarm": alarm,
        "z": 1.0,
        "baseline": 0.71,
        "sd": 0.01,
        "batches": i,
        "note": "",
    }
    shadow = {
        "lo": advantage - 0.008,
        "hi": advantage + 0.008,
        "level": 0.95,
        "champion": 0.70,
        "shadow": 0.70 + advantage,
    }
    return [
        {**_row("detector", "roc_auc", statistic, None), **base, "detail": detector},
        {**_row("evidence", "shadow_advantage", advantage, None), **base, "detail": shadow},
        {**_row("evidence", "drift_share", share, None), **base,
         "detail": {"calibrated_threshold": 0.09}},
    ]  # fmt: skip


# Five labelled batches; the detector alarms on the last, when the shadow is 0.012 better.
BATCHES = [
    row
    for i, (stat, adv, share) in enumerate(
        [(0.0, -0.002, 0.1), (0.4, 0.0, 0.2), (1.1, 0.004, 0.3), (1.9, 0.007, 0.45), (3.1, 0.012, 0.55)],
        start=1,
    )
    for row in _batch(i, stat, adv, share, alarm=stat > 2.3)
]  # fmt: skip
DECISION = {
    "at": "2026-03-05T06:01:00", "event": "decision", "version_before": "2", "version_after": None,
    "who": "scheduler", "run_id": "w5",
    "reason": "retraining pays off: shadow roc_auc 0.700 → 0.712; detector <ALARM>",
    "metrics": {"triggers": ["shadow", "detector"], "champion_metric": 0.70,
                "shadow": {"advantage": 0.012, "lo": 0.004, "hi": 0.020, "level": 0.95},
                "detector": {"statistic": 3.1, "threshold": 2.3},
                "drift": {"share": 0.55, "calibrated_threshold": 0.09}},
}  # fmt: skip
PROMOTED = {
    "at": "2026-03-05T06:09:00", "event": "promotion", "version_before": "2", "version_after": "3",
    "candidate_version": "3", "who": "scheduler", "run_id": "w5",
    "reason": "promoted: roc_auc 0.700 → 0.708 (+0.008 ≥ +0.005, 95% CI [+0.0030, +0.0067])",
}  # fmt: skip


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


class TestRetrainingEvidence:
    @pytest.fixture
    def evidence(self, spec):
        # another run's refusal between them must not be taken for the decision's outcome
        other = {**PROMOTED, "event": "refusal", "run_id": "x", "reason": "refused: other run"}
        return H.model_health(spec, "3", [*EVENTS, DECISION, other, PROMOTED], [*SERIES, *BATCHES])

    def test_one_batch_per_run_with_its_evidence(self, evidence):
        last = evidence.batches[-1]
        assert [b.run_id for b in evidence.batches] == ["w1", "w2", "w3", "w4", "w5"]
        assert (last.statistic, last.threshold, last.alarm) == (3.1, 2.3, True)
        assert (last.advantage, last.lo, last.hi, last.level) == pytest.approx(
            (0.012, 0.004, 0.020, 0.95)
        )
        assert last.needs == 0.005  # the spec's promotion.min_improvement
        assert (last.drift_share, last.drift_by_chance, last.label) == (
            0.55,
            0.09,
            "2026-03-05 06:00",
        )

    def test_a_batch_with_a_window_is_labelled_by_it(self, spec):
        rows = [{**r, "window_start": "2026-02-23T00:00:00"} for r in BATCHES[:3]]
        (batch,) = H.model_health(spec, "2", [], rows).batches
        assert (batch.label, batch.at) == ("2026-02-23 00:00", "2026-03-01T06:00:00+00:00")

    def test_the_charts_draw_every_batch_with_its_threshold_and_interval(self, evidence):
        html = render.model_page(evidence, base="/modelkeeper")
        section = html.split("<section id='retraining-evidence'>")[1].split("</section>")[0]
        assert len(_points(section, "detector statistic")) == 5
        (alarm,) = _points(section, "alarm")  # the one batch over the threshold
        assert "data-window='2026-03-05 06:00' data-value='3.1'" in alarm
        assert "data-series='threshold'/>" in section  # a line without dots
        assert section.count("<path class='interval'") == 5
        assert "data-window='2026-03-05 06:00' data-lo='0.004' data-hi='0.02'" in section
        assert "data-series='gain needed'/>" in section and "with its 95% interval" in section
        assert len(_points(section, "drift share")) == 5 and "data-series='by chance'/>" in section

    def test_a_decision_in_words_with_what_followed(self, evidence):
        html = render.model_page(evidence, base="/modelkeeper")
        (row,) = re.findall(r"<tr data-run='w5'>.*?</tr>", html, re.S)
        assert "<td>v2</td>" in row and "shadow, detector" in row
        assert "shadow +0.0120 [+0.0040, +0.0200]" in row
        assert "detector 3.10 / 2.30" in row and "drift 55% vs 9% by chance" in row
        assert "promoted v3</strong>: roc_auc 0.700 → 0.708" in row
        assert "95% CI [+0.0030, +0.0067]" in row and "other run" not in row
        assert "detector &lt;ALARM&gt;" in row  # the decision's reason, escaped

    def test_a_refusal_and_a_run_that_never_ended(self, spec):
        refused = {**PROMOTED, "event": "refusal", "version_after": "2",
                   "reason": "refused: roc_auc 0.700 → 0.702 (+0.002 < +0.005 required, "
                             "95% CI [-0.0010, +0.0050])"}  # fmt: skip
        later = {**DECISION, "at": "2026-03-12T06:01:00", "run_id": "w6", "metrics": {}}
        h = H.model_health(spec, "2", [DECISION, refused, later], BATCHES)
        assert [d.run_id for d in h.decisions] == ["w6", "w5"]  # newest first
        assert h.decisions[1].followed.interval == "95% CI [-0.0010, +0.0050]"
        html = render.model_page(h, base="/modelkeeper")
        assert "refused v3</strong>: roc_auc 0.700 → 0.702 (+0.002 &lt; +0.005 required" in html
        assert "nothing after it in the trail (the run failed or is still running)" in html
        listed = render.models_page([h], base="/modelkeeper")
        assert "last retrain 2026-03-12: <span class='empty'>nothing after it" in listed

    def test_empty_states_say_what_is_missing(self, spec):
        html = render.model_page(H.model_health(spec, "2", EVENTS, SERIES), base="/modelkeeper")
        section = html.split("<section id='retraining-evidence'>")[1].split("</section>")[0]
        assert "<svg" not in section
        assert "<p class='empty'>no labelled batch measured yet</p>" in section
        assert "no shadow comparison yet: no labelled batch measured yet" in section
        assert "no drift measured on a labelled batch yet" in section
        assert "no retrain decided yet" in section

    def test_a_shadow_turned_off_in_the_spec_says_so(self, spec):
        off = spec.model_copy(
            update={"retrain": spec.retrain.model_copy(update={"shadow": spec.retrain.shadow.model_copy(update={"enabled": False})})}
        )  # fmt: skip
        html = render.model_page(H.model_health(off, "2", [], []), base="/modelkeeper")
        assert "the shadow is turned off (retrain.shadow.enabled)" in html

    def test_every_evidence_text_is_escaped(self, spec):
        decision = {**DECISION, "run_id": XSS, "reason": XSS,
                    "metrics": {**DECISION["metrics"], "triggers": [XSS]}}  # fmt: skip
        outcome = {**PROMOTED, "run_id": XSS, "reason": XSS, "candidate_version": XSS}
        batches = [{**r, "run_id": XSS, "recorded_at": XSS} for r in BATCHES[:3]]
        h = H.model_health(spec, "2", [decision, outcome], batches)
        html = render.model_page(h, base="/modelkeeper")
        assert "<script" not in html.split("</head>")[1]
        assert ESCAPED in html.split("<section id='retraining-evidence'>")[1]


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
