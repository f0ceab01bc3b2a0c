"""HTML through Jinja with autoescape: the chart, the environment and the core's pages."""

from __future__ import annotations

import math
import re
import tomllib
from pathlib import Path

import pytest
from jinja2 import UndefinedError

from modelkeeper.backtest.report import render_html as backtest_html
from modelkeeper.modeling.modelcard import render_html as card_html
from modelkeeper.reporting.charts import Series, line_chart
from modelkeeper.reporting.render import environment, render

ROOT = Path(__file__).resolve().parents[2]
XSS = "<script>alert('x')</script>"


def _svg(chart) -> str:
    macro = '{% from "charts.html.j2" import line_chart %}{{ line_chart(c, "nothing") }}'
    return environment().from_string(macro).render(c=chart)


def _dots(html: str, series: str) -> list[str]:
    return re.findall(rf"<circle class='point'[^>]*data-series='{series}'[^>]*>", html)


class TestLineChart:
    @pytest.mark.parametrize(
        ("labels", "values"),
        [
            pytest.param([], [], id="no-labels"),
            pytest.param(["w1", "w2"], [None, None], id="all-none"),
            pytest.param(["w1", "w2"], [math.nan, math.inf], id="all-nan-or-inf"),
        ],
    )
    def test_nothing_to_draw_says_so(self, labels, values):
        chart = line_chart(labels, [Series("s", values)])
        assert chart.empty
        html = _svg(chart)
        assert "<svg" not in html and "<p class='empty'>nothing</p>" in html

    def test_a_single_point_sits_in_the_middle(self):
        chart = line_chart(["2026-03-01"], [Series("s", [0.7])], width=200, height=100)
        ((point,),) = [line.points for line in chart.lines]
        assert point.x == pytest.approx(48 + (200 - 48 - 12) / 2)
        assert 10 < point.y < 100 - 28  # a flat range is widened around the value
        assert [t.anchor for t in chart.x_ticks] == ["middle"]
        html = _svg(chart)
        assert len(_dots(html, "s")) == 1
        assert "data-window='2026-03-01' data-value='0.7'" in html

    def test_nan_and_none_are_gaps(self):
        chart = line_chart(["a", "b", "c", "d"], [Series("s", [0.1, math.nan, None, 0.3])])
        (line,) = chart.lines
        assert [p.label for p in line.points] == ["a", "d"]
        assert [t.text for t in chart.y_ticks] == ["0.300", "0.200", "0.100"]
        html = _svg(chart)
        assert "nan" not in html.lower() and len(_dots(html, "s")) == 2

    def test_only_marked_positions_get_a_dot(self):
        chart = line_chart(["a", "b", "c"], [Series("s", [1.0, 2.0, 3.0], marked={1})])
        (line,) = chart.lines
        assert len(line.points) == 3 and [p.label for p in line.dots] == ["b"]

    def test_intervals_are_whiskers_inside_the_axis_range(self):
        chart = line_chart(
            ["a", "b", "c"],
            [Series("s", [0.01, 0.02, None], lo=[-0.01, None, 0.0], hi=[0.03, 0.04, 0.05])],
            height=100,
        )
        (line,) = chart.lines
        # b lacks its lower end and c its value: only a's interval is drawn
        ((whisker, point),) = [(w, p) for w in line.whiskers for p in line.points if p.label == "a"]
        assert (whisker.label, whisker.lo, whisker.hi) == ("a", -0.01, 0.03)
        assert whisker.y_hi < point.y < whisker.y_lo  # higher values sit higher
        # the drawn interval widens the axis; the ends of undrawn ones do not
        assert [t.text for t in chart.y_ticks] == ["0.030", "0.010", "-0.010"]
        html = _svg(chart)
        assert html.count("<path class='interval'") == 1
        assert "data-window='a' data-lo='-0.01' data-hi='0.03'" in html

    def test_marks_only_have_dots_and_no_line(self):
        chart = line_chart(
            ["a", "b", "c"],
            [Series("s", [1.0, 2.0, 3.0]), Series("alarm", [None, 2.0, 3.0], joined=False)],
        )
        html = _svg(chart)
        assert "<polyline" in html and "data-series='alarm'/>" not in html
        assert len(_dots(html, "alarm")) == 2
        assert "r='5.1' fill" in html  # marks drawn larger than the line's dots

    def test_a_sparkline_has_no_axes_or_legend(self):
        chart = line_chart(["a", "b"], [Series("s", [1.0, 2.0])], small=True)
        html = _svg(chart)
        assert "class='spark'" in html and "<text" not in html and "legend" not in html

    def test_names_and_labels_are_escaped(self):
        chart = line_chart([XSS, "' onload='x"], [Series(XSS, [1.0, 2.0]), Series("s", [None, 3])])
        html = _svg(chart)
        assert "<script" not in html and "' onload" not in html
        assert "&lt;script&gt;" in html and "&#39; onload=&#39;x" in html


