"""report.html of a backtest: tables and inline SVG charts, no script, no CDN."""

from __future__ import annotations

from html import escape
from typing import Any

_COLOURS = ["#888888", "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2"]
_W, _H, _PAD = 900, 260, 40


def _num(x: Any, digits: int = 4) -> str:
    return "–" if x is None else f"{x:.{digits}f}" if isinstance(x, float) else escape(str(x))


def _chart(series: dict[str, list[tuple[int, float | None, bool]]], title: str, steps: int) -> str:
    """Lines of (step, value, marked) per name; marked points get a circle (a retrain)."""
    values = [v for pts in series.values() for _, v, _ in pts if v is not None]
    if not values:
        return f"<p>{escape(title)}: no values</p>"
    lo, hi = min(values), max(values)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5

    def x(step: int) -> float:
        return _PAD + (_W - 2 * _PAD) * step / max(steps - 1, 1)

    def y(v: float) -> float:
        return _H - _PAD - (_H - 2 * _PAD) * (v - lo) / (hi - lo)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" '
        f'role="img" aria-label="{escape(title)}">',
        f'<text x="{_PAD}" y="20" font-size="14">{escape(title)}</text>',
        f'<line x1="{_PAD}" y1="{_H - _PAD}" x2="{_W - _PAD}" y2="{_H - _PAD}" stroke="#ccc"/>',
    ]
    for frac in (0.0, 0.5, 1.0):
        v = lo + frac * (hi - lo)
        out.append(
            f'<text x="2" y="{y(v) + 4:.1f}" font-size="10">{v:.3f}</text>'
            f'<line x1="{_PAD}" y1="{y(v):.1f}" x2="{_W - _PAD}" y2="{y(v):.1f}" '
            'stroke="#eee"/>'
        )
    for i, (name, pts) in enumerate(series.items()):
        colour = _COLOURS[i % len(_COLOURS)]
        path = " ".join(
            f"{'M' if j == 0 else 'L'}{x(s):.1f},{y(v):.1f}"
            for j, (s, v, _) in enumerate(p for p in pts if p[1] is not None)
        )
        out.append(f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
        for s, v, marked in pts:
            if marked and v is not None:
                out.append(
                    f'<circle cx="{x(s):.1f}" cy="{y(v):.1f}" r="3" fill="{colour}">'
                    f"<title>{escape(name)} retrained at step {s + 1}</title></circle>"
                )
        out.append(
            f'<text x="{_W - _PAD - 120}" y="{34 + 14 * i}" font-size="12" fill="{colour}">'
            f"{escape(name)}</text>"
        )
    out.append("</svg>")
    return "".join(out)


def render_html(data: dict) -> str:
    steps, primary = data["steps"], data["primary"]
    records = data["records"]
    metric = {
        name: [(r["step"], r["metric"], bool(r["retrain"] and r["promoted"])) for r in rs]
        for name, rs in records.items()
    }
    drift = {
        name: [(r["step"], r["drift_share"], bool(r["alarm"])) for r in rs]
        for name, rs in records.items()
        if any(r["drift_share"] is not None for r in rs)
    }
    cols = ["mean", "second_half_mean", "retrains", "second_half_retrains", "promotions"]
    cols += ["compute_seconds", "gap_to_always", "alarms", "alarms_paid_off"]

    def table(policies: dict[str, dict]) -> str:
        head = "".join(f"<th>{c}</th>" for c in ["policy", *cols, "by_quarter"])
        rows = []
        for name, s in policies.items():
            cells = "".join(f"<td>{_num(s.get(c))}</td>" for c in cols)
            quarters = ", ".join(_num(q, 3) for q in s["by_quarter"])
            rows.append(f"<tr><td>{escape(name)}</td>{cells}<td>{quarters}</td></tr>")
        return f"<table><tr>{head}</tr>{''.join(rows)}</table>"

    targets = "".join(
        f"<li>{'met' if t['met'] else '<b>not met</b>'}: {escape(t['target'])}: "
        f"{_num(t['value'])}</li>"
        for t in data["targets"]
    )
    windows = "".join(
        f"<h3>training window {escape(label)}</h3>{table(p)}"
        for label, p in data["windows"].items()
    )
    alarms = "".join(
        f"<tr><td>{a['step'] + 1}</td><td>{escape(a['kind'])}</td><td>{escape(a['reason'])}</td>"
        f"<td>{_num(a['replaced_metric'])}</td><td>{_num(a['retrained_metric'])}</td>"
        f"<td>{'yes' if a['paid_off'] else 'no'}</td><td>{a['promoted']}</td></tr>"
        for a in data["alarms"]
    )
    spec_rows = "".join(
        f"<tr><td>{r['step'] + 1}</td><td>{r['start'][:10]}</td><td>{r['rows']}</td>"
        f"<td>{_num(r['champion_version'])}</td><td>{_num(r['metric'])}</td>"
        f"<td>{_num(r['drift_share'], 2)}</td><td>{escape(r['retrain_reason'])}</td>"
        f"<td>{escape(r['gate_reason'])}</td><td>{r['train_seconds']}</td></tr>"
        for r in records.get("spec", [])
    )
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>backtest {escape(data["model"])}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;font-size:12px}}
td,th{{border:1px solid #ddd;padding:3px 6px;text-align:right}}td:nth-child(3),td:nth-child(7),
td:nth-child(8){{text-align:left}}</style></head><body>
<h1>Backtest of {escape(data["model"])}</h1>
<p>{steps} steps of {data["step_days"]} days from {escape(data["origin"][:10])}, first model
after {data["warmup_steps"]} warm-up steps; prequential {escape(primary)} of the serving
champion on each step's rows before anything trains on them. {data["seconds"]} s.</p>
<h2>Targets (spec policy, second half)</h2><ul>{targets}</ul>
<h2>Policies</h2>{table(data["policies"])}
{_chart(metric, f"{primary} per step (circles: retrained and promoted)", steps)}
{_chart(drift, "share of drifted columns (circles: alarm)", steps)}
<h2>Training windows</h2>{windows or "<p>none compared</p>"}
<h2>Alarms of the spec policy</h2>
<table><tr><th>step</th><th>kind</th><th>reason</th><th>replaced, next step</th>
<th>retrained, next step</th><th>paid off</th><th>promoted</th></tr>{alarms}</table>
<h2>Spec policy, step by step</h2>
<table><tr><th>step</th><th>start</th><th>rows</th><th>champion</th><th>{escape(primary)}</th>
<th>drift</th><th>retrain</th><th>promotion</th><th>train s</th></tr>{spec_rows}</table>
</body></html>
"""
