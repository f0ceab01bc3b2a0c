"""Model health as HTML with inline SVG charts: server-side, no JavaScript, no CDN.

Pure functions from ui.health's dataclasses to strings; every text that comes from data
goes through html.escape. Chart points are <circle class="point" data-series=...
data-window=...> elements, one per window, so tests (and a browser) can count them.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from urllib.parse import quote

from modelkeeper_airflow.ui.health import ModelHealth

EMPTY = "no measurements yet"
COLORS = {
    "realized": "#1f6fb4",
    "estimated": "#e07b00",
    "drift share": "#c0392b",
    "rows": "#2e7d32",
    "p95 ms/1k": "#6a1b9a",
    "p50 ms/1k": "#b07cc6",
}

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.2rem;color:#222}
table{border-collapse:collapse;margin:.5rem 0 1.2rem}
th,td{border-bottom:1px solid #ddd;padding:.3rem .6rem;text-align:left;vertical-align:top}
th{background:#f4f6f8}.num{text-align:right;font-variant-numeric:tabular-nums}
.empty{color:#777;font-style:italic}.warn{color:#b03a2e}
.event{font-weight:600}.legend span{margin-right:1rem}
svg{background:#fbfcfd;border:1px solid #e3e6ea}
.grid td.cell{width:1.1rem;height:1.1rem;padding:0;border:1px solid #fff}
.cell.drifted{background:#c0392b}.cell.stable{background:#cfe3d3}.cell.unknown{background:#eee}
.links a{margin-right:.6rem}
"""

# Inside the Airflow UI the pages sit in a sandboxed iframe with no popups and no top
# navigation, and MLflow refuses to be framed: a link marked data-external opens in a
# new tab through an anchor in the (same-origin) parent page instead.
_SCRIPT = """
if (window.top !== window) {
  document.addEventListener('click', function (e) {
    var a = e.target.closest && e.target.closest('a[data-external]');
    if (!a) return;
    try {
      var top = window.top.document, t = top.createElement('a');
      t.href = a.href; t.target = '_blank'; t.rel = 'noopener';
      top.body.appendChild(t); t.click(); t.remove(); e.preventDefault();
    } catch (err) { /* not same-origin: let the browser try */ }
  });
}
"""


def _t(value: object) -> str:
    """Any value as escaped text; None as a dash."""
    return "—" if value is None else escape(str(value))


def _version(value: object) -> str:
    return "none" if value is None else f"v{escape(str(value))}"


def _num(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><style>{_STYLE}</style>"
        f"<script>{_SCRIPT}</script></head>"
        f"<body>{body}</body></html>"
    )