class TestEnvironment:
    def test_autoescape_is_on(self):
        assert environment().from_string("{{ x }}").render(x=XSS) == (
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"
        )

    def test_a_missing_name_raises(self):
        with pytest.raises(UndefinedError, match="body"):
            render("model_card.html.j2", title="t")

    def test_every_template_is_package_data(self):
        """A non-editable install carries only what [tool.setuptools.package-data] names."""
        config = tomllib.loads((ROOT / "pyproject.toml").read_text())
        patterns = config["tool"]["setuptools"]["package-data"]["modelkeeper"]
        package = ROOT / "include" / "modelkeeper"
        shipped = {p for pattern in patterns for p in package.glob(pattern)}
        templates = set((package / "reporting" / "templates").iterdir())
        assert templates and templates <= shipped


def _backtest(model: str = XSS) -> dict:
    def record(step, metric, **kw):
        return {
            "step": step, "start": "2024-01-15T00:00:00", "rows": 700, "champion_version": "1",
            "metric": metric, "drift_share": None, "retrain": False, "promoted": None,
            "retrain_reason": f"no retrain {XSS}", "gate_reason": "", "train_seconds": 0.0,
            "alarm": None, **kw,
        }  # fmt: skip

    return {
        "model": model, "steps": 4, "primary": "roc_auc", "step_days": 7, "warmup_steps": 1,
        "origin": "2024-01-01T00:00:00", "seconds": 1.5, "windows": {},
        "targets": [{"target": f"target {XSS}", "value": 0.5, "met": False}],
        "policies": {"spec": {"mean": 0.8, "retrains": 1, "by_quarter": [0.9, 0.7]}},
        "records": {
            "spec": [
                record(1, 0.9),
                record(2, math.nan, retrain=True, promoted=True),
                record(3, 0.7, retrain=True, promoted=True),
            ]
        },
        "alarms": [
            {"step": 2, "kind": "decay", "reason": XSS, "replaced_metric": 0.1,
             "retrained_metric": None, "paid_off": False, "promoted": True},
        ],
    }  # fmt: skip


class TestBacktestReport:
    def test_every_text_is_escaped(self):
        html = backtest_html(_backtest())
        assert "<script" not in html
        assert html.count("&lt;script&gt;") >= 6  # title, heading, target, alarm, 3 records

    def test_charts_and_tables(self):
        html = backtest_html(_backtest("flights"))
        assert "http" not in html.replace("http://www.w3.org/2000/svg", "")
        assert html.count("<svg") == 1  # the metric; no drift measured: no drift chart
        assert "share of drifted columns (circles: alarm)</h3>\n<p class='empty'>no values" in html
        # a dot where retrained and promoted and the metric is a number (step 3 only)
        assert [d.split("data-window='")[1][:6] for d in _dots(html, "spec")] == ["step 4"]
        assert "<td>spec</td><td>0.8000</td><td>—</td><td>—</td><td>1</td>" in html
        assert "<td>0.900, 0.700</td>" in html


class TestModelCard:
    def test_markdown_becomes_html_and_raw_html_stays_text(self):
        markdown = (
            f"# Card\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n{XSS} <img src=x onerror=alert(1)>"
        )
        html = card_html(markdown, f"flights v1 {XSS}")
        assert "<h1>Card</h1>" in html and "<table>" in html
        assert "<script" not in html and "<img" not in html
        assert "<title>flights v1 &lt;script&gt;" in html