def _axis(value: float) -> str:
    """An axis label: metrics with three decimals, counts and milliseconds as integers."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3f}"


def chart(
    labels: Sequence[str],
    series: dict[str, Sequence[float | None]],
    *,
    width: int = 640,
    height: int = 200,
    small: bool = False,
) -> str:
    """A line chart: one polyline and one circle per present value of each series.

    `labels` name the x positions (windows); each series has one value (or None) per
    label. Nothing to draw gives the "no measurements yet" text instead of an empty box.
    """
    values = [v for vs in series.values() for v in vs if v is not None]
    if not labels or not values:
        return f"<p class='empty'>{EMPTY}</p>"
    pad_l, pad_r, pad_t, pad_b = (4, 4, 4, 4) if small else (48, 12, 10, 28)
    lo, hi = min(values), max(values)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5 if lo == 0 else lo * 0.95, hi + 0.5 if hi == 0 else hi * 1.05
    span_x = max(len(labels) - 1, 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        x = pad_l + (width - pad_l - pad_r) * (i / span_x if len(labels) > 1 else 0.5)
        y = pad_t + (height - pad_t - pad_b) * (1 - (v - lo) / (hi - lo))
        return round(x, 1), round(y, 1)

    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"viewBox='0 0 {width} {height}' role='img' class='{'spark' if small else 'chart'}'>"
    ]
    if not small:
        parts.append(
            f"<text x='2' y='{pad_t + 8}' font-size='10'>{_axis(hi)}</text>"
            f"<text x='2' y='{height - pad_b}' font-size='10'>{_axis(lo)}</text>"
            f"<text x='{pad_l}' y='{height - 8}' font-size='10'>{escape(labels[0][:10])}</text>"
            f"<text x='{width - pad_r}' y='{height - 8}' font-size='10' text-anchor='end'>"
            f"{escape(labels[-1][:10])}</text>"
        )
    for name, vs in series.items():
        color = COLORS.get(name, "#555")
        pts = [(i, xy(i, v), v) for i, v in enumerate(vs) if v is not None]
        if not pts:
            continue
        dash = " stroke-dasharray='4 3'" if name == "estimated" else ""
        line = " ".join(f"{x},{y}" for _, (x, y), _ in pts)
        parts.append(
            f"<polyline fill='none' stroke='{color}' stroke-width='{1.5 if small else 2}'"
            f"{dash} points='{line}' data-series='{escape(name)}'/>"
        )
        r = 1.5 if small else 3
        for i, (x, y), v in pts:
            label = escape(labels[i])
            parts.append(
                f"<circle class='point' cx='{x}' cy='{y}' r='{r}' fill='{color}' "
                f"data-series='{escape(name)}' data-window='{label}' data-value='{v:.6g}'>"
                f"<title>{escape(name)} {label}: {v:.4f}</title></circle>"
            )
    parts.append("</svg>")
    if not small:
        parts.append(
            "<div class='legend'>"
            + "".join(
                f"<span style='color:{COLORS.get(n, '#555')}'>&#9679; {escape(n)}</span>"
                for n in series
            )
            + "</div>"
        )
    return "".join(parts)


def _metric_chart(health: ModelHealth, *, small: bool = False) -> str:
    ws = health.windows
    return chart(
        [w.start for w in ws],
        {"realized": [w.realized for w in ws], "estimated": [w.estimated for w in ws]},
        small=small,
        **({"width": 160, "height": 36} if small else {}),
    )


def _champion(health: ModelHealth) -> str:
    if health.notice:
        return f"<span class='warn notice'>{_t(health.notice)}</span>"
    if health.champion is None:
        return "none"
    text = f"v{_t(health.champion)}"
    if health.champion_since:
        text += f" since {_t(health.champion_since)}"
    elif not health.trail_agrees:
        text += (
            " <span class='warn'>(not in the audit trail: alias moved outside modelkeeper?)</span>"
        )
    return text


def models_page(models: Sequence[ModelHealth], *, base: str) -> str:
    """The list of models the caller may read; `base` is the app's mount path."""
    if not models:
        body = "<p class='empty'>No models you may read.</p>"
    else:
        rows = []
        for m in models:
            href = escape(f"{base}/models/{quote(m.name)}")
            rows.append(
                f"<tr data-model='{escape(m.name)}'><td><a href='{href}'>{_t(m.name)}</a>"
                f"<br><small>{_t(m.description)}</small></td>"
                f"<td>{_t(m.owner)}</td><td>{_champion(m)}</td>"
                f"<td class='num'>{_num(m.latest_drift, 2)}</td>"
                f"<td class='num'>{_num(m.latest('realized'))}</td>"
                f"<td class='num'>{_num(m.latest('estimated'))}</td>"
                f"<td>{_t(m.primary)}<br>{_metric_chart(m, small=True)}</td></tr>"
            )
        body = (
            "<table><tr><th>Model</th><th>Owner</th><th>Champion</th><th>Drift share</th>"
            "<th>Realized</th><th>Estimated</th><th>Primary metric trend</th></tr>"
            + "".join(rows)
            + "</table>"
        )
    return _page("Models", "<h1>Models</h1>" + body)


def _timeline(health: ModelHealth) -> str:
    if not health.events:
        return "<p class='empty'>no audit events yet</p>"
    rows = []
    for e in health.events:
        move = ""
        if e.get("version_before") or e.get("version_after"):
            move = f"{_version(e.get('version_before'))} → {_version(e.get('version_after'))}"
        elif e.get("candidate_version"):
            move = f"candidate v{_t(e.get('candidate_version'))}"
        rows.append(
            f"<tr data-event='{escape(str(e['event']))}'><td>{_t(e['at'])}</td>"
            f"<td class='event'>{_t(e['event'])}</td><td>{move}</td><td>{_t(e.get('who'))}</td>"
            f"<td class='reason'>{_t(e.get('reason'))}</td><td><small>{_t(e.get('run_id'))}"
            "</small></td></tr>"
        )
    return (
        "<table><tr><th>At</th><th>Event</th><th>Version</th><th>Who</th><th>Reason</th>"
        "<th>Run</th></tr>" + "".join(rows) + "</table>"
    )


def _scoring(health: ModelHealth) -> str:
    if not health.scoring:
        return f"<p class='empty'>{EMPTY}</p>"
    rows = "".join(
        f"<tr><td><small>{_t(s.run_id)}</small></td><td>v{_t(s.version)}</td>"
        f"<td>{_t(s.start)} – {_t(s.end)}</td>"
        f"<td class='num'>{_num(s.numbers.get('rows'), 0)}</td>"
        f"<td class='num'>{_num(s.numbers.get('failed_rows'), 0)}</td>"
        f"<td class='num'>{_num(s.numbers.get('p50_ms_per_1k'), 1)}</td>"
        f"<td class='num'>{_num(s.numbers.get('p95_ms_per_1k'), 1)}</td></tr>"
        for s in health.scoring
    )
    return (
        "<table><tr><th>Run</th><th>Version</th><th>Window</th><th>Rows</th><th>Failed</th>"
        "<th>p50 ms/1k</th><th>p95 ms/1k</th></tr>" + rows + "</table>"
    )


def _scoring_charts(health: ModelHealth) -> str:
    runs = health.scoring
    labels = [s.start or s.run_id for s in runs]
    volume = chart(labels, {"rows": [s.numbers.get("rows") for s in runs]}, height=160)
    latency = chart(
        labels,
        {k: [s.numbers.get(k.replace(" ms/1k", "_ms_per_1k")) for s in runs]
         for k in ("p50 ms/1k", "p95 ms/1k")},
        height=160,
    )  # fmt: skip
    return (
        "<h3>Scored rows per run</h3>" + volume + "<h3>Scoring latency (ms per 1,000 rows)</h3>"
        + latency
    )  # fmt: skip


def _column_grid(health: ModelHealth) -> str:
    cols = health.columns
    if not cols.columns:
        return f"<p class='empty'>{EMPTY}</p>"
    head = "".join(
        f"<th title='{escape(w)}'><small>{escape(w[5:10] or w)}</small></th>" for w in cols.windows
    )
    rows = []
    for column, flags in cols.columns:
        cells = "".join(
            f"<td class='cell {'unknown' if f is None else 'drifted' if f else 'stable'}' "
            f"data-column='{escape(column)}' data-window='{escape(w)}' "
            f"title='{escape(column)} {escape(w)}: "
            f"{'not measured' if f is None else 'drifted' if f else 'no drift'}'></td>"
            for w, f in zip(cols.windows, flags, strict=True)
        )
        count = sum(1 for f in flags if f)
        rows.append(
            f"<tr><td>{_t(column)}</td>{cells}<td class='num'>{count}/{len(flags)}</td></tr>"
        )
    return (
        "<table class='grid'><tr><th>Column</th>" + head + "<th>Drifted</th></tr>"
        + "".join(rows) + "</table>"
        "<p class='legend'><span style='color:#c0392b'>&#9632; drifted</span>"
        "<span style='color:#8fbf98'>&#9632; no drift</span></p>"
    )  # fmt: skip


def _versions(health: ModelHealth) -> str:
    if not health.versions:
        return "<p class='empty'>no versions in the audit trail yet</p>"
    rows = []
    for v in health.versions:
        links = " ".join(
            f"<a href='{escape(url)}'"
            + (" data-external='1' target='_blank' rel='noopener'" if "://" in url else "")
            + f">{escape(label)}</a>"
            for label, url in v.links.items()
        )
        champion = " <strong>(champion)</strong>" if v.version == health.champion else ""
        rows.append(
            f"<tr data-version='{escape(v.version)}'><td>v{_t(v.version)}{champion}</td>"
            f"<td>{_t(v.event)}</td><td>{_t(v.at)}</td><td class='reason'>{_t(v.reason)}</td>"
            f"<td class='links'>{links or '—'}</td></tr>"
        )
    return (
        "<table><tr><th>Version</th><th>Last event</th><th>At</th><th>Reason</th>"
        "<th>Links</th></tr>" + "".join(rows) + "</table>"
    )


def model_page(health: ModelHealth, *, base: str) -> str:
    """One model's health: audit timeline, primary metric per window, drift, scoring."""
    d = health.drift
    drift_chart = chart(
        [p.start or p.run_id or "?" for p in d], {"drift share": [p.share for p in d]}
    )
    body = (
        f"<p><a href='{escape(base)}/models'>← all models</a></p>"
        f"<h1>{_t(health.name)}</h1><p>{_t(health.description)}</p>"
        f"<p>Owner: {_t(health.owner)} · Champion: {_champion(health)}</p>"
        f"<h2>{_t(health.primary)} per window (realized vs estimated)</h2>"
        + _metric_chart(health)
        + "<h2>Drift share over time</h2>"
        + drift_chart
        + "<h2>Most-drifted columns</h2>"
        + _column_grid(health)
        + "<h2>Versions</h2>"
        + _versions(health)
        + "<h2>Audit timeline</h2>"
        + _timeline(health)
        + "<h2>Scoring</h2>"
        + _scoring_charts(health)
        + _scoring(health)
    )
    return _page(f"{health.name}: model health", body)


def not_a_model_page(dag_id: str, *, base: str) -> str:
    """The "Model health" tab of a DAG that is no model's (or whose model one may not read)."""
    return _page(
        "Model health",
        f"<h1>Model health</h1><p class='empty'>DAG {_t(dag_id)} belongs to no model you may "
        f"read.</p><p><a href='{escape(base)}/models'>All models</a></p>",
    )
